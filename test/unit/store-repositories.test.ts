import { test, describe, beforeEach, afterEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  openStore,
  normalizeMac,
  normalizeUuid,
  isPlaceholderUuid,
  MachineInputError,
  EntryInputError,
  SettingError,
  resolveBootAssignment,
  completeBootOnce,
  completeBootOnceIfLastFile,
  type Store,
} from '../../main/store/index.js';
import { ManualClock } from '../../main/core/clock.js';
import { MemoryLogger } from '../../main/core/logger.js';
import { makeTempDir, fakeSha256 } from '../helpers/store-temp.js';

const temp = makeTempDir();
after(() => temp.remove());
let counter = 0;
let store: Store;
let clock: ManualClock;
let logger: MemoryLogger;

beforeEach(() => {
  clock = new ManualClock(1_700_000_000_000);
  logger = new MemoryLogger();
  store = openStore(join(temp.dir, `repo-${++counter}`), { clock, logger });
});
afterEach(() => store.close());

const UUID_A = '4c4c4544-0042-3510-8052-b4c04f4e4a31';
const UUID_B = '4c4c4544-0042-3510-8052-b4c04f4e4a32';

describe('identifiers', () => {
  test('MACs in every common spelling become lower-case colon form; junk is refused', () => {
    for (const spelling of ['52:54:00:AB:CD:EF', '52-54-00-ab-cd-ef', '5254.00ab.cdef', '525400ABCDEF']) {
      assert.equal(normalizeMac(spelling), '52:54:00:ab:cd:ef', spelling);
    }
    for (const junk of ['52:54:00:ab:cd', '52:54-00:ab:cd:ef', 'zz:54:00:ab:cd:ef', '']) assert.equal(normalizeMac(junk), undefined, junk);
  });

  test('UUIDs with braces, without dashes or upper-case are canonicalised; placeholders are known', () => {
    assert.equal(normalizeUuid('{4C4C4544-0042-3510-8052-B4C04F4E4A31}'), UUID_A);
    assert.equal(normalizeUuid('4c4c454400423510 8052b4c04f4e4a31'), undefined);
    assert.equal(normalizeUuid('4c4c4544004235108052b4c04f4e4a31'), UUID_A);
    assert.ok(isPlaceholderUuid('00000000-0000-0000-0000-000000000000'));
    assert.ok(isPlaceholderUuid('03000200-0400-0500-0006-000700080009'));
    assert.ok(!isPlaceholderUuid(UUID_A));
  });
});

