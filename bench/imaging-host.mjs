// The host's imaging routes alone (catalog, jobs in a SQLite store, ImagingRoutes on a plain
// node:http server), started by bench/imaging.ts inside the bench's imaging host namespace.
// Compiled tree (dist/main) under plain node, as bench/server-runner.mjs.
//
// usage: node bench/imaging-host.mjs --main DIST_MAIN --data DIR --listen ADDR:PORT
// Prints "ready", then answers one line per command on stdin:
//   job capture|deploy IMAGE MAC...   -> "job ID"
//   status ID                         -> the job as JSON
//   size IMAGE                        -> "size STORED_BYTES USED_BYTES CHUNKS"
//   remove IMAGE                      -> "removed CHUNKS"
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { main: { type: 'string' }, data: { type: 'string' }, listen: { type: 'string' } } });
if (!values.main || !values.data || !values.listen) throw new Error('--main DIST_MAIN, --data DIR and --listen ADDR:PORT are required');
const load = (path) => import(pathToFileURL(join(values.main, path)).href);
const { ImageCatalog, ImagingJobs, ImagingRoutes } = await load('imaging/index.js');
const { openStore } = await load('store/index.js');

const logger = { debug() {}, info() {}, warn: (m) => process.stderr.write(`warn: ${m}\n`), error: (m) => process.stderr.write(`error: ${m}\n`) };
const store = openStore(join(values.data, 'bootbench.db'));
const catalog = new ImageCatalog(values.data);
const jobs = new ImagingJobs(store.db);
const routes = new ImagingRoutes({ catalog, jobs, logger, machineName: () => undefined });
const server = createServer((req, res) => {
  void routes.handle(req, res, new URL(req.url ?? '/', 'http://host')).then((handled) => {
    if (!handled) res.writeHead(404).end();
  });
});
// The bench stops it with SIGTERM: exiting through process.exit lets `--cpu-prof` write its profile.
process.on('SIGTERM', () => process.exit(0));
const [address, port] = values.listen.split(':');
await new Promise((resolve) => server.listen(Number(port), address, resolve));
process.stdout.write('ready\n');

for await (const line of createInterface({ input: process.stdin })) {
  const [command, ...args] = line.trim().split(/\s+/);
  try {
    if (command === 'job') process.stdout.write(`job ${jobs.create({ kind: args[0], image: args[1], macs: args.slice(2) }).id}\n`);
    else if (command === 'status') process.stdout.write(`${JSON.stringify(jobs.get(Number(args[0])))}\n`);
    else if (command === 'size') {
      const manifest = catalog.get(args[0]);
      const s = manifest ? catalog.summary(manifest) : { storedBytes: 0, usedBytes: 0, chunks: 0 };
      process.stdout.write(`size ${s.storedBytes} ${s.usedBytes} ${s.chunks}\n`);
    } else if (command === 'remove') process.stdout.write(`removed ${catalog.has(args[0]) ? catalog.remove(args[0]).chunks : 0}\n`);
    else process.stdout.write(`error unknown command ${command}\n`);
  } catch (error) {
    process.stdout.write(`error ${error.message}\n`);
  }
}
server.close();
server.closeAllConnections();
await routes.close();
store.close();
