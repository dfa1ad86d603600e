// The desktop app's service host on Linux, in a process of its own (main/app/host-link.ts
// says why): started by the app through bootbench-host (`bootbench-host app-host ...`,
// packaged) or as Electron in Node mode (development). It runs the same host as web mode
// and `bootbench serve`, and speaks the API contract over stdin/stdout, one JSON line each.
//   host-process.js --data DIR [--app-version V]
// No `electron` import: it runs under ELECTRON_RUN_AS_NODE, or plain Node in the tests.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostApi, connectApiEvents } from '../api/index.js';
import type { Logger } from '../core/index.js';
import { listInterfaces, checkPrivileges, detectPackaging } from '../net/index.js';
import { createUiHost, type UiHost } from '../web/index.js';
import { serveApiOverLines } from './host-link.js';

/** The desktop app's host and its API, wherever it runs (this process, or main.ts in-process). */
export function createAppHost(dataDir: string, version: string | undefined, logger?: Logger): { ui: UiHost; api: HostApi } {
  const ui = createUiHost({ dataDir, logger });
  const api = new HostApi({
    host: ui.host,
    store: ui.apiStore,
    library: ui.library,
    listInterfaces: () => listInterfaces(),
    shell: 'electron',
    version,
    // The app's main process shows the dialogs and hands the chosen paths over.
    fileDialogs: true,
    notices: () => ui.notices,
    afterStart: () => ui.saveSettings(),
  });
  return { ui, api };
}

export async function runHostProcess(argv: string[]): Promise<number> {
  // stdout carries the protocol: anything else that prints goes to stderr, which the app logs.
  const protocolOut = process.stdout.write.bind(process.stdout);
  const toStderr = (...args: unknown[]) => process.stderr.write(`${args.map(String).join(' ')}\n`);
  console.log = console.info = console.debug = toStderr;
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
    (process.stderr.write as (...a: unknown[]) => boolean)(chunk, ...rest)) as typeof process.stdout.write;

  const { values } = parseArgs({ args: argv, options: { data: { type: 'string' }, 'app-version': { type: 'string' } }, strict: true });
  if (!values.data) {
    process.stderr.write('host-process: --data DIR is required\n');
    return 2;
  }
  const logger: Logger = {
    debug: () => {},
    info: (m) => process.stderr.write(`info: ${m}\n`),
    warn: (m) => process.stderr.write(`warn: ${m}\n`),
    error: (m) => process.stderr.write(`error: ${m}\n`),
  };
  const { ui, api } = createAppHost(resolve(values.data), values['app-version'], logger);
  for (const notice of ui.notices) logger.warn(notice);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await ui.close();
  };
  process.once('SIGTERM', () => void stop().then(() => process.exit(0)));
  process.once('SIGINT', () => void stop().then(() => process.exit(0)));

  await serveApiOverLines({
    input: process.stdin,
    write: (line) => void protocolOut(line),
    api,
    events: (sink) => connectApiEvents({ host: ui.host, store: ui.apiStore, sink }),
    hello: { pid: process.pid, privileges: checkPrivileges(), packaging: detectPackaging() },
    onStray: (line) => logger.warn(`host-process: ignored a line that is not a request: ${line.slice(0, 200)}`),
  });
  await stop();
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runHostProcess(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`host-process: ${err.message}\n`);
      process.exit(1);
    },
  );
}
