// Issue 9 item 10 (DHCP safety), as properties over the pure decisions:
//  - proxy mode (port 67 and the 4011 boot server) never puts an address in yiaddr, whatever
//    the client sends (generated requests and mutated real captures);
//  - full DHCP never offers or acknowledges an address outside its pool, nor our own, nor
//    one that another client holds, over random sequences of client messages;
//  - with the address check on, full DHCP never offers or acknowledges an address that
//    another host answers for (fake prober: random hosts holding pool addresses).
// Runs in CI; BOOTBENCH_LONG=1 multiplies the number of runs.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { clientMac, decodeDhcpPacket, encodeDhcpPacket, DhcpDecodeError, type DhcpPacket } from '../../main/dhcp/packet.js';
import { decideProxyReply } from '../../main/dhcp/proxy.js';
import { clientKey, decideFullDhcpReply } from '../../main/dhcp/full-dhcp.js';
import { decideBootServerReply } from '../../main/dhcp/boot-server.js';
import { LeasePool } from '../../main/dhcp/lease-pool.js';
import { addressCheckTarget, checkRequestedAddress, reserveCheckedAddress, type AddressInUseProber } from '../../main/dhcp/address-check.js';
import { ipv4ToNumber } from '../../main/dhcp/wire.js';
import { ManualClock } from '../../main/core/clock.js';
import type { BootPolicyConfig } from '../../main/pxe/boot-policy.js';
import { firmwareOptions, rawDhcp, type FirmwareKind, type RawOption } from '../helpers/dhcp-clients.js';
import { mutate, seededRandom } from './mutate.js';

const LONG = process.env.BOOTBENCH_LONG === '1';
const SERVER = '192.0.2.1';
const policy: BootPolicyConfig = {
  serverAddress: SERVER,
  httpBaseUrl: 'http://192.0.2.1:8080',
  boot: { bios: 'undionly.kpxe', uefi64: 'ipxe.efi', uefi32: 'ipxe32.efi', arm64: 'arm.efi', http64: 'http://192.0.2.1:8080/x.efi' },
  ipxeScriptUrl: 'http://192.0.2.1:8080/boot.ipxe',
};
const ports = { server: 67, client: 68 };
const KINDS: FirmwareKind[] = ['ipxe-bios', 'ipxe-uefi', 'edk2-x64', 'edk2-arm64', 'http-x64', 'http-arm64', 'intel-bios'];
const CAPTURES = join(import.meta.dirname, '..', 'fixtures', 'captures');
const clientSeeds = readdirSync(CAPTURES)
  .filter((n) => n.endsWith('.bin') && !n.startsWith('dnsmasq') && !n.includes('tftp'))
  .map((n) => readFileSync(join(CAPTURES, n)));

const ipArb = fc.oneof(
  fc.constantFrom('0.0.0.0', SERVER, '192.0.2.100', '192.0.2.104', '192.0.2.105', '192.0.2.99', '192.0.2.255', '255.255.255.255', '198.18.0.7'),
  fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.')),
);
const macArb = fc.constantFrom(
  '52:54:00:00:30:01',
  '52:54:00:00:30:02',
  '52:54:00:00:30:03',
  '52:54:00:00:30:04',
  '52:54:00:00:30:05',
  '52:54:00:00:30:06',
  '52:54:00:00:30:07',
);

/** One client message: a firmware's option set with the fields an attacker controls changed. */
const requestArb = fc.record({
  kind: fc.constantFrom(...KINDS),
  mac: macArb,
  type: fc.option(fc.oneof(fc.constantFrom(1, 1, 3, 3, 3, 4, 7, 8), fc.integer({ min: 1, max: 18 })), { nil: undefined, freq: 10 }),
  ciaddr: ipArb,
  giaddr: fc.constantFrom('0.0.0.0', '198.18.1.1'),
  requestedIp: fc.option(ipArb, { nil: undefined }),
  serverId: fc.option(fc.constantFrom(SERVER, SERVER, '192.0.2.2', '0.0.0.0'), { nil: undefined }),
  clientId: fc.option(fc.uint8Array({ minLength: 0, maxLength: 8 }), { nil: undefined }),
  op: fc.constantFrom(1, 1, 1, 1, 1, 2),
  bootItem: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }),
});
type RequestShape = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

