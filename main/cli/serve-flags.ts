// The flags of `bootbench serve` (also taken by `bootbench app`) and how they become a
// configuration on top of the stored defaults.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isIPv4 } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  BOOT_CLASSES,
  checkHttpBootFile,
  multicastGroupProblem,
  parsePool,
  DEFAULT_MULTICAST_SESSIONS,
  type BootClassName,
  type ServeConfig,
} from '../host/index.js';

export const SERVE_OPTIONS = {
  interface: { type: 'string' },
  mode: { type: 'string' },
  pool: { type: 'string' },
  'lease-time': { type: 'string' },
  router: { type: 'string' },
  dns: { type: 'string' },
  force: { type: 'boolean' },
  'no-address-check': { type: 'boolean' },
  root: { type: 'string' },
  boot: { type: 'string', multiple: true },
  menu: { type: 'string', multiple: true },
  'menu-timeout': { type: 'string' },
  'ipxe-script': { type: 'string' },
  'http-boot': { type: 'string' },
  'http-boot-file': { type: 'string' },
  'http-port': { type: 'string' },
  'tftp-multicast': { type: 'boolean' },
  'tftp-multicast-group': { type: 'string' },
  'tftp-multicast-wait': { type: 'string' },
  'max-rate': { type: 'string' },
  multicast: { type: 'string' },
  data: { type: 'string' },
  log: { type: 'string' },
  // Test-only port overrides, so tests can run beside a real service.
  'dhcp-port': { type: 'string' },
  'pxe-port': { type: 'string' },
  'tftp-port': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

/** A usage error: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {}

export function defaultDataDir(): string {
  return process.env.BOOTBENCH_DATA ?? join(homedir(), '.bootbench');
}

export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (err) {
    // node's messages name the flag ("Unknown option '--foo'"); keep them and point at --help.
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}

export function parsePort(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new UsageError(`${flag} "${value}" is not a port: give a number from 1 to 65535`);
  return n;
}

/** `--tftp-multicast-group ADDRESS[:PORT]` (or nothing: the defaults). */
function parseMulticastGroup(value: string | undefined): NonNullable<ServeConfig['tftpMulticast']> {
  if (value === undefined) return {};
  const match = /^([\d.]+)(?::(\d+))?$/.exec(value.trim());
  const group = match?.[1] ?? value;
  const problem = multicastGroupProblem(group, DEFAULT_MULTICAST_SESSIONS);
  if (problem) throw new UsageError(`--tftp-multicast-group "${value}": ${problem}; use an administratively scoped group such as 239.255.69.1 (RFC 2365)`);
  const port = match?.[2] === undefined ? undefined : parsePort(match[2], '--tftp-multicast-group port');
  if (port !== undefined && port + DEFAULT_MULTICAST_SESSIONS - 1 > 65535)
    throw new UsageError(
      `--tftp-multicast-group "${value}": the port leaves no room for ${DEFAULT_MULTICAST_SESSIONS} sessions; give one below ${65536 - DEFAULT_MULTICAST_SESSIONS}`,
    );
  return port === undefined ? { group } : { group, port };
}

/** Turns `serve` flags into a configuration on top of the stored defaults. */
export function serveConfigFromFlags(values: ReturnType<typeof parseFlags<typeof SERVE_OPTIONS>>['values'], base: ServeConfig): ServeConfig {
  const config: ServeConfig = structuredClone(base);
  if (values.interface !== undefined) config.interfaceName = values.interface;
  if (values.mode !== undefined) {
    if (values.mode !== 'proxy' && values.mode !== 'dhcp') throw new UsageError(`--mode "${values.mode}" is not allowed: use proxy or dhcp`);
    config.mode = values.mode;
  }
  if (values.pool !== undefined) {
    try {
      config.pool = parsePool(values.pool);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  if (config.mode === 'proxy' && values.pool !== undefined) throw new UsageError('--pool is only used with --mode dhcp: proxy mode never hands out addresses');
  if (config.mode === 'dhcp' && !config.pool) throw new UsageError('--mode dhcp needs --pool FIRST-LAST, e.g. --pool 192.0.2.100-192.0.2.150');
  if (values['lease-time'] !== undefined) {
    const n = Number(values['lease-time']);
    if (!/^\d+$/.test(values['lease-time']) || n < 60 || n > 7 * 86400)
      throw new UsageError(`--lease-time "${values['lease-time']}" is not allowed: give seconds from 60 to 604800`);
    config.leaseSeconds = n;
  }
  if (values.router !== undefined) {
    if (!isIPv4(values.router)) throw new UsageError(`--router "${values.router}" is not an IPv4 address`);
    config.router = values.router;
  }
  if (values.dns !== undefined) {
    const list = values.dns
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const bad = list.find((a) => !isIPv4(a));
    if (bad || list.length === 0) throw new UsageError(`--dns "${values.dns}" is not a list of IPv4 addresses: write e.g. --dns 192.0.2.1,192.0.2.2`);
    config.dns = list;
  }
  if (values.force) config.force = true;
  if (values['no-address-check']) {
    if (config.mode !== 'dhcp') throw new UsageError('--no-address-check is only used with --mode dhcp: proxy mode never hands out addresses');
    config.addressCheck = false;
  }
  if (values.root !== undefined) config.root = resolve(values.root);
  if (values.boot !== undefined) {
    config.boot = {};
    for (const item of values.boot) {
      const eq = item.indexOf('=');
      const cls = eq > 0 ? item.slice(0, eq) : '';
      const path = eq > 0 ? item.slice(eq + 1) : '';
      if (!(BOOT_CLASSES as readonly string[]).includes(cls) || !path) {
        throw new UsageError(`--boot "${item}" is not CLASS=PATH: CLASS is one of ${BOOT_CLASSES.join(', ')}, e.g. --boot uefi64=ipxe.efi`);
      }
      const isUrl = /^https?:\/\//i.test(path);
      if (cls.startsWith('http') && !isUrl && path.startsWith('/')) {
        throw new UsageError(`--boot ${cls}=${path}: give a path relative to --root or a full http:// URL`);
      }
      if (!cls.startsWith('http') && isUrl) {
        throw new UsageError(`--boot ${cls}=${path}: PXE firmware downloads by TFTP; give a path relative to --root (URLs are for http64/httparm64)`);
      }
      config.boot[cls as BootClassName] = path;
    }
  }
  if (values.menu !== undefined) {
    config.menu = values.menu.map((item) => {
      const eq = item.indexOf('=');
      const label = (eq >= 0 ? item.slice(0, eq) : '').trim();
      const file = eq >= 0 ? item.slice(eq + 1).trim() : '';
      if (!label || label.length > 60) {
        throw new UsageError(
          `--menu "${item}" is not LABEL=PATH: e.g. --menu "Memtest=memtest.0", or --menu "Local disk=" for a line that boots the disk (labels up to 60 characters)`,
        );
      }
      if (/^https?:\/\//i.test(file)) throw new UsageError(`--menu ${item}: PXE menus are for TFTP boot files; give a path relative to --root`);
      return file ? { label, file } : { label };
    });
    if (config.menu.length < 2) throw new UsageError('--menu needs at least two lines (one line boots directly: use --boot for that)');
  }
  if (values['menu-timeout'] !== undefined) {
    const n = Number(values['menu-timeout']);
    if (!/^\d+$/.test(values['menu-timeout']) || n > 255)
      throw new UsageError(`--menu-timeout "${values['menu-timeout']}" is not allowed: give seconds from 0 to 255 (255 waits forever)`);
    config.menuTimeoutSeconds = n;
  }
  if (values['ipxe-script'] !== undefined) config.ipxeScript = values['ipxe-script'];
  if (values['http-boot'] !== undefined) {
    if (values['http-boot'] !== 'on' && values['http-boot'] !== 'off')
      throw new UsageError(`--http-boot "${values['http-boot']}" is not allowed: use on or off`);
    config.httpBoot = { ...config.httpBoot, answer: values['http-boot'] === 'on' };
  }
  if (values['http-boot-file'] !== undefined) {
    const file = values['http-boot-file'].trim();
    if (values['http-boot'] === 'off') throw new UsageError('--http-boot-file is not used with --http-boot off: HTTP-boot PCs get no answer');
    try {
      if (file) checkHttpBootFile(file);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    // An empty file: HTTP-boot PCs get the same program as UEFI PXE PCs again.
    config.httpBoot = file ? { answer: true, file } : { answer: config.httpBoot?.answer ?? true };
  }
  if (values['http-port'] !== undefined) config.httpPort = parsePort(values['http-port'], '--http-port');
  if (values['dhcp-port'] !== undefined) config.ports.dhcp = parsePort(values['dhcp-port'], '--dhcp-port');
  if (values['pxe-port'] !== undefined) config.ports.pxe = parsePort(values['pxe-port'], '--pxe-port');
  if (values['tftp-port'] !== undefined) config.ports.tftp = parsePort(values['tftp-port'], '--tftp-port');
  if (values['tftp-multicast'] || values['tftp-multicast-group'] !== undefined || values['tftp-multicast-wait'] !== undefined) {
    config.tftpMulticast = parseMulticastGroup(values['tftp-multicast-group']);
    const wait = values['tftp-multicast-wait'];
    if (wait !== undefined) {
      if (!/^\d+(\.\d+)?$/.test(wait) || Number(wait) > 20)
        throw new UsageError(
          `--tftp-multicast-wait "${wait}" is not allowed: give seconds from 0 to 20 (a client such as atftp gives up after some 25 s without a block)`,
        );
      config.tftpMulticast.startDelayMs = Math.round(Number(wait) * 1000);
    }
  }
  if (values['max-rate'] !== undefined) config.imagingMaxRate = parseBitRate(values['max-rate']);
  if (values.multicast !== undefined) {
    const choice = values.multicast;
    if (choice !== 'auto' && choice !== 'on' && choice !== 'off')
      throw new UsageError(`--multicast "${choice}" is not allowed: use auto (stream in full DHCP mode only), on or off`);
    config.imagingMulticast = choice;
  }
  if (values.data !== undefined) config.dataDir = resolve(values.data);
  return config;
}

/** `--max-rate`: bits per second with an optional k, M or G (400M, 1G), as a byte rate. */
function parseBitRate(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:bit\/?s?|bps)?$/i.exec(value.trim());
  const scale = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[(m?.[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g'];
  const bits = m ? Number(m[1]) * scale : NaN;
  if (!(bits >= 1e6 && bits <= 1e11))
    throw new UsageError(`--max-rate "${value}" is not allowed: give bits per second from 1M to 100G, e.g. 400M or 1G (the image stream's cap)`);
  return bits / 8;
}
