import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeDhcpPacket, encodeDhcpPacket, type DhcpPacket } from '../../main/dhcp/packet.js';
import { decideFullDhcpReply } from '../../main/dhcp/full-dhcp.js';
import { LeasePool, OFFER_HOLD_MS } from '../../main/dhcp/lease-pool.js';
import type { PlannedReply, ReplyPlan } from '../../main/dhcp/reply.js';
import { ManualClock } from '../../main/core/clock.js';
import { MemoryLogger } from '../../main/core/logger.js';
import type { BootPolicyConfig } from '../../main/pxe/boot-policy.js';
import { firmwareOptions, rawDhcp, type RawOption } from '../helpers/dhcp-clients.js';

const SERVER = '192.0.2.1';
const policy: BootPolicyConfig = { serverAddress: SERVER, httpBaseUrl: 'http://192.0.2.1:8080', boot: { bios: 'undionly.kpxe', uefi64: 'ipxe.efi' } };
const ports = { server: 67, client: 68 };

function setup(size = 3) {
  const clock = new ManualClock(1_000_000);
  const leases = new LeasePool(
    { first: '192.0.2.100', last: `192.0.2.${99 + size}`, subnetMask: '255.255.255.0', router: '192.0.2.254', dns: ['192.0.2.53'], leaseSeconds: 600 },
    SERVER,
    clock,
  );
  const decide = (bytes: Buffer): ReplyPlan => decideFullDhcpReply(decodeDhcpPacket(bytes), { serverAddress: SERVER, policy, ports, leases, now: clock.now() });
  return { clock, leases, decide };
}

const opts = (type: number, extra: RawOption[] = []): RawOption[] => [[53, [type]], ...extra];
const ip = (a: string) => a.split('.').map(Number);

function replied(plan: ReplyPlan): PlannedReply & { wire: DhcpPacket } {
  assert.equal(plan.action, 'reply', plan.action !== 'reply' ? JSON.stringify(plan) : '');
  const p = plan as PlannedReply;
  return { ...p, wire: decodeDhcpPacket(encodeDhcpPacket(p.reply)) };
}

const A = '52:54:00:00:20:01';
const B = '52:54:00:00:20:02';

