// A PXE client in software, for `bootbench doctor`:
//  - `listenForOffers`: broadcast one PXE DISCOVER (option 60 PXEClient) from port 68 on
//    the chosen NIC and list every answer, proxy or not: the office DHCP server, another
//    PXE server, a second Bootbench. Two PXE servers on one switch fight over every client.
//  - `runTestBoot` (`bootbench doctor --test-boot`): play a BIOS and a UEFI client against
//    the running host, step by step as firmware does (PXE 2.1 §2.2): offer, boot-server
//    ACK on 4011, TFTP size probe (RRQ with tsize, then ERROR 8, as EDK2 does), download.
//    A technician sees which step fails before walking to the bench.
// Sockets come from the scoped factory, so everything goes through the chosen NIC only.
// Run on the Bootbench machine itself this works too: Linux loops a broadcast sent on a
// NIC back to local sockets bound to that NIC, and unicasts to our own address keep the
// sending socket's device as their input device.
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:dgram';
import type { UdpSocketFactory } from '../net/index.js';
import {
  DhcpMessageType,
  messageTypeName,
  BOOTREPLY,
  BOOTREQUEST,
  decodeDhcpPacket,
  encodeDhcpPacket,
  FLAG_BROADCAST,
  type DhcpPacket,
} from '../dhcp/index.js';

export type TestClientKind = 'bios' | 'uefi';

const CLIENTS: Record<TestClientKind, { arch: number; vendorClass: string; ndi: { type: number; major: number; minor: number } }> = {
  // What an Intel PXE 2.1 BIOS ROM and EDK2's PxeBcDxe send (PXE-NOTES, captured packets).
  bios: { arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', ndi: { type: 1, major: 2, minor: 1 } },
  uefi: { arch: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003000', ndi: { type: 1, major: 3, minor: 0 } },
};

export interface HeardOffer {
  /** Source address of the answer. */
  from: string;
  serverIdentifier?: string;
  messageType: string;
  /** Address offered; 0.0.0.0 for a proxy offer. */
  yiaddr: string;
  /** A Proxy DHCP offer: PXE boot information and no address. */
  proxy: boolean;
  vendorClass?: string;
  bootFile?: string;
  siaddr: string;
  /** Option 43 with PXE sub-options (a boot menu or discovery control). */
  pxeOptions: boolean;
}

export interface OfferProbeOptions {
  interfaceName?: string;
  socketFactory: UdpSocketFactory;
  kind?: TestClientKind;
  listenMs?: number;
  /** Tests move these; defaults 67 and 68. */
  serverPort?: number;
  clientPort?: number;
  mac?: Buffer;
}

function u32(): number {
  return randomBytes(4).readUInt32BE(0);
}

/** A locally administered MAC (bit 1 of the first byte), so no real machine's lease is touched. */
export function testClientMac(): Buffer {
  return Buffer.concat([Buffer.from([0x02, 0xbb]), randomBytes(4)]);
}

function clientUuid(mac: Buffer) {
  return { type: 0, guid: Buffer.concat([Buffer.from('bootbench-t'), mac.subarray(0, 5)]) };
}

function pxeRequest(kind: TestClientKind, type: number, xid: number, mac: Buffer, ciaddr = '0.0.0.0', extra: Partial<DhcpPacket['options']> = {}): Buffer {
  const c = CLIENTS[kind];
  return encodeDhcpPacket({
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid,
    secs: 4,
    flags: ciaddr === '0.0.0.0' ? FLAG_BROADCAST : 0,
    ciaddr,
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: Buffer.concat([mac, Buffer.alloc(10)]),
    sname: '',
    file: '',
    options: {
      messageType: type,
      maxMessageSize: 1472,
      parameterRequestList: [1, 3, 6, 43, 54, 60, 66, 67, 97, 128, 129, 130],
      clientArch: [c.arch],
      clientNdi: c.ndi,
      clientUuid: clientUuid(mac),
      vendorClassId: c.vendorClass,
      ...extra,
    },
  });
}

function describeOffer(p: DhcpPacket, from: string): HeardOffer {
  return {
    from,
    serverIdentifier: p.options.serverIdentifier,
    messageType: messageTypeName(p.options.messageType),
    yiaddr: p.yiaddr,
    proxy: p.yiaddr === '0.0.0.0' && (p.options.vendorClassId ?? '').startsWith('PXEClient'),
    vendorClass: p.options.vendorClassId,
    bootFile: p.options.bootFileName ?? (p.file || undefined),
    siaddr: p.siaddr,
    pxeOptions: p.options.pxe !== undefined,
  };
}

function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve();
    }
  });
}

