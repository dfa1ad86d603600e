// Wake-on-LAN as the UI and `bootbench wake` use it: where the packets go and how often,
// which MACs a request means, the NIC refusals, the `wake.sent` record, and what the
// Timeline makes of it a minute later (a manual clock, no waiting).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:dgram';
import { buildMagicPacket, wakeAddressesOf, wakeMachines, type UdpSocketFactory } from '../../main/net/index.js';
import { chooseWakeInterface, resolveWakeTargets, wakeRequested, WakeRefusal } from '../../main/api/wake.js';
import { diagnoseBoot, wakeFollowUps, wakeOutcomes, WAKE_ANSWER_MS, WAKE_NO_ANSWER } from '../../main/api/boot-diagnosis.js';
import { HostApi, connectApiEvents, type ApiServiceHost, type ApiStore } from '../../main/api/api.js';
import { storeApi } from '../../main/api/api-store.js';
import { EventBus, type BootEvent } from '../../main/core/events.js';
import { ManualClock } from '../../main/core/clock.js';
import { openStore } from '../../main/store/index.js';
import { wakeCommand } from '../../main/cli/wake.js';
import { main } from '../../main/cli/bootbench.js';
import type { ApiEvents, Machine, NetInterfaceInfo, ServicesStatus, TimelineEntry } from '../../preload/api.js';

interface Sent {
  packet: Buffer;
  port: number;
  address: string;
}

/** A socket factory that records what would have left, and through which NIC. */
function recordingFactory(fail?: (address: string) => string | undefined) {
  const sent: Sent[] = [];
  const opened: unknown[] = [];
  let closed = 0;
  const factory: UdpSocketFactory = async (options) => {
    opened.push(options);
    return {
      setBroadcast() {},
      send(packet: Buffer, port: number, address: string, cb: (e: Error | null) => void) {
        const problem = fail?.(address);
        if (!problem) sent.push({ packet: Buffer.from(packet), port, address });
        cb(problem ? new Error(problem) : null);
      },
      close() {
        closed++;
      },
    } as unknown as Socket;
  };
  return { factory, sent, opened, closed: () => closed };
}

const bench0: NetInterfaceInfo = {
  name: 'bench0',
  mac: '02:00:00:00:00:01',
  ipv4: [{ address: '198.18.5.1', prefixLength: 24 }],
  up: true,
  kind: 'wired',
  mtu: 1500,
};
const office: NetInterfaceInfo = {
  name: 'office0',
  mac: '02:00:00:00:00:02',
  ipv4: [{ address: '192.0.2.10', prefixLength: 24 }],
  up: true,
  kind: 'wired',
  mtu: 1500,
};

const machine = (id: number, name: string, group: string, ...macs: string[]): Machine => ({ id, name, group, macs, bootOnce: false, discovered: false });
const ROOM = [
  machine(1, 'pc-10', 'Room3', '52:54:00:00:00:10'),
  machine(2, 'pc-2', 'room3', '52:54:00:00:00:02', '52:54:00:00:01:02'),
  machine(3, 'teacher', 'staff', '52:54:00:00:00:03'),
];

