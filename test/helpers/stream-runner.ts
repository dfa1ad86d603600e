// Runs inside a test namespace (`ip netns exec NS node --import tsx stream-runner.ts ...`), started
// by test/helpers/stream-harness.ts: the imaging service (routes, jobs, and the multicast stream
// from ADDRESS) on a plain node:http server. With --interface, the NIC's IGMP querier too
// (--querier auto: queries while it streams and no other querier is heard; off: it only listens),
// its intervals shortened so a bridge whose membership interval is a few seconds keeps
// forwarding. One JSON line per event on stdout; commands on stdin, one a line:
//   deploy IMAGE [--manual | --count K | --after S]... MAC...   -> {"job": ID}
//   status ID             -> {"status": JOB}
//   stream ID             -> {"stream": STATS | null}
//   querier               -> {"querier": {"status": STATUS, "sent": N}}
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ImagingService } from '../../main/imaging/index.js';
import { IgmpQuerier } from '../../main/net/index.js';
import { openStore } from '../../main/store/index.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    address: { type: 'string' },
    port: { type: 'string' },
    interface: { type: 'string' },
    querier: { type: 'string' },
    'max-rate': { type: 'string' },
    'start-rate': { type: 'string' },
  },
});
if (!values.data || !values.address || !values.port) throw new Error('--data DIR --address ADDR --port PORT are required');
const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
const log = (level: string) => (message: string) => print({ log: level, message });
const logger = { debug() {}, info: log('info'), warn: log('warn'), error: log('error') };
const store = openStore(values.data);
const querier = values.interface
  ? new IgmpQuerier({
      interfaceName: values.interface,
      address: values.address,
      logger,
      mode: values.querier === 'off' ? 'off' : 'auto',
      timings: { queryIntervalMs: 1000, maxResponseMs: 500, startupCount: 2, startupIntervalMs: 300, otherQuerierPresentMs: 5000 },
    })
  : undefined;
const maxRate = values['max-rate'] ? Number(values['max-rate']) : undefined;
const startRate = values['start-rate'] ? Number(values['start-rate']) : undefined;
const rate = maxRate || startRate ? { ...(maxRate ? { maxRate } : {}), ...(startRate ? { startRate } : {}) } : undefined;
const imaging = new ImagingService({ store, dataDir: values.data, logger, stream: { address: values.address, rate, querier } });
const server = createServer((req, res) => {
  void imaging.handle(req, res, new URL(req.url ?? '/', 'http://host')).then((handled) => {
    if (!handled) res.writeHead(404).end();
  });
});
await new Promise<void>((resolve) => server.listen(Number(values.port), values.address, resolve));
print({ ready: `http://${values.address}:${values.port}` });

for await (const line of createInterface({ input: process.stdin })) {
  const [command, ...args] = line.trim().split(/\s+/);
  try {
    if (command === 'deploy') {
      const start: { manual?: boolean; count?: number; afterSeconds?: number } = {};
      const macs: string[] = [];
      for (let i = 1; i < args.length; i++) {
        if (args[i] === '--manual') start.manual = true;
        else if (args[i] === '--count') start.count = Number(args[++i]);
        else if (args[i] === '--after') start.afterSeconds = Number(args[++i]);
        else macs.push(args[i]);
      }
      const rule = Object.keys(start).length ? start : undefined;
      print({ job: imaging.jobs.create({ kind: 'deploy', image: args[0], macs, then: 'poweroff', start: rule }).id });
    } else if (command === 'status') print({ status: imaging.jobs.get(Number(args[0])) });
    else if (command === 'stream') print({ stream: (await imaging.streamStats(Number(args[0]))) ?? null });
    else if (command === 'querier' && querier) print({ querier: { status: querier.status(), sent: querier.election.sent } });
    else print({ error: `unknown command ${command}` });
  } catch (error) {
    print({ error: (error as Error).message });
  }
}
imaging.stop();
querier?.close();
server.close();
store.close();
