// Runs inside a test namespace (`ip netns exec NS node --import tsx dhcp-runner.ts ...`)
// for test/integration/dhcp-netns.test.ts. Prints one JSON line per thing that happened.
//
//   serve <options-json>   start a DhcpService with plain dgram sockets on 0.0.0.0
//                          (broadcast on; or main/net's scoped ones with "scoped": true; "prober": "icmp"
//                          for the ICMP address check); print {event:'ready'} or {event:'failed',message},
//                          then every bus event as {event:'bus', ...}
//   client                 read a JSON list of exchanges on stdin:
//                          { name, hex, to, port, fromPort, waitMs }
//                          send each DHCP message from `fromPort` (68 or 4011), collect the
//                          replies with the same xid, print {name, replies:[...]} per exchange
import dgram, { type Socket } from 'node:dgram';
import { DhcpService, type DhcpServiceOptions } from '../../main/dhcp/service.js';
import { decodeDhcpPacket, type DhcpPacket } from '../../main/dhcp/packet.js';
import { EventBus } from '../../main/core/events.js';
import { silentLogger } from '../../main/core/logger.js';
import { createScopedUdpSocketFactory } from '../../main/net/index.js';
import { openIcmpProber } from '../../main/net/icmp-probe.js';
import type { UdpSocketFactory } from '../../main/net/udp-socket-factory.js';

const print = (value: object) => process.stdout.write(`${JSON.stringify(value)}\n`);

const plainFactory: UdpSocketFactory = ({ port, broadcast }) =>
  new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(port, '0.0.0.0', () => {
      s.removeListener('error', reject);
      if (broadcast) s.setBroadcast(true);
      resolve(s);
    });
  });

async function serve(json: string): Promise<void> {
  const { scoped, prober, ...options } = JSON.parse(json) as Omit<DhcpServiceOptions, 'socketFactory' | 'publish' | 'logger' | 'addressProber'> & {
    scoped?: boolean;
    prober?: 'icmp';
  };
  const bus = new EventBus();
  bus.subscribe((e) => print({ ...e, event: 'bus' }));
  // scoped: the host's device-bound sockets (main/net), which need no broadcast route.
  const socketFactory = scoped ? createScopedUdpSocketFactory() : plainFactory;
  // prober 'icmp': the ICMP echo check in place of ARP (the host picks it where ARP cannot be had).
  const addressProber = prober === 'icmp' ? openIcmpProber({ interfaceName: options.interfaceName!, timeoutMs: options.addressCheckMs }) : undefined;
  const service = new DhcpService({ ...options, addressProber, socketFactory, publish: bus.publish, logger: silentLogger });
  try {
    await service.start();
  } catch (err) {
    print({ event: 'failed', message: (err as Error).message });
    process.exit(0);
  }
  print({ event: 'ready', ports: service.ports });
  process.on('SIGTERM', () => void service.stop().then(() => process.exit(0)));
}

export function summarize(p: DhcpPacket, from: dgram.RemoteInfo): Record<string, unknown> {
  const o = p.options;
  return {
    from: `${from.address}:${from.port}`,
    op: p.op,
    xid: p.xid,
    messageType: o.messageType,
    yiaddr: p.yiaddr,
    siaddr: p.siaddr,
    ciaddr: p.ciaddr,
    file: p.file,
    bootFileName: o.bootFileName,
    vendorClass: o.vendorClassId,
    serverIdentifier: o.serverIdentifier,
    leaseTime: o.leaseTime,
    uuid: o.clientUuid?.guid.toString('hex'),
    pxe: o.pxe ? JSON.parse(JSON.stringify(o.pxe)) : undefined,
    message: o.message,
  };
}

interface Exchange {
  name: string;
  hex: string;
  to: string;
  port: number;
  fromPort: number;
  waitMs: number;
}

async function client(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const exchanges = JSON.parse(Buffer.concat(chunks).toString()) as Exchange[];
  const sockets = new Map<number, Socket>();
  const replies = new Map<number, Record<string, unknown>[]>();
  for (const port of new Set(exchanges.map((e) => e.fromPort))) {
    const s = await plainFactory({ port, broadcast: true });
    s.on('message', (msg, from) => {
      try {
        const p = decodeDhcpPacket(msg);
        if (p.op !== 2) return;
        (replies.get(p.xid) ?? replies.set(p.xid, []).get(p.xid)!).push({ ...summarize(p, from), toPort: port });
      } catch (err) {
        print({ event: 'undecodable', from: from.address, error: (err as Error).message });
      }
    });
    sockets.set(port, s);
  }
  for (const e of exchanges) {
    const bytes = Buffer.from(e.hex, 'hex');
    const xid = bytes.readUInt32BE(4);
    replies.delete(xid); // a REQUEST reuses its DISCOVER's xid: count only what answers this message
    await new Promise<void>((r) =>
      sockets.get(e.fromPort)!.send(bytes, e.port, e.to, (err) => {
        if (err) print({ event: 'send-error', name: e.name, error: err.message });
        r();
      }),
    );
    await new Promise((r) => setTimeout(r, e.waitMs));
    print({ event: 'exchange', name: e.name, replies: replies.get(xid) ?? [] });
  }
  for (const s of sockets.values()) s.close();
}

const [command, arg] = process.argv.slice(2);
if (command === 'serve') await serve(arg);
else if (command === 'client') await client();
else {
  process.stderr.write(`unknown command ${command}\n`);
  process.exit(2);
}