describe('machines', () => {
  test('create, get, find by any MAC or by UUID, list, update, remove', () => {
    const m = store.machines.create({
      macs: ['52:54:00:00:00:01', '52-54-00-00-00-02'],
      uuid: UUID_A.toUpperCase(),
      name: 'pc-01',
      group: 'room-a',
      seat: 'A1',
      notes: 'left of the door',
    });
    assert.deepEqual(m.macs, ['52:54:00:00:00:01', '52:54:00:00:00:02']);
    assert.equal(m.uuid, UUID_A);
    assert.equal(m.discovered, false);
    assert.equal(m.createdAt, clock.now());
    assert.equal(store.machines.findByMac('52:54:00:00:00:02')?.id, m.id);
    assert.equal(store.machines.findByUuid(UUID_A)?.id, m.id);
    assert.equal(store.machines.find(undefined, UUID_A)?.id, m.id);
    assert.equal(store.machines.find('52:54:00:00:00:99', UUID_A)?.id, m.id);
    assert.equal(store.machines.findByMac('not a mac'), undefined);

    const other = store.machines.create({ macs: ['52:54:00:00:00:03'], group: 'room-b', name: 'pc-02' });
    assert.deepEqual(
      store.machines.list().map((x) => x.id),
      [m.id, other.id],
    );
    assert.deepEqual(
      store.machines.list({ group: 'ROOM-B' }).map((x) => x.id),
      [other.id],
    );

    clock.advance(1000);
    const updated = store.machines.update(m.id, { name: 'pc-01b', macs: ['52:54:00:00:00:04'], bootOnce: true });
    assert.equal(updated.name, 'pc-01b');
    assert.equal(updated.group, 'room-a', 'fields not given stay');
    assert.deepEqual(updated.macs, ['52:54:00:00:00:04']);
    assert.equal(updated.bootOnce, true);
    assert.equal(updated.updatedAt, clock.now());
    assert.equal(store.machines.findByMac('52:54:00:00:00:01'), undefined);

    assert.deepEqual(store.machines.addMac(m.id, '52:54:00:00:00:05').macs, ['52:54:00:00:00:04', '52:54:00:00:00:05']);
    assert.equal(store.machines.remove(m.id), true);
    assert.equal(store.machines.get(m.id), undefined);
    assert.equal(store.machines.findByMac('52:54:00:00:00:05'), undefined, 'MACs go with the machine');
    assert.equal(store.machines.remove(m.id), false);
  });

  test('bad input is refused with the value and the accepted form; a MAC belongs to one machine', () => {
    assert.throws(
      () => store.machines.create({ macs: ['52:54:00'] }),
      (e: unknown) => e instanceof MachineInputError && /"52:54:00" is not a MAC/.test(e.message),
    );
    assert.throws(() => store.machines.create({ macs: [], uuid: 'nope' }), /is not a UUID/);
    assert.throws(() => store.machines.create({ macs: [] }), /needs a MAC address or a UUID/);
    const a = store.machines.create({ macs: ['52:54:00:00:00:01'] });
    const b = store.machines.create({ macs: ['52:54:00:00:00:02'] });
    assert.throws(() => store.machines.create({ macs: ['52:54:00:00:00:01'] }), new RegExp(`belongs to machine ${a.id}`));
    assert.throws(() => store.machines.addMac(b.id, '52:54:00:00:00:01'), /already belongs/);
    assert.throws(() => store.machines.update(b.id, { macs: ['52:54:00:00:00:01'] }), /already belongs/);
    assert.deepEqual(store.machines.get(b.id)?.macs, ['52:54:00:00:00:02'], 'a refused update changes nothing');
    assert.throws(() => store.machines.update(999, { name: 'x' }), /does not exist/);
  });

  test('upsertSeen records an unknown client as discovered, then updates last seen/arch/vendor class', () => {
    const t0 = clock.now();
    const first = store.machines.upsertSeen({
      mac: '52:54:00:AA:00:01',
      uuid: UUID_A,
      arch: 7,
      vendorClass: 'PXEClient:Arch:00007:UNDI:003016',
      ip: '192.0.2.50',
      time: t0,
    });
    assert.equal(first.created, true);
    assert.equal(first.machine.discovered, true);
    assert.equal(first.machine.firstSeen, t0);
    assert.equal(first.machine.lastArch, '7');
    assert.equal(first.machine.uuid, UUID_A);
    assert.deepEqual(
      store.machines.list({ discovered: true }).map((m) => m.id),
      [first.machine.id],
    );

    const again = store.machines.upsertSeen({ mac: '52:54:00:aa:00:01', arch: 0, time: t0 + 5000 });
    assert.equal(again.created, false);
    assert.equal(again.machine.id, first.machine.id);
    assert.equal(again.machine.firstSeen, t0);
    assert.equal(again.machine.lastSeen, t0 + 5000);
    assert.equal(again.machine.lastArch, '0');
    assert.equal(again.machine.lastVendorClass, 'PXEClient:Arch:00007:UNDI:003016', 'unknown fields keep their last value');
    assert.equal(again.machine.lastIp, '192.0.2.50');

    const late = store.machines.upsertSeen({ mac: '52:54:00:aa:00:01', time: t0 + 1000 });
    assert.equal(late.machine.lastSeen, t0 + 5000, 'an older event does not move last seen back');

    // Editing makes it a known machine.
    assert.equal(store.machines.update(first.machine.id, { name: 'pc-07' }).discovered, false);
  });

  test('upsertSeen attaches a new MAC to the machine its UUID names, but never by a placeholder UUID', () => {
    const known = store.machines.create({ macs: ['52:54:00:00:00:01'], uuid: UUID_B, name: 'pc-09' });
    const viaDock = store.machines.upsertSeen({ mac: '52:54:00:00:00:02', uuid: UUID_B, time: clock.now() });
    assert.equal(viaDock.created, false);
    assert.equal(viaDock.machine.id, known.id);
    assert.deepEqual(viaDock.machine.macs, ['52:54:00:00:00:01', '52:54:00:00:00:02']);

    const zero = '00000000-0000-0000-0000-000000000000';
    const q1 = store.machines.upsertSeen({ mac: '52:54:00:00:01:01', uuid: zero, time: clock.now() });
    const q2 = store.machines.upsertSeen({ mac: '52:54:00:00:01:02', uuid: zero, time: clock.now() });
    assert.notEqual(q1.machine.id, q2.machine.id, 'QEMU guests all send a zero UUID');
    assert.equal(store.machines.findByUuid(zero), undefined);

    // Cloned boards: a UUID on two machines identifies neither.
    store.machines.create({ macs: ['52:54:00:00:02:01'], uuid: UUID_A });
    store.machines.create({ macs: ['52:54:00:00:02:02'], uuid: UUID_A });
    assert.equal(store.machines.findByUuid(UUID_A), undefined);
    assert.equal(store.machines.upsertSeen({ mac: '52:54:00:00:02:03', uuid: UUID_A, time: clock.now() }).created, true);
  });

  test('groups: set, get, list (including names only used by machines), remove', () => {
    const entry = store.entries.create({ name: 'Local disk', kind: 'local-disk' });
    store.machines.create({ macs: ['52:54:00:00:00:01'], group: 'room-b' });
    assert.deepEqual(store.machines.setGroup({ name: 'room-a', entryId: entry.id, notes: 'ground floor' }), {
      name: 'room-a',
      entryId: entry.id,
      notes: 'ground floor',
    });
    assert.equal(store.machines.getGroup('ROOM-A')?.entryId, entry.id);
    assert.deepEqual(store.machines.listGroups(), [
      { name: 'room-a', entryId: entry.id, notes: 'ground floor', count: 0 },
      { name: 'room-b', entryId: null, notes: '', count: 1 },
    ]);
    assert.equal(store.machines.removeGroup('room-a'), true);
    assert.equal(store.machines.getGroup('room-a'), undefined);
  });
});