/** Broadcasts a PXE DISCOVER and lists every answer heard within `listenMs`. */
export async function listenForOffers(o: OfferProbeOptions): Promise<{ offers: HeardOffer[]; error?: string }> {
  let socket: Socket;
  try {
    // reuseAddress: this is a client socket, and the OS's own DHCP client may hold 68.
    socket = await o.socketFactory({ port: o.clientPort ?? 68, address: '0.0.0.0', interfaceName: o.interfaceName, broadcast: true, reuseAddress: true });
  } catch (err) {
    return { offers: [], error: `cannot listen on the DHCP client port ${o.clientPort ?? 68}: ${(err as Error).message}` };
  }
  const xid = u32();
  const mac = o.mac ?? testClientMac();
  const discover = pxeRequest(o.kind ?? 'bios', DhcpMessageType.DISCOVER, xid, mac);
  const offers: HeardOffer[] = [];
  socket.on('message', (msg, rinfo) => {
    if (msg.length < 240 || msg[0] !== BOOTREPLY || msg.readUInt32BE(4) !== xid) return;
    try {
      const offer = describeOffer(decodeDhcpPacket(msg), rinfo.address);
      if (!offers.some((x) => x.from === offer.from && x.yiaddr === offer.yiaddr && x.messageType === offer.messageType)) offers.push(offer);
    } catch {
      offers.push({ from: rinfo.address, messageType: 'unreadable', yiaddr: '0.0.0.0', proxy: false, siaddr: '0.0.0.0', pxeOptions: false });
    }
  });
  socket.on('error', () => {
    /* send errors are reported below */
  });
  let sendError: string | undefined;
  const send = () =>
    socket.send(discover, o.serverPort ?? 67, '255.255.255.255', (err) => {
      if (err) sendError = `cannot broadcast a DISCOVER on ${o.interfaceName ?? 'the network'}: ${err.message}`;
    });
  const listenMs = o.listenMs ?? 4500;
  send();
  // Once more a little later, in case the first broadcast was lost; dnsmasq pings an
  // address before offering it, which delays its OFFER by about 3 s.
  const again = setTimeout(send, Math.min(1000, listenMs / 3));
  await new Promise((r) => setTimeout(r, listenMs));
  clearTimeout(again);
  await closeSocket(socket);
  return { offers, error: offers.length === 0 ? sendError : undefined };
}

export interface TestBootStep {
  client: TestClientKind;
  step: 'offer' | 'boot-server' | 'tftp-size' | 'tftp-download';
  ok: boolean;
  message: string;
  ms: number;
  fix?: string;
}

export interface TestBootOptions {
  interfaceName: string;
  /** The NIC's own IPv4 address (the client's ciaddr on 4011). */
  clientAddress: string;
  /** The Bootbench host to test; offers from other servers are listed but not followed. */
  serverAddress?: string;
  socketFactory: UdpSocketFactory;
  kinds?: TestClientKind[];
  ports?: { server?: number; client?: number; pxe?: number; tftp?: number };
  offerWaitMs?: number;
  stepTimeoutMs?: number;
  /** Files larger than this are only read this far (a 4 GiB ISO is not a test). */
  maxDownloadBytes?: number;
  onStep?: (step: TestBootStep) => void;
}

/** Sends `packet` and resolves with the first datagram `accept` takes, or undefined at timeout. */
function exchange(
  socket: Socket,
  packet: Buffer,
  port: number,
  address: string,
  timeoutMs: number,
  accept: (msg: Buffer, from: { address: string; port: number }) => boolean,
): Promise<{ msg: Buffer; port: number } | undefined> {
  return new Promise((resolve) => {
    const onMessage = (msg: Buffer, rinfo: { address: string; port: number }) => {
      if (!accept(msg, rinfo)) return;
      cleanup();
      resolve({ msg, port: rinfo.port });
    };
    const cleanup = () => {
      clearTimeout(timer);
      clearTimeout(retry);
      socket.off('message', onMessage);
    };
    const timer = setTimeout(() => {
      cleanup();
      resolve(undefined);
    }, timeoutMs);
    // Firmware repeats a request that went unanswered (PXE 2.1 §2.2.5: 1, 2, 3 s ...).
    const retry = setTimeout(() => socket.send(packet, port, address, () => {}), Math.min(1000, timeoutMs / 3));
    socket.on('message', onMessage);
    socket.send(packet, port, address, () => {});
  });
}

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);

function tftpRrq(name: string, options: Record<string, number>): Buffer {
  return Buffer.concat([u16(1), Buffer.from(`${name}\0octet\0`), ...Object.entries(options).map(([k, v]) => Buffer.from(`${k}\0${v}\0`))]);
}

