// The renderer's rune state modules (*.svelte.ts), compiled by Svelte as in the browser,
// driven through a fake transport: throttled progress, live machines, the Start screen,
// the timeline's live append, and the formatting the screens show.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { register } from 'node:module';
import {
  type ApiCallName,
  type ApiEventName,
  type ApiEvents,
  type BootEntry,
  type ImageInfo,
  type ImagingJob,
  type ImagingMachineRow,
  type Machine,
  type TimelineEntry,
  type TransferRow,
  ApiCallError,
} from '../../preload/api.js';
import { type Scheduler, createThrottle } from '../../renderer/src/lib/throttle.js';
import { ApiClient, type ConnectionState, type Transport } from '../../renderer/src/lib/transport.js';
import { etaSeconds, formatBytes, formatDuration, formatRate, fraction, suggestPool } from '../../renderer/src/lib/format.js';

register('../../renderer/tools/svelte-runes-loader.mjs', import.meta.url);
const { TransfersState } = await import('../../renderer/src/lib/state/transfers.svelte.js');
const { MachinesState, sortMachines } = await import('../../renderer/src/lib/state/machines.svelte.js');
const { ServicesState } = await import('../../renderer/src/lib/state/services.svelte.js');
const { TimelineState } = await import('../../renderer/src/lib/state/timeline.svelte.js');
const { AppState } = await import('../../renderer/src/lib/state/app.svelte.js');
const { LibraryState } = await import('../../renderer/src/lib/state/library.svelte.js');
const { ImagesState, phaseLabel, rowEta, rowFraction, isSilent, mergeJobs, JOBS_SHOWN } = await import('../../renderer/src/lib/state/images.svelte.js');

class ManualScheduler implements Scheduler {
  time = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  private next = 1;
  now = () => this.time;
  set = (fn: () => void, ms: number) => {
    const id = this.next++;
    this.timers.set(id, { at: this.time + ms, fn });
    return id;
  };
  clear = (h: unknown) => void this.timers.delete(h as number);
  advance(ms: number) {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = due[1].at;
      due[1].fn();
    }
    this.time = end;
  }
}

/** A transport answering from a table, recording calls, and letting tests push events. */
class FakeTransport implements Transport {
  readonly kind = 'websocket' as const;
  calls: [string, unknown][] = [];
  private listeners = new Map<string, Set<(p: unknown) => void>>();
  private connection = new Set<(s: ConnectionState) => void>();
  constructor(private answers: Partial<Record<ApiCallName, (req: any) => unknown>>) {}
  async invoke(call: ApiCallName, request: unknown) {
    this.calls.push([call, request]);
    const answer = this.answers[call];
    if (!answer) throw new ApiCallError('unknown-call', `no answer for ${call}`);
    return answer(request);
  }
  subscribe<E extends ApiEventName>(event: E, listener: (p: ApiEvents[E]) => void) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event)!.add(listener as (p: unknown) => void);
    return () => this.listeners.get(event)!.delete(listener as (p: unknown) => void);
  }
  push<E extends ApiEventName>(event: E, payload: ApiEvents[E]) {
    for (const l of this.listeners.get(event) ?? []) l(payload);
  }
  onConnection(listener: (s: ConnectionState) => void) {
    this.connection.add(listener);
    return () => this.connection.delete(listener);
  }
  setConnection(s: ConnectionState) {
    for (const l of this.connection) l(s);
  }
  close() {}
}

const row = (id: string, bytes: number): TransferRow => ({
  id,
  ip: '192.0.2.10',
  file: 'ipxe.efi',
  protocol: 'tftp',
  size: 1000,
  bytes,
  rate: 100,
  retransmits: 0,
  startedAt: 0,
});
const entry = (over: Partial<BootEntry>): BootEntry => ({
  id: 1,
  name: 'e',
  kind: 'nbp',
  archs: ['uefi64'],
  files: [],
  arguments: '',
  detected: '',
  bootable: { ok: true, reason: '' },
  builtIn: false,
  ...over,
});
const machine = (over: Partial<Machine>): Machine => ({ id: 1, macs: ['52:54:00:00:00:01'], name: '', group: '', bootOnce: false, discovered: false, ...over });

describe('throttle', () => {
  test('runs at most once per interval, the first request at once', () => {
    const s = new ManualScheduler();
    let runs = 0;
    const t = createThrottle(() => runs++, 250, s);
    t.request();
    assert.equal(runs, 1);
    for (let i = 0; i < 100; i++) {
      t.request();
      s.advance(10);
    }
    assert.equal(runs, 5, '1 s of requests every 10 ms: the first plus four more');
    s.advance(1000);
    assert.equal(runs, 5, 'no request, no run');
  });
});