describe('entries', () => {
  const files = [
    { arch: 'uefi64', role: 'shim', path: 'ubuntu/shimx64.efi', size: 950_000, sha256: fakeSha256(1) },
    { arch: 'uefi64', role: 'grub', path: 'ubuntu/grubx64.efi', size: 2_300_000, sha256: fakeSha256(2) },
    { arch: 'bios', role: 'nbp', path: 'ubuntu/pxelinux.0', size: 46_000, sha256: fakeSha256(3) },
  ];

  test('hasBootableEntry: the local disk alone does not count', () => {
    assert.equal(store.entries.hasBootableEntry(), false);
    store.entries.create({ name: 'Local disk', kind: 'local-disk' });
    assert.equal(store.entries.hasBootableEntry(), false);
    const e = store.entries.create({ name: 'Memtest', kind: 'nbp' });
    assert.equal(store.entries.hasBootableEntry(), true);
    store.entries.remove(e.id);
    assert.equal(store.entries.hasBootableEntry(), false);
  });

  test('create, get, find by name (any case), list, update, remove', () => {
    const e = store.entries.create({ name: 'Ubuntu 24.04', kind: 'secure-boot-chain', arguments: 'ip=dhcp', files });
    assert.equal(e.kind, 'secure-boot-chain');
    assert.equal(e.arguments, 'ip=dhcp');
    assert.deepEqual(
      e.files.map((f) => f.path),
      ['ubuntu/pxelinux.0', 'ubuntu/shimx64.efi', 'ubuntu/grubx64.efi'],
    );
    assert.equal(store.entries.findByName('ubuntu 24.04')?.id, e.id);
    assert.throws(
      () => store.entries.create({ name: 'UBUNTU 24.04', kind: 'nbp' }),
      (err: unknown) => err instanceof EntryInputError && /exists already/.test(err.message),
    );

    clock.advance(10);
    const changed = store.entries.update(e.id, { arguments: 'ip=dhcp quiet', files: files.slice(2) });
    assert.equal(changed.arguments, 'ip=dhcp quiet');
    assert.equal(changed.name, 'Ubuntu 24.04');
    assert.equal(changed.files.length, 1);
    assert.equal(changed.updatedAt, e.createdAt + 10);

    store.entries.create({ name: 'Memtest', kind: 'nbp' });
    assert.deepEqual(
      store.entries.list().map((x) => x.name),
      ['Memtest', 'Ubuntu 24.04'],
    );
    assert.equal(store.entries.remove(e.id), true);
    assert.equal(store.entries.get(e.id), undefined);
  });

  test('unknown kind, bad hash and bad size are refused with the fix', () => {
    assert.throws(() => store.entries.create({ name: 'x', kind: 'floppy' as never }), /kind "floppy" is unknown: use one of nbp/);
    assert.throws(() => store.entries.create({ name: 'x', kind: 'nbp', files: [{ ...files[0], sha256: 'abc' }] }), /hash the file again/);
    assert.throws(() => store.entries.create({ name: 'x', kind: 'nbp', files: [{ ...files[0], size: -1 }] }), /not a byte count/);
    assert.equal(store.entries.list().length, 0);
  });

  test('lastFiles names the file that completes a boot, per architecture', () => {
    const e = store.entries.create({
      name: 'Ubuntu',
      kind: 'secure-boot-chain',
      files: [...files, { arch: 'any', role: 'iso', path: 'ubuntu/live.iso', size: 1, sha256: fakeSha256(4) }],
    });
    assert.deepEqual(
      store.entries.lastFiles(e.id, 'uefi64').map((f) => f.path),
      ['ubuntu/grubx64.efi'],
    );
    assert.deepEqual(
      store.entries.lastFiles(e.id, 'arm64').map((f) => f.path),
      ['ubuntu/live.iso'],
    );
    assert.deepEqual(
      store.entries
        .lastFiles(e.id)
        .map((f) => f.path)
        .sort(),
      ['ubuntu/grubx64.efi', 'ubuntu/live.iso', 'ubuntu/pxelinux.0'],
    );
  });

  test('removing an entry clears machines and groups that pointed at it', () => {
    const e = store.entries.create({ name: 'Old', kind: 'nbp' });
    const m = store.machines.create({ macs: ['52:54:00:00:00:01'], entryId: e.id });
    store.machines.setGroup({ name: 'g', entryId: e.id, notes: '' });
    store.entries.remove(e.id);
    assert.equal(store.machines.get(m.id)?.entryId, null);
    assert.equal(store.machines.getGroup('g')?.entryId, null);
  });
});

