// Full DHCP's check before an address goes out (issue 9 item 10): with a fake prober, the
// pool logic (main/dhcp/address-check.ts) and the service loop over loopback. The real ARP
// prober is exercised in test/integration/dhcp-netns.test.ts.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import {
  checkRequestedAddress,
  MAX_CHECKS_PER_REQUEST,
  reserveCheckedAddress,
  type AddressInUseProber,
  type AddressProbeAnswer,
} from '../../main/dhcp/address-check.js';
import { IN_USE_HOLD_MS, LeasePool } from '../../main/dhcp/lease-pool.js';
import { DhcpService } from '../../main/dhcp/service.js';
import { decodeDhcpPacket, type DhcpPacket } from '../../main/dhcp/packet.js';
import { ManualClock } from '../../main/core/clock.js';
import { EventBus, type BootEvent } from '../../main/core/events.js';
import { MemoryLogger } from '../../main/core/logger.js';
import { loopbackFactory } from './dhcp-loopback.js';
import { encodeArpProbe, decodeArpSender, encodeSockaddrLl } from '../../main/net/arp-probe.js';
import { firmwareOptions, rawDhcp } from '../helpers/dhcp-clients.js';
import { defaultServeConfig } from '../../main/host/config.js';
import { parseFlags, serveConfigFromFlags, SERVE_OPTIONS, UsageError } from '../../main/cli/serve-flags.js';

const SERVER = '192.0.2.1';
const pool = () => new LeasePool({ first: '192.0.2.100', last: '192.0.2.109', subnetMask: '255.255.255.0' }, SERVER, clock);
let clock = new ManualClock(1_000_000);

/** Answers for the addresses in `inUse` (with that host's MAC); `hold` keeps a probe waiting until released. */
class FakeProber implements AddressInUseProber {
  readonly probed: string[] = [];
  readonly inUse = new Map<string, string>();
  readonly held = new Map<string, () => void>();
  hold = new Set<string>();
  failWith?: string;
  closed = false;
  async probe(ip: string): Promise<AddressProbeAnswer> {
    this.probed.push(ip);
    if (this.failWith) throw new Error(this.failWith);
    if (this.hold.has(ip)) await new Promise<void>((resolve) => this.held.set(ip, resolve));
    const by = this.inUse.get(ip);
    return by ? { inUse: true, by, method: 'arp', ms: 1 } : { inUse: false, method: 'arp', ms: 300 };
  }
  release(ip: string): void {
    this.hold.delete(ip);
    this.held.get(ip)?.();
  }
  close(): void {
    this.closed = true;
  }
}