describe('TransfersState', () => {
  test('renders at most four times a second however many snapshots arrive', () => {
    const s = new ManualScheduler();
    const state = new TransfersState(250, s);
    for (let i = 0; i < 200; i++) {
      // 50 machines, 200 snapshots in one second
      state.apply({ active: Array.from({ length: 50 }, (_, n) => row(`t${n}`, i * 5)), finished: [] });
      s.advance(5);
    }
    s.advance(300);
    assert.ok(state.renders >= 4 && state.renders <= 6, `renders: ${state.renders}`);
    assert.equal(state.active.length, 50);
    assert.equal(state.active[0]!.bytes, 199 * 5, 'the newest snapshot wins');
    assert.equal(state.totalRate, 5000);
  });

  test('finished transfers go to the top of history, once each, capped', () => {
    const s = new ManualScheduler();
    const state = new TransfersState(250, s);
    state.reset([row('a', 10)], []);
    const done = { id: 'a', file: 'ipxe.efi', protocol: 'tftp' as const, bytes: 1000, outcome: 'done' as const, finishedAt: 5 };
    state.apply({ active: [], finished: [done] });
    state.apply({ active: [], finished: [{ ...done, id: 'b', finishedAt: 6 }] });
    s.advance(300);
    assert.deepEqual(state.active, []);
    assert.deepEqual(
      state.history.map((h) => h.id),
      ['b', 'a'],
    );
    for (let i = 0; i < 300; i++) state.apply({ active: [], finished: [{ ...done, id: `x${i}`, finishedAt: 10 + i }] });
    s.advance(300);
    assert.equal(state.history.length, 200);
    assert.equal(state.history[0]!.id, 'x299');
  });

  test('history rows keep unique ids: a pushed record matches its stored row by transfer key, and no row is lost', () => {
    const s = new ManualScheduler();
    const state = new TransfersState(250, s);
    const base = { file: 'ipxe.efi', protocol: 'http' as const, bytes: 1000, outcome: 'done' as const };
    // Two runs of the host, both with a first HTTP transfer: their rows differ by row id and run.
    const stored = [
      { ...base, id: 'stored-2', transferKey: 'http:run2.http-1', finishedAt: 20 },
      { ...base, id: 'stored-1', transferKey: 'http:run1.http-1', finishedAt: 10 },
      // Rows written before keys carried the run: the same key twice, still two rows.
      { ...base, id: 'stored-0', transferKey: 'http:http-1', finishedAt: 5 },
      { ...base, id: 'stored-00', transferKey: 'http:http-1', finishedAt: 4 },
    ];
    state.reset([], stored);
    assert.deepEqual(
      state.history.map((h) => h.id),
      ['stored-2', 'stored-1', 'stored-0', 'stored-00'],
    );
    // The same transfer pushed live after the load (its row was already written): shown once.
    state.apply({ active: [], finished: [{ ...base, id: 'http:run2.http-1', transferKey: 'http:run2.http-1', finishedAt: 20 }] });
    // A new transfer of the same run number on a later run: a new row.
    state.apply({ active: [], finished: [{ ...base, id: 'http:run3.http-1', transferKey: 'http:run3.http-1', finishedAt: 30 }] });
    s.advance(300);
    const ids = state.history.map((h) => h.id);
    assert.equal(new Set(ids).size, ids.length, `duplicate ids: ${ids.join(', ')}`);
    assert.deepEqual(ids, ['http:run3.http-1', 'http:run2.http-1', 'stored-1', 'stored-0', 'stored-00']);
  });
});

describe('MachinesState', () => {
  test('live sightings insert or replace by id; unknown machines sort first', async () => {
    const transport = new FakeTransport({
      'machines:list': () => [machine({ id: 1, name: 'pc-b' }), machine({ id: 2, name: 'pc-a', macs: ['52:54:00:00:00:02'] })],
      'machines:groups': () => [],
      'entries:list': () => [],
    });
    const state = new MachinesState(new ApiClient(transport));
    await state.load();
    assert.deepEqual(
      state.visible.map((m) => m.name),
      ['pc-a', 'pc-b'],
    );
    state.upsert(machine({ id: 3, macs: ['52:54:00:00:00:03'], discovered: true, lastSeen: 5 }), true);
    state.upsert(machine({ id: 1, name: 'pc-b', lastIp: '192.0.2.101' }), true);
    assert.equal(state.list.length, 3);
    assert.equal(state.unknownCount, 1);
    assert.deepEqual(
      state.visible.map((m) => m.id),
      [3, 2, 1],
    );
    assert.equal(state.byMac('52:54:00:00:00:01')!.lastIp, '192.0.2.101');
    state.filter = '00:00:02';
    assert.deepEqual(
      state.visible.map((m) => m.id),
      [2],
    );
    state.filter = '52-54-00-00-00-03';
    assert.deepEqual(
      state.visible.map((m) => m.id),
      [3],
    );
  });

  test("a failed load shows the host's reason", async () => {
    const transport = new FakeTransport({
      'machines:list': () => {
        throw new ApiCallError('unavailable', 'The machine database is not open');
      },
      'machines:groups': () => [],
      'entries:list': () => [],
    });
    const state = new MachinesState(new ApiClient(transport));
    await state.load();
    assert.match(state.error!, /database is not open/);
  });

  test('after a boot once the dropdown shows the Local disk it fell back to, never a blank choice', async () => {
    const rescue = entry({ id: 5, name: 'Rescue' });
    const disk = entry({ id: 6, name: 'Local disk', kind: 'local-disk', builtIn: true });
    let entries = [rescue];
    const transport = new FakeTransport({
      'machines:list': () => [machine({ id: 1, entryId: 5, bootOnce: true })],
      'machines:groups': () => [],
      'entries:list': () => entries,
    });
    const state = new MachinesState(new ApiClient(transport));
    await state.load();
    // The host made the Local disk entry when the boot once finished, after this screen loaded.
    entries = [disk, rescue];
    state.upsert(machine({ id: 1, entryId: 6, bootOnce: false }), true);
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(
      state.entries.map((e) => e.id),
      [6, 5],
      'the choices were reloaded',
    );
    assert.equal(state.assignmentLabel(state.list[0]!, disk), 'Local disk (boot once used)');
    assert.equal(state.assignmentLabel(machine({ id: 2, entryId: 6 }), disk), 'Local disk (no network boot)');
    state.upsert(machine({ id: 1, entryId: 5, bootOnce: true }));
    assert.equal(state.assignmentLabel(state.list[0]!, disk), 'Local disk (no network boot)');
  });

  test('clearing an empty group takes it off the list', async () => {
    const transport = new FakeTransport({ 'machines:assign-group': (r) => ({ name: r.group, count: 0, removed: true }) });
    const state = new MachinesState(new ApiClient(transport));
    state.groups = [
      { name: 'rwo-b', count: 0, entryId: 5 },
      { name: 'row-b', count: 2 },
    ];
    const answer = await state.assignGroup('rwo-b', null);
    assert.deepEqual(answer, { kind: 'ok', text: 'Group rwo-b had no machines and nothing assigned any more: it is gone.' });
    assert.deepEqual(
      state.groups.map((g) => g.name),
      ['row-b'],
    );
  });

  test('sortMachines keeps the newest unknown machine on top', () => {
    const list = sortMachines([
      machine({ id: 1, discovered: true, lastSeen: 1 }),
      machine({ id: 2, name: 'a' }),
      machine({ id: 3, discovered: true, lastSeen: 9 }),
    ]);
    assert.deepEqual(
      list.map((m) => m.id),
      [3, 1, 2],
    );
  });
});