describe('transfers', () => {
  test('start, progress, finish, get, list per machine and recent, running', () => {
    const m = store.machines.create({ macs: ['52:54:00:00:00:01'] });
    const id = store.transfers.start({
      transferKey: 'tftp:7',
      machineId: m.id,
      mac: '52:54:00:00:00:01',
      ip: '192.0.2.10',
      protocol: 'tftp',
      file: 'ipxe.efi',
      options: { blksize: 1468, windowsize: 4 },
      size: 1_000_000,
      startedAt: 100,
    });
    let t = store.transfers.get(id)!;
    assert.equal(t.outcome, 'running');
    assert.deepEqual(t.options, { blksize: 1468, windowsize: 4 });
    assert.equal(t.bytesSent, 0);
    assert.deepEqual(
      store.transfers.listRunning().map((x) => x.id),
      [id],
    );

    assert.equal(store.transfers.progress(id, { bytesSent: 500_000, retransmits: 2 }), true);
    t = store.transfers.get(id)!;
    assert.equal(t.bytesSent, 500_000);
    assert.equal(t.retransmits, 2);
    assert.equal(t.size, 1_000_000, 'size kept when progress does not carry it');

    assert.equal(store.transfers.finish(id, { outcome: 'done', bytesSent: 1_000_000, endedAt: 900 }), true);
    t = store.transfers.get(id)!;
    assert.equal(t.outcome, 'done');
    assert.equal(t.endedAt, 900);
    assert.equal(t.retransmits, 2);
    assert.equal(store.transfers.progress(id, { bytesSent: 1 }), false, 'no progress after the end');

    const failed = store.transfers.start({ protocol: 'http', file: 'vmlinuz', startedAt: 200, machineId: m.id });
    store.transfers.finish(failed, { outcome: 'failed', reason: 'client closed the connection', endedAt: 300 });
    assert.equal(store.transfers.get(failed)?.reason, 'client closed the connection');
    const orphan = store.transfers.start({ protocol: 'tftp', file: 'x', startedAt: 300 });

    assert.deepEqual(
      store.transfers.listForMachine(m.id).map((x) => x.id),
      [failed, id],
    );
    assert.deepEqual(
      store.transfers.listForMachine(m.id, { limit: 1 }).map((x) => x.id),
      [failed],
    );
    assert.deepEqual(
      store.transfers.listRecent().map((x) => x.id),
      [orphan, failed, id],
    );
    assert.deepEqual(
      store.transfers.listRecent({ outcome: 'failed' }).map((x) => x.id),
      [failed],
    );

    assert.equal(store.transfers.markInterrupted(400), 1);
    assert.equal(store.transfers.get(orphan)?.outcome, 'interrupted');
    assert.equal(store.transfers.deleteOlderThan(250), 2);
    assert.deepEqual(
      store.transfers.listRecent().map((x) => x.id),
      [orphan],
    );
  });

  test('an unknown outcome is refused by the schema', () => {
    const id = store.transfers.start({ protocol: 'tftp', file: 'x', startedAt: 1 });
    assert.throws(() => store.transfers.finish(id, { outcome: 'exploded' as never, endedAt: 2 }), /CHECK constraint/);
  });
});

