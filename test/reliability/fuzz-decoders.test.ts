// Issue 9 item 1, the codecs: mutation fuzzing of decodeDhcpPacket and decodeTftpPacket
// (real captured client packets as seeds), and of what the server does with whatever
// decodes: the proxy, full-DHCP and boot-server decisions and the reply encoder; TFTP
// option negotiation. The only exception allowed is the decoder's own typed error; anything
// else is a crash, saved under test/fixtures/fuzz/ and replayed on every run from then on.
// CI: 20,000 packets per decoder. BOOTBENCH_LONG=1 (or BOOTBENCH_FUZZ_PACKETS=N): 1,000,000.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { decodeDhcpPacket, encodeDhcpPacket, DhcpDecodeError, DhcpEncodeError } from '../../main/dhcp/packet.js';
import { decideProxyReply } from '../../main/dhcp/proxy.js';
import { decideFullDhcpReply } from '../../main/dhcp/full-dhcp.js';
import { decideBootServerReply } from '../../main/dhcp/boot-server.js';
import { LeasePool } from '../../main/dhcp/lease-pool.js';
import { ManualClock } from '../../main/core/clock.js';
import { decodeTftpPacket, encodeTftpPacket, TftpDecodeError, TftpOpcode } from '../../main/tftp/packet.js';
import { negotiateReadOptions } from '../../main/tftp/options.js';
import type { BootPolicyConfig } from '../../main/pxe/boot-policy.js';
import { mutate, seededRandom } from './mutate.js';

const PACKETS = Number(process.env.BOOTBENCH_FUZZ_PACKETS ?? (process.env.BOOTBENCH_LONG === '1' ? 1_000_000 : 20_000));
const CAPTURES = join(import.meta.dirname, '..', 'fixtures', 'captures');
const CRASHES = join(import.meta.dirname, '..', 'fixtures', 'fuzz');
const SERVER = '192.0.2.1';
const policy: BootPolicyConfig = {
  serverAddress: SERVER,
  httpBaseUrl: 'http://192.0.2.1:8080',
  boot: { bios: 'undionly.kpxe', uefi64: 'ipxe.efi', arm64: 'arm.efi', http64: 'http://192.0.2.1:8080/x.efi' },
  ipxeScriptUrl: 'http://192.0.2.1:8080/boot.ipxe',
};
const ports = { server: 67, client: 68 };

function seeds(match: (name: string) => boolean): Buffer[] {
  return readdirSync(CAPTURES)
    .filter((n) => n.endsWith('.bin') && match(n))
    .map((n) => readFileSync(join(CAPTURES, n)));
}
// Client messages and, for the DHCP decoder, the server replies dnsmasq sent (BOOTREPLY paths).
const dhcpSeeds = seeds((n) => !n.includes('tftp'));
const tftpSeeds = [
  ...seeds((n) => n.includes('tftp')),
  encodeTftpPacket({ opcode: TftpOpcode.ACK, block: 1 }),
  encodeTftpPacket({
    opcode: TftpOpcode.OACK,
    options: [
      { name: 'blksize', value: '1468' },
      { name: 'tsize', value: '0' },
      { name: 'windowsize', value: '16' },
    ],
  }),
  encodeTftpPacket({ opcode: TftpOpcode.DATA, block: 65535, data: Buffer.alloc(16, 7) }),
  encodeTftpPacket({
    opcode: TftpOpcode.RRQ,
    filename: 'Boot\\BCD',
    mode: 'netascii',
    options: [
      { name: 'timeout', value: '1' },
      { name: 'blksize', value: '65464' },
    ],
  }),
];

/** Keeps a crashing input forever: named by its hash, replayed by the fixture test below. */
function saveCrash(kind: 'dhcp' | 'tftp', bytes: Buffer, error: unknown): string {
  mkdirSync(CRASHES, { recursive: true });
  const name = `${kind}-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}`;
  writeFileSync(join(CRASHES, `${name}.bin`), bytes);
  writeFileSync(join(CRASHES, `${name}.txt`), `${(error as Error)?.stack ?? String(error)}\n`);
  return name;
}

/** Everything the DHCP service does with one received datagram, short of the socket. */
function exerciseDhcp(bytes: Buffer, leases: LeasePool, clock: ManualClock): boolean {
  let packet;
  try {
    packet = decodeDhcpPacket(bytes);
  } catch (err) {
    if (err instanceof DhcpDecodeError) return false;
    throw err;
  }
  const plans = [
    decideProxyReply(packet, { serverAddress: SERVER, policy, ports }),
    decideBootServerReply(packet, { address: '192.0.2.44', port: 68 }, { serverAddress: SERVER, policy }),
    decideFullDhcpReply(packet, { serverAddress: SERVER, policy, ports, leases, now: clock.now() }),
  ];
  for (const plan of plans) {
    if (plan.action !== 'reply') continue;
    try {
      decodeDhcpPacket(encodeDhcpPacket(plan.reply));
    } catch (err) {
      // The service reports an unencodable reply as dhcp.error and goes on; that is handled.
      if (!(err instanceof DhcpEncodeError)) throw err;
    }
  }
  return true;
}

