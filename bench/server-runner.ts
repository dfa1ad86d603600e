// Bootbench's TFTP and HTTP servers alone (no DHCP, no store, events dropped), started by
// bench/run.ts inside the bench's server namespace. This is the "raw" Bootbench the peers
// are compared with; the full host (`bootbench serve`) is measured separately.
//
// usage: node --import tsx bench/server-runner.ts --root DIR --tftp ADDR[,ADDR] --http ADDR:PORT
// Prints "ready" on stdout once every server listens; stops cleanly on SIGTERM.
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import type { Logger } from '../main/host/logger.js';

// BOOTBENCH_BENCH_MAIN points at another checkout's main/ (to measure a proposed patch
// without touching this tree); default: this project's main/.
const mainDir = process.env.BOOTBENCH_BENCH_MAIN ?? new URL('../main/', import.meta.url).pathname;
const load = (path: string) => import(pathToFileURL(join(mainDir, path)).href);
const { FileResolver } = (await load('files/index.ts')) as typeof import('../main/files/index.js');
const { TftpServer } = (await load('tftp/server.ts')) as typeof import('../main/tftp/server.js');
const { HttpFileServer } = (await load('http/server.ts')) as typeof import('../main/http/server.js');

const { values } = parseArgs({
  options: {
    root: { type: 'string' },
    tftp: { type: 'string', default: '' },
    http: { type: 'string', default: '' },
    'max-blksize': { type: 'string', default: '1468' },
  },
});
if (!values.root) throw new Error('--root DIR is required');

// Problems still reach the bench's log; routine lines would only cost time.
const logger: Logger = {
  debug() {},
  info() {},
  warn: (m) => process.stderr.write(`warn: ${m}\n`),
  error: (m) => process.stderr.write(`error: ${m}\n`),
};
const publish = (): void => {};
const files = new FileResolver({ roots: [values.root], caseInsensitive: true });

// Extra server options as JSON, to try a tuning knob without editing main/ (e.g.
// BOOTBENCH_BENCH_TFTP_OPTIONS='{"batchSend":false}' or BOOTBENCH_BENCH_HTTP_OPTIONS='{"readChunkBytes":2097152}').
const tftpExtra = JSON.parse(process.env.BOOTBENCH_BENCH_TFTP_OPTIONS ?? '{}') as Record<string, unknown>;
const httpExtra = JSON.parse(process.env.BOOTBENCH_BENCH_HTTP_OPTIONS ?? '{}') as Record<string, unknown>;

const servers: { stop(): Promise<void> }[] = [];
for (const address of values.tftp.split(',').filter(Boolean)) {
  const server = new TftpServer({ port: 69, address, files, maxBlksize: Number(values['max-blksize']), publish, logger, ...tftpExtra });
  await server.start();
  servers.push(server);
}
for (const spec of values.http.split(',').filter(Boolean)) {
  const [address, port] = spec.split(':');
  const server = new HttpFileServer({ port: Number(port), address, files, publish, logger, ...httpExtra });
  await server.start();
  servers.push(server);
}
process.stdout.write('ready\n');

process.on('SIGTERM', () => {
  void Promise.all(servers.map((s) => s.stop())).then(() => process.exit(0));
});