describe('boot events and retention', () => {
  test('add and list a machine timeline oldest first; count', () => {
    const m = store.machines.create({ macs: ['52:54:00:00:00:01'] });
    store.bootEvents.add({ machineId: m.id, mac: '52:54:00:00:00:01', time: 20, type: 'proxy.offer', details: { port: 67 } });
    store.bootEvents.add({ machineId: m.id, mac: '52:54:00:00:00:01', time: 10, type: 'dhcp.received', details: { arch: 7 } });
    store.bootEvents.add({ time: 15, type: 'tftp.refused', ip: '192.0.2.9' });
    const timeline = store.bootEvents.listForMachine(m.id);
    assert.deepEqual(
      timeline.map((e) => e.type),
      ['dhcp.received', 'proxy.offer'],
    );
    assert.deepEqual(timeline[1].details, { port: 67 });
    assert.deepEqual(
      store.bootEvents.listForMachine(m.id, { limit: 1 }).map((e) => e.type),
      ['proxy.offer'],
    );
    assert.deepEqual(
      store.bootEvents.listForMachine(m.id, { since: 11 }).map((e) => e.type),
      ['proxy.offer'],
    );
    assert.deepEqual(
      store.bootEvents.listForMac('52-54-00-00-00-01', { limit: 1 }).map((e) => e.type),
      ['proxy.offer'],
    );
    assert.deepEqual(
      store.bootEvents.listRecent().map((e) => e.time),
      [20, 15, 10],
    );
    assert.equal(store.bootEvents.count(), 3);
    assert.equal(store.bootEvents.count(m.id), 2);
    assert.equal(store.bootEvents.count(null), 1);
  });

  test('prune keeps events younger than maxAge, the newest N per machine and the newest M without machine', () => {
    const now = clock.now();
    const a = store.machines.create({ macs: ['52:54:00:00:00:01'] });
    const b = store.machines.create({ macs: ['52:54:00:00:00:02'] });
    for (let i = 0; i < 30; i++) store.bootEvents.add({ machineId: a.id, time: now - i * 1000, type: 'dhcp.received', details: { i } });
    for (let i = 0; i < 5; i++) store.bootEvents.add({ machineId: b.id, time: now - i * 1000, type: 'dhcp.received' });
    store.bootEvents.add({ machineId: b.id, time: now - 100_000, type: 'dhcp.received', details: { old: true } });
    for (let i = 0; i < 8; i++) store.bootEvents.add({ time: now - i, type: 'tftp.refused' });

    const deleted = store.bootEvents.prune({ maxAgeMs: 50_000, maxEventsPerMachine: 10, maxUnattributedEvents: 3 }, now);
    assert.equal(deleted, 20 + 1 + 5);
    const kept = store.bootEvents.listForMachine(a.id);
    assert.equal(kept.length, 10);
    assert.deepEqual(
      kept.map((e) => e.details.i),
      [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
      'the newest ones stay',
    );
    assert.equal(store.bootEvents.count(b.id), 5);
    assert.equal(store.bootEvents.count(null), 3);
    assert.equal(store.bootEvents.prune({ maxAgeMs: 50_000, maxEventsPerMachine: 10, maxUnattributedEvents: 3 }, now), 0, 'idempotent');
  });

  test('the store applies the configured retention (option over setting over default) to events and old transfers', () => {
    const now = clock.now();
    store.settings.set('retention', { maxEventsPerMachine: 2 });
    assert.equal(store.retentionPolicy().maxEventsPerMachine, 2);
    assert.equal(store.retentionPolicy().maxAgeMs, 180 * 24 * 3600 * 1000);
    const m = store.machines.create({ macs: ['52:54:00:00:00:01'] });
    for (let i = 0; i < 4; i++) store.bootEvents.add({ machineId: m.id, time: now - i, type: 'dhcp.received' });
    const old = store.transfers.start({ protocol: 'tftp', file: 'x', startedAt: now - 200 * 24 * 3600 * 1000 });
    store.transfers.finish(old, { outcome: 'done', endedAt: now - 200 * 24 * 3600 * 1000 + 5 });
    assert.deepEqual(store.applyRetention(), { events: 2, transfers: 1 });

    const path = store.path;
    store.close();
    store = openStore(path, { clock, retention: { maxEventsPerMachine: 1 } });
    assert.equal(store.bootEvents.count(m.id), 1, 'retention runs at open with the option taking precedence');
  });
});

describe('settings', () => {
  test('typed values round-trip; invalid values are refused with the key; all() lists the valid ones', () => {
    store.settings.set('interface', 'enp3s0');
    store.settings.set('mode', 'dhcp');
    store.settings.set('pool', { first: '192.0.2.100', last: '192.0.2.150', leaseSeconds: 3600 });
    store.settings.set('ports', { http: 8080, tftp: 69 });
    store.settings.set('defaults', { entryId: null, boot: { bios: 'undionly.kpxe' } });
    assert.equal(store.settings.get('mode'), 'dhcp');
    assert.deepEqual(store.settings.get('pool'), { first: '192.0.2.100', last: '192.0.2.150', leaseSeconds: 3600 });
    assert.deepEqual(store.settings.get('ports'), { http: 8080, tftp: 69 });
    assert.throws(
      () => store.settings.set('mode', 'relay' as never),
      (e: unknown) => e instanceof SettingError && e.key === 'mode',
    );
    assert.throws(() => store.settings.set('ports', { http: 70000 }), /setting "ports".http/);
    assert.throws(() => store.settings.set('colour' as never, 'blue' as never), /"colour" is not a setting/);
    assert.deepEqual(Object.keys(store.settings.all()).sort(), ['defaults', 'interface', 'mode', 'pool', 'ports']);
    assert.equal(store.settings.delete('interface'), true);
    assert.equal(store.settings.get('interface'), undefined);
  });

  test('a stored value that no longer fits its schema is ignored with a warning, not trusted', () => {
    store.db.prepare(`INSERT INTO settings (key, value, updated_at) VALUES ('mode', '"relay"', 0), ('ports', '{oops', 0)`).run();
    assert.equal(store.settings.get('mode'), undefined);
    assert.equal(store.settings.get('ports'), undefined);
    assert.ok(logger.lines.filter((l) => l.level === 'warn' && /setting "(mode|ports)"/.test(l.message)).length >= 2);
  });
});

describe('leases', () => {
  test('upsert, find by MAC and IP, an address moves to its new holder, release, expiry', () => {
    store.leases.upsert({ mac: '52:54:00:00:00:01', ip: '192.0.2.100', hostname: 'pc-01', expiresAt: 5000 });
    store.leases.upsert({ mac: '52-54-00-00-00-02', ip: '192.0.2.101', expiresAt: 9000 });
    assert.equal(store.leases.findByIp('192.0.2.100')?.mac, '52:54:00:00:00:01');
    const renewed = store.leases.upsert({ mac: '52:54:00:00:00:01', ip: '192.0.2.100', expiresAt: 7000 });
    assert.equal(renewed.hostname, 'pc-01', 'a renewal without hostname keeps it');
    assert.equal(renewed.expiresAt, 7000);
    store.leases.upsert({ mac: '52:54:00:00:00:03', ip: '192.0.2.101', expiresAt: 9500 });
    assert.equal(store.leases.findByMac('52:54:00:00:00:02'), undefined);
    assert.deepEqual(
      store.leases.list().map((l) => l.ip),
      ['192.0.2.100', '192.0.2.101'],
    );
    assert.equal(store.leases.removeExpired(8000), 1);
    assert.equal(store.leases.release('52:54:00:00:00:03'), true);
    assert.deepEqual(store.leases.list(), []);
  });
});

describe('boot assignment and boot once', () => {
  function library() {
    const installer = store.entries.create({
      name: 'Installer',
      kind: 'kernel',
      files: [
        { arch: 'bios', role: 'nbp', path: 'lpxelinux.0', size: 1, sha256: fakeSha256(1) },
        { arch: 'bios', role: 'kernel', path: 'inst/vmlinuz', size: 1, sha256: fakeSha256(2) },
        { arch: 'bios', role: 'initrd', path: 'inst/initrd.img', size: 1, sha256: fakeSha256(3) },
      ],
    });
    const disk = store.entries.create({ name: 'Local disk', kind: 'local-disk' });
    const memtest = store.entries.create({ name: 'Memtest', kind: 'nbp' });
    return { installer, disk, memtest };
  }

  test("the machine's own entry, else its group's, else the default, else nothing", () => {
    const { installer, disk, memtest } = library();
    const m = store.machines.create({ macs: ['52:54:00:00:00:01'], uuid: UUID_A, group: 'lab' });
    assert.equal(resolveBootAssignment(store, '52:54:00:00:00:01'), undefined);
    store.settings.set('defaults', { entryId: memtest.id });
    assert.equal(resolveBootAssignment(store, '52:54:00:00:00:01')?.source, 'default');
    assert.equal(resolveBootAssignment(store, '52:54:00:99:99:99')?.entry.id, memtest.id, 'unknown clients get the default');
    store.machines.setGroup({ name: 'lab', entryId: disk.id, notes: '' });
    assert.deepEqual((({ source, entry, bootOnce }) => ({ source, entry: entry.id, bootOnce }))(resolveBootAssignment(store, '52:54:00:00:00:01')!), {
      source: 'group',
      entry: disk.id,
      bootOnce: false,
    });
    store.machines.update(m.id, { entryId: installer.id, bootOnce: true });
    const own = resolveBootAssignment(store, undefined, UUID_A)!;
    assert.equal(own.source, 'machine');
    assert.equal(own.bootOnce, true);
    assert.equal(own.machine?.id, m.id);
  });

  test('completeBootOnce clears the assignment, records it, and reports the fallback', () => {
    const { installer, disk } = library();
    store.machines.setGroup({ name: 'lab', entryId: disk.id, notes: '' });
    const m = store.machines.create({ macs: ['52:54:00:00:00:01'], group: 'lab', entryId: installer.id, bootOnce: true });
    const result = completeBootOnce(store, m.id);
    assert.equal(result.cleared, true);
    assert.equal(result.next?.source, 'group');
    assert.equal(result.next?.entry.id, disk.id);
    const after = store.machines.get(m.id)!;
    assert.equal(after.entryId, null);
    assert.equal(after.bootOnce, false);
    const event = store.bootEvents.listForMachine(m.id).at(-1)!;
    assert.equal(event.type, 'boot-once.cleared');
    assert.deepEqual(event.details, { entryId: installer.id, nextEntryId: disk.id, nextSource: 'group' });
    assert.equal(completeBootOnce(store, m.id).cleared, false, 'a second call changes nothing');

    const permanent = store.machines.create({ macs: ['52:54:00:00:00:02'], entryId: installer.id });
    assert.equal(completeBootOnce(store, permanent.id).cleared, false, 'only boot-once assignments end');
    assert.equal(store.machines.get(permanent.id)?.entryId, installer.id);
  });

  test("completeBootOnceIfLastFile ends it only when the entry's last file was fetched", () => {
    const { installer } = library();
    const m = store.machines.create({ macs: ['52:54:00:00:00:01'], entryId: installer.id, bootOnce: true });
    assert.equal(completeBootOnceIfLastFile(store, { mac: '52:54:00:00:00:01', file: 'lpxelinux.0' }).cleared, false);
    assert.equal(completeBootOnceIfLastFile(store, { mac: '52:54:00:00:00:01', file: 'inst/vmlinuz' }).cleared, false);
    assert.equal(store.machines.get(m.id)?.entryId, installer.id);
    assert.equal(completeBootOnceIfLastFile(store, { mac: '52:54:00:00:00:01', file: '/INST/initrd.img', arch: 'bios' }).cleared, true);
    assert.equal(store.machines.get(m.id)?.entryId, null);
  });
});