function tftpOptions(msg: Buffer): Record<string, string> {
  const fields = msg.subarray(2).toString('latin1').split('\0');
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i].toLowerCase()] = fields[i + 1];
  return out;
}

function tftpError(msg: Buffer): string {
  return `TFTP ERROR ${msg.readUInt16BE(2)}: ${msg.subarray(4).toString('latin1').replace(/\0.*$/s, '')}`;
}

/** Downloads `name` lock-step with tsize/blksize, as firmware does. */
async function tftpDownload(
  socket: Socket,
  server: string,
  port: number,
  name: string,
  timeoutMs: number,
  maxBytes: number,
): Promise<{ bytes: number; size?: number; sha256: string; complete: boolean } | string> {
  const hash = createHash('sha256');
  let tid = 0;
  const first = await exchange(socket, tftpRrq(name, { tsize: 0, blksize: 1468 }), port, server, timeoutMs, (_m, r) => r.address === server);
  if (!first) return `no answer from TFTP ${server}:${port} for ${name}`;
  tid = first.port;
  let msg = first.msg;
  let blksize = 512;
  let size: number | undefined;
  let bytes = 0;
  let expected = 1;
  if (msg.readUInt16BE(0) === 5) return tftpError(msg);
  if (msg.readUInt16BE(0) === 6) {
    const o = tftpOptions(msg);
    if (o.blksize) blksize = Number(o.blksize);
    if (o.tsize) size = Number(o.tsize);
    const next = await exchange(socket, Buffer.concat([u16(4), u16(0)]), tid, server, timeoutMs, (_m, r) => r.port === tid && r.address === server);
    if (!next) return 'no DATA after the option acknowledgement';
    msg = next.msg;
  }
  for (;;) {
    if (msg.readUInt16BE(0) === 5) return tftpError(msg);
    if (msg.readUInt16BE(0) !== 3) return `unexpected TFTP opcode ${msg.readUInt16BE(0)}`;
    const block = msg.readUInt16BE(2);
    const data = msg.subarray(4);
    if (block === (expected & 0xffff)) {
      hash.update(data);
      bytes += data.length;
      expected++;
      const last = data.length < blksize;
      if (last || bytes >= maxBytes) {
        // Wait for the final ACK to leave before the caller closes the socket.
        await new Promise<void>((resolve) =>
          socket.send(last ? Buffer.concat([u16(4), u16(block)]) : Buffer.from([0, 5, 0, 0, ...Buffer.from('test done'), 0]), tid, server, () => resolve()),
        );
        return { bytes, size, sha256: hash.digest('hex'), complete: last };
      }
    }
    const next = await exchange(
      socket,
      Buffer.concat([u16(4), u16((expected - 1) & 0xffff)]),
      tid,
      server,
      timeoutMs,
      (_m, r) => r.port === tid && r.address === server,
    );
    if (!next) return `transfer stalled after ${bytes} bytes`;
    msg = next.msg;
  }
}