describe('LibraryState', () => {
  test('web mode: files go to the host one by one with progress, then are imported together', async () => {
    const transport = new FakeTransport({
      'entries:import-uploads': (r) => ({ entries: [entry({ id: 9, name: 'vmlinuz', kind: 'kernel' })], problems: [], seen: r }),
      'entries:list': () => [entry({ id: 9, name: 'vmlinuz', kind: 'kernel' })],
    });
    let changed = 0;
    const state = new LibraryState(new ApiClient(transport), () => changed++);
    const seen: number[] = [];
    const send = async (file: File, progress: (p: { file: string; sent: number; size: number }) => void) => {
      progress({ file: file.name, sent: file.size / 2, size: file.size });
      seen.push(state.upload!.totalSent);
      return file.name === 'vmlinuz' ? 'a'.repeat(32) : 'b'.repeat(32);
    };
    await state.uploadFiles([new File([new Uint8Array(1000)], 'vmlinuz'), new File([new Uint8Array(600)], 'initrd.img')], send);
    assert.deepEqual(seen, [500, 1300], 'progress covers the whole batch');
    assert.deepEqual(transport.calls.find(([c]) => c === 'entries:import-uploads')![1], { uploads: ['a'.repeat(32), 'b'.repeat(32)] });
    assert.equal(state.upload, undefined);
    assert.equal(state.lastResult!.entries[0]!.name, 'vmlinuz');
    assert.equal(changed, 1, 'the machines screen is told');
  });

  test("a failed upload shows the host's words and imports nothing", async () => {
    const transport = new FakeTransport({});
    const state = new LibraryState(new ApiClient(transport));
    await state.uploadFiles([new File([new Uint8Array(10)], 'big.iso')], async () => {
      throw new Error("The host's disk holding /data/uploads has 1.0 MiB free and big.iso needs 5.0 MiB: free space there, then drop the file again.");
    });
    assert.match(state.error!, /free space there/);
    assert.equal(transport.calls.length, 0);
    assert.equal(state.importing, false);
  });

  test('removing an entry in use asks first, naming who boots it; forced, it goes', async () => {
    const rescue = entry({ id: 5, name: 'Rescue' });
    const transport = new FakeTransport({
      'entries:remove': (r) =>
        r.force
          ? { removed: true, machines: ['bench-07'], groups: [], isDefault: false, who: 'machine bench-07', filesDeleted: 1 }
          : { removed: false, machines: ['bench-07'], groups: [], isDefault: false, who: 'machine bench-07', filesDeleted: 0 },
    });
    const state = new LibraryState(new ApiClient(transport));
    state.entries = [rescue];
    await state.remove(rescue);
    assert.equal(state.pendingRemoval!.users.who, 'machine bench-07');
    assert.equal(state.entries.length, 1);
    await state.remove(rescue, true);
    assert.equal(state.pendingRemoval, undefined);
    assert.equal(state.entries.length, 0);
    assert.match(state.notice!.text, /Removed "Rescue" and its 1 file in the library\. Now falling back to their group or the default: machine bench-07\./);
  });
});

