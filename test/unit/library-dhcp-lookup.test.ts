// The library's DHCP lookup (LibraryBootService.lookupMachine) answers clients that can only
// boot the default without a query per client (issue 9 item 8: a DISCOVER storm brings a new
// MAC per packet), and still sees every assignment edit at the very next request.
import { test, describe, beforeEach, afterEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { openStore, resolveBootAssignment, type Store } from '../../main/store/index.js';
import { LibraryBootService } from '../../main/library/boot-service.js';
import { makeTempDir } from '../helpers/store-temp.js';

const temp = makeTempDir('bootbench-dhcp-lookup-');
after(() => temp.remove());
let counter = 0;
let store: Store;
let library: LibraryBootService;

const UUID = '4c4c4544-0042-3510-8052-b4c04f4e4a31';

beforeEach(() => {
  store = openStore(join(temp.dir, `lookup-${++counter}`));
  library = new LibraryBootService({ store, dataDir: temp.dir, httpBaseUrl: 'http://192.0.2.1:8080', serverAddress: '192.0.2.1', httpPort: 8080 });
});
afterEach(() => store.close());

/** Counts machine lookups by identifier (the per-client queries the fast path avoids). */
function countMachineQueries(): { count: number } {
  const counted = { count: 0 };
  const machines = store.machines;
  for (const name of ['find', 'findByMac', 'findByUuid'] as const) {
    const original = machines[name].bind(machines) as (...args: unknown[]) => unknown;
    (machines as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      counted.count++;
      return original(...args);
    };
  }
  return counted;
}

describe('library DHCP lookup', () => {
  test('new MACs and discovered machines get the default without a query per client', () => {
    const memtest = store.entries.create({ name: 'Memtest', kind: 'nbp' });
    store.settings.set('defaults', { entryId: memtest.id });
    store.machines.recordSeen({ mac: '52:54:00:00:10:01', time: 1 });
    const queries = countMachineQueries();
    for (let i = 0; i < 200; i++) {
      const mac = `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
      assert.deepEqual(library.lookupMachine(mac), { name: 'Memtest', boot: {} });
    }
    assert.deepEqual(library.lookupMachine('52:54:00:00:10:01', UUID), { name: 'Memtest', boot: {} });
    assert.equal(queries.count, 0);
  });

  test('an assignment made for a MAC that was just answered holds for its next request', () => {
    const disk = store.entries.create({ name: 'Disk', kind: 'local-disk' });
    const mac = '52:54:00:00:20:01';
    assert.equal(library.lookupMachine(mac), undefined);
    const machine = store.machines.create({ macs: [mac], entryId: disk.id });
    assert.deepEqual(library.lookupMachine(mac), { name: 'Disk', ignore: true, ignoreReason: 'boots from its local disk (assigned entry "Disk")' });
    store.machines.update(machine.id, { entryId: null });
    assert.equal(library.lookupMachine(mac), undefined);
  });

  test("a discovered machine put into a group boots the group's entry from its next request", () => {
    const disk = store.entries.create({ name: 'Disk', kind: 'local-disk' });
    const mac = '52:54:00:00:30:01';
    const { id } = store.machines.recordSeen({ mac, time: 1 });
    assert.equal(library.lookupMachine(mac), undefined);
    store.machines.update(id, { group: 'lab' });
    assert.equal(library.lookupMachine(mac), undefined, 'the group has no entry yet');
    store.machines.setGroup({ name: 'lab', entryId: disk.id, notes: '' });
    assert.deepEqual(library.lookupMachine(mac), { name: 'Disk', ignore: true, ignoreReason: 'boots from its local disk (assigned entry "Disk")' });
  });

  test('a machine known only by its UUID is found from a new MAC, in any spelling of the UUID', () => {
    const disk = store.entries.create({ name: 'Disk', kind: 'local-disk' });
    store.machines.create({ macs: [], uuid: UUID, entryId: disk.id });
    assert.deepEqual(library.lookupMachine('52:54:00:00:40:01', UUID.toUpperCase()), {
      name: 'Disk',
      ignore: true,
      ignoreReason: 'boots from its local disk (assigned entry "Disk")',
    });
    assert.equal(library.lookupMachine('52:54:00:00:40:01'), undefined);
  });

  test('a MAC in another spelling finds its machine', () => {
    const disk = store.entries.create({ name: 'Disk', kind: 'local-disk' });
    store.machines.create({ macs: ['52:54:00:00:50:01'], entryId: disk.id });
    assert.deepEqual(library.lookupMachine('52-54-00-00-50-01'), {
      name: 'Disk',
      ignore: true,
      ignoreReason: 'boots from its local disk (assigned entry "Disk")',
    });
  });

  test('same answer as resolving the assignment from the store (property)', () => {
    const kinds = ['nbp', 'local-disk', 'kernel'] as const;
    const entries = kinds.map((kind, i) => store.entries.create({ name: `E${i}`, kind }));
    const macOf = (n: number) => `52:54:00:00:60:${n.toString(16).padStart(2, '0')}`;
    const uuidOf = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
    const entryOf = (n: number) => (n < entries.length ? entries[n].id : null);
    const expected = (mac: string, uuid?: string) => {
      const assigned = resolveBootAssignment(store, mac, uuid);
      return assigned && `${assigned.entry.name}${assigned.bootOnce ? ' (once)' : ''}`;
    };
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            mac: fc.option(fc.integer({ min: 0, max: 15 }), { nil: undefined }),
            uuid: fc.option(fc.integer({ min: 0, max: 7 }), { nil: undefined }),
            entry: fc.integer({ min: 0, max: 4 }),
            group: fc.constantFrom('', 'a', 'b'),
            once: fc.boolean(),
          }),
          { maxLength: 8 },
        ),
        fc.record({ a: fc.integer({ min: 0, max: 4 }), b: fc.integer({ min: 0, max: 4 }), defaults: fc.integer({ min: 0, max: 4 }) }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 17 }), fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined })), { minLength: 1, maxLength: 10 }),
        (machines, settings, lookups) => {
          store.db.exec('DELETE FROM machines; DELETE FROM machine_groups;');
          store.settings.set('defaults', { entryId: entryOf(settings.defaults) });
          store.machines.setGroup({ name: 'a', entryId: entryOf(settings.a), notes: '' });
          store.machines.setGroup({ name: 'b', entryId: entryOf(settings.b), notes: '' });
          const usedMacs = new Set<number>();
          for (const m of machines) {
            const macs = m.mac === undefined || usedMacs.has(m.mac) ? [] : [macOf(m.mac)];
            if (m.mac !== undefined) usedMacs.add(m.mac);
            if (macs.length === 0 && m.uuid === undefined) continue;
            store.machines.create({ macs, uuid: m.uuid === undefined ? null : uuidOf(m.uuid), entryId: entryOf(m.entry), group: m.group, bootOnce: m.once });
          }
          for (const [mac, uuid] of lookups) {
            const args = [macOf(mac), uuid === undefined ? undefined : uuidOf(uuid)] as const;
            assert.equal(library.lookupMachine(...args)?.name, expected(...args), `lookup ${args.join(' ')}`);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