describe('packets', () => {
  test('addresses: each subnet directed broadcast, then the limited broadcast; /31 and /32 have none', () => {
    assert.deepEqual(wakeAddressesOf(bench0), ['198.18.5.255', '255.255.255.255']);
    assert.deepEqual(
      wakeAddressesOf({
        ipv4: [
          { address: '198.18.0.7', prefixLength: 15 },
          { address: '192.0.2.1', prefixLength: 31 },
          { address: '192.0.2.9', prefixLength: 32 },
        ],
      }),
      ['198.19.255.255', '255.255.255.255'],
    );
    assert.deepEqual(wakeAddressesOf(undefined), ['255.255.255.255']);
  });

  test('rounds: every MAC to every address per round, pauses between rounds, one socket tied to the NIC', async () => {
    const { factory, sent, opened, closed } = recordingFactory();
    const pauses: number[] = [];
    const results = await wakeMachines(['52:54:00:00:00:01', 'not-a-mac', '52-54-00-00-00-02'], {
      socketFactory: factory,
      interfaceName: 'bench0',
      addresses: ['198.18.5.255', '255.255.255.255'],
      repeat: 3,
      intervalMs: 100,
      sleep: async (ms) => void pauses.push(ms),
    });
    assert.deepEqual(opened, [{ port: 0, interfaceName: 'bench0', broadcast: true }]);
    assert.equal(closed(), 1);
    assert.deepEqual(pauses, [100, 100]);
    assert.equal(sent.length, 3 * 2 * 2);
    assert.ok(sent.every((s) => s.port === 9));
    // Round order: MAC 1 to both addresses, then MAC 2, then the next round.
    assert.deepEqual(
      sent.slice(0, 4).map((s) => [s.packet.subarray(6, 12).toString('hex'), s.address]),
      [
        ['525400000001', '198.18.5.255'],
        ['525400000001', '255.255.255.255'],
        ['525400000002', '198.18.5.255'],
        ['525400000002', '255.255.255.255'],
      ],
    );
    assert.deepEqual(sent[0]!.packet, buildMagicPacket('52:54:00:00:00:01'));
    assert.deepEqual(
      results.map((r) => [r.mac, r.sent, r.error !== undefined]),
      [
        ['52:54:00:00:00:01', 6, false],
        ['not-a-mac', 0, true],
        ['52-54-00-00-00-02', 6, false],
      ],
    );
  });

  test('a send that fails is reported for its MAC; the other address still gets its packets', async () => {
    const { factory, sent } = recordingFactory((address) => (address === '255.255.255.255' ? 'ENETUNREACH' : undefined));
    const [result] = await wakeMachines(['52:54:00:00:00:01'], { socketFactory: factory, addresses: ['198.18.5.255', '255.255.255.255'], repeat: 2 });
    assert.equal(sent.length, 2);
    assert.equal(result!.sent, 2);
    assert.match(result!.error!, /sending to 255\.255\.255\.255 failed: ENETUNREACH/);
  });
});

describe('what a request means', () => {
  test('a group: its machines (any spelling of the name), each MAC once, in name order', () => {
    const targets = resolveWakeTargets({ group: 'ROOM3' }, ROOM);
    assert.deepEqual(
      targets.map((t) => [t.name, t.mac]),
      [
        ['pc-2', '52:54:00:00:00:02'],
        ['pc-2', '52:54:00:00:01:02'],
        ['pc-10', '52:54:00:00:00:10'],
      ],
    );
    const mixed = resolveWakeTargets({ machineIds: [3], macs: ['52-54-00-00-00-03', 'AA:BB:CC:DD:EE:FF'] }, ROOM);
    assert.deepEqual(
      mixed.map((t) => [t.mac, t.machineId]),
      [
        ['52:54:00:00:00:03', 3],
        ['aa:bb:cc:dd:ee:ff', undefined],
      ],
    );
  });

  test('refusals name the problem and the fix', () => {
    assert.throws(
      () => resolveWakeTargets({ group: 'room9' }, ROOM),
      (e: WakeRefusal) => e.code === 'not-found' && /no machine is in group "room9": the groups are Room3, room3, staff/.test(e.message),
    );
    assert.throws(
      () => resolveWakeTargets({ macs: ['52:54:00:12:34'] }, ROOM),
      (e: WakeRefusal) => e.code === 'invalid-request' && /not a MAC address/.test(e.message),
    );
    assert.throws(() => resolveWakeTargets({ machineIds: [99] }, ROOM), /no machine number 99/);
    assert.throws(() => resolveWakeTargets({}, ROOM), /nothing to wake/);
  });

  test('the NIC: the one named, else the stored one; gone, down or none is refused', () => {
    assert.equal(chooseWakeInterface(undefined, 'bench0', [office, bench0]).name, 'bench0');
    assert.equal(chooseWakeInterface('office0', 'bench0', [office, bench0]).name, 'office0');
    assert.throws(
      () => chooseWakeInterface('bench1', 'bench0', [office, bench0]),
      (e: WakeRefusal) => e.code === 'unavailable' && /"bench1" is not on this computer now.*there are office0, bench0/.test(e.message),
    );
    assert.throws(() => chooseWakeInterface(undefined, 'bench0', [{ ...bench0, up: false }]), /"bench0" is down/);
    assert.throws(() => chooseWakeInterface(undefined, undefined, [bench0]), /no network card is chosen.*--interface NAME/);
  });

  test('wakeRequested records one wake.sent per MAC with where the packets went', async () => {
    const { factory, sent } = recordingFactory();
    const events: BootEvent[] = [];
    const bus = new EventBus(() => 5000);
    bus.subscribe((e) => events.push(e));
    const result = await wakeRequested(
      { group: 'staff' },
      { machines: ROOM, interfaces: [bench0], storedInterface: 'bench0', socketFactory: factory, publish: bus.publish, sleep: async () => {} },
    );
    assert.equal(sent.length, 3 * 2);
    assert.deepEqual(result, {
      interfaceName: 'bench0',
      addresses: ['198.18.5.255', '255.255.255.255'],
      repeat: 3,
      machines: [{ mac: '52:54:00:00:00:03', machineId: 3, name: 'teacher', sent: 6, error: undefined }],
      answerWithinMs: WAKE_ANSWER_MS,
    });
    assert.deepEqual(events, [
      {
        type: 'wake.sent',
        time: 5000,
        mac: '52:54:00:00:00:03',
        interfaceName: 'bench0',
        addresses: ['198.18.5.255', '255.255.255.255'],
        packets: 6,
        machine: 'teacher',
        reason: undefined,
      },
    ]);
  });
});

