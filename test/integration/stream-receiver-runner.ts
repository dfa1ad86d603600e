// Runs inside a test namespace for test/integration/stream-receiver-accounting.test.ts: the
// host's side of one image stream, by hand, so the test decides which datagrams a receiver
// gets. The chunk route (whole chunks, or ?ranges= back to back) and the stream's start
// route (404: no such stream, so the receiver does not wait) on HTTP_PORT; the data
// datagrams of the plan to GROUP:PORT once the receiver's first feedback arrives. One JSON
// line per event on stdout: {ready}, {http: path}, {feedback: Feedback}, {sent: datagrams}.
import { createSocket } from 'node:dgram';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DATA_PAYLOAD, decodeFeedback, encodeData } from '../../main/imaging/multicast-datagram.js';

const { values } = parseArgs({
  options: {
    address: { type: 'string' },
    group: { type: 'string' },
    port: { type: 'string' },
    'http-port': { type: 'string' },
    session: { type: 'string' },
    chunks: { type: 'string', multiple: true },
    // per chunk: the blocks to send, "all", "none" or "every:N" (blocks whose number is a multiple of N) or "skip:a,b,c"
    plan: { type: 'string', multiple: true },
  },
});
const chunks = (values.chunks ?? []).map((file) => readFileSync(file));
const bySha = new Map(chunks.map((c) => [createHash('sha256').update(c).digest('hex'), c]));
const session = Number.parseInt(values.session!, 16);
const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://host');
  print({ http: `${url.pathname}${url.search}` });
  const chunk = /^\/imaging\/chunks\/([0-9a-f]{64})$/.exec(url.pathname);
  const data = chunk && bySha.get(chunk[1]);
  if (!data) return void res.writeHead(404, { 'content-length': 0 }).end();
  const ranges = url.searchParams.get('ranges');
  const body = ranges
    ? Buffer.concat(
        ranges.split(',').map((r) => {
          const [from, to] = r.split('-').map(Number);
          return data.subarray(from, to + 1);
        }),
      )
    : data;
  res.writeHead(200, { 'content-length': body.length }).end(body);
});
await new Promise<void>((resolve) => server.listen(Number(values['http-port']), values.address, resolve));

const socket = createSocket({ type: 'udp4', reuseAddr: false });
await new Promise<void>((resolve) => socket.bind(Number(values.port), values.address, resolve));
socket.setMulticastInterface(values.address!);
socket.setMulticastTTL(1);

function blocksOf(rule: string, count: number): number[] {
  const all = [...Array(count).keys()];
  if (rule === 'all') return all;
  if (rule === 'none') return [];
  const [kind, arg] = rule.split(':');
  if (kind === 'every') return all.filter((b) => b % Number(arg) === 0);
  if (kind === 'skip') {
    const skipped = new Set(arg.split(',').map(Number));
    return all.filter((b) => !skipped.has(b));
  }
  throw new Error(`plan "${rule}"`);
}

let started = false;
socket.on('message', (packet) => {
  const f = decodeFeedback(packet);
  if (!f || f.session !== session) return;
  print({ feedback: f });
  if (started) return;
  started = true;
  // The plan, in order, paced so that nothing is lost on the way: what is missing is what the plan leaves out.
  void (async () => {
    let seq = 0;
    let sent = 0;
    for (const [index, data] of chunks.entries()) {
      const blocks = blocksOf(values.plan![index], Math.ceil(data.length / DATA_PAYLOAD));
      for (const b of blocks) {
        const offset = b * DATA_PAYLOAD;
        const header = { session, seq: seq++, chunk: index, chunkLength: data.length, offset, chunks: chunks.length };
        await new Promise<void>((resolve) =>
          socket.send(encodeData(header, data.subarray(offset, offset + DATA_PAYLOAD)), Number(values.port), values.group, () => resolve()),
        );
        sent++;
        if (sent % 16 === 0) await new Promise((r) => setTimeout(r, 2));
      }
      // A sequence gap where blocks were left out, as a real stream's would be.
      seq += Math.ceil(data.length / DATA_PAYLOAD) - blocks.length;
    }
    print({ sent });
  })();
});
print({ ready: true });
