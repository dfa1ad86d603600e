// Bootbench's TFTP and HTTP servers alone (no DHCP, no store, events dropped), started by
// bench/run.ts inside the bench's server namespace. This is the "raw" Bootbench the peers
// are compared with; the full host (`bootbench serve`) is measured separately.
//
// usage: node --import tsx bench/server-runner.ts --root DIR --tftp ADDR[,ADDR] --http ADDR:PORT
// Prints "ready" on stdout once every server listens; stops cleanly on SIGTERM.
import { parseArgs } from 'node:util';
import { FileResolver } from '../main/files/index.js';
import { TftpServer } from '../main/tftp/server.js';
import { HttpFileServer } from '../main/http/server.js';
import type { Logger } from '../main/host/logger.js';

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

const servers: { stop(): Promise<void> }[] = [];
for (const address of values.tftp.split(',').filter(Boolean)) {
  const server = new TftpServer({ port: 69, address, files, maxBlksize: Number(values['max-blksize']), publish, logger });
  await server.start();
  servers.push(server);
}
for (const spec of values.http.split(',').filter(Boolean)) {
  const [address, port] = spec.split(':');
  const server = new HttpFileServer({ port: Number(port), address, files, publish, logger });
  await server.start();
  servers.push(server);
}
process.stdout.write('ready\n');

process.on('SIGTERM', () => {
  void Promise.all(servers.map((s) => s.stop())).then(() => process.exit(0));
});