const MAC = '52:54:00:00:00:10';
const wake = (time: number, mac = MAC): BootEvent => ({ type: 'wake.sent', time, mac, interfaceName: 'bench0', addresses: ['198.18.5.255'], packets: 6 });
const discover = (time: number, mac = MAC): BootEvent => ({ type: 'dhcp.received', time, mac, msgType: 'DISCOVER', arch: 7 });

describe('what came of a wake (the flag after a minute)', () => {
  test('waiting, answered, no answer; a second wake within the minute is judged alone', () => {
    assert.deepEqual(
      wakeOutcomes([wake(1000)], 1000 + 30_000).map((o) => o.state),
      ['waiting'],
    );
    assert.deepEqual(
      wakeOutcomes([wake(1000)], 1000 + WAKE_ANSWER_MS).map((o) => o.state),
      ['no-answer'],
    );
    const answered = wakeOutcomes([wake(1000), discover(13_000)], 200_000);
    assert.deepEqual([answered[0]!.state, answered[0]!.answeredAt], ['answered', 13_000]);
    // A DISCOVER after the minute does not answer the wake (the PC was switched on by hand, say).
    assert.deepEqual(
      wakeOutcomes([wake(1000), discover(1000 + WAKE_ANSWER_MS + 1)], 500_000).map((o) => o.state),
      ['no-answer'],
    );
    assert.deepEqual(
      wakeOutcomes([wake(1000), wake(5000, '52:54:00:00:01:10')], 500_000).map((o) => [o.wake.time, o.state]),
      [[5000, 'no-answer']],
    );
    // A wake that sent nothing is no wake to wait for.
    assert.deepEqual(wakeOutcomes([{ ...wake(1000), packets: 0 } as BootEvent], 500_000), []);
  });

  test('the Timeline lines and the diagnosis: "woken", then asked to boot, or the flag', () => {
    assert.deepEqual(wakeFollowUps([wake(1000)], 30_000), []);
    assert.deepEqual(wakeFollowUps([wake(1000)], 61_000), [{ time: 61_000, type: 'wake.unanswered', mac: MAC, summary: WAKE_NO_ANSWER, level: 'problem' }]);
    assert.deepEqual(wakeFollowUps([wake(1000), discover(13_400)], 61_000), [
      { time: 13_400, type: 'wake.answered', mac: MAC, summary: 'Asked to boot 12 s after it was woken', level: 'info' },
    ]);
    const waiting = diagnoseBoot([wake(1000)], undefined, 21_000);
    assert.equal(waiting.level, 'info');
    assert.match(waiting.message, /Woken 20 s ago: waiting for it to ask for a network boot/);
    const flagged = diagnoseBoot([discover(0), wake(1000)], undefined, 61_000);
    assert.equal(flagged.level, 'problem');
    assert.equal(flagged.message, `${WAKE_NO_ANSWER}.`);
    assert.match(flagged.hint!, /Wake on LAN/);
    // Answered: the boot itself is the story again.
    const booting = diagnoseBoot([wake(1000), discover(5000)], undefined, 61_000);
    assert.equal(booting.stage, 'dhcp');
    assert.doesNotMatch(booting.message, /Wake-on-LAN/);
  });
});

