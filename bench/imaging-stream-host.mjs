// The host's imaging service with its deploy stream (ImagingService: routes, jobs in a SQLite
// store, the multicast stream from ADDRESS) on a plain node:http server, from the compiled
// tree (dist/main) under plain node, as bench/imaging-host.mjs. Started by
// bench/imaging-stream-lab.ts inside the bench's stream host namespace.
//
// usage: node bench/imaging-stream-host.mjs --main DIST_MAIN --data DIR --address ADDR --port PORT
//        [--max-rate BYTES_PER_S] [--min-receivers N] [--start-grace-ms MS]
// Prints "ready", then answers one line per command on stdin:
//   job capture|deploy IMAGE MAC...   -> "job ID"
//   status ID                         -> the job as JSON
//   chunks IMAGE                      -> "chunks COUNT COMPRESSED_BYTES" (every chunk in stream order)
//   size IMAGE                        -> "size USED_BYTES"
// The service's log lines (the stream's start and end with its figures) go to stderr.
import { statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    main: { type: 'string' },
    data: { type: 'string' },
    address: { type: 'string' },
    port: { type: 'string' },
    'max-rate': { type: 'string' },
    'min-receivers': { type: 'string' },
    'start-grace-ms': { type: 'string' },
  },
});
if (!values.main || !values.data || !values.address || !values.port)
  throw new Error('--main DIST_MAIN, --data DIR, --address ADDR and --port PORT are required');
const load = (path) => import(pathToFileURL(join(values.main, path)).href);
const { ImagingService } = await load('imaging/index.js');
const { openStore } = await load('store/index.js');

const say = (level) => (message) => process.stderr.write(`${new Date().toISOString()} ${level}: ${message}\n`);
// BOOTBENCH_STREAM_DEBUG=1: the stream's pacing every 250 ms as well (rate, cursor, each PC's position).
const logger = { debug: process.env.BOOTBENCH_STREAM_DEBUG === '1' ? say('debug') : () => {}, info: say('info'), warn: say('warn'), error: say('error') };
const store = openStore(values.data);
const rate = {};
if (values['max-rate']) rate.maxRate = Number(values['max-rate']);
if (values['min-receivers']) rate.minReceivers = Number(values['min-receivers']);
if (values['start-grace-ms']) rate.startGraceMs = Number(values['start-grace-ms']);
const imaging = new ImagingService({ store, dataDir: values.data, logger, stream: { address: values.address, rate } });
const server = createServer((req, res) => {
  void imaging.handle(req, res, new URL(req.url ?? '/', 'http://host')).then((handled) => {
    if (!handled) res.writeHead(404).end();
  });
});
await new Promise((resolve) => server.listen(Number(values.port), values.address, resolve));
process.stdout.write('ready\n');

for await (const line of createInterface({ input: process.stdin })) {
  const [command, ...args] = line.trim().split(/\s+/);
  try {
    if (command === 'job') process.stdout.write(`job ${imaging.jobs.create({ kind: args[0], image: args[1], macs: args.slice(2), then: 'poweroff' }).id}\n`);
    else if (command === 'status') process.stdout.write(`${JSON.stringify(imaging.jobs.get(Number(args[0])))}\n`);
    else if (command === 'chunks') {
      const manifest = imaging.catalog.get(args[0]);
      const shas = manifest ? manifest.partitions.flatMap((p) => p.chunks) : [];
      const bytes = shas.reduce((n, sha) => n + statSync(imaging.catalog.chunks.path(sha)).size, 0);
      process.stdout.write(`chunks ${shas.length} ${bytes}\n`);
    } else if (command === 'size') {
      const manifest = imaging.catalog.get(args[0]);
      process.stdout.write(`size ${manifest ? imaging.catalog.summary(manifest).usedBytes : 0}\n`);
    } else process.stdout.write(`error unknown command ${command}\n`);
  } catch (error) {
    process.stdout.write(`error ${error.message}\n`);
  }
}
imaging.stop();
server.close();
store.close();