describe('ServicesState', () => {
  const interfaces = {
    interfaces: [
      { name: 'lo', mac: '', ipv4: [{ address: '127.0.0.1', prefixLength: 8 }], up: true, kind: 'loopback' as const, mtu: 65536 },
      { name: 'bench0', mac: '02:00:00:00:00:01', ipv4: [{ address: '192.0.2.1', prefixLength: 24 }], up: true, kind: 'virtual' as const, mtu: 1500 },
    ],
    suggested: { name: 'bench0', reason: 'the only virtual NIC with an address' },
  };

  test('preselects the suggested NIC, proposes a pool, and sends what the screen shows', async () => {
    const transport = new FakeTransport({
      'services:status': () => ({ running: false, mode: 'proxy', services: [], problems: [] }),
      'services:settings': () => ({ mode: 'proxy', root: '/srv', httpPort: 8080, boot: {} }),
      'interfaces:list': () => interfaces,
      'services:start': (req) => ({ running: true, mode: req.mode, interfaceName: req.interfaceName, services: [], problems: [] }),
    });
    const state = new ServicesState(new ApiClient(transport));
    await state.load();
    assert.equal(state.interfaceName, 'bench0');
    assert.deepEqual([state.poolFirst, state.poolLast], ['192.0.2.100', '192.0.2.199']);
    state.mode = 'dhcp';
    assert.equal(state.canStart, true);
    await state.start();
    assert.deepEqual(
      transport.calls.findLast(([call]) => call === 'services:start'),
      ['services:start', { interfaceName: 'bench0', mode: 'dhcp', pool: { first: '192.0.2.100', last: '192.0.2.199' } }],
    );
    assert.equal(state.running, true);
  });

  test("a failed start shows the host's words as a problem", async () => {
    const transport = new FakeTransport({
      'services:status': () => ({
        running: false,
        mode: 'proxy',
        services: [{ name: 'proxy-dhcp', port: 67, state: 'failed', error: 'port 67 in use' }],
        problems: [],
      }),
      'services:settings': () => ({ mode: 'proxy', root: '/srv', httpPort: 8080, boot: {} }),
      'interfaces:list': () => interfaces,
      'services:start': () => {
        throw new ApiCallError('failed', 'UDP port 67 is in use by dnsmasq (pid 42): stop it, or use proxy mode beside it.');
      },
    });
    const state = new ServicesState(new ApiClient(transport));
    await state.load();
    await state.start();
    assert.equal(state.busy, undefined);
    assert.deepEqual(state.problems, ['UDP port 67 is in use by dnsmasq (pid 42): stop it, or use proxy mode beside it.']);
    assert.equal(state.status.services[0]!.state, 'failed', 'status re-read after the failure');
    assert.equal(state.canForce, false, 'only for another DHCP server');
  });

  test('another DHCP server: "Start anyway" sends force', async () => {
    const transport = new FakeTransport({
      'services:status': () => ({ running: false, mode: 'dhcp', services: [], problems: [] }),
      'services:settings': () => ({ mode: 'dhcp', pool: { first: '192.0.2.100', last: '192.0.2.150' }, root: '/srv', httpPort: 8080, boot: {} }),
      'interfaces:list': () => interfaces,
      'services:start': (req) => {
        if (!req.force)
          throw new ApiCallError('failed', 'another DHCP server answers on bench0: 192.0.2.254. Two DHCP servers hand out conflicting addresses.');
        return { running: true, mode: 'dhcp', services: [], problems: [] };
      },
    });
    const state = new ServicesState(new ApiClient(transport));
    await state.load();
    await state.start();
    assert.equal(state.canForce, true);
    await state.start(true);
    assert.deepEqual(transport.calls.findLast(([call]) => call === 'services:start')![1], {
      interfaceName: 'bench0',
      mode: 'dhcp',
      pool: { first: '192.0.2.100', last: '192.0.2.150' },
      force: true,
    });
    assert.equal(state.running, true);
    assert.equal(state.canForce, false);
  });
});

describe('ServicesState: first start', () => {
  const settings = {
    mode: 'proxy',
    root: '/data/library',
    defaultRoot: '/data/library',
    httpPort: 8080,
    boot: {},
    bootPrograms: [],
    defaultBoot: { kind: 'menu', timeoutSeconds: 10 },
  };
  const interfaces = {
    interfaces: [{ name: 'bench0', mac: '02:00:00:00:00:01', ipv4: [{ address: '192.0.2.1', prefixLength: 24 }], up: true, kind: 'wired' as const, mtu: 1500 }],
    suggested: { name: 'bench0', reason: 'the only wired NIC with a link and an address' },
  };

  test('a remembered NIC that is gone is named as gone and not preselected; choosing one clears it', async () => {
    const transport = new FakeTransport({
      'services:status': () => ({ running: false, mode: 'proxy', interfaceName: 'uixbr0', services: [], problems: [] }),
      'services:settings': () => ({ ...settings, interfaceName: 'uixbr0' }),
      'interfaces:list': () => interfaces,
    });
    const state = new ServicesState(new ApiClient(transport));
    await state.load();
    assert.equal(state.goneInterface, 'uixbr0');
    assert.equal(state.interfaceName, '');
    assert.equal(state.canStart, false);
    state.chooseInterface('bench0');
    assert.equal(state.goneInterface, undefined);
    assert.equal(state.canStart, true);
  });

  test('the served folder is sent with Start only when changed, and the default boot choice goes to the host', async () => {
    let stored: unknown = settings;
    const transport = new FakeTransport({
      'services:status': () => ({ running: false, mode: 'proxy', services: [], problems: [] }),
      'services:settings': () => stored,
      'interfaces:list': () => interfaces,
      'services:start': () => ({ running: true, mode: 'proxy', interfaceName: 'bench0', services: [], problems: [] }),
      'services:set-default-boot': (choice) => (stored = { ...settings, defaultBoot: { ...choice, name: 'rescue' } }),
    });
    const state = new ServicesState(new ApiClient(transport));
    await state.load();
    assert.equal(state.root, '/data/library', 'the library folder by default');
    await state.start();
    assert.deepEqual(transport.calls.findLast(([call]) => call === 'services:start')![1], { interfaceName: 'bench0', mode: 'proxy', pool: undefined });
    state.root = '/srv/boot ';
    assert.deepEqual(state.startRequest(), { interfaceName: 'bench0', mode: 'proxy', pool: undefined, root: '/srv/boot' });
    state.root = ' ';
    assert.equal(state.canStart, false, 'no folder, no Start');
    await state.setDefaultBoot({ kind: 'entry', entryId: 3 });
    assert.deepEqual(transport.calls.at(-1), ['services:set-default-boot', { kind: 'entry', entryId: 3 }]);
    assert.deepEqual(state.settings?.defaultBoot, { kind: 'entry', entryId: 3, name: 'rescue' });
  });

  test('missing boot programs are listed for the screen', async () => {
    const problem = 'UEFI PCs cannot boot: the iPXE they are handed (ipxe/snponly.efi) is missing. Fix: install the Debian package ipxe';
    const transport = new FakeTransport({
      'services:status': () => ({ running: false, mode: 'proxy', services: [], problems: [] }),
      'services:settings': () => ({
        ...settings,
        bootPrograms: [
          { firmware: 'BIOS', file: 'ipxe/undionly.kpxe', path: '/x' },
          { firmware: 'UEFI', file: 'ipxe/snponly.efi', problem },
        ],
      }),
      'interfaces:list': () => interfaces,
    });
    const state = new ServicesState(new ApiClient(transport));
    await state.load();
    assert.deepEqual(
      state.missingPrograms.map((p) => p.firmware),
      ['UEFI'],
    );
  });
});

