// Headless web mode: the service host plus the UI in a browser, without Electron.
//   node --import tsx main/cli/web.ts [serve options] [--ui-address A] [--ui-port N] [--start]
// (or dist/main/cli/web.js after `npm run build`). `npm start` runs this where Electron
// cannot run. Services start from the UI's Start screen, or at once with --start.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultDataDir, serveConfigFromFlags, SERVE_OPTIONS } from './serve-flags.js';
import { listInterfaces } from '../net/index.js';
import type { Logger } from '../core/index.js';
import { uploadsDir } from '../library/index.js';
import { createUiHost, startWebMode, isLoopbackAddress } from '../web/index.js';

const USAGE = `Usage: bootbench-web [options]

Runs the Bootbench service host with its user interface in a web browser.

UI options:
  --ui-address ADDRESS   where the UI listens (default 127.0.0.1); any other address
                         needs the token printed in the URL
  --ui-port N            UI port (default 8099; 0 = any free port)
  --ui-token TOKEN       fixed token (16+ characters) instead of a random one
  --start                start the services at once with the stored/given settings

Serve options (defaults: the settings last used):
  --interface NAME  --mode proxy|dhcp  --pool FIRST-LAST  --root DIR  --boot CLASS=PATH
  --ipxe-script PATH  --http-port N  --data DIR  --force  (see bootbench serve --help)`;

const { log: _log, ...SERVE_FLAGS } = SERVE_OPTIONS;
const OPTIONS = {
  'ui-address': { type: 'string' },
  'ui-port': { type: 'string' },
  'ui-token': { type: 'string' },
  start: { type: 'boolean' },
  ...SERVE_FLAGS,
} as const;

const logger: Logger = {
  debug: () => {},
  info: (m) => process.stderr.write(`info: ${m}\n`),
  warn: (m) => process.stderr.write(`warn: ${m}\n`),
  error: (m) => process.stderr.write(`error: ${m}\n`),
};

function packageVersion(): string {
  try {
    const here = fileURLToPath(new URL('.', import.meta.url));
    for (const up of ['../../package.json', '../../../package.json']) {
      try {
        return JSON.parse(readFileSync(resolve(here, up), 'utf8')).version;
      } catch {
        /* try the next */
      }
    }
  } catch {
    /* unknown */
  }
  return '0.0.0';
}

export async function runWebMode(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    console.error(`bootbench-web: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const dataDir = values.data !== undefined ? resolve(values.data) : defaultDataDir();
  const port = values['ui-port'] !== undefined ? Number(values['ui-port']) : 8099;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`bootbench-web: --ui-port "${values['ui-port']}" is not a port: give a number from 0 to 65535`);
    return 2;
  }
  let ui;
  try {
    ui = createUiHost({ dataDir, logger, configure: (stored) => serveConfigFromFlags(values as never, stored) });
  } catch (err) {
    console.error(`bootbench-web: ${(err as Error).message}`);
    return 2;
  }
  for (const notice of ui.notices) logger.warn(notice);

  let web;
  try {
    web = await startWebMode({
      host: ui.host,
      store: ui.apiStore,
      library: ui.library,
      listInterfaces: () => listInterfaces(),
      address: values['ui-address'],
      port,
      token: values['ui-token'],
      logger,
      version: packageVersion(),
      notices: () => ui.notices,
      afterStart: () => ui.saveSettings(),
      uploadDir: ui.store ? () => uploadsDir(ui.host.config().dataDir) : undefined,
    });
  } catch (err) {
    console.error(`bootbench-web: ${(err as Error).message}`);
    await ui.close();
    return 1;
  }
  // One line a test or a script can parse, on stdout.
  console.log(`Bootbench web UI: ${web.url}`);
  if (!isLoopbackAddress(values['ui-address'] ?? '127.0.0.1')) {
    logger.warn('the UI is reachable from the network; only people with the token in the URL above can use it. Keep the URL private.');
  }

  if (values.start) {
    try {
      const status = await ui.host.start();
      ui.saveSettings();
      logger.info(`serving on ${status.interfaceName} (${status.address}) in ${status.mode} mode`);
    } catch (err) {
      logger.error(`${(err as Error).message} (the UI shows this on its Start screen)`);
    }
  }

  await new Promise<void>((resolveStop) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolveStop();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await web.close();
  await ui.close();
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runWebMode(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
