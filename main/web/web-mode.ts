// Puts the pieces of web mode together: the API over a service host, its pushed events,
// and the server that carries both to the browser.
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { HostApi, connectApiEvents, type ApiServiceHost, type ApiStore, type HostApiOptions, type LibraryImporter } from '../api/index.js';
import type { Clock, Logger } from '../core/index.js';
import type { NetInterfaceInfo } from '../../preload/api.js';
import { WebUiServer } from './web-ui-server.js';

export interface WebModeOptions {
  host: ApiServiceHost;
  store?: ApiStore;
  library?: LibraryImporter;
  listInterfaces: () => NetInterfaceInfo[];
  address?: string;
  port?: number;
  token?: string;
  staticDir?: string;
  logger?: Logger;
  clock?: Clock;
  version?: string;
  notices?: () => string[];
  afterStart?: HostApiOptions['afterStart'];
  /** Where browser uploads go before they are imported (main/library uploadsDir). */
  uploadDir?: () => string;
}

export interface WebMode {
  server: WebUiServer;
  api: HostApi;
  url: string;
  close(): Promise<void>;
}

/** dist/renderer of this checkout, whether we run from sources (tsx) or from dist/main/web. */
export function defaultRendererDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const fromDist = resolve(here, '../../renderer');
  if (here.split(/[\\/]/).includes('dist') && existsSync(join(fromDist, 'index.html'))) return fromDist;
  return resolve(here, '../../dist/renderer');
}

export async function startWebMode(options: WebModeOptions): Promise<WebMode> {
  const api = new HostApi({
    host: options.host,
    store: options.store,
    library: options.library,
    listInterfaces: options.listInterfaces,
    shell: 'web',
    version: options.version,
    notices: options.notices,
    afterStart: options.afterStart,
    clock: options.clock,
  });
  const server = new WebUiServer({
    staticDir: options.staticDir ?? defaultRendererDir(),
    api,
    events: (sink) => connectApiEvents({ host: options.host, store: options.store, sink, clock: options.clock }),
    address: options.address,
    port: options.port,
    token: options.token,
    logger: options.logger,
    uploadDir: options.uploadDir,
  });
  await server.start();
  return { server, api, url: server.url, close: () => server.stop() };
}