describe('TimelineState', () => {
  test('appends live events of the machine on screen and re-reads the diagnosis at most once a second', async () => {
    const s = new ManualScheduler();
    let reads = 0;
    const transport = new FakeTransport({
      'timeline:get': () => {
        reads++;
        return { machineId: 1, machine: machine({ id: 1 }), events: [], diagnosis: { stage: 'none', level: 'unknown', message: 'nothing yet' } };
      },
    });
    const state = new TimelineState(new ApiClient(transport), s);
    await state.show({ machineId: 1 });
    assert.equal(reads, 1);
    const entry = (mac: string): TimelineEntry => ({ time: 1, type: 'proxy.offer', mac, summary: 'Proxy offer sent', level: 'info' });
    state.apply(entry('52:54:00:00:00:99'));
    assert.equal(state.timeline!.events.length, 0, "another machine's event is ignored");
    for (let i = 0; i < 10; i++) state.apply(entry('52:54:00:00:00:01'));
    assert.equal(state.timeline!.events.length, 10);
    await new Promise((r) => setImmediate(r));
    s.advance(2000);
    await new Promise((r) => setImmediate(r));
    assert.ok(reads >= 2 && reads <= 3, `diagnosis re-read ${reads} times`);
  });
});

/** What AppState.loadAll reads, answered with an empty, running host; `over` replaces calls. */
function appLoadAnswers(over: Partial<Record<ApiCallName, (req: any) => unknown>> = {}): Partial<Record<ApiCallName, (req: any) => unknown>> {
  return {
    'app:info': () => ({ version: '0', shell: 'web', fileDialogs: false, notices: [] }),
    'services:status': () => ({ running: true, mode: 'proxy', services: [], problems: [] }),
    'services:settings': () => ({ mode: 'proxy', root: '/srv', httpPort: 8080, boot: {} }),
    'interfaces:list': () => ({ interfaces: [] }),
    'transfers:active': () => [],
    'transfers:history': () => [],
    'machines:list': () => [],
    'machines:groups': () => [],
    'entries:list': () => [],
    'images:list': () => [],
    'imaging:jobs': () => [],
    ...over,
  };
}

const pcRow = (over: Partial<ImagingMachineRow> = {}): ImagingMachineRow => ({
  mac: '52:54:00:00:00:01',
  phase: 'waiting',
  bytes: 0,
  total: 0,
  rate: 0,
  updatedAt: 0,
  ...over,
});
const job = (id: number, over: Partial<ImagingJob> = {}): ImagingJob => ({
  id,
  kind: 'deploy',
  image: 'gpt-ref',
  then: 'disk',
  createdAt: 0,
  machines: [pcRow()],
  ...over,
});
const image = (name: string, over: Partial<ImageInfo> = {}): ImageInfo => ({
  name,
  createdAt: 0,
  source: { mac: '52:54:00:00:00:09', disk: 'vda' },
  diskBytes: 1,
  usedBytes: 1,
  storedBytes: 1,
  partitions: 1,
  deployingJobs: [],
  ...over,
});

