// The room view: each PC's word from its events and imaging row, seats (stored in the data
// folder, schema 7), the view's own placement of the rest, the API's refusals, and the
// renderer's move (swap) of a tile.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { register } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BOOTED_QUIET_MS, layoutRoom, roomTileState, ROOM_IDLE_MS } from '../../main/api/room.js';
import { WAKE_ANSWER_MS, WAKE_NO_ANSWER } from '../../main/api/boot-diagnosis.js';
import { HostApi, type ApiServiceHost } from '../../main/api/api.js';
import { storeApi } from '../../main/api/api-store.js';
import { EventBus, type BootEvent } from '../../main/core/events.js';
import { ManualClock } from '../../main/core/clock.js';
import { LATEST_SCHEMA_VERSION, openStore, readSchemaVersion } from '../../main/store/index.js';
import type { ImagingMachineRow, Machine, RoomTile, RoomView } from '../../preload/api.js';

register('../../renderer/tools/svelte-runes-loader.mjs', import.meta.url);
const { seatsAfterMove } = await import('../../renderer/src/lib/state/room.svelte.js');

const MAC = '52:54:00:00:00:10';
const T = 1_000_000_000;
const ev = (type: string, time: number, fields: Record<string, unknown> = {}) => ({ type, time, mac: MAC, ...fields }) as unknown as BootEvent;
const wake = (time: number) => ev('wake.sent', time, { interfaceName: 'bench0', addresses: ['198.18.5.255'], packets: 6 });
const discover = (time: number) => ev('dhcp.received', time, { msgType: 'DISCOVER', arch: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003016' });
const offer = (time: number) => ev('proxy.offer', time, { file: 'bootbench/ipxe/snponly.efi', bootClass: 'uefi64' });
const done = (time: number, file: string) => ev('tftp.done', time, { file, size: 1000, bytes: 1000 });
const row = (over: Partial<ImagingMachineRow>): ImagingMachineRow => ({ mac: MAC, phase: 'writing', bytes: 0, total: 0, rate: 0, updatedAt: T, ...over });

describe('the word on a tile', () => {
  const word = (events: BootEvent[], now: number, imaging?: Parameters<typeof roomTileState>[1]) => {
    const s = roomTileState(events, imaging, now);
    return [s.state, s.word];
  };

  test('asleep, woken, then no answer after the minute (failed, with why)', () => {
    assert.deepEqual(word([], T), ['asleep', 'asleep']);
    assert.deepEqual(word([discover(T - ROOM_IDLE_MS - 1)], T), ['asleep', 'asleep'], "yesterday's boot says nothing about now");
    assert.deepEqual(word([wake(T)], T + 10_000), ['woken', 'woken']);
    const flagged = roomTileState([wake(T)], undefined, T + WAKE_ANSWER_MS);
    assert.deepEqual([flagged.state, flagged.detail, flagged.since], ['failed', WAKE_NO_ANSWER, T + WAKE_ANSWER_MS]);
  });

  test('booting, then installing once the kernel and initrd came (or boot once was used), done on its own disk', () => {
    assert.deepEqual(word([wake(T), discover(T + 5000), offer(T + 5001)], T + 6000), ['booting', 'booting']);
    const installing = [wake(T), discover(T + 5000), offer(T + 5001), done(T + 6000, '/library/e1/vmlinuz'), done(T + 7000, '/library/e1/initrd.gz')];
    assert.deepEqual(word(installing, T + 8000), ['installing', 'installing']);
    // The installer's own DHCP client (no option 93) does not start a boot over.
    assert.deepEqual(word([...installing, ev('dhcp.received', T + 20_000, { msgType: 'DISCOVER', vendorClass: 'd-i' })], T + 21_000), [
      'installing',
      'installing',
    ]);
    assert.deepEqual(word([discover(T), done(T + 1000, '/x.efi'), ev('host.warning', T + 1001, { message: 'boot once', bootOnce: 'completed' })], T + 2000), [
      'installing',
      'installing',
    ]);
    assert.deepEqual(word([...installing, ev('install.done', T + 600_000)], T + 600_001), ['done', 'done']);
    assert.deepEqual(word([discover(T), ev('dhcp.ignored', T + 1, { deliberate: true, reason: 'boots its local disk' })], T + 2), ['done', 'done']);
    // One boot program (memtest, a live system) delivered: booting for a minute, then done while it stays quiet.
    const oneProgram = [discover(T), offer(T + 1), done(T + 3000, 'tools/memtest.efi')];
    assert.deepEqual(word(oneProgram, T + 3000 + BOOTED_QUIET_MS - 1), ['booting', 'booting']);
    const quiet = roomTileState(oneProgram, undefined, T + 3000 + BOOTED_QUIET_MS);
    assert.deepEqual([quiet.state, quiet.detail], ['done', 'booted memtest.efi; nothing more asked since']);
  });

  test('a failed download or a problem the Timeline names: failed with the reason', () => {
    const failed = roomTileState([discover(T), offer(T + 1), ev('tftp.failed', T + 2000, { file: '/x.efi', reason: 'timed out' })], undefined, T + 3000);
    assert.deepEqual([failed.state, failed.detail], ['failed', 'download of /x.efi failed: timed out']);
    const refused = roomTileState(
      [discover(T), offer(T + 1), ev('tftp.refused', T + 2, { file: '/missing.efi', reason: 'file not found' })],
      undefined,
      T + 3000,
    );
    assert.equal(refused.state, 'failed');
    assert.match(refused.detail!, /missing\.efi/);
  });

  test('imaging: the phase in words, "writing 42 %" from the row, done, failed with the agent reason', () => {
    const img = (phase: string, extra: Record<string, unknown> = {}) =>
      ev('imaging.progress', T + 1000, { job: 3, kind: 'deploy', image: 'win11', phase, ...extra });
    assert.deepEqual(word([discover(T), img('booting')], T + 2000), ['booting', 'booting']);
    assert.deepEqual(word([discover(T), img('partitioning')], T + 2000), ['installing', 'partitioning']);
    const writing = roomTileState(
      [discover(T), img('writing')],
      { kind: 'deploy', image: 'win11', row: row({ bytes: 429, total: 1000, updatedAt: T + 1500 }) },
      T + 2000,
    );
    assert.deepEqual([writing.state, writing.word, writing.percent], ['installing', 'writing 42 %', 42]);
    assert.deepEqual(word([discover(T), img('done')], T + 2000), ['done', 'done']);
    const failed = roomTileState([discover(T), img('failed', { reason: 'no disk larger than the image' })], undefined, T + 2000);
    assert.deepEqual([failed.state, failed.detail], ['failed', 'no disk larger than the image']);
  });
});

const machine = (id: number, name: string): Machine => ({
  id,
  name,
  group: 'room3',
  macs: [`52:54:00:00:01:${String(id).padStart(2, '0')}`],
  bootOnce: false,
  discovered: false,
});

describe('seats', () => {
  test('stored seats kept; the rest after the last seated row, in name order; a room nobody arranged in five columns', () => {
    const pcs = Array.from({ length: 7 }, (_, i) => machine(i + 1, `pc-${i + 1}`));
    const fresh = layoutRoom(pcs, []);
    assert.deepEqual([fresh.rows, fresh.columns], [2, 5]);
    assert.deepEqual(fresh.places.get(6), { row: 2, column: 1, seated: false });
    const arranged = layoutRoom(pcs, [
      { machineId: 3, row: 1, column: 3 },
      { machineId: 1, row: 2, column: 1 },
      { machineId: 2, row: 2, column: 1 }, // the same seat twice: the first one stored keeps it
    ]);
    assert.equal(arranged.columns, 3);
    assert.deepEqual(arranged.places.get(3), { row: 1, column: 3, seated: true });
    assert.deepEqual(arranged.places.get(2), { row: 3, column: 1, seated: false });
    assert.equal(arranged.rows, 4);
  });

  test('moving a tile onto another swaps them; every tile is written', () => {
    const tiles = [
      { machineId: 1, row: 1, column: 1 },
      { machineId: 2, row: 1, column: 2 },
      { machineId: 3, row: 2, column: 1 },
    ] as RoomTile[];
    assert.deepEqual(seatsAfterMove(tiles, 1, 1, 2), [
      { machineId: 1, row: 1, column: 2 },
      { machineId: 2, row: 1, column: 1 },
      { machineId: 3, row: 2, column: 1 },
    ]);
    assert.deepEqual(seatsAfterMove(tiles, 3, 3, 4)[2], { machineId: 3, row: 3, column: 4 });
  });

  test('room:get and room:seat on a data folder: stored across a reopen (schema 7), refusals in words', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bb-room-'));
    try {
      let store = openStore(dir);
      assert.equal(readSchemaVersion(store.db), LATEST_SCHEMA_VERSION);
      const a = store.machines.create({ macs: ['52:54:00:00:02:01'], name: 'pc-01', group: 'Room3' });
      const b = store.machines.create({ macs: ['52:54:00:00:02:02'], name: 'pc-02', group: 'room3' });
      store.machines.create({ macs: ['52:54:00:00:02:03'], name: 'teacher', group: 'staff' });
      store.bootEvents.add({ machineId: b.id, mac: '52:54:00:00:02:02', time: T, type: 'wake.sent', details: { packets: 6, addresses: [] } });
      const clock = new ManualClock(T + 5000);
      const host = { bus: new EventBus(), status: () => ({}), config: () => ({}) } as unknown as ApiServiceHost;
      let api = new HostApi({ host, store: storeApi(store), listInterfaces: () => [], shell: 'web', clock });
      const get = async (group: string) => {
        const r = await api.handle('room:get', { group });
        assert.ok('result' in r, JSON.stringify(r));
        return r.result as RoomView;
      };
      const first = await get('ROOM3');
      assert.deepEqual(
        first.tiles.map((t) => [t.name, t.row, t.column, t.seated, t.word]),
        [
          ['pc-01', 1, 1, false, 'asleep'],
          ['pc-02', 1, 2, false, 'woken'],
        ],
      );
      const seated = await api.handle('room:seat', {
        group: 'room3',
        seats: [
          { machineId: a.id, row: 2, column: 3 },
          { machineId: b.id, row: 1, column: 1 },
        ],
      });
      assert.ok('result' in seated, JSON.stringify(seated));
      const clash = await api.handle('room:seat', { group: 'room3', seats: [{ machineId: a.id, row: 1, column: 1 }] });
      assert.ok(
        'error' in clash && /^pc-02 and pc-01 would both sit in row 1, column 1: give each its own seat\.$/.test(clash.error.message),
        JSON.stringify(clash),
      );
      const stranger = await api.handle('room:seat', { group: 'room3', seats: [{ machineId: 3, row: 5, column: 5 }] });
      assert.ok('error' in stranger && /not in group "room3"/.test(stranger.error.message));
      const half = await api.handle('room:seat', { group: 'room3', seats: [{ machineId: a.id, row: 2, column: null }] });
      assert.ok('error' in half && half.error.code === 'invalid-request');
      const unknown = await api.handle('room:get', { group: 'room9' });
      assert.ok(
        'error' in unknown && unknown.error.code === 'not-found' && /the groups are Room3, room3, staff/.test(unknown.error.message),
        JSON.stringify(unknown),
      );

      store.close();
      store = openStore(dir);
      api = new HostApi({ host, store: storeApi(store), listInterfaces: () => [], shell: 'web', clock });
      const again = await get('room3');
      assert.deepEqual(
        again.tiles.map((t) => [t.name, t.row, t.column, t.seated]),
        [
          ['pc-02', 1, 1, true],
          ['pc-01', 2, 3, true],
        ],
      );
      assert.deepEqual([again.rows, again.columns], [2, 3]);
      // Back among the unplaced: after the seated rows.
      await api.handle('room:seat', { group: 'room3', seats: [{ machineId: a.id, row: null, column: null }] });
      assert.deepEqual(
        (await get('room3')).tiles.map((t) => [t.name, t.row, t.column, t.seated]),
        [
          ['pc-02', 1, 1, true],
          ['pc-01', 2, 1, false],
        ],
      );
      // A machine removed takes its seat with it.
      store.machines.remove(b.id);
      assert.deepEqual(store.seats.list(), []);
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('one action for a room', () => {
  async function roomHost() {
    const dir = mkdtempSync(join(tmpdir(), 'bb-room-start-'));
    const store = openStore(dir);
    const a = store.machines.create({ macs: ['52:54:00:00:03:01'], name: 'pc-01', group: 'room3' });
    const b = store.machines.create({ macs: ['52:54:00:00:03:02'], name: 'pc-02', group: 'room3', entryId: null });
    store.machines.create({ macs: ['52:54:00:00:03:03'], name: 'teacher', group: 'staff' });
    const installer = store.entries.create({
      name: 'Debian installer',
      kind: 'kernel',
      files: [{ arch: 'any', role: 'kernel', path: 'e/linux', size: 10, sha256: 'a'.repeat(64) }],
    });
    const empty = store.entries.create({ name: 'nothing', kind: 'nbp' });
    const clock = new ManualClock(T);
    const bus = new EventBus(() => clock.now());
    const woken: BootEvent[] = [];
    bus.subscribe((e) => (e.type === 'wake.sent' || e.type === 'host.warning') && woken.push(e));
    const host = { bus, status: () => ({ interfaceName: 'bench0' }), config: () => ({}) } as unknown as ApiServiceHost;
    const sent: string[] = [];
    const api = new HostApi({
      host,
      store: storeApi(store, { dataDir: () => dir }),
      listInterfaces: () => [{ name: 'bench0', mac: '', ipv4: [{ address: '198.18.5.1', prefixLength: 24 }], up: true, kind: 'wired', mtu: 1500 }],
      shell: 'web',
      clock,
      wakeSocketFactory: async () =>
        ({
          setBroadcast() {},
          send: (_p: Buffer, _port: number, address: string, cb: (e: Error | null) => void) => {
            sent.push(address);
            cb(null);
          },
          close() {},
        }) as never,
    });
    return {
      dir,
      store,
      api,
      clock,
      woken,
      sent,
      ids: [a.id, b.id],
      installer,
      empty,
      close: () => (store.close(), rmSync(dir, { recursive: true, force: true })),
    };
  }

  test('an entry: boot once for every PC of the group, then they are woken', async () => {
    const h = await roomHost();
    try {
      const r = await h.api.handle('room:start', { group: 'ROOM3', what: { kind: 'entry', entryId: h.installer.id } });
      assert.ok('result' in r, JSON.stringify(r));
      const result = r.result as { what: string; machines: number; wake: { machines: unknown[] } };
      assert.deepEqual([result.what, result.machines, result.wake.machines.length], ['Debian installer, booted once', 2, 2]);
      for (const id of h.ids) {
        const m = h.store.machines.get(id)!;
        assert.deepEqual([m.entryId, m.bootOnce], [h.installer.id, true]);
      }
      assert.equal(h.store.machines.findByMac('52:54:00:00:03:03')!.entryId, null, 'the other group is untouched');
      assert.deepEqual(
        h.woken.map((e) => e.mac),
        ['52:54:00:00:03:01', '52:54:00:00:03:02'],
      );
      const refused = await h.api.handle('room:start', { group: 'room3', what: { kind: 'entry', entryId: h.empty.id } });
      assert.ok('error' in refused && /"nothing" cannot be given to the room: the entry has no files/.test(refused.error.message), JSON.stringify(refused));
      const missing = await h.api.handle('room:start', { group: 'room3', what: { kind: 'image', image: 'win11' } });
      assert.ok('error' in missing && /There is no image "win11": capture one on the Images screen first/.test(missing.error.message), JSON.stringify(missing));
    } finally {
      h.close();
    }
  });

  test('at a time: nothing is assigned or woken before it; the room view shows it; cancel drops it', async () => {
    const h = await roomHost();
    try {
      const r = await h.api.handle('room:start', { group: 'room3', what: { kind: 'entry', entryId: h.installer.id }, at: T + 30 * 60_000 });
      assert.ok('result' in r && (r.result as { scheduledFor: number }).scheduledFor === T + 30 * 60_000, JSON.stringify(r));
      const view = (await h.api.handle('room:get', { group: 'room3' })) as { result: RoomView };
      assert.deepEqual(view.result.scheduled, { at: T + 30 * 60_000, what: 'Debian installer, booted once' });
      h.clock.advance(30 * 60_000 - 1);
      assert.equal(h.store.machines.get(h.ids[0]!)!.bootOnce, false);
      assert.equal(h.sent.length, 0);
      h.clock.advance(1);
      // The rounds of packets are 100 ms apart (real time).
      for (let i = 0; i < 40 && h.sent.length < 12; i++) await new Promise((resolve) => setTimeout(resolve, 25));
      assert.equal(h.store.machines.get(h.ids[0]!)!.bootOnce, true);
      assert.equal(h.sent.length, 2 * 2 * 3);
      // Scheduled again, then cancelled: nothing happens at the time.
      await h.api.handle('room:start', { group: 'room3', what: { kind: 'entry', entryId: h.installer.id }, at: T + 90 * 60_000 });
      const cancelled = (await h.api.handle('room:cancel', { group: 'room3' })) as { result: RoomView };
      assert.equal(cancelled.result.scheduled, undefined);
      h.clock.advance(90 * 60_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(h.sent.length, 2 * 2 * 3);
      const far = await h.api.handle('room:start', { group: 'room3', what: { kind: 'entry', entryId: h.installer.id }, at: h.clock.now() + 8 * 24 * 3600_000 });
      assert.ok('error' in far && /at most a week ahead/.test(far.error.message));
    } finally {
      h.close();
    }
  });
});