function build(r: RequestShape): DhcpPacket {
  const ip = (a: string) => a.split('.').map(Number);
  // Firmware options with 53 replaced (or dropped: a BOOTP client) and the attacker's extras.
  let options: RawOption[] = firmwareOptions(r.kind, r.mac).filter(([code]) => code !== 53 && code !== 61);
  if (r.type !== undefined) options = [[53, [r.type]], ...options];
  if (r.requestedIp) options.push([50, ip(r.requestedIp)]);
  if (r.serverId) options.push([54, ip(r.serverId)]);
  if (r.clientId) options.push([61, [...r.clientId]]);
  if (r.bootItem !== undefined) options.push([43, [71, 4, r.bootItem >> 8, r.bootItem & 0xff, 0, 0, 255]]);
  return decodeDhcpPacket(rawDhcp({ op: r.op, xid: 7, mac: r.mac, ciaddr: r.ciaddr, giaddr: r.giaddr, options, padTo: 300 }));
}

function assertNoAddress(plan: ReturnType<typeof decideProxyReply>, what: string): void {
  if (plan.action !== 'reply') return;
  assert.equal(plan.reply.yiaddr, '0.0.0.0', `${what}: proxy reply carries yiaddr ${plan.reply.yiaddr}`);
  // and the encoded reply too (what actually goes on the wire)
  assert.equal(decodeDhcpPacket(encodeDhcpPacket(plan.reply)).yiaddr, '0.0.0.0');
  assert.equal(plan.reply.options.leaseTime, undefined, `${what}: proxy reply offers a lease time`);
}

