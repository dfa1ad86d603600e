// A TftpServer alone, started by a test inside its server namespace: one server per
// `address=dataPath` argument, so a test can drive the worker and the event-loop data
// paths side by side. Prints each event as a JSON line, and "ready" once all listen.
// usage: node --import tsx tftp-server-runner.ts ROOT ADDRESS=worker|event-loop ...
import { EventBus } from '../../main/core/events.js';
import { MemoryLogger } from '../../main/core/logger.js';
import { FileResolver } from '../../main/files/index.js';
import { TftpServer } from '../../main/tftp/server.js';

const [root, ...specs] = process.argv.slice(2);
const bus = new EventBus();
bus.subscribe((e) => {
  if (e.type !== 'tftp.progress') process.stdout.write(JSON.stringify(e) + '\n');
});
const files = new FileResolver({ roots: [root] });
const servers: TftpServer[] = [];
for (const spec of specs) {
  const [address, dataPath] = spec.split('=') as [string, 'worker' | 'event-loop'];
  const server = new TftpServer({ port: 69, address, files, publish: bus.publish, logger: new MemoryLogger(), dataPath });
  await server.start();
  if (server.dataPathInUse.kind !== dataPath)
    throw new Error(`${address}: asked for the ${dataPath} data path, got ${server.dataPathInUse.kind} (${server.dataPathInUse.reason})`);
  servers.push(server);
}
process.on('SIGTERM', () => void Promise.all(servers.map((s) => s.stop())).then(() => process.exit(0)));
process.stdout.write('ready\n');