describe('reserveCheckedAddress', () => {
  test('an address that answers is kept out of the pool and the next one is offered', async () => {
    clock = new ManualClock(1_000_000);
    const leases = pool();
    const prober = new FakeProber();
    prober.inUse.set('192.0.2.100', '02:00:00:00:00:aa');
    const seen: string[] = [];
    const r = await reserveCheckedAddress({ leases, prober, clock, key: 'mac:a', mac: '52:54:00:00:00:01', onConflict: (c) => seen.push(`${c.ip} ${c.by}`) });
    assert.equal(r.kind, 'ready');
    assert.equal(r.kind === 'ready' && r.ip, '192.0.2.101');
    assert.deepEqual(prober.probed, ['192.0.2.100', '192.0.2.101']);
    assert.deepEqual(seen, ['192.0.2.100 02:00:00:00:00:aa']);
    assert.equal(leases.holderOf('192.0.2.100', clock.now())?.state, 'declined');
    // A second client does not get the address that answered, and it is not probed again.
    const r2 = await reserveCheckedAddress({ leases, prober, clock, key: 'mac:b', mac: '52:54:00:00:00:02' });
    assert.equal(r2.kind === 'ready' && r2.ip, '192.0.2.102');
    assert.deepEqual(prober.probed, ['192.0.2.100', '192.0.2.101', '192.0.2.102']);
  });

  test('a checked offer and a running lease are not probed again; the hold ends and the address is checked anew', async () => {
    clock = new ManualClock(1_000_000);
    const leases = pool();
    const prober = new FakeProber();
    prober.inUse.set('192.0.2.100', '02:00:00:00:00:aa');
    await reserveCheckedAddress({ leases, prober, clock, key: 'mac:a', mac: '52:54:00:00:00:01' });
    const before = prober.probed.length;
    const again = await reserveCheckedAddress({ leases, prober, clock, key: 'mac:a', mac: '52:54:00:00:00:01' });
    assert.equal(again.kind === 'ready' && again.ip, '192.0.2.101');
    assert.equal(again.probes, 0);
    leases.commit('mac:a', '52:54:00:00:00:01', '192.0.2.101', clock.now(), 600);
    const renewed = await reserveCheckedAddress({ leases, prober, clock, key: 'mac:a', mac: '52:54:00:00:00:01' });
    assert.equal(renewed.probes, 0);
    assert.equal(prober.probed.length, before);
    // The static host went away; after the hold, its address is checked again and offered.
    prober.inUse.clear();
    clock.advance(IN_USE_HOLD_MS + 1);
    const c = await reserveCheckedAddress({ leases, prober, clock, key: 'mac:c', mac: '52:54:00:00:00:03' });
    assert.equal(c.kind === 'ready' && c.ip, '192.0.2.100');
    assert.equal(prober.probed.at(-1), '192.0.2.100');
  });

  test(`after ${MAX_CHECKS_PER_REQUEST} answering addresses one DISCOVER gives up; the next goes on past them`, async () => {
    clock = new ManualClock(1_000_000);
    const leases = pool();
    const prober = new FakeProber();
    for (let i = 100; i <= 105; i++) prober.inUse.set(`192.0.2.${i}`, `02:00:00:00:00:${i}`);
    const first = await reserveCheckedAddress({ leases, prober, clock, key: 'mac:a', mac: '52:54:00:00:00:01' });
    assert.equal(first.kind, 'gave-up');
    assert.equal(first.conflicts.length, MAX_CHECKS_PER_REQUEST);
    // No reservation is left behind for the client.
    assert.equal(leases.leaseOf('mac:a', clock.now()), undefined);
    const second = await reserveCheckedAddress({ leases, prober, clock, key: 'mac:a', mac: '52:54:00:00:00:01' });
    assert.equal(second.kind === 'ready' && second.ip, '192.0.2.106');
  });

  test('the client answering for the address itself is no conflict', async () => {
    clock = new ManualClock(1_000_000);
    const leases = pool();
    const prober = new FakeProber();
    prober.inUse.set('192.0.2.100', '52:54:00:00:00:01');
    const r = await reserveCheckedAddress({ leases, prober, clock, key: 'mac:a', mac: '52:54:00:00:00:01' });
    assert.equal(r.kind === 'ready' && r.ip, '192.0.2.100');
    assert.equal(r.conflicts.length, 0);
  });

  test('every address answering: exhausted, never an unchecked offer', async () => {
    clock = new ManualClock(1_000_000);
    const leases = new LeasePool({ first: '192.0.2.100', last: '192.0.2.101', subnetMask: '255.255.255.0' }, SERVER, clock);
    const prober = new FakeProber();
    prober.inUse.set('192.0.2.100', '02:00:00:00:00:01');
    prober.inUse.set('192.0.2.101', '02:00:00:00:00:02');
    const r = await reserveCheckedAddress({ leases, prober, clock, key: 'mac:a', mac: '52:54:00:00:00:01' });
    assert.equal(r.kind, 'exhausted');
    assert.equal(r.conflicts.length, 2);
  });

  test('a prober that fails is reported, not a crash', async () => {
    clock = new ManualClock(1_000_000);
    const prober = new FakeProber();
    prober.failWith = 'ENETDOWN';
    const r = await reserveCheckedAddress({ leases: pool(), prober, clock, key: 'mac:a', mac: '52:54:00:00:00:01' });
    assert.equal(r.kind, 'probe-failed');
    assert.match(r.kind === 'probe-failed' ? r.error : '', /ENETDOWN/);
  });
});

describe('checkRequestedAddress', () => {
  test('a REQUEST for an address another host answers for is refused; the client answering for itself is fine', async () => {
    clock = new ManualClock(1_000_000);
    const leases = pool();
    const prober = new FakeProber();
    prober.inUse.set('192.0.2.104', '02:00:00:00:00:aa');
    prober.inUse.set('192.0.2.105', '52:54:00:00:00:01');
    const taken = await checkRequestedAddress({ leases, prober, clock, key: 'mac:a', mac: '52:54:00:00:00:01', ip: '192.0.2.104' });
    assert.equal(taken.kind, 'in-use');
    assert.equal(leases.isFreeFor('192.0.2.104', 'mac:a', clock.now()), false);
    const own = await checkRequestedAddress({ leases, prober, clock, key: 'mac:a', mac: '52:54:00:00:00:01', ip: '192.0.2.105' });
    assert.equal(own.kind, 'free');
    assert.equal(leases.needsCheck('mac:a', '192.0.2.105', clock.now()), false);
  });
});