describe('ImagesState', () => {
  test('rows follow the pushed jobs, newest report and newest job first', async () => {
    const s = new ManualScheduler();
    const transport = new FakeTransport({ 'images:list': () => [image('gpt-ref')], 'imaging:jobs': () => [job(1), job(2)] });
    const state = new ImagesState(new ApiClient(transport), 250, s);
    await state.load();
    assert.deepEqual(
      state.jobs.map((j) => j.id),
      [2, 1],
    );
    assert.equal(state.working, 2);
    for (let i = 1; i <= 100; i++) {
      state.apply({ jobs: [job(2, { machines: [pcRow({ phase: 'writing', bytes: i * 10, total: 1000, rate: 1000 })] })] });
      s.advance(10);
    }
    s.advance(300);
    const row = state.jobs.find((j) => j.id === 2)!.machines[0]!;
    assert.deepEqual([row.phase, row.bytes], ['writing', 1000], 'the newest report wins');
    assert.deepEqual(
      state.jobs.map((j) => j.id),
      [2, 1],
    );
    state.apply({ jobs: [job(7)] });
    s.advance(300);
    assert.deepEqual(
      state.jobs.map((j) => j.id),
      [7, 2, 1],
      'a job made elsewhere shows up at the top',
    );
    assert.equal(
      mergeJobs(
        [],
        Array.from({ length: 80 }, (_, i) => job(i + 1)),
      ).length,
      JOBS_SHOWN,
    );
    transport.calls.length = 0;
    await state.refreshJobs();
    assert.deepEqual(
      transport.calls.map(([c]) => c),
      ['imaging:jobs'],
      'the periodic re-read asks for the jobs only',
    );
    assert.deepEqual(
      state.jobs.map((j) => j.id),
      [2, 1],
      "the host's list replaces the shown one",
    );
  });

  test('a finished capture reloads the image list; a finished deploy frees its image', async () => {
    const s = new ManualScheduler();
    let images = [image('gpt-ref', { deployingJobs: [3] })];
    const transport = new FakeTransport({ 'images:list': () => images, 'imaging:jobs': () => [] });
    const state = new ImagesState(new ApiClient(transport), 250, s);
    await state.load();
    images = [image('gpt-ref'), image('win11')];
    state.apply({ jobs: [job(4, { kind: 'capture', image: 'win11', machines: [pcRow({ phase: 'done', result: 'done' })] })] });
    s.advance(300);
    await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(
      state.images.map((i) => i.name),
      ['gpt-ref', 'win11'],
    );
    const lists = transport.calls.filter(([c]) => c === 'images:list').length;
    state.apply({ jobs: [job(4, { kind: 'capture', image: 'win11', machines: [pcRow({ phase: 'done', result: 'done' })] })] });
    s.advance(300);
    assert.equal(transport.calls.filter(([c]) => c === 'images:list').length, lists, 'a capture already listed reloads nothing');
  });

  test("capture, deploy, delete and verify answer in words; a refusal shows the host's message", async () => {
    const transport = new FakeTransport({
      'images:list': () => [image('gpt-ref')],
      'images:capture': (r) => {
        if (r.name === 'gpt-ref') throw new ApiCallError('invalid-request', 'An image named "gpt-ref" exists: choose another name, or delete it first.');
        return job(5, { kind: 'capture', image: r.name });
      },
      'images:deploy': () => job(6, { machines: [pcRow(), pcRow({ mac: '52:54:00:00:00:02' })] }),
      'images:delete': (r) => ({ name: r.name, chunks: 3, bytes: 100 }),
      'images:verify': (r) => ({ name: r.name, chunks: 4, bad: ['ab'.repeat(32)], missing: [], ok: false }),
    });
    const state = new ImagesState(new ApiClient(transport));
    assert.equal(await state.capture({ machineId: 1, name: 'gpt-ref' }, 'bench-01'), false);
    assert.deepEqual(state.notice, { kind: 'bad', text: 'An image named "gpt-ref" exists: choose another name, or delete it first.' });
    assert.equal(await state.capture({ machineId: 1, name: 'win11' }, 'bench-01'), true);
    assert.equal(state.notice?.text, 'Job 5: the next network boot of bench-01 captures its disk into "win11".');
    await state.deploy({ image: 'gpt-ref', group: 'row-a' });
    assert.equal(state.notice?.text, 'Job 6: the next network boot of each of the 2 PCs deploys "gpt-ref".');
    assert.deepEqual(
      state.jobs.map((j) => j.id),
      [6, 5],
    );
    await state.remove('gpt-ref');
    assert.equal(state.notice?.text, 'Deleted "gpt-ref": 3 chunks no other image used were removed.');
    assert.deepEqual(state.images, []);
    await state.verify('gpt-ref');
    assert.equal(state.notice?.kind, 'bad');
    assert.match(state.notice!.text, /1 damaged and 0 missing of 4 chunks .*Capture the image again/);
    assert.equal(state.verifying, undefined);
  });

  test("a notice about a job goes once the job's own lines tell the rest: Go once the stream started, a deploy once its PCs booted", async () => {
    const s = new ManualScheduler();
    const pcs = (phase: ImagingMachineRow['phase']) => [pcRow({ phase }), pcRow({ mac: '52:54:00:00:00:02', phase })];
    const waitingForGo = job(8, { machines: pcs('partitioning'), start: { manual: true } });
    const transport = new FakeTransport({
      'images:list': () => [image('gpt-ref')],
      'imaging:jobs': () => [waitingForGo],
      'images:deploy': () => job(9, { machines: pcs('waiting') }),
      'images:go': () => ({ ...waitingForGo, goAt: 5 }),
      'images:verify': (r) => ({ name: r.name, chunks: 4, bad: [], missing: [], ok: true }),
    });
    const state = new ImagesState(new ApiClient(transport), 250, s);
    await state.load();

    assert.equal(await state.go(8), true);
    assert.match(state.notice!.text, /^Job 8: Go given\. The stream starts within a second/);
    // Reports while the stream has not started yet leave it; the stream's start takes it away.
    state.apply({ jobs: [{ ...waitingForGo, goAt: 5, machines: pcs('writing') }] });
    s.advance(300);
    assert.match(state.notice?.text ?? '', /Go given/, 'still true while the stream has not started');
    state.apply({ jobs: [{ ...waitingForGo, goAt: 5, streamStartedAt: 6, machines: pcs('writing') }] });
    s.advance(300);
    assert.equal(state.notice, undefined, 'the stream started: its line says so, the notice is history');

    // A job that ended without the host saying the stream started (all PCs failed) ends it too.
    await state.go(8);
    state.apply({ jobs: [{ ...waitingForGo, machines: pcs('failed').map((m) => ({ ...m, result: 'failed' as const })) }] });
    s.advance(300);
    assert.equal(state.notice, undefined, 'the job ended');

    // "The next network boot ... deploys" stays while a PC has still to boot.
    await state.deploy({ image: 'gpt-ref', group: 'row-a' });
    assert.match(state.notice!.text, /^Job 9: the next network boot of each of the 2 PCs deploys/);
    state.apply({ jobs: [job(9, { machines: [pcRow({ phase: 'booting' }), pcRow({ mac: '52:54:00:00:00:02' })] })] });
    s.advance(300);
    assert.match(state.notice?.text ?? '', /^Job 9:/, 'one PC has yet to boot');
    state.apply({ jobs: [job(8, { machines: pcs('done') })] });
    s.advance(300);
    assert.match(state.notice?.text ?? '', /^Job 9:/, "another job's news leaves it");
    state.apply({ jobs: [job(9, { machines: pcs('writing') })] });
    s.advance(300);
    assert.equal(state.notice, undefined, 'both PCs booted: their rows take over');

    // A notice about no job (a verify's answer) is not history when jobs move.
    await state.verify('gpt-ref');
    state.apply({ jobs: [job(9, { machines: pcs('verifying') })] });
    s.advance(300);
    assert.equal(state.notice?.text, '"gpt-ref": all 4 chunks check out.');
  });

  test('phase words, progress, ETA and a silent PC', () => {
    assert.equal(phaseLabel(pcRow()), 'waiting to boot');
    assert.equal(phaseLabel(pcRow({ phase: 'naming' })), 'naming the PC');
    assert.equal(phaseLabel(pcRow({ phase: 'writing', part: 2 })), 'writing partition 2');
    assert.equal(phaseLabel(pcRow({ phase: 'writing', part: 0 })), 'writing the boot area');
    assert.equal(phaseLabel(pcRow({ phase: 'reading', part: 1 })), 'reading partition 1');
    assert.equal(phaseLabel(pcRow({ phase: 'verifying', part: 3 })), 'verifying partition 3');
    assert.equal(phaseLabel(pcRow({ phase: 'reading' })), 'reading the disk', 'before the agent names a partition');
    assert.equal(phaseLabel(pcRow({ phase: 'failed', part: 2, result: 'failed' })), 'failed');
    const writing = pcRow({ phase: 'writing', bytes: 250, total: 1000, rate: 50, updatedAt: 1000 });
    assert.equal(rowEta(writing), 15);
    assert.equal(rowFraction(writing), 0.25);
    assert.equal(rowEta(pcRow({ phase: 'partitioning', total: 1000, rate: 50 })), undefined, 'no ETA for a phase without bytes');
    assert.equal(rowFraction(pcRow({ phase: 'partitioning', total: 1000 })), undefined);
    assert.equal(rowFraction(pcRow({ phase: 'done', result: 'done' })), 1);
    assert.equal(rowEta({ ...writing, result: 'failed' }), undefined);
    assert.equal(isSilent(writing, 10_000), false);
    assert.equal(isSilent(writing, 30_000), true);
    assert.equal(isSilent(pcRow({ updatedAt: 0 }), 60_000), false, 'waiting for its boot is not silence');
    assert.equal(isSilent({ ...writing, result: 'failed' }, 60_000), false);
  });
});