function fakeHost(clock: ManualClock, interfaceName?: string) {
  const bus = new EventBus(() => clock.now());
  const status: ServicesStatus = { running: false, mode: 'proxy', services: [], problems: [] };
  const host: ApiServiceHost = {
    bus,
    start: async () => status,
    stop: async () => status,
    status: () => status,
    config: () => ({ interfaceName, mode: 'proxy', root: '/srv', httpPort: 8080, boot: {}, dataDir: '/srv/bb' }),
    activeTransfers: () => [],
  };
  return { host, bus };
}

function memoryStore(events: BootEvent[]): ApiStore {
  return {
    machines: {
      list: () => ROOM,
      get: (id) => ROOM.find((m) => m.id === id),
      findByMac: (mac) => ROOM.find((m) => m.macs.includes(mac)),
      update: () => ROOM[0]!,
      groups: () => [],
      assignGroup: () => ({ name: '', count: 0 }),
      importCsv: () => ({ added: 0, updated: 0, problems: [] }),
      exportCsv: () => '',
    },
    entries: { list: () => [] },
    defaults: { boot: () => ({ kind: 'local-disk' }), setBoot: () => ({ kind: 'local-disk' }) },
    timeline: { forMachine: () => events, forMac: () => events },
    transfers: { recent: () => [] },
  };
}

