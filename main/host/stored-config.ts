// The configuration the app and `bootbench serve` start from: what was last used, kept in
// the store's settings. Flags and the Start screen override it; a successful start saves it.
import { BOOT_CLASSES, defaultServeConfig, type BootClassName, type ServeConfig } from './config.js';
import type { Store } from '../store/index.js';

export function configFromSettings(store: Store, dataDir: string): ServeConfig {
  const config = defaultServeConfig(dataDir);
  const s = store.settings;
  const nic = s.get('interface');
  if (nic) config.interfaceName = nic;
  const mode = s.get('mode');
  if (mode) config.mode = mode;
  const root = s.get('root');
  if (root) config.root = root;
  const pool = s.get('pool');
  if (pool) {
    config.pool = { first: pool.first, last: pool.last };
    if (pool.router) config.router = pool.router;
    if (pool.dns) config.dns = pool.dns;
    if (pool.leaseSeconds) config.leaseSeconds = pool.leaseSeconds;
  }
  const ports = s.get('ports');
  if (ports?.http) config.httpPort = ports.http;
  const defaults = s.get('defaults');
  for (const [cls, path] of Object.entries(defaults?.boot ?? {})) {
    if ((BOOT_CLASSES as readonly string[]).includes(cls)) config.boot[cls as BootClassName] = path;
  }
  if (defaults?.ipxeScript) config.ipxeScript = defaults.ipxeScript;
  const httpBoot = s.get('httpBoot');
  if (httpBoot) config.httpBoot = httpBoot.file ? { answer: httpBoot.answer, file: httpBoot.file } : { answer: httpBoot.answer };
  const multicast = s.get('imagingMulticast');
  if (multicast) config.imagingMulticast = multicast;
  return config;
}

export function saveConfigToSettings(store: Store, config: ServeConfig): void {
  const s = store.settings;
  store.transaction(() => {
    if (config.interfaceName) s.set('interface', config.interfaceName);
    s.set('mode', config.mode);
    s.set('root', config.root);
    if (config.pool) s.set('pool', { ...config.pool, router: config.router, dns: config.dns, leaseSeconds: config.leaseSeconds });
    s.set('ports', { ...(s.get('ports') ?? {}), http: config.httpPort });
    s.set('defaults', { ...(s.get('defaults') ?? {}), boot: { ...config.boot }, ipxeScript: config.ipxeScript });
    if (config.httpBoot) s.set('httpBoot', { ...config.httpBoot });
    if (config.imagingMulticast) s.set('imagingMulticast', config.imagingMulticast);
  });
}