describe('AppState', () => {
  test('routes pushed events to the screens and reloads on (re)connection', async () => {
    const s = new ManualScheduler();
    const transport = new FakeTransport(appLoadAnswers());
    const app = new AppState(new ApiClient(transport), s);
    app.connect();
    transport.setConnection('open');
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(app.connection, 'open');
    assert.equal(app.info?.version, '0');
    assert.equal(app.loadError, undefined);
    transport.push('machine:seen', machine({ id: 7, discovered: true }));
    transport.push('transfer:progress', { active: [row('t', 1)], finished: [] });
    transport.push('services:state', { running: false, mode: 'proxy', services: [], problems: ['stopped'] });
    transport.push('imaging:progress', { jobs: [job(9)] });
    s.advance(300);
    assert.deepEqual(
      app.images.jobs.map((j) => j.id),
      [9],
    );
    assert.equal(app.machines.unknownCount, 1);
    assert.equal(app.transfers.active.length, 1);
    assert.deepEqual(app.services.problems, ['stopped']);
    const before = transport.calls.filter(([c]) => c === 'app:info').length;
    transport.setConnection('closed');
    transport.setConnection('open');
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(transport.calls.filter(([c]) => c === 'app:info').length, before + 1);
    app.dispose();
  });

  test('status follows the host: gone, nothing is running or downloading; back, re-read with old problems gone', async () => {
    const s = new ManualScheduler();
    let status: {
      running: boolean;
      interfaceName?: string;
      mode: 'proxy';
      services: { name: 'tftp'; port: number; state: 'running' | 'stopped' }[];
      problems: string[];
    } = {
      running: true,
      interfaceName: 'bench0',
      mode: 'proxy',
      services: [{ name: 'tftp', port: 69, state: 'running' }],
      problems: [],
    };
    const transport = new FakeTransport(
      appLoadAnswers({
        'services:status': () => status,
        'services:start': () => {
          throw new ApiCallError('failed', 'bench0 has no IPv4 address: give it one, or choose another NIC');
        },
      }),
    );
    const app = new AppState(new ApiClient(transport), s);
    app.connect();
    transport.setConnection('open');
    await new Promise((r) => setTimeout(r, 10));
    transport.push('transfer:progress', { active: [row('t', 1)], finished: [] });
    s.advance(300);
    assert.equal(app.transfers.active.length, 1);
    assert.equal(app.services.reachable, true);

    transport.setConnection('closed');
    assert.equal(app.services.reachable, false);
    assert.equal(app.services.canStart, false, 'nothing to start against');
    assert.deepEqual(app.transfers.active, [], 'a dead host downloads nothing');
    assert.deepEqual(app.services.problems, [], 'what the host said before is no longer known');

    // It comes back stopped: the state is read again.
    status = { ...status, running: false, services: [{ name: 'tftp', port: 69, state: 'stopped' }] };
    transport.setConnection('open');
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(app.services.reachable, true);
    assert.equal(app.services.status.running, false);

    // A failed Start is shown until the host serves again (here: restarted on its NIC by itself).
    app.services.interfaceName = 'bench0';
    await app.services.start();
    assert.deepEqual(app.services.problems, ['bench0 has no IPv4 address: give it one, or choose another NIC']);
    transport.push('services:state', { running: true, interfaceName: 'bench0', mode: 'proxy', services: [], problems: [] });
    assert.deepEqual(app.services.problems, [], 'fixed problems leave the screen');
    app.dispose();
  });
});