function exerciseTftp(bytes: Buffer): boolean {
  let packet;
  try {
    packet = decodeTftpPacket(bytes);
  } catch (err) {
    if (err instanceof TftpDecodeError) return false;
    throw err;
  }
  if (packet.opcode === TftpOpcode.RRQ || packet.opcode === TftpOpcode.WRQ) {
    negotiateReadOptions(packet.options, 1_000_000, { maxBlksize: 1468, maxWindowsize: 64 });
    negotiateReadOptions(packet.options, 0, { maxBlksize: 1468, maxWindowsize: 64 });
  }
  encodeTftpPacket(packet);
  return true;
}

function fuzz(kind: 'dhcp' | 'tftp', seedList: Buffer[], seed: number): { crashes: string[]; decoded: number; heapGrowthMiB: number } {
  const random = seededRandom(seed);
  const clock = new ManualClock(1_000_000);
  // A small pool so exhaustion, reuse and expiry paths are all reached.
  let leases = new LeasePool({ first: '192.0.2.100', last: '192.0.2.107', subnetMask: '255.255.255.0' }, SERVER, clock);
  const crashes: string[] = [];
  let decoded = 0;
  let heapAtQuarter = 0;
  for (let i = 0; i < PACKETS; i++) {
    if (i === PACKETS >> 2) heapAtQuarter = process.memoryUsage().heapUsed;
    if (i % 5000 === 4999) {
      clock.advance(30_000);
      // A fresh pool now and then: the pool grows with distinct clients by design.
      if (i % 100_000 === 99_999) leases = new LeasePool(leases.config, SERVER, clock);
    }
    const bytes = mutate(seedList[i % seedList.length], random);
    try {
      if (kind === 'dhcp' ? exerciseDhcp(bytes, leases, clock) : exerciseTftp(bytes)) decoded++;
    } catch (err) {
      if (crashes.length < 20) crashes.push(saveCrash(kind, bytes, err));
    }
  }
  return { crashes, decoded, heapGrowthMiB: (process.memoryUsage().heapUsed - heapAtQuarter) / 2 ** 20 };
}

describe(`decoder fuzzing (${PACKETS} mutated packets each)`, () => {
  test('saved crash fixtures no longer crash', () => {
    let names: string[] = [];
    try {
      names = readdirSync(CRASHES).filter((n) => n.endsWith('.bin'));
    } catch {
      // no crash ever saved
    }
    const clock = new ManualClock(1_000_000);
    const leases = new LeasePool({ first: '192.0.2.100', last: '192.0.2.107', subnetMask: '255.255.255.0' }, SERVER, clock);
    for (const name of names) {
      const bytes = readFileSync(join(CRASHES, name));
      // loop-* files (from the server-loop fuzzer) may hold either protocol: try both.
      if (!name.startsWith('tftp-')) assert.doesNotThrow(() => exerciseDhcp(bytes, leases, clock), name);
      if (!name.startsWith('dhcp-')) assert.doesNotThrow(() => exerciseTftp(bytes), name);
    }
  });

  test('decodeDhcpPacket and the DHCP decisions: 0 crashes', () => {
    const started = Date.now();
    const result = fuzz('dhcp', dhcpSeeds, 0xd4c9);
    assert.ok(result.decoded > PACKETS / 10, 'mutants should mostly still decode, or the fuzzer only tests the first checks');
    console.log(
      `DHCP decoder fuzz: ${PACKETS} packets, ${result.decoded} decoded (the rest refused with the typed error), ${result.crashes.length} crashes, heap +${result.heapGrowthMiB.toFixed(1)} MiB, ${Date.now() - started} ms`,
    );
    assert.deepEqual(result.crashes, [], `crashing inputs saved as test/fixtures/fuzz/{${result.crashes.join(',')}}.bin`);
  });

  test('decodeTftpPacket and option negotiation: 0 crashes', () => {
    const started = Date.now();
    const result = fuzz('tftp', tftpSeeds, 0x7f7f);
    console.log(
      `TFTP decoder fuzz: ${PACKETS} packets, ${result.decoded} decoded (the rest refused with the typed error), ${result.crashes.length} crashes, heap +${result.heapGrowthMiB.toFixed(1)} MiB, ${Date.now() - started} ms`,
    );
    assert.deepEqual(result.crashes, [], `crashing inputs saved as test/fixtures/fuzz/{${result.crashes.join(',')}}.bin`);
  });
});