describe('DHCP safety (issue 9 item 10)', () => {
  test('proxy mode never sets yiaddr (generated requests, port 67 and 4011)', () => {
    let replies = 0;
    fc.assert(
      fc.property(requestArb, (r) => {
        const request = build(r);
        const proxy = decideProxyReply(request, { serverAddress: SERVER, policy, ports });
        assertNoAddress(proxy, 'port 67');
        const boot = decideBootServerReply(request, { address: r.ciaddr === '0.0.0.0' ? SERVER : r.ciaddr, port: 68 }, { serverAddress: SERVER, policy });
        assertNoAddress(boot, 'port 4011');
        if (proxy.action === 'reply') replies++;
        if (boot.action === 'reply') replies++;
      }),
      { numRuns: LONG ? 200_000 : 3000, seed: 9 },
    );
    // A property that never reached a reply would prove nothing.
    assert.ok(replies > 500, `only ${replies} replies were decided`);
  });

  test('proxy mode never sets yiaddr (mutated real captures)', () => {
    const random = seededRandom(0x9e3779b9);
    let decided = 0;
    let replies = 0;
    const runs = LONG ? 500_000 : 20_000;
    for (let i = 0; i < runs; i++) {
      const seed = clientSeeds[i % clientSeeds.length];
      const bytes = mutate(seed, random);
      let request: DhcpPacket;
      try {
        request = decodeDhcpPacket(bytes);
      } catch (err) {
        if (err instanceof DhcpDecodeError) continue;
        throw err;
      }
      decided++;
      const proxy = decideProxyReply(request, { serverAddress: SERVER, policy, ports });
      assertNoAddress(proxy, `mutated ${i}`);
      const boot = decideBootServerReply(request, { address: '192.0.2.44', port: 68 }, { serverAddress: SERVER, policy });
      assertNoAddress(boot, `mutated ${i} on 4011`);
      if (proxy.action === 'reply' || boot.action === 'reply') replies++;
    }
    assert.ok(decided > runs / 4 && replies > runs / 20, `decided ${decided}, replied ${replies} of ${runs}`);
  });

  test('full DHCP never hands out an address outside its pool, ours, or one another client holds', () => {
    const FIRST = '192.0.2.100';
    const LAST = '192.0.2.104';
    let bound = 0;
    let offers = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(requestArb, fc.integer({ min: 0, max: 4000_000 })), { minLength: 1, maxLength: 60 }), (steps) => {
        const clock = new ManualClock(1_000_000);
        const leases = new LeasePool({ first: FIRST, last: LAST, subnetMask: '255.255.255.0', leaseSeconds: 600 }, SERVER, clock);
        for (const [r, wait] of steps) {
          clock.advance(wait);
          const request = build(r);
          const key = clientKey(request);
          // Who held each address before this message (an expired lease holds nothing).
          const before = new Map<string, string>();
          for (const lease of leases.snapshot()) {
            const holder = leases.holderOf(lease.ip, clock.now());
            if (holder) before.set(lease.ip, holder.key);
          }
          const plan = decideFullDhcpReply(request, { serverAddress: SERVER, policy, ports, leases, now: clock.now() });
          if (plan.action !== 'reply') continue;
          const yiaddr = plan.reply.yiaddr;
          if (yiaddr === '0.0.0.0') continue;
          const n = ipv4ToNumber(yiaddr);
          assert.ok(n >= ipv4ToNumber(FIRST) && n <= ipv4ToNumber(LAST), `handed out ${yiaddr}, outside ${FIRST}-${LAST}`);
          assert.notEqual(yiaddr, SERVER);
          const previous = before.get(yiaddr);
          assert.ok(previous === undefined || previous === key, `${yiaddr} handed to ${key} while ${previous} holds it`);
          offers++;
          if (plan.reply.options.messageType === 5) bound++;
        }
      }),
      { numRuns: LONG ? 20_000 : 400, seed: 10 },
    );
    assert.ok(offers > 100 && bound > 10, `only ${offers} addresses handed out, ${bound} bound leases seen`);
  });

  test('with the address check on, full DHCP never hands out an address another host answers for', async () => {
    const FIRST = '192.0.2.100';
    const LAST = '192.0.2.104';
    const pool = ['192.0.2.100', '192.0.2.101', '192.0.2.102', '192.0.2.103', '192.0.2.104'];
    let handedOut = 0;
    let conflicts = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.subarray(pool, { maxLength: 3 }),
        fc.array(fc.tuple(requestArb, fc.integer({ min: 0, max: 400_000 })), { minLength: 1, maxLength: 40 }),
        async (taken, steps) => {
          const clock = new ManualClock(1_000_000);
          const leases = new LeasePool({ first: FIRST, last: LAST, subnetMask: '255.255.255.0', leaseSeconds: 600 }, SERVER, clock);
          // Hosts configured by hand: their MACs are not any client's (macArb's).
          const prober: AddressInUseProber = {
            probe: async (ip) =>
              taken.includes(ip) ? { inUse: true, by: `02:00:00:00:00:${ip.split('.')[3]}`, method: 'fake' } : { inUse: false, method: 'fake' },
            close: () => {},
          };
          for (const [r, wait] of steps) {
            clock.advance(wait);
            const request = build(r);
            const key = clientKey(request);
            const mac = clientMac(request);
            const target = addressCheckTarget(request, leases, SERVER, clock.now());
            const onConflict = () => {
              conflicts++;
            };
            if (target === 'offer') {
              const result = await reserveCheckedAddress({ leases, prober, clock, key, mac, requestedIp: request.options.requestedIp, onConflict });
              if (result.kind === 'gave-up') continue;
            } else if (target !== undefined) {
              await checkRequestedAddress({ leases, prober, clock, key, mac, ip: target, onConflict });
            }
            const plan = decideFullDhcpReply(request, { serverAddress: SERVER, policy, ports, leases, now: clock.now() });
            if (plan.action !== 'reply' || plan.reply.yiaddr === '0.0.0.0') continue;
            const type = plan.reply.options.messageType;
            if (type === 6) continue; // a NAK hands out nothing
            assert.ok(
              !taken.includes(plan.reply.yiaddr),
              `${plan.reply.yiaddr} handed to ${key} (${type === 2 ? 'OFFER' : type === 5 ? 'ACK' : 'BOOTP'}) while another host answers for it`,
            );
            handedOut++;
          }
        },
      ),
      { numRuns: LONG ? 20_000 : 300, seed: 11 },
    );
    assert.ok(handedOut > 100 && conflicts > 50, `only ${handedOut} addresses handed out, ${conflicts} conflicts seen`);
  });
});