describe('formatting', () => {
  test('sizes, rates, ETA and pools', () => {
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(734003200), '700 MiB');
    assert.equal(formatBytes(8_283_750), '7.9 MiB');
    assert.equal(formatBytes(5 * 1024 ** 3), '5.0 GiB');
    assert.equal(formatRate(0), '–');
    assert.equal(etaSeconds({ size: 1000, bytes: 500, rate: 100 }), 5);
    assert.equal(etaSeconds({ size: undefined, bytes: 500, rate: 100 }), undefined);
    assert.equal(fraction({ size: 1000, bytes: 250 }), 0.25);
    assert.equal(formatDuration(125), '2 min 05 s');
    assert.deepEqual(suggestPool('192.0.2.1', 24), { first: '192.0.2.100', last: '192.0.2.199' });
    assert.deepEqual(suggestPool('192.0.2.150', 24), { first: '192.0.2.151', last: '192.0.2.250' });
    assert.deepEqual(suggestPool('198.18.0.1', 16), { first: '198.18.100.0', last: '198.18.100.99' });
    assert.equal(suggestPool('192.0.2.1', 31), undefined);
  });
});

describe('group assignment message', () => {
  test('names the machines that keep their own entry instead of claiming the whole group', async () => {
    const transport = new FakeTransport({
      'machines:list': () => [
        machine({ id: 1, name: 'pc-b1', group: 'row-b', entryId: 5 }),
        machine({ id: 2, name: 'pc-b2', group: 'row-b', entryId: 6 }),
        machine({ id: 3, name: 'pc-b3', group: 'row-b' }),
        machine({ id: 4, name: 'pc-a1', group: 'row-a' }),
      ],
      'machines:groups': () => [],
      'entries:list': () => [
        { id: 5, name: 'memtest', kind: 'nbp', archs: [], files: [] },
        { id: 6, name: 'clonezilla', kind: 'iso', archs: [], files: [] },
        { id: 7, name: 'bench-rescue', kind: 'kernel', archs: [], files: [] },
      ],
      'machines:assign-group': (r: { group: string; entryId: number | null }) => ({ name: r.group, entryId: r.entryId ?? undefined, count: 0 }),
    });
    const state = new MachinesState(new ApiClient(transport));
    await state.load();
    const rowB = await state.assignGroup('row-b', 7);
    assert.equal(rowB.kind, 'warn');
    assert.doesNotMatch(rowB.text, /^Group row-b now boots/);
    assert.equal(
      rowB.text,
      'Group row-b: 1 of 3 machines now boot bench-rescue; pc-b1 (memtest), pc-b2 (clonezilla) keep their own entry, which comes before the group\'s. To have them follow the group, choose "group: bench-rescue" in their Boots column.',
    );
    const rowA = await state.assignGroup('row-a', 7);
    assert.deepEqual(rowA, { kind: 'ok', text: 'Group row-a now boots bench-rescue (its 1 machine).' });
    const empty = await state.assignGroup('row-z', null);
    assert.deepEqual(empty, {
      kind: 'warn',
      text: "No machine is in group row-z: check the spelling (groups come from the machines' Group column); machines put in it will boot the default. Remove it with × if it was a typo.",
    });
  });
});
