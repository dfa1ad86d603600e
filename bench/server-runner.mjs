// Bootbench's TFTP and HTTP servers alone (no DHCP, no store, events dropped), started by
// bench/run.ts inside the bench's server namespace. This is the "raw" Bootbench the peers
// are compared with; the full host (`bootbench serve`) is measured separately.
//
// Plain JavaScript over the compiled tree (dist/main), run by plain node: what an installed
// Bootbench runs. Under tsx, the loader alone cost an idle process about 25 ms of CPU a
// second, which the slow cases (1 ms RTT lock-step: ~1 MiB/s) counted as 20-60 ms per MiB.
//
// usage: node bench/server-runner.mjs --main DIST_MAIN --root DIR --tftp ADDR[,ADDR] --http ADDR:PORT
// Prints "ready" on stdout once every server listens; stops cleanly on SIGTERM.
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const { values } = parseArgs({
  options: {
    main: { type: 'string' },
    root: { type: 'string' },
    tftp: { type: 'string', default: '' },
    http: { type: 'string', default: '' },
    'max-blksize': { type: 'string', default: '1468' },
  },
});
if (!values.main) throw new Error('--main DIST_MAIN (a compiled dist/main folder) is required');
if (!values.root) throw new Error('--root DIR is required');

const load = (path) => import(pathToFileURL(join(values.main, path)).href);
const { FileResolver } = await load('files/index.js');
const { TftpServer } = await load('tftp/server.js');
const { HttpFileServer } = await load('http/server.js');

// Problems still reach the bench's log; routine lines would only cost time.
const logger = {
  debug() {},
  info() {},
  warn: (m) => process.stderr.write(`warn: ${m}\n`),
  error: (m) => process.stderr.write(`error: ${m}\n`),
};
const publish = () => {};
const files = new FileResolver({ roots: [values.root], caseInsensitive: true });

// Extra server options as JSON, to try a tuning knob without editing main/ (e.g.
// BOOTBENCH_BENCH_TFTP_OPTIONS='{"batchSend":false}' or BOOTBENCH_BENCH_HTTP_OPTIONS='{"readChunkBytes":2097152}').
const tftpExtra = JSON.parse(process.env.BOOTBENCH_BENCH_TFTP_OPTIONS ?? '{}');
const httpExtra = JSON.parse(process.env.BOOTBENCH_BENCH_HTTP_OPTIONS ?? '{}');

const servers = [];
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
