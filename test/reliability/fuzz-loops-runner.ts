// Runs inside a loopback-only network namespace made by fuzz-loops.test.ts (a DHCP server
// never runs in the host namespace). Starts the real DhcpService (proxy and full DHCP) and
// TftpServer on 127.0.0.1, throws mutated real packets at every port they listen on,
// including live TFTP transfer ports, and every few hundred packets checks that a good
// packet still gets its answer. Prints one JSON line with the figures.
//   node --import tsx test/reliability/fuzz-loops-runner.ts PACKETS
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { DhcpService } from '../../main/dhcp/service.js';
import { TftpServer } from '../../main/tftp/server.js';
import { FileResolver } from '../../main/files/index.js';
import { EventBus, type BootEvent } from '../../main/core/events.js';
import { openPlainSocket } from '../../main/net/index.js';
import { encodeTftpPacket, TftpOpcode } from '../../main/tftp/packet.js';
import { mutate, seededRandom } from './mutate.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const PACKETS = Number(process.argv[2] ?? 20_000);
const CHECK_EVERY = 400;
const CAPTURES = join(import.meta.dirname, '..', 'fixtures', 'captures');
const CRASH_DIR = join(import.meta.dirname, '..', 'fixtures', 'fuzz');
const LOOP = '127.0.0.1';

const crashes: string[] = [];
process.on('uncaughtException', (err) => crashes.push(`uncaughtException: ${err.stack ?? err}`));
process.on('unhandledRejection', (err) => crashes.push(`unhandledRejection: ${(err as Error)?.stack ?? err}`));

const capture = (name: string) => readFileSync(join(CAPTURES, name));
const dhcpSeeds = readdirSync(CAPTURES)
  .filter((n) => n.endsWith('.bin') && !n.includes('tftp'))
  .map(capture);
const tftpRequestSeeds = readdirSync(CAPTURES)
  .filter((n) => n.includes('tftp-rrq'))
  .map(capture);
const tftpTransferSeeds = [
  encodeTftpPacket({ opcode: TftpOpcode.ACK, block: 0 }),
  encodeTftpPacket({ opcode: TftpOpcode.ACK, block: 1 }),
  encodeTftpPacket({ opcode: TftpOpcode.ERROR, code: 8, message: 'tsize probe' }),
  capture('ovmf-tftp-error-1.bin'),
];

/** The good DISCOVER, relayed (giaddr 127.0.0.1) so the reply is a unicast we can afford. */
function relayed(bytes: Buffer, xid: number): Buffer {
  const out = Buffer.from(bytes);
  out.writeUInt32BE(xid, 4);
  out.set([127, 0, 0, 1], 24);
  return out;
}

