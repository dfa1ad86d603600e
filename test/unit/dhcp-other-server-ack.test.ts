// Proxy mode records the other DHCP server's ACK (its next-server) for PCs we made a boot
// offer to: the pure reading, the once-per-ACK filter, and the socket loop over loopback.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { DhcpService } from '../../main/dhcp/service.js';
import { decodeDhcpPacket } from '../../main/dhcp/packet.js';
import { readOtherServerAck, RecentBootOffers } from '../../main/dhcp/other-server-ack.js';
import { EventBus, type BootEvent } from '../../main/core/events.js';
import { MemoryLogger } from '../../main/core/logger.js';
import { loopbackFactory } from './dhcp-loopback.js';
import { firmwareOptions, rawDhcp } from '../helpers/dhcp-clients.js';

const MAC = '52:54:00:00:20:01';

/** A BOOTREPLY as the office server sends it: yiaddr and siaddr set, option 54 = its address. */
function officeReply(xid: number, mac: string, messageType: number, siaddr: string, server = '192.0.2.2'): Buffer {
  const bytes = rawDhcp({
    op: 2,
    xid,
    mac,
    options: [
      [53, [messageType]],
      [54, server.split('.').map(Number)],
    ],
  });
  Buffer.from([192, 0, 2, 60]).copy(bytes, 16);
  Buffer.from(siaddr.split('.').map(Number)).copy(bytes, 20);
  return bytes;
}

test('an ACK from another server names its server and next-server; our own and non-ACKs are not read', () => {
  const ack = readOtherServerAck(decodeDhcpPacket(officeReply(7, MAC, 5, '192.0.2.2')), '192.0.2.2', '192.0.2.1');
  assert.deepEqual(ack, { mac: MAC, xid: 7, ip: '192.0.2.60', server: '192.0.2.2', nextServer: '192.0.2.2', from: undefined });
  const noNext = readOtherServerAck(decodeDhcpPacket(officeReply(7, MAC, 5, '0.0.0.0')), '192.0.2.2', '192.0.2.1');
  assert.equal(noNext?.nextServer, undefined);
  const relayed = readOtherServerAck(decodeDhcpPacket(officeReply(7, MAC, 5, '0.0.0.0')), '192.0.2.254', '192.0.2.1');
  assert.equal(relayed?.from, '192.0.2.254');
  assert.equal(readOtherServerAck(decodeDhcpPacket(officeReply(7, MAC, 2, '192.0.2.2')), '192.0.2.2', '192.0.2.1'), undefined, 'an OFFER');
  assert.equal(readOtherServerAck(decodeDhcpPacket(officeReply(7, MAC, 5, '192.0.2.1', '192.0.2.1')), '192.0.2.1', '192.0.2.1'), undefined, 'our own ACK');
});

test('only PCs offered to lately are reported, each ACK once', () => {
  const offers = new RecentBootOffers(1000);
  const ack = { mac: MAC, xid: 1, server: '192.0.2.2' };
  assert.equal(offers.shouldReport(ack, 0), false, 'no offer was made');
  offers.remember(MAC, 100);
  assert.equal(offers.shouldReport(ack, 200), true);
  assert.equal(offers.shouldReport(ack, 300), false, 'the same ACK again');
  assert.equal(offers.shouldReport({ ...ack, xid: 2 }, 2000), false, 'the offer is too old');
});

test('a storm of new MACs keeps the memory bounded and evicts the oldest first', () => {
  const offers = new RecentBootOffers(60_000, 100);
  const mac = (i: number) =>
    `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  for (let i = 0; i < 50_000; i++) offers.remember(mac(i), i);
  assert.equal(offers.size, 100);
  assert.equal(offers.shouldReport({ mac: mac(49_999), xid: 1, server: '192.0.2.2' }, 50_000), true, 'the newest MAC is kept');
  assert.equal(offers.shouldReport({ mac: mac(0), xid: 1, server: '192.0.2.2' }, 50_000), false, 'the oldest was evicted');
  // A refreshed MAC moves to the back and survives the next evictions.
  offers.remember(mac(49_900), 50_001);
  for (let i = 50_000; i < 50_099; i++) offers.remember(mac(i), i + 2);
  assert.equal(offers.shouldReport({ mac: mac(49_900), xid: 2, server: '192.0.2.2' }, 50_200), true);
});

describe('DhcpService, proxy mode: the other server ACK on the client port', () => {
  const bus = new EventBus();
  const events: BootEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const pc = dgram.createSocket('udp4');
  // Loopback stands in for the bench NIC: the "office server" sends from 127.0.0.2.
  const office = dgram.createSocket('udp4');
  let service: DhcpService;
  let clientPort = 0;

  before(async () => {
    await new Promise<void>((r) => pc.bind(0, '127.0.0.1', () => r()));
    await new Promise<void>((r) => office.bind(0, '127.0.0.2', () => r()));
    // A free port for the service's client-port socket (the PC's replies go there too).
    const probe = dgram.createSocket('udp4');
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
    clientPort = probe.address().port;
    await new Promise<void>((r) => probe.close(() => r()));
    service = new DhcpService({
      mode: 'proxy',
      serverAddress: '127.0.0.1',
      socketFactory: loopbackFactory,
      ports: { server: 0, pxe: 0, client: clientPort },
      policy: { serverAddress: '127.0.0.1', httpBaseUrl: 'http://127.0.0.1:8080', boot: { uefi64: 'shimx64.efi' } },
      publish: bus.publish,
      logger: new MemoryLogger(),
    });
    await service.start();
  });
  after(async () => {
    pc.close();
    office.close();
    await service.stop();
  });

  test('an ACK to a PC we did not offer to is not reported; after our offer it is, once', async () => {
    office.send(officeReply(0x2001, MAC, 5, '192.0.2.2'), clientPort, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!events.some((e) => e.type === 'dhcp.other-ack'), 'reported an ACK for a PC we never offered to');

    pc.send(rawDhcp({ xid: 0x2002, mac: MAC, ciaddr: '127.0.0.1', options: firmwareOptions('edk2-x64', MAC) }), service.ports.server, '127.0.0.1');
    await waitFor(() => events.some((e) => e.type === 'proxy.offer' && e.mac === MAC));
    office.send(officeReply(0x2002, MAC, 5, '192.0.2.2'), clientPort, '127.0.0.1');
    office.send(officeReply(0x2002, MAC, 5, '192.0.2.2'), clientPort, '127.0.0.1');
    await waitFor(() => events.some((e) => e.type === 'dhcp.other-ack'));
    await new Promise((r) => setTimeout(r, 100));
    const acks = events.filter((e) => e.type === 'dhcp.other-ack');
    assert.equal(acks.length, 1, JSON.stringify(acks));
    assert.equal(acks[0]!.mac, MAC);
    assert.equal(acks[0]!.server, '192.0.2.2');
    assert.equal(acks[0]!.nextServer, '192.0.2.2');
    assert.equal(acks[0]!.ip, '192.0.2.60');
  });
});

async function waitFor(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