describe('the API', () => {
  test('machines:wake sends through the stored NIC, publishes the wakes, refuses in words', async () => {
    const clock = new ManualClock(1_000_000);
    const { host, bus } = fakeHost(clock, 'bench0');
    const published: BootEvent[] = [];
    bus.subscribe((e) => published.push(e));
    const { factory, sent } = recordingFactory();
    const api = new HostApi({ host, store: memoryStore([]), listInterfaces: () => [bench0], shell: 'web', clock, wakeSocketFactory: factory });
    const ok = await api.handle('machines:wake', { group: 'room3' });
    assert.ok('result' in ok, JSON.stringify(ok));
    assert.equal(sent.length, 3 * 3 * 2);
    assert.deepEqual(
      published.map((e) => [e.type, e.mac]),
      [
        ['wake.sent', '52:54:00:00:00:02'],
        ['wake.sent', '52:54:00:00:01:02'],
        ['wake.sent', '52:54:00:00:00:10'],
      ],
    );
    const unknown = await api.handle('machines:wake', { group: 'room9' });
    assert.deepEqual('error' in unknown && unknown.error.code, 'not-found');
    const gone = await api.handle('machines:wake', { machineIds: [1], interfaceName: 'bench7' });
    assert.ok(
      'error' in gone &&
        gone.error.code === 'unavailable' &&
        /^The network card "bench7" is not on this computer now.* on the Start screen/.test(gone.error.message),
      JSON.stringify(gone),
    );
    const bad = await api.handle('machines:wake', { macs: ['nonsense'] });
    assert.ok('error' in bad && bad.error.code === 'invalid-request');
    const empty = await api.handle('machines:wake', {});
    assert.ok('error' in empty && /needs machines or a group/.test(empty.error.message));
  });

  test('timeline:get after a wake: waiting, then a minute later the flag (fake clock)', async () => {
    const clock = new ManualClock(1_000_000);
    const { host } = fakeHost(clock, 'bench0');
    const events = [wake(1_000_000)];
    const api = new HostApi({ host, store: memoryStore(events), listInterfaces: () => [bench0], shell: 'web', clock });
    const first = await api.handle('timeline:get', { machineId: 1 });
    assert.ok('result' in first);
    const early = first.result as { events: TimelineEntry[]; diagnosis: { level: string; message: string } };
    assert.match(early.events.at(-1)!.summary, /^Woken: 6 magic packets sent through bench0 to 198\.18\.5\.255$/);
    assert.equal(early.diagnosis.level, 'info');
    clock.advance(WAKE_ANSWER_MS);
    const later = (await api.handle('timeline:get', { machineId: 1 })) as {
      result: { events: TimelineEntry[]; diagnosis: { level: string; message: string } };
    };
    assert.deepEqual(
      later.result.events.map((e) => e.type),
      ['wake.sent', 'wake.unanswered'],
    );
    assert.equal(later.result.diagnosis.level, 'problem');
    assert.match(later.result.diagnosis.message, /No answer to Wake-on-LAN: check the BIOS setting or the cable/);
  });

  test('pushed: a minute of silence after a wake pushes the flag; a DISCOVER in time pushes the answer instead', () => {
    const clock = new ManualClock(1_000_000);
    const { host, bus } = fakeHost(clock);
    const pushed: ApiEvents['timeline:event'][] = [];
    const stop = connectApiEvents({
      host,
      store: memoryStore([]),
      clock,
      sink: (event, payload) => {
        if (event === 'timeline:event') pushed.push(payload as ApiEvents['timeline:event']);
      },
    });
    bus.publish('wake.sent', { mac: '52:54:00:00:00:10', interfaceName: 'bench0', addresses: ['198.18.5.255'], packets: 6 });
    bus.publish('wake.sent', { mac: '52:54:00:00:00:03', interfaceName: 'bench0', addresses: ['198.18.5.255'], packets: 6 });
    clock.advance(8000);
    bus.publish('dhcp.received', { mac: '52:54:00:00:00:03', msgType: 'DISCOVER' });
    clock.advance(WAKE_ANSWER_MS - 8001);
    assert.deepEqual(
      pushed.map((e) => e.type),
      ['wake.sent', 'wake.sent', 'dhcp.received', 'wake.answered'],
    );
    clock.advance(1);
    assert.deepEqual(
      pushed.slice(4).map((e) => [e.type, e.mac, e.summary, e.level]),
      [['wake.unanswered', '52:54:00:00:00:10', WAKE_NO_ANSWER, 'problem']],
    );
    stop();
  });
});