describe('full DHCP exchange (RFC 2131 §4.3)', () => {
  test('DISCOVER -> OFFER with an address, lease, router, DNS; PXE file without option 60', () => {
    const { decide } = setup();
    const { wire, to } = replied(decide(rawDhcp({ xid: 1, mac: A, flags: 0x8000, options: firmwareOptions('edk2-x64', A) })));
    assert.equal(wire.options.messageType, 2);
    assert.equal(wire.yiaddr, '192.0.2.100');
    assert.equal(wire.siaddr, SERVER);
    assert.equal(wire.options.serverIdentifier, SERVER);
    assert.equal(wire.options.leaseTime, 600);
    assert.equal(wire.options.renewalTime, 300);
    assert.equal(wire.options.rebindingTime, 525);
    assert.equal(wire.options.subnetMask, '255.255.255.0');
    assert.deepEqual(wire.options.routers, ['192.0.2.254']);
    assert.deepEqual(wire.options.dnsServers, ['192.0.2.53']);
    assert.equal(wire.file, 'ipxe.efi');
    assert.equal(wire.options.vendorClassId, undefined, 'no PXEClient from a server handing out addresses');
    assert.deepEqual(to, { address: '255.255.255.255', port: 68 });
  });

  test('HTTP-boot clients get option 60 HTTPClient and the URL', () => {
    const { decide } = setup();
    const { wire } = replied(decide(rawDhcp({ xid: 1, mac: A, options: firmwareOptions('http-x64', A) })));
    assert.equal(wire.options.vendorClassId, 'HTTPClient');
    assert.equal(wire.options.bootFileName, 'http://192.0.2.1:8080/ipxe.efi');
  });

  test('a client that is not booting gets an address and no boot file', () => {
    const { decide } = setup();
    const { wire } = replied(decide(rawDhcp({ xid: 1, mac: A, options: opts(1, [[60, 'MSFT 5.0']]) })));
    assert.equal(wire.yiaddr, '192.0.2.100');
    assert.equal(wire.file, '');
    assert.equal(wire.options.bootFileName, undefined);
  });

  test('REQUEST (selecting) -> ACK and the lease is bound; the same client keeps its address', () => {
    const { decide, leases, clock } = setup();
    replied(decide(rawDhcp({ xid: 1, mac: A, options: opts(1) })));
    const { wire } = replied(
      decide(
        rawDhcp({
          xid: 1,
          mac: A,
          options: opts(3, [
            [54, ip(SERVER)],
            [50, ip('192.0.2.100')],
          ]),
        }),
      ),
    );
    assert.equal(wire.options.messageType, 5);
    assert.equal(wire.yiaddr, '192.0.2.100');
    assert.equal(leases.snapshot()[0].state, 'bound');
    clock.advance(OFFER_HOLD_MS * 2);
    assert.equal(replied(decide(rawDhcp({ xid: 2, mac: A, options: opts(1) }))).wire.yiaddr, '192.0.2.100');
    assert.equal(replied(decide(rawDhcp({ xid: 3, mac: B, options: opts(1) }))).wire.yiaddr, '192.0.2.101');
  });

  test('renewal (ciaddr set) is ACKed by unicast to the client', () => {
    const { decide } = setup();
    replied(decide(rawDhcp({ xid: 1, mac: A, options: opts(3, [[50, ip('192.0.2.101')]]) })));
    const { wire, to } = replied(decide(rawDhcp({ xid: 2, mac: A, ciaddr: '192.0.2.101', options: opts(3) })));
    assert.equal(wire.options.messageType, 5);
    assert.equal(wire.ciaddr, '192.0.2.101');
    assert.deepEqual(to, { address: '192.0.2.101', port: 68 });
  });

  test('NAK: an address leased to someone else, or from another network; broadcast', () => {
    const { decide } = setup();
    replied(decide(rawDhcp({ xid: 1, mac: A, options: opts(3, [[50, ip('192.0.2.100')]]) })));
    const taken = replied(decide(rawDhcp({ xid: 2, mac: B, options: opts(3, [[50, ip('192.0.2.100')]]) })));
    assert.equal(taken.wire.options.messageType, 6);
    assert.equal(taken.wire.yiaddr, '0.0.0.0');
    assert.match(taken.wire.options.message ?? '', /leased to 52:54:00:00:20:01/);
    assert.deepEqual(taken.to, { address: '255.255.255.255', port: 68 });
    const moved = replied(decide(rawDhcp({ xid: 3, mac: B, options: opts(3, [[50, ip('198.18.0.9')]]) })));
    assert.equal(moved.wire.options.messageType, 6);
    assert.match(moved.wire.options.message ?? '', /not on this network/);
  });

  test('the client chose another server: our offer is withdrawn', () => {
    const { decide, leases } = setup();
    replied(decide(rawDhcp({ xid: 1, mac: A, options: opts(1) })));
    const plan = decide(
      rawDhcp({
        xid: 1,
        mac: A,
        options: opts(3, [
          [54, ip('192.0.2.2')],
          [50, ip('192.0.2.100')],
        ]),
      }),
    );
    assert.equal(plan.action, 'ignore');
    assert.equal(leases.snapshot().length, 0);
  });

  test('pool exhaustion is an ignore with the reason; offers lapse', () => {
    const { decide, clock } = setup(1);
    replied(decide(rawDhcp({ xid: 1, mac: A, options: opts(1) })));
    const plan = decide(rawDhcp({ xid: 2, mac: B, options: opts(1) }));
    assert.equal(plan.action, 'ignore');
    assert.match((plan as { reason: string }).reason, /exhausted/);
    clock.advance(OFFER_HOLD_MS + 1);
    assert.equal(replied(decide(rawDhcp({ xid: 3, mac: B, options: opts(1) }))).wire.yiaddr, '192.0.2.100');
  });

  test('an expired lease frees the address', () => {
    const { decide, clock } = setup(1);
    replied(decide(rawDhcp({ xid: 1, mac: A, options: opts(3, [[50, ip('192.0.2.100')]]) })));
    assert.equal(decide(rawDhcp({ xid: 2, mac: B, options: opts(1) })).action, 'ignore');
    clock.advance(601_000);
    assert.equal(replied(decide(rawDhcp({ xid: 3, mac: B, options: opts(1) }))).wire.yiaddr, '192.0.2.100');
  });

  test('requested address honoured when free', () => {
    const { decide } = setup();
    assert.equal(replied(decide(rawDhcp({ xid: 1, mac: A, options: opts(1, [[50, ip('192.0.2.102')]]) }))).wire.yiaddr, '192.0.2.102');
  });

  test('DECLINE keeps the address out of the pool; RELEASE frees it', () => {
    const { decide } = setup(2);
    const declined = decide(rawDhcp({ xid: 1, mac: A, options: opts(4, [[50, ip('192.0.2.100')]]) }));
    assert.equal(declined.action, 'record');
    assert.equal((declined as { event: string }).event, 'dhcp.decline');
    assert.equal(replied(decide(rawDhcp({ xid: 2, mac: A, options: opts(1) }))).wire.yiaddr, '192.0.2.101');
    replied(
      decide(
        rawDhcp({
          xid: 3,
          mac: A,
          options: opts(3, [
            [54, ip(SERVER)],
            [50, ip('192.0.2.101')],
          ]),
        }),
      ),
    );
    const released = decide(rawDhcp({ xid: 4, mac: A, ciaddr: '192.0.2.101', options: opts(7, [[54, ip(SERVER)]]) }));
    assert.equal(released.action, 'record');
    assert.equal(replied(decide(rawDhcp({ xid: 5, mac: B, options: opts(1) }))).wire.yiaddr, '192.0.2.101');
  });

  test('INFORM: configuration, no address, no lease time', () => {
    const { decide } = setup();
    const { wire, to } = replied(decide(rawDhcp({ xid: 1, mac: A, ciaddr: '192.0.2.150', options: opts(8) })));
    assert.equal(wire.options.messageType, 5);
    assert.equal(wire.yiaddr, '0.0.0.0');
    assert.equal(wire.options.leaseTime, undefined);
    assert.deepEqual(to, { address: '192.0.2.150', port: 68 });
  });

  test('plain BOOTP client: permanent address, boot file, no DHCP-only options', () => {
    const { decide, leases } = setup();
    const { wire } = replied(decide(rawDhcp({ xid: 1, mac: A, options: [] })));
    assert.equal(wire.options.messageType, undefined);
    assert.equal(wire.options.serverIdentifier, undefined);
    assert.equal(wire.yiaddr, '192.0.2.100');
    assert.equal(wire.file, 'undionly.kpxe');
    assert.equal(leases.snapshot()[0].expires, null);
  });

  test('client identifier (61) identifies the client rather than chaddr', () => {
    const { decide } = setup();
    const id: RawOption = [61, [0xff, 1, 2, 3, 4]];
    replied(decide(rawDhcp({ xid: 1, mac: A, options: opts(3, [[50, ip('192.0.2.100')], id]) })));
    // Same identifier from another NIC: same client, same address.
    assert.equal(replied(decide(rawDhcp({ xid: 2, mac: B, options: opts(1, [id]) }))).wire.yiaddr, '192.0.2.100');
  });
});