describe('ARP wire format', () => {
  test('a probe has sender IP 0.0.0.0 and zero target MAC (RFC 5227 §2.1.1)', () => {
    const mac = Buffer.from('020000000001', 'hex');
    const p = encodeArpProbe(mac, '192.0.2.100');
    assert.equal(p.toString('hex'), '0001' + '0800' + '06' + '04' + '0001' + '020000000001' + '00000000' + '000000000000' + 'c0000264');
    // Our own probe claims nothing.
    assert.equal(decodeArpSender(p), undefined);
  });

  test('a reply names the host that holds the address; junk decodes to nothing', () => {
    const reply = Buffer.from('0001080006040002' + '0200000000aa' + 'c0000264' + '020000000001' + '00000000', 'hex');
    assert.deepEqual(decodeArpSender(reply), { ip: '192.0.2.100', mac: '02:00:00:00:00:aa' });
    assert.equal(decodeArpSender(reply.subarray(0, 27)), undefined);
    const ipv6ish = Buffer.from(reply);
    ipv6ish.writeUInt16BE(0x86dd, 2);
    assert.equal(decodeArpSender(ipv6ish), undefined);
  });

  test('sockaddr_ll carries family, ARP ethertype, ifindex and the broadcast MAC', () => {
    const a = encodeSockaddrLl(7, Buffer.alloc(6, 0xff));
    assert.equal(a.length, 20);
    assert.equal(a.readUInt16LE(0), 17);
    assert.equal(a.readUInt16BE(2), 0x0806);
    assert.equal(a.readInt32LE(4), 7);
    assert.equal(a[11], 6);
    assert.equal(a.subarray(12, 18).toString('hex'), 'ffffffffffff');
  });
});

