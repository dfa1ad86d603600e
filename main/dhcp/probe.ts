// Before full DHCP mode hands out a single address: is another DHCP server on this
// network? Act as a client for a moment (RFC 2131 §4.4.1): broadcast a DISCOVER from the
// client port and listen for OFFERs. Two servers on one segment give clients conflicting
// addresses, and the other one is usually the office's.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:dgram';
import type { Clock } from '../core/index.js';
import type { UdpSocketFactory } from '../net/index.js';
import { DhcpMessageType } from './options.js';
import { BOOTREPLY, BOOTREQUEST, decodeDhcpPacket, encodeDhcpPacket, FLAG_BROADCAST } from './packet.js';

export interface ProbeOptions {
  socketFactory: UdpSocketFactory;
  interfaceName?: string;
  serverPort: number;
  clientPort: number;
  /** Our own address: an answer from it is not "another" server. */
  ownAddress: string;
  listenMs: number;
  clock: Clock;
}

export interface HeardServer {
  /** Source address of the OFFER. */
  address: string;
  /** Its option 54, when readable. */
  serverIdentifier?: string;
  offeredIp?: string;
}

export interface ProbeResult {
  servers: HeardServer[];
  /** Why the probe could not run (the caller warns and goes on). */
  error?: string;
}

export async function probeForDhcpServers(o: ProbeOptions): Promise<ProbeResult> {
  let socket: Socket;
  try {
    socket = await o.socketFactory({ port: o.clientPort, address: '0.0.0.0', interfaceName: o.interfaceName, broadcast: true });
  } catch (err) {
    return { servers: [], error: `cannot listen on the DHCP client port ${o.clientPort} (${(err as Error).message}); is a DHCP client running on this NIC?` };
  }
  const xid = randomBytes(4).readUInt32BE(0);
  // A locally administered MAC (bit 1 of the first byte), so no real machine's lease is touched.
  const chaddr = Buffer.concat([Buffer.from([0x02]), randomBytes(5), Buffer.alloc(10)]);
  const discover = encodeDhcpPacket({
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid,
    secs: 0,
    flags: FLAG_BROADCAST,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr,
    sname: '',
    file: '',
    options: { messageType: DhcpMessageType.DISCOVER, vendorClassId: 'bootbench-probe', parameterRequestList: [1, 3, 6, 54] },
  });
  const servers = new Map<string, HeardServer>();
  socket.on('message', (msg, rinfo) => {
    if (msg.length < 8 || msg[0] !== BOOTREPLY || msg.readUInt32BE(4) !== xid) return;
    if (rinfo.address === o.ownAddress) return;
    const heard: HeardServer = { address: rinfo.address };
    try {
      const p = decodeDhcpPacket(msg);
      if (p.options.serverIdentifier === o.ownAddress) return;
      heard.serverIdentifier = p.options.serverIdentifier;
      heard.offeredIp = p.yiaddr;
    } catch {
      // An answer we cannot read is still another server answering.
    }
    servers.set(rinfo.address, heard);
  });
  socket.on('error', () => {
    /* reported through the empty result at worst */
  });
  let sendError: string | undefined;
  let sent = 0;
  const send = () =>
    socket.send(discover, o.serverPort, '255.255.255.255', (err) => {
      if (err) sendError = `cannot broadcast a DISCOVER (${err.message})`;
      else sent++;
    });
  send();
  await new Promise<void>((resolve) => {
    // Once more halfway, in case the first broadcast was lost.
    const again = o.clock.setTimeout(send, Math.floor(o.listenMs / 2));
    o.clock.setTimeout(() => {
      o.clock.clearTimeout(again);
      resolve();
    }, o.listenMs);
  });
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return { servers: [...servers.values()], error: sent === 0 ? sendError : undefined };
}