describe('lease file', () => {
  test('leases survive a restart; offers do not; a damaged file starts empty with a warning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bb-leases-'));
    try {
      const file = join(dir, 'sub', 'leases.json');
      const clock = new ManualClock(5_000);
      const config = { first: '192.0.2.100', last: '192.0.2.110', subnetMask: '255.255.255.0', leaseSeconds: 60 };
      const pool = new LeasePool(config, SERVER, clock, file);
      pool.commit('mac:' + A, A, '192.0.2.105', clock.now(), 60);
      pool.offer('mac:' + B, B, undefined, clock.now());
      await pool.flush();
      const again = new LeasePool(config, SERVER, clock, file);
      await again.load();
      assert.deepEqual(
        again.snapshot().map((l) => [l.ip, l.mac, l.state]),
        [['192.0.2.105', A, 'bound']],
      );

      writeFileSync(file, '{ not json');
      const logger = new MemoryLogger();
      const damaged = new LeasePool(config, SERVER, clock, file, logger);
      await damaged.load();
      assert.equal(damaged.snapshot().length, 0);
      assert.match(logger.lines[0].message, /not valid JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the server address is never in the pool', () => {
    const clock = new ManualClock(0);
    const pool = new LeasePool({ first: '192.0.2.1', last: '192.0.2.2', subnetMask: '255.255.255.0' }, '192.0.2.1', clock);
    assert.equal(pool.offer('k', A, undefined, 0), '192.0.2.2');
    assert.equal(pool.offer('k2', B, '192.0.2.1', 0), undefined);
  });
});

test('UEFI HTTP boot turned off: no offer (no address held for it); PXE firmware is still answered', () => {
  const clock = new ManualClock(1_000_000);
  const leases = new LeasePool({ first: '192.0.2.100', last: '192.0.2.101', subnetMask: '255.255.255.0', leaseSeconds: 600 }, SERVER, clock);
  const off = { ...policy, answerHttpBoot: false };
  const decide = (bytes: Buffer) => decideFullDhcpReply(decodeDhcpPacket(bytes), { serverAddress: SERVER, policy: off, ports, leases, now: clock.now() });
  const plan = decide(rawDhcp({ xid: 1, mac: A, options: firmwareOptions('http-x64', A) }));
  assert.equal(plan.action, 'ignore');
  assert.equal(plan.action === 'ignore' && plan.decision?.kind === 'ignore' && plan.decision.turnedOff, 'http-boot');
  const { wire } = replied(decide(rawDhcp({ xid: 2, mac: B, options: firmwareOptions('edk2-x64', B) })));
  assert.equal(wire.yiaddr, '192.0.2.100', 'the HTTP client held no address');
  assert.equal(wire.file, 'ipxe.efi');
});