function bind(): Promise<Socket> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.on('error', () => {
      /* ICMP errors from closed transfer ports are expected */
    });
    s.bind(0, LOOP, () => resolve(s));
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bb-fuzz-loops-'));
  const root = join(dir, 'root');
  mkdirSync(root);
  const small = randomBytes(3000);
  writeFileSync(join(root, 'ipxe.efi'), small);
  writeFileSync(join(root, 'undionly.kpxe'), randomBytes(70_000));
  // The names the captured RRQs ask for, so fuzzed requests really start transfers.
  writeFileSync(join(root, 'marker.efi'), randomBytes(200_000));
  writeFileSync(join(root, 'marker.0'), randomBytes(20_000));
  const events: BootEvent[] = [];
  const counts = new Map<string, number>();
  const bus = new EventBus();
  const waiters = new Map<number, () => void>();
  bus.subscribe((e) => {
    counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
    if (typeof e.xid === 'number' && (e.type === 'proxy.offer' || e.type === 'pxe.ack' || e.type === 'dhcp.offer')) waiters.get(e.xid)?.();
    if (events.length < 50 && (e.type === 'dhcp.error' || e.type === 'host.warning')) events.push(e);
  });
  // Counts lines and keeps only the ones that mean a bug (a MemoryLogger would hold every
  // "malformed packet" line and look like a leak over a million packets).
  const logged = { debug: 0, info: 0, warn: 0, error: 0 };
  const internalErrors: string[] = [];
  const keep = (level: keyof typeof logged) => (message: string) => {
    logged[level]++;
    if (level !== 'debug' && /internal error|read request from .* failed/.test(message) && internalErrors.length < 20) internalErrors.push(message);
  };
  const logger = { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') };
  const policy = { serverAddress: LOOP, httpBaseUrl: 'http://127.0.0.1:8080', boot: { bios: 'undionly.kpxe', uefi64: 'ipxe.efi' } };
  const factory = (o: Parameters<typeof openPlainSocket>[0]) => openPlainSocket({ ...o, address: LOOP });
  const proxy = new DhcpService({
    mode: 'proxy',
    serverAddress: LOOP,
    socketFactory: factory,
    ports: { server: 0, pxe: 0, client: 16868 },
    policy,
    publish: bus.publish,
    logger,
  });
  const full = new DhcpService({
    mode: 'dhcp',
    serverAddress: LOOP,
    socketFactory: factory,
    ports: { server: 16767, pxe: 0, client: 16869 },
    policy,
    pool: { first: '127.0.0.100', last: '127.0.0.120', subnetMask: '255.0.0.0' },
    leaseFile: join(dir, 'leases.json'),
    probeMs: 10,
    publish: bus.publish,
    logger,
  });
  const tftp = new TftpServer({
    port: 0,
    address: LOOP,
    files: new FileResolver({ roots: [root] }),
    publish: bus.publish,
    logger,
    // Short retry budget: fuzzed RRQs start transfers nobody finishes.
    retransmit: { initialRtoMs: 50, oackRtoMs: 100, maxBackoffMs: 100, abandonAfterMs: 300 },
  });
  await proxy.start();
  await full.start();
  await tftp.start();

  const senders = await Promise.all(Array.from({ length: 8 }, bind));
  // TIDs of transfers the fuzzed RRQs started: their ports get fuzzed too.
  const transferPorts: number[] = [];
  for (const s of senders)
    s.on('message', (_m, r) => {
      if (r.port !== tftp.port && !transferPorts.includes(r.port)) {
        transferPorts.push(r.port);
        if (transferPorts.length > 32) transferPorts.shift();
      }
    });
  const probe = await bind();
  const goodDiscover = capture('ovmf-discover.bin');
  const goodBootRequest = capture('ovmf-pxe-request-4011.bin');
  let xid = 0x5000_0000;

  const answered = (send: () => void, id: number, ms = 2000) =>
    new Promise<boolean>((resolve) => {
      const t = setTimeout(() => {
        waiters.delete(id);
        resolve(false);
      }, ms);
      waiters.set(id, () => {
        clearTimeout(t);
        waiters.delete(id);
        resolve(true);
      });
      send();
    });

  async function tftpDownload(name: string): Promise<string | undefined> {
    const s = await bind();
    try {
      const parts: Buffer[] = [];
      let expected = 1;
      return await new Promise<string | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 3000);
        s.on('message', (msg, r) => {
          if (msg.readUInt16BE(0) !== TftpOpcode.DATA) return resolve(undefined);
          const block = msg.readUInt16BE(2);
          if (block === expected) {
            parts.push(msg.subarray(4));
            expected++;
          }
          s.send(encodeTftpPacket({ opcode: TftpOpcode.ACK, block }), r.port, LOOP);
          if (block === expected - 1 && msg.length < 516) {
            clearTimeout(timer);
            resolve(createHash('sha256').update(Buffer.concat(parts)).digest('hex'));
          }
        });
        s.send(encodeTftpPacket({ opcode: TftpOpcode.RRQ, filename: name, mode: 'octet', options: [] }), tftp.port, LOOP);
      });
    } finally {
      s.close();
    }
  }

  const random = seededRandom(Number(process.env.BOOTBENCH_FUZZ_SEED ?? 0x10f5));
  const recent: Buffer[] = [];
  const failures: string[] = [];
  const goodSha = createHash('sha256').update(small).digest('hex');
  let checks = 0;
  let heapAfterWarmup = 0;
  let heapMax = 0;
  const started = Date.now();
  for (let i = 0; i < PACKETS; i++) {
    const sender = senders[i & 7];
    const which = i % 10;
    let bytes: Buffer;
    let port: number;
    if (which < 3) [bytes, port] = [mutate(dhcpSeeds[i % dhcpSeeds.length], random), proxy.ports.server];
    else if (which < 5) [bytes, port] = [mutate(dhcpSeeds[i % dhcpSeeds.length], random), proxy.ports.pxe];
    else if (which < 6) [bytes, port] = [mutate(dhcpSeeds[i % dhcpSeeds.length], random), full.ports.server];
    else if (which < 8 || transferPorts.length === 0) [bytes, port] = [mutate(tftpRequestSeeds[i % tftpRequestSeeds.length], random), tftp.port];
    else [bytes, port] = [mutate(tftpTransferSeeds[i % tftpTransferSeeds.length], random), transferPorts[i % transferPorts.length]];
    recent.push(bytes);
    if (recent.length > 16) recent.shift();
    sender.send(bytes, port, LOOP);
    // Let the servers breathe: loopback drops what a full receive buffer cannot hold, and a
    // drop is not what this test is about.
    if (i % 16 === 15) await new Promise((r) => setImmediate(r));
    if (i % CHECK_EVERY === CHECK_EVERY - 1) {
      checks++;
      const id67 = ++xid;
      const id4011 = ++xid;
      const idFull = ++xid;
      const [a, b, c, sha] = await Promise.all([
        answered(() => probe.send(relayed(goodDiscover, id67), proxy.ports.server, LOOP), id67),
        answered(() => probe.send(relayed(goodBootRequest, id4011), proxy.ports.pxe, LOOP), id4011),
        answered(() => probe.send(relayed(goodDiscover, idFull), full.ports.server, LOOP), idFull),
        tftpDownload('ipxe.efi'),
      ]);
      if (!a) failures.push(`after ${i + 1} packets: no proxy offer for a good DISCOVER`);
      if (!b) failures.push(`after ${i + 1} packets: no boot-server ACK for a good request`);
      if (!c) failures.push(`after ${i + 1} packets: no full-DHCP offer for a good DISCOVER`);
      if (sha !== goodSha) failures.push(`after ${i + 1} packets: good TFTP download ${sha ? 'corrupt' : 'did not complete'}`);
      if (crashes.length || failures.length) break;
      gc();
      const heap = process.memoryUsage().heapUsed;
      if (i + 1 >= PACKETS / 5 && heapAfterWarmup === 0) heapAfterWarmup = heap;
      heapMax = Math.max(heapMax, heap);
    }
  }
  const elapsedMs = Date.now() - started;
  // Transfers the fuzz started must end by themselves (retry budget), never hang.
  const settleStart = Date.now();
  const settleBy = settleStart + 15_000;
  while (tftp.activeTransfers().length > 0 && Date.now() < settleBy) await new Promise((r) => setTimeout(r, 100));
  const settleMs = Date.now() - settleStart;
  gc();
  const heapEnd = process.memoryUsage().heapUsed;
  const activeAtEnd = tftp.activeTransfers().length;
  if (crashes.length || internalErrors.length) {
    mkdirSync(CRASH_DIR, { recursive: true });
    recent.forEach((b, k) => writeFileSync(join(CRASH_DIR, `loop-${Date.now()}-${k}.bin`), b));
  }
  const sizes = process.env.BOOTBENCH_FUZZ_SIZES
    ? {
        tftpLoggedAt: (tftp as any).loggedAt.size,
        tftpTransfers: (tftp as any).transfers.size,
        proxyErr: (proxy as any).lastErrorReport.size,
        fullErr: (full as any).lastErrorReport.size,
        leases: full.leaseSnapshot().length,
      }
    : undefined;
  await Promise.all([proxy.stop(), full.stop(), tftp.stop()]);
  for (const s of [...senders, probe]) s.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(
    JSON.stringify({
      packets: PACKETS,
      elapsedMs,
      checks,
      crashes,
      failures,
      internalErrors: internalErrors.slice(0, 5),
      internalErrorCount: internalErrors.length,
      heapAfterWarmupMiB: heapAfterWarmup / 2 ** 20,
      heapMaxMiB: heapMax / 2 ** 20,
      heapEndMiB: heapEnd / 2 ** 20,
      activeTransfersAtEnd: activeAtEnd,
      settleMs,
      sizes,
      logged,
      events: Object.fromEntries(counts),
      sampleErrors: events.slice(0, 3),
    }),
  );
}

main().catch((err) => {
  console.log(JSON.stringify({ fatal: String((err as Error)?.stack ?? err) }));
  process.exitCode = 1;
});