/** Plays each client kind through the whole boot conversation; one step per line. */
export async function runTestBoot(o: TestBootOptions): Promise<TestBootStep[]> {
  const steps: TestBootStep[] = [];
  const timeout = o.stepTimeoutMs ?? 4000;
  for (const client of o.kinds ?? ['bios', 'uefi']) {
    let started = Date.now();
    const report = (step: TestBootStep['step'], ok: boolean, message: string, fix?: string): boolean => {
      const s: TestBootStep = { client, step, ok, message, ms: Date.now() - started, fix };
      steps.push(s);
      o.onStep?.(s);
      started = Date.now();
      return ok;
    };
    const mac = testClientMac();

    // 1. DISCOVER -> offer carrying boot information (ours, by server identifier).
    const heard = await listenForOffers({
      interfaceName: o.interfaceName,
      socketFactory: o.socketFactory,
      kind: client,
      listenMs: o.offerWaitMs ?? 2500,
      serverPort: o.ports?.server,
      clientPort: o.ports?.client,
      mac,
    });
    const ours = heard.offers.find((x) =>
      o.serverAddress ? x.serverIdentifier === o.serverAddress || x.from === o.serverAddress : x.vendorClass?.startsWith('PXEClient'),
    );
    const others = heard.offers
      .filter((x) => x !== ours)
      .map((x) => `${x.serverIdentifier ?? x.from}${x.proxy ? ' (proxy)' : x.yiaddr !== '0.0.0.0' ? ` (offers ${x.yiaddr})` : ''}`);
    if (!ours) {
      report(
        'offer',
        false,
        `no offer from ${o.serverAddress ?? 'a PXE server'}${heard.error ? `: ${heard.error}` : ''}${others.length ? `; heard ${others.join(', ')}` : ''}`,
        'start `bootbench serve` on this NIC, and check with `bootbench doctor` that nothing else holds port 67',
      );
      continue;
    }
    const server = ours.serverIdentifier ?? ours.from;
    report(
      'offer',
      true,
      `${ours.proxy ? 'proxy offer' : `offer of ${ours.yiaddr}`} from ${server}${ours.bootFile ? `, boot file ${ours.bootFile}` : ''}${ours.pxeOptions ? ', PXE options' : ''}${others.length ? `; also heard ${others.join(', ')}` : ''}`,
    );

    // 2. Boot-server request on 4011 (PXE 2.1 §2.2.5) -> ACK with the boot file.
    let socket: Socket | undefined;
    try {
      socket = await o.socketFactory({ port: 0, address: '0.0.0.0', interfaceName: o.interfaceName });
      const xid = u32();
      const request = pxeRequest(client, DhcpMessageType.REQUEST, xid, mac, o.clientAddress, { pxe: { bootItem: { type: 0, layer: 0 } } });
      const answer = await exchange(
        socket,
        request,
        o.ports?.pxe ?? 4011,
        server,
        timeout,
        (msg) => msg.length >= 240 && msg[0] === BOOTREPLY && msg.readUInt32BE(4) === xid,
      );
      if (!answer) {
        report('boot-server', false, `no ACK from ${server}:${o.ports?.pxe ?? 4011}`, 'a firewall may block UDP 4011 on this NIC');
        continue;
      }
      const ack = decodeDhcpPacket(answer.msg);
      const file = ack.options.bootFileName ?? (ack.file || undefined);
      const tftpServer = ack.siaddr !== '0.0.0.0' ? ack.siaddr : server;
      if (!file) {
        report(
          'boot-server',
          false,
          `ACK from ${server} names no boot file`,
          `give a boot file for ${client === 'bios' ? 'bios' : 'uefi64'} clients (--boot ${client === 'bios' ? 'bios' : 'uefi64'}=FILE)`,
        );
        continue;
      }
      report('boot-server', true, `${messageTypeName(ack.options.messageType)} from ${server}: file ${file} on ${tftpServer}`);

      // 3. Size probe: RRQ with tsize, OACK, then ERROR 8 (EDK2 does exactly this).
      const probe = await exchange(
        socket,
        tftpRrq(file, { tsize: 0, blksize: 1468 }),
        o.ports?.tftp ?? 69,
        tftpServer,
        timeout,
        (_m, r) => r.address === tftpServer,
      );
      if (!probe) {
        report(
          'tftp-size',
          false,
          `no answer from TFTP ${tftpServer}:${o.ports?.tftp ?? 69}`,
          'a firewall may block UDP 69 (and the transfer ports above 1024)',
        );
        continue;
      }
      if (probe.msg.readUInt16BE(0) === 5) {
        report('tftp-size', false, `${file}: ${tftpError(probe.msg)}`, 'put the file in the --root folder (names are case-insensitive)');
        continue;
      }
      const tsize = probe.msg.readUInt16BE(0) === 6 ? tftpOptions(probe.msg).tsize : undefined;
      await new Promise<void>((resolve) => socket!.send(Buffer.concat([u16(5), u16(8), Buffer.from('size probe\0')]), probe.port, tftpServer, () => resolve()));
      report('tftp-size', tsize !== undefined, tsize !== undefined ? `${file} is ${tsize} bytes` : `${file}: no tsize in the answer`);

      // 4. The download itself, from a new port as firmware does (the server keys a transfer
      // by the client's address and port, and the probe's may not be closed yet).
      await closeSocket(socket);
      socket = await o.socketFactory({ port: 0, address: '0.0.0.0', interfaceName: o.interfaceName });
      const result = await tftpDownload(socket, tftpServer, o.ports?.tftp ?? 69, file, timeout, o.maxDownloadBytes ?? 64 * 2 ** 20);
      if (typeof result === 'string') report('tftp-download', false, `${file}: ${result}`);
      else {
        const sizeOk = !result.complete || tsize === undefined || Number(tsize) === result.bytes;
        report(
          'tftp-download',
          sizeOk,
          `${file}: ${result.bytes} bytes${result.complete ? '' : ' (first part only)'}, sha256 ${result.sha256.slice(0, 16)}...${sizeOk ? '' : `, but tsize said ${tsize}`}`,
        );
      }
    } finally {
      if (socket) await closeSocket(socket);
    }
  }
  return steps;
}