describe('bootbench wake', () => {
  function dataFolder() {
    const dir = mkdtempSync(join(tmpdir(), 'bb-wake-'));
    const store = openStore(dir);
    const seenBefore = store.machines.create({ macs: ['52:54:00:00:00:10'], name: 'pc-10', group: 'room3' });
    store.machines.create({ macs: ['52:54:00:00:00:11'], name: 'pc-11', group: 'room3' });
    store.settings.set('interface', 'bench0');
    store.close();
    return { dir, id: seenBefore.id };
  }
  const io = () => {
    const out = { stdout: '', stderr: '' };
    return { out, io: { stdout: (t: string) => void (out.stdout += t), stderr: (t: string) => void (out.stderr += t) } };
  };

  test('--group: packets through the stored NIC, wakes recorded in the data folder (not as a sighting)', async () => {
    const { dir, id } = dataFolder();
    try {
      const { factory, sent, opened } = recordingFactory();
      const { out, io: cio } = io();
      const code = await wakeCommand(['--group', 'room3', '--data', dir, '--json'], cio, {
        interfaces: [office, bench0],
        socketFactory: factory,
        sleep: async () => {},
      });
      assert.equal(code, 0, out.stderr);
      assert.deepEqual(opened, [{ port: 0, interfaceName: 'bench0', broadcast: true }]);
      assert.equal(sent.length, 2 * 3 * 2);
      const result = JSON.parse(out.stdout);
      assert.deepEqual(
        result.machines.map((m: { name: string; sent: number }) => [m.name, m.sent]),
        [
          ['pc-10', 6],
          ['pc-11', 6],
        ],
      );
      const store = openStore(dir);
      try {
        const events = store.bootEvents.listForMachine(id);
        assert.deepEqual(
          events.map((e) => [e.type, e.mac, e.details.interfaceName]),
          [['wake.sent', '52:54:00:00:00:10', 'bench0']],
        );
        assert.equal(store.machines.get(id)!.lastSeen, null, 'a wake is not a sighting');
        // The Timeline of the data folder says "woken".
        const api = new HostApi({ host: fakeHost(new ManualClock(Date.now())).host, store: storeApi(store), listInterfaces: () => [], shell: 'web' });
        const timeline = (await api.handle('timeline:get', { machineId: id })) as { result: { events: TimelineEntry[] } };
        assert.match(timeline.result.events[0]!.summary, /^Woken: 6 magic packets sent through bench0/);
      } finally {
        store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a bare MAC not in the list is woken and kept by its MAC; text output names NIC and addresses', async () => {
    const { dir } = dataFolder();
    try {
      const { factory } = recordingFactory();
      const { out, io: cio } = io();
      const code = await wakeCommand(['AA-BB-CC-00-00-01', '--interface', 'office0', '--data', dir], cio, {
        interfaces: [office, bench0],
        socketFactory: factory,
        sleep: async () => {},
      });
      assert.equal(code, 0, out.stderr);
      assert.match(out.stdout, /^woke 1 PC through office0 \(3 rounds to 192\.0\.2\.255 and 255\.255\.255\.255\):\n {2}aa:bb:cc:00:00:01 {2}6 packets\n/);
      const store = openStore(dir);
      try {
        assert.deepEqual(
          store.bootEvents.listForMac('aa:bb:cc:00:00:01').map((e) => [e.type, e.machineId]),
          [['wake.sent', null]],
        );
        assert.equal(store.machines.findByMac('aa:bb:cc:00:00:01'), undefined, 'no machine row is made for it');
      } finally {
        store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('errors: bad MAC and no target exit 2; unknown group, NIC gone, NIC down exit 1; all in words', async () => {
    const { dir } = dataFolder();
    try {
      const run = async (args: string[], interfaces = [office, bench0]) => {
        const { factory, sent } = recordingFactory();
        const { out, io: cio } = io();
        const code = await wakeCommand([...args, '--data', dir], cio, { interfaces, socketFactory: factory, sleep: async () => {} });
        return { code, stderr: out.stderr, sent: sent.length };
      };
      let r = await run(['52:54:00:zz:00:01']);
      assert.deepEqual([r.code, r.sent], [2, 0]);
      assert.match(r.stderr, /"52:54:00:zz:00:01" is not a MAC address: write six hex pairs/);
      r = await run([]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /nothing to wake: give MAC addresses/);
      r = await run(['--bogus']);
      assert.equal(r.code, 2);
      r = await run(['--group', 'room9']);
      assert.deepEqual([r.code, r.sent], [1, 0]);
      assert.match(r.stderr, /no machine is in group "room9": the groups are room3/);
      r = await run(['--group', 'room3'], [office]);
      assert.deepEqual([r.code, r.sent], [1, 0]);
      assert.match(r.stderr, /the network card "bench0" is not on this computer now .*choose another \(--interface NAME\); there are office0/);
      r = await run(['--group', 'room3'], [{ ...bench0, up: false }]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /"bench0" is down/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bootbench wake is a command of bootbench (its help names the forms)', async () => {
    const written: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => (written.push(String(chunk)), true)) as typeof process.stdout.write;
    try {
      assert.equal(await main(['wake', '--help']), 0);
    } finally {
      process.stdout.write = write;
    }
    assert.match(written.join(''), /^Usage: bootbench wake \(MAC\.\.\. \| --group NAME\) \[--interface NIC\] \[--data DIR\] \[--json\]/);
  });
});
