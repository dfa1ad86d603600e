// `bootbench wake` on the wire, in namespaces this test makes: the host namespace has two NICs,
// bench0 (198.18.5.0/24, the stored NIC) and office0 (198.18.6.0/24); dumpcap listens on the
// far end of each. Waking a group must put each MAC's magic packet on bench0, to its directed
// broadcast and to 255.255.255.255, three rounds, and nothing on office0. Then the same while
// `bootbench serve` runs on that data folder: the wake is recorded beside it, the PC's DISCOVER
// arrives, and the Timeline says it asked to boot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, missingPrograms, netnsUnavailableReason, waitFor } from '../helpers/netns.js';
import { PROJECT_ROOT, ServeProcess } from '../helpers/serve-process.js';
import { firmwareDiscover } from '../helpers/dhcp-clients.js';
import { buildMagicPacket } from '../../main/net/index.js';
import { openStore } from '../../main/store/index.js';
import { storeApi } from '../../main/api/api-store.js';
import { HostApi, type ApiServiceHost } from '../../main/api/api.js';
import { EventBus } from '../../main/core/events.js';
import type { Timeline } from '../../preload/api.js';

const skip = netnsUnavailableReason() ?? missingPrograms('dumpcap');
const CLI = join(PROJECT_ROOT, 'main', 'cli', 'bootbench.ts');
const RUNNER = join(PROJECT_ROOT, 'test', 'integration', 'dhcp-runner.ts');
const PCS = ['52:54:00:5a:00:01', '52:54:00:5a:00:02'];

let lab: Lab;
let hostNs: string;
let benchNs: string;
let officeNs: string;
let work: string;
let data: string;

before(() => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'bb-wake-netns-'));
  data = join(work, 'data');
  const store = openStore(data);
  store.machines.create({ macs: [PCS[0]!], name: 'room3-01', group: 'room3' });
  store.machines.create({ macs: [PCS[1]!], name: 'room3-02', group: 'room3' });
  store.machines.create({ macs: ['52:54:00:5a:00:99'], name: 'office-pc', group: 'office' });
  store.settings.set('interface', 'bench0');
  store.close();
  lab = new Lab('bbw');
  hostNs = lab.namespace('h');
  benchNs = lab.namespace('b');
  officeNs = lab.namespace('o');
  lab.veth(hostNs, 'bench0', '198.18.5.1/24', benchNs, 'pc0', '198.18.5.2/24');
  lab.veth(hostNs, 'office0', '198.18.6.1/24', officeNs, 'pc0', '198.18.6.2/24');
});

