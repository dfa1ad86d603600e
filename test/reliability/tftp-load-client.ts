// A TFTP read client for the reliability tests, run inside a client namespace:
// many concurrent downloads, lock-step or windowed (RFC 7440), with its own timeout
// and re-ACK so it survives loss like firmware does. Prints one JSON line per run.
//   node --import tsx tftp-load-client.ts '{"server":"192.0.2.1","name":"a.bin","count":20,"blksize":1468,"windowsize":16,"deadlineMs":60000}'
import { createSocket, type Socket } from 'node:dgram';
import { createHash } from 'node:crypto';

export interface LoadClientConfig {
  server: string;
  port?: number;
  /** File name(s); transfer i asks for names[i % names.length]. */
  names: string[];
  count: number;
  blksize?: number;
  windowsize?: number;
  /** Whole run gives up after this. */
  deadlineMs: number;
  /** Silence before the client repeats its last ACK (or the RRQ). */
  reAckMs?: number;
  /** Start transfers this far apart. */
  staggerMs?: number;
  /** Each of the `count` workers downloads again and again until this much time has passed. */
  repeatForMs?: number;
}

export interface TransferOutcome {
  name: string;
  ok: boolean;
  sha256?: string;
  bytes: number;
  ms: number;
  reAcks: number;
  error?: string;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
}

function rrq(name: string, options: Record<string, number>): Buffer {
  const parts = [u16(1), Buffer.from(`${name}\0octet\0`)];
  for (const [k, v] of Object.entries(options)) parts.push(Buffer.from(`${k}\0${v}\0`));
  return Buffer.concat(parts);
}

const ack = (block: number) => Buffer.concat([u16(4), u16(block)]);

export function download(config: LoadClientConfig, name: string, deadline: number): Promise<TransferOutcome> {
  const started = Date.now();
  const blksize = config.blksize ?? 512;
  const windowsize = config.windowsize ?? 1;
  const options: Record<string, number> = { tsize: 0 };
  if (blksize !== 512) options.blksize = blksize;
  if (windowsize !== 1) options.windowsize = windowsize;
  const request = rrq(name, options);
  return new Promise((resolve) => {
    const socket: Socket = createSocket('udp4');
    const hash = createHash('sha256');
    let tid: number | undefined;
    let received = 0; // last in-order block (plain number, no wrap)
    let bytes = 0;
    let reAcks = 0;
    let sinceAck = 0;
    let agreedBlksize = 512;
    let agreedWindow = 1;
    let done = false;
    let lastActivity = Date.now();
    const finish = (ok: boolean, error?: string) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      // Linger a moment so the final ACK is resent if the server repeats its last block.
      setTimeout(() => socket.close(), ok ? 300 : 0);
      resolve({ name, ok, sha256: ok ? hash.digest('hex') : undefined, bytes, ms: Date.now() - started, reAcks, error });
    };
    const sendToServer = (b: Buffer) =>
      socket.send(b, tid ?? config.port ?? 69, config.server, () => {
        /* loss is expected */
      });
    const timer = setInterval(() => {
      if (Date.now() > deadline) return finish(false, `deadline passed after ${bytes} bytes`);
      if (Date.now() - lastActivity < (config.reAckMs ?? 400)) return;
      lastActivity = Date.now();
      reAcks++;
      if (tid === undefined) sendToServer(request);
      else sendToServer(ack(received));
    }, 50);
    socket.on('error', () => {
      /* ICMP unreachable while the server restarts */
    });
    socket.on('message', (msg, rinfo) => {
      if (rinfo.address !== config.server) return;
      if (done) {
        if (msg.readUInt16BE(0) === 3) socket.send(ack(msg.readUInt16BE(2)), rinfo.port, rinfo.address);
        return;
      }
      if (tid === undefined) tid = rinfo.port;
      if (rinfo.port !== tid) return;
      lastActivity = Date.now();
      const op = msg.readUInt16BE(0);
      if (op === 5) return finish(false, `ERROR ${msg.readUInt16BE(2)} ${msg.subarray(4).toString().replace(/\0$/, '')}`);
      if (op === 6) {
        const fields = msg.subarray(2).toString().split('\0');
        for (let i = 0; i + 1 < fields.length; i += 2) {
          if (fields[i] === 'blksize') agreedBlksize = Number(fields[i + 1]);
          if (fields[i] === 'windowsize') agreedWindow = Number(fields[i + 1]);
        }
        if (received === 0) sendToServer(ack(0));
        return;
      }
      if (op !== 3) return;
      const wire = msg.readUInt16BE(2);
      const data = msg.subarray(4);
      if (wire === ((received + 1) & 0xffff)) {
        received++;
        sinceAck++;
        hash.update(data);
        bytes += data.length;
        const last = data.length < agreedBlksize;
        if (last || sinceAck >= agreedWindow) {
          sinceAck = 0;
          sendToServer(ack(received));
        }
        if (last) finish(true);
      } else if (wire !== (received & 0xffff)) {
        // A gap inside the window (RFC 7440 §4): ACK what arrived in order so the sender restarts there.
        sinceAck = 0;
        sendToServer(ack(received));
      }
    });
    socket.bind(0, () => sendToServer(request));
  });
}

export async function runLoadClient(config: LoadClientConfig): Promise<{ outcomes: TransferOutcome[]; ms: number }> {
  const started = Date.now();
  const deadline = started + config.deadlineMs;
  const outcomes = await Promise.all(
    Array.from({ length: config.count }, async (_, i) => {
      if (config.staggerMs) await new Promise((r) => setTimeout(r, i * config.staggerMs!));
      const mine: TransferOutcome[] = [];
      do mine.push(await download(config, config.names[i % config.names.length], deadline));
      while (config.repeatForMs && Date.now() < started + config.repeatForMs && Date.now() < deadline);
      return mine;
    }),
  );
  return { outcomes: outcomes.flat(), ms: Date.now() - started };
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  runLoadClient(JSON.parse(process.argv[2])).then((r) => console.log(JSON.stringify(r)));
}