// The service loop: DISCOVERs carry ciaddr 127.0.0.1 so the OFFER comes back by unicast to
// the test client (no broadcast on loopback).
describe('DhcpService with the address check (fake prober, loopback)', () => {
  const client = dgram.createSocket('udp4');
  const replies: DhcpPacket[] = [];
  client.on('message', (m) => replies.push(decodeDhcpPacket(m)));
  const services: DhcpService[] = [];
  before(() => new Promise<void>((resolve) => client.bind(0, '127.0.0.1', () => resolve())));
  after(async () => {
    client.close();
    for (const s of services) await s.stop();
  });

  async function start(prober: FakeProber | undefined, addressCheck = true) {
    const bus = new EventBus();
    const events: BootEvent[] = [];
    bus.subscribe((e) => events.push(e));
    const service = new DhcpService({
      mode: 'dhcp',
      serverAddress: '127.0.0.1',
      socketFactory: loopbackFactory,
      ports: { server: 0, pxe: 0, client: client.address().port },
      policy: { serverAddress: '127.0.0.1', httpBaseUrl: 'http://127.0.0.1:8080', boot: { bios: 'undionly.kpxe', uefi64: 'ipxe.efi' } },
      pool: { first: '127.0.0.10', last: '127.0.0.20', subnetMask: '255.0.0.0' },
      probeMs: 20,
      addressCheck,
      addressProber: prober,
      publish: bus.publish,
      logger: new MemoryLogger(),
    });
    await service.start();
    services.push(service);
    return { service, events };
  }
  const discover = (mac: string, xid: number) => rawDhcp({ xid, mac, ciaddr: '127.0.0.1', options: firmwareOptions('edk2-x64', mac) });
  const waitFor = async <T>(fn: () => T | undefined, what: string, ms = 2000): Promise<T> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  test('the first pool address answers: dhcp.conflict is published and the next address is offered', async () => {
    const prober = new FakeProber();
    prober.inUse.set('127.0.0.10', '02:00:00:00:00:aa');
    const { service, events } = await start(prober);
    client.send(discover('52:54:00:00:50:01', 0x5001), service.ports.server, '127.0.0.1');
    const offer = await waitFor(() => replies.find((r) => r.xid === 0x5001), 'the OFFER');
    assert.equal(offer.yiaddr, '127.0.0.11');
    const conflict = events.find((e) => e.type === 'dhcp.conflict');
    assert.ok(conflict, JSON.stringify(events.map((e) => e.type)));
    assert.equal(conflict.address, '127.0.0.10');
    assert.equal(conflict.heldBy, '02:00:00:00:00:aa');
    assert.equal(conflict.mac, '52:54:00:00:50:01');
    assert.equal(conflict.ip, undefined, "the address is not the client's");
    assert.match(String(conflict.reason), /in use.*ARP.*02:00:00:00:00:aa/);
    const offered = events.find((e) => e.type === 'dhcp.offer' && e.xid === 0x5001)!;
    assert.equal(offered.addressesInUse, 1);
    assert.equal(typeof offered.addressCheckMs, 'number');
    // A REQUEST for the address that answered gets a NAK naming the other host.
    client.send(
      rawDhcp({
        xid: 0x5002,
        mac: '52:54:00:00:50:02',
        ciaddr: '127.0.0.1',
        options: [
          [53, [3]],
          [50, [127, 0, 0, 10]],
        ],
      }),
      service.ports.server,
      '127.0.0.1',
    );
    const nak = await waitFor(() => events.find((e) => (e.type === 'dhcp.nak' || e.type === 'dhcp.error') && e.xid === 0x5002), 'the NAK');
    if (nak.type === 'dhcp.nak') assert.match(String(nak.reason), /in use by another host \(02:00:00:00:00:aa\)/);
    await service.stop();
  });

  test('a client waiting for its check does not hold up another client', async () => {
    const prober = new FakeProber();
    prober.hold.add('127.0.0.10');
    const { service, events } = await start(prober);
    client.send(discover('52:54:00:00:51:01', 0x5101), service.ports.server, '127.0.0.1');
    await waitFor(() => prober.held.has('127.0.0.10') || undefined, 'the first probe');
    client.send(discover('52:54:00:00:51:02', 0x5102), service.ports.server, '127.0.0.1');
    const second = await waitFor(() => replies.find((r) => r.xid === 0x5102), "the second client's OFFER");
    assert.equal(second.yiaddr, '127.0.0.11');
    assert.equal(
      replies.find((r) => r.xid === 0x5101),
      undefined,
      'the first client is still being checked',
    );
    // It sends again meanwhile (firmware retries): one answer, to the newest DISCOVER.
    client.send(discover('52:54:00:00:51:01', 0x5103), service.ports.server, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 30));
    prober.release('127.0.0.10');
    const first = await waitFor(() => replies.find((r) => r.xid === 0x5103), "the first client's OFFER");
    assert.equal(first.yiaddr, '127.0.0.10');
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(replies.filter((r) => r.xid === 0x5101 || r.xid === 0x5103).length, 1);
    assert.deepEqual(prober.probed, ['127.0.0.10', '127.0.0.11']);
    assert.equal(events.filter((e) => e.type === 'dhcp.conflict').length, 0);
    await service.stop();
    assert.ok(prober.closed, 'the prober is closed with the service');
  });

  test('with the check off, the first address goes out unprobed', async () => {
    const prober = new FakeProber();
    prober.inUse.set('127.0.0.10', '02:00:00:00:00:aa');
    const { service, events } = await start(prober, false);
    client.send(discover('52:54:00:00:52:01', 0x5201), service.ports.server, '127.0.0.1');
    const offer = await waitFor(() => replies.find((r) => r.xid === 0x5201), 'the OFFER');
    assert.equal(offer.yiaddr, '127.0.0.10');
    assert.deepEqual(prober.probed, []);
    assert.equal(events.filter((e) => e.type === 'dhcp.conflict').length, 0);
    await service.stop();
  });

  test('on by default: without a NIC to probe on, it says so and offers unchecked', async () => {
    const { service, events } = await start(undefined);
    assert.ok(
      events.some((e) => e.type === 'host.warning' && /offered without checking.*--interface.*--no-address-check/.test(String(e.message))),
      JSON.stringify(events),
    );
    await service.stop();
  });
});

describe('--no-address-check', () => {
  const base = defaultServeConfig('/tmp/bb');
  const flags = (...args: string[]) => serveConfigFromFlags(parseFlags(args, SERVE_OPTIONS).values, base);
  test('turns the check off in dhcp mode; on by default', () => {
    assert.equal(flags('--mode', 'dhcp', '--pool', '192.0.2.100-192.0.2.150').addressCheck, undefined);
    assert.equal(flags('--mode', 'dhcp', '--pool', '192.0.2.100-192.0.2.150', '--no-address-check').addressCheck, false);
  });
  test('is refused in proxy mode, which hands out no addresses', () => {
    assert.throws(
      () => flags('--no-address-check'),
      (err: Error) => err instanceof UsageError && /only used with --mode dhcp/.test(err.message),
    );
  });
});