after(async () => {
  if (lab) await lab.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** dumpcap on one namespace's pc0, UDP port 9 only; stop() returns the frames. */
async function capture(ns: string, name: string) {
  const file = join(work, `${name}.pcap`);
  const child = lab.spawn(ns, 'dumpcap', ['-q', '-i', 'pc0', '-f', 'udp port 9', '-w', file]);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor(() => existsSync(file) && statSync(file).size > 0, 10_000, `dumpcap on ${ns} to start (${stderr})`);
  return {
    async stop(): Promise<Frame[]> {
      // dumpcap writes its buffer out at SIGINT; give packets in flight a moment first.
      await new Promise((r) => setTimeout(r, 300));
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
      return readPcap(readFileSync(file));
    },
  };
}

interface Frame {
  ethDst: string;
  ipDst: string;
  udpDst: number;
  payload: Buffer;
}

/** Classic pcap or pcapng (dumpcap's default), Ethernet frames carrying IPv4/UDP. */
function readPcap(bytes: Buffer): Frame[] {
  const frames: Buffer[] = [];
  if (bytes.readUInt32LE(0) === 0x0a0d0d0a) {
    // pcapng: blocks of type, total length; Enhanced Packet Blocks (6) hold the frames.
    for (let at = 0; at + 12 <= bytes.length;) {
      const type = bytes.readUInt32LE(at);
      const length = bytes.readUInt32LE(at + 4);
      if (type === 6) frames.push(bytes.subarray(at + 28, at + 28 + bytes.readUInt32LE(at + 20)));
      at += length;
    }
  } else {
    for (let at = 24; at + 16 <= bytes.length;) {
      const caplen = bytes.readUInt32LE(at + 8);
      frames.push(bytes.subarray(at + 16, at + 16 + caplen));
      at += 16 + caplen;
    }
  }
  return frames
    .filter((f) => f.readUInt16BE(12) === 0x0800 && f[23] === 17)
    .map((f) => {
      const ip = 14;
      const udp = ip + (f[ip]! & 0x0f) * 4;
      return {
        ethDst: [...f.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':'),
        ipDst: [...f.subarray(ip + 16, ip + 20)].join('.'),
        udpDst: f.readUInt16BE(udp + 2),
        payload: f.subarray(udp + 8, udp + f.readUInt16BE(udp + 4)),
      };
    });
}

function wake(args: string[]): { code: number; stdout: string; stderr: string } {
  try {
    const stdout = lab.exec(hostNs, process.execPath, ['--import', 'tsx', CLI, 'wake', ...args, '--data', data]);
    return { code: 0, stdout, stderr: '' };
  } catch (err) {
    const e = err as { status: number; stdout: Buffer; stderr: Buffer };
    return { code: e.status, stdout: String(e.stdout), stderr: String(e.stderr) };
  }
}

test("a group's magic packets leave through the stored NIC only: directed broadcast and 255.255.255.255, three rounds", { skip, timeout: 90_000 }, async () => {
  const bench = await capture(benchNs, 'bench');
  const office = await capture(officeNs, 'office');
  const run = wake(['--group', 'room3', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  assert.equal(result.interfaceName, 'bench0');
  const onBench = await bench.stop();
  const onOffice = await office.stop();

  assert.equal(onOffice.length, 0, `nothing reaches the other NIC: ${JSON.stringify(onOffice.map((f) => f.ipDst))}`);
  assert.equal(onBench.length, PCS.length * 2 * 3);
  for (const f of onBench) {
    assert.equal(f.ethDst, 'ff:ff:ff:ff:ff:ff');
    assert.equal(f.udpDst, 9);
  }
  for (const mac of PCS) {
    const mine = onBench.filter((f) => f.payload.equals(buildMagicPacket(mac)));
    assert.equal(mine.length, 6, `${mac}: three rounds to two addresses`);
    assert.deepEqual([...new Set(mine.map((f) => f.ipDst))].sort(), ['198.18.5.255', '255.255.255.255']);
  }
  assert.equal(onBench.filter((f) => f.payload.equals(buildMagicPacket('52:54:00:5a:00:99'))).length, 0, 'a machine of another group is not woken');

  // --interface overrides the stored NIC.
  const officeAgain = await capture(officeNs, 'office2');
  assert.equal(wake(['52:54:00:5a:00:99', '--interface', 'office0']).code, 0);
  const frames = await officeAgain.stop();
  assert.deepEqual([...new Set(frames.map((f) => f.ipDst))].sort(), ['198.18.6.255', '255.255.255.255']);

  // A NIC that is not there is refused before anything is sent.
  const gone = wake(['--group', 'room3', '--interface', 'bench9']);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /the network card "bench9" is not on this computer now/);
});

test(
  'beside a running `bootbench serve` on the same data folder: recorded, and the PC asking to boot shows on its Timeline',
  { skip, timeout: 90_000 },
  async () => {
    const root = join(work, 'root');
    execFileSync('mkdir', ['-p', root]);
    const serve = new ServeProcess(lab, hostNs, ['--interface', 'bench0', '--root', root, '--boot', 'uefi64=nbp.efi', '--data', data]);
    try {
      await serve.ready();
      const run = wake([PCS[0]!]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(
        run.stdout,
        /^woke 1 PC through bench0 \(3 rounds to 198\.18\.5\.255 and 255\.255\.255\.255\):\n {2}room3-01 {2}52:54:00:5a:00:01 {2}6 packets/,
      );
      // The woken PC's firmware asks for a network boot (to the subnet's broadcast: the namespace has no route for 255.255.255.255).
      const sent = lab.exec(benchNs, process.execPath, ['--import', 'tsx', RUNNER, 'client'], {
        input: JSON.stringify([
          { name: 'discover', hex: firmwareDiscover('edk2-x64', PCS[0]!, 0x5a01).toString('hex'), to: '198.18.5.255', port: 67, fromPort: 68, waitMs: 1000 },
        ]),
      });
      await serve.waitForEvent(
        (e) => e.type === 'dhcp.received' && e.mac === PCS[0],
        10_000,
        `the DISCOVER at the host (client: ${sent}; host: ${serve.stderr})`,
      );
      const store = openStore(data);
      try {
        const id = store.machines.findByMac(PCS[0]!)!.id;
        const bus = new EventBus();
        const host = { bus, status: () => ({ running: false, mode: 'proxy', services: [], problems: [] }), config: () => ({}) } as unknown as ApiServiceHost;
        const api = new HostApi({ host, store: storeApi(store), listInterfaces: () => [], shell: 'web' });
        const timeline = await waitFor(
          async () => {
            const answer = await api.handle('timeline:get', { machineId: id });
            const t = 'result' in answer ? (answer.result as Timeline) : undefined;
            return t?.events.some((e) => e.type === 'wake.answered') ? t : undefined;
          },
          10_000,
          'the wake and the DISCOVER on the timeline',
        );
        const types = timeline.events.map((e) => e.type);
        assert.ok(types.lastIndexOf('wake.sent') < types.indexOf('wake.answered'), types.join(' '));
        assert.match(timeline.events.find((e) => e.type === 'wake.answered')!.summary, /^Asked to boot \d+ s after it was woken$/);
      } finally {
        store.close();
      }
    } finally {
      await serve.stop('SIGTERM');
    }
  },
);
