// A DISCOVER storm for load.test.ts, run in the client namespace: PXE DISCOVERs (each
// from its own locally administered MAC, with its own xid) at RATE per second for SECONDS,
// from port 68 on IFACE; every proxy offer that comes back is matched to its DISCOVER and
// timed. Prints one JSON line: sent, answered, latency percentiles (ms).
//   node --import tsx discover-storm.ts IFACE RATE SECONDS
import { createScopedUdpSocketFactory } from '../../main/net/index.js';
import { DhcpMessageType } from '../../main/dhcp/options.js';
import { BOOTREQUEST, encodeDhcpPacket, FLAG_BROADCAST } from '../../main/dhcp/packet.js';

const [iface, rateArg, secondsArg] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const TICK_MS = 2;

async function main(): Promise<void> {
  const socket = await createScopedUdpSocketFactory()({ port: 68, address: '0.0.0.0', interfaceName: iface, broadcast: true });
  // The sender may run at a lower priority than the host (load.test.ts): offers wait here
  // until it is scheduled, and must not be dropped by a small buffer meanwhile.
  socket.setRecvBufferSize(8 * 1024 * 1024);
  const template = encodeDhcpPacket({
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0,
    secs: 0,
    flags: FLAG_BROADCAST,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: Buffer.alloc(16),
    sname: '',
    file: '',
    options: {
      messageType: DhcpMessageType.DISCOVER,
      vendorClassId: 'PXEClient:Arch:00007:UNDI:003000',
      clientArch: [7],
      clientNdi: { type: 1, major: 3, minor: 0 },
      maxMessageSize: 1472,
    },
  });
  const sentAt = new Map<number, bigint>();
  const latencies: number[] = [];
  socket.on('message', (msg) => {
    if (msg.length < 240 || msg[0] !== 2) return;
    const t = sentAt.get(msg.readUInt32BE(4));
    if (t === undefined) return;
    sentAt.delete(msg.readUInt32BE(4));
    latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
  });
  let sent = 0;
  let sendErrors = 0;
  const total = rate * seconds;
  const started = Date.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      // Catch up to where the schedule says we should be (timers are late on a busy machine).
      const due = Math.min(total, Math.floor(((Date.now() - started) / 1000) * rate));
      while (sent < due) {
        const packet = Buffer.from(template);
        const xid = 0x10000000 + sent;
        packet.writeUInt32BE(xid, 4);
        packet.set([0x02, 0x5b, (sent >>> 24) & 0xff, (sent >>> 16) & 0xff, (sent >>> 8) & 0xff, sent & 0xff], 28);
        sentAt.set(xid, process.hrtime.bigint());
        socket.send(packet, 67, '255.255.255.255', (err) => {
          if (err) sendErrors++;
        });
        sent++;
      }
      if (sent >= total) resolve();
      else setTimeout(tick, TICK_MS);
    };
    tick();
  });
  const sendMs = Date.now() - started;
  // Late answers still count as answers (their latency shows how late); 3 s is less than
  // the 4 s a PXE ROM waits for its first offer. Once every DISCOVER is answered there is nothing to wait for.
  for (const until = Date.now() + 3000; latencies.length < sent && Date.now() < until;) await new Promise((r) => setTimeout(r, 10));
  socket.close();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] : NaN);
  const cpu = process.cpuUsage();
  console.log(
    JSON.stringify({
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      sent,
      sendMs,
      sendErrors,
      answered: latencies.length,
      p50: pct(50),
      p90: pct(90),
      p99: pct(99),
      max: latencies.at(-1) ?? NaN,
    }),
  );
}

main();
