import { test, describe, beforeEach, afterEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { attachStoreToBus, openStore, type Store, type StoreBusAttachment } from '../../main/store/index.js';
import { EventBus, type BootEvent } from '../../main/core/events.js';
import { ManualClock, systemClock } from '../../main/core/clock.js';
import { makeTempDir, fakeSha256 } from '../helpers/store-temp.js';

const temp = makeTempDir();
after(() => temp.remove());
let counter = 0;
let store: Store;
let clock: ManualClock;
let bus: EventBus;
let recorder: StoreBusAttachment;
let seen: BootEvent[];

const MAC = '52:54:00:12:34:56';

beforeEach(() => {
  clock = new ManualClock(1_700_000_000_000);
  bus = new EventBus(() => clock.now());
  seen = [];
  bus.subscribe((e) => seen.push(e));
  store = openStore(join(temp.dir, `bus-${++counter}`), { clock });
  recorder = attachStoreToBus(bus, store, { clock });
});
afterEach(() => {
  recorder.detach();
  store.close();
});

const transferRows = () => store.transfers.listRecent({ limit: 1000 });

describe('attachStoreToBus', () => {
  test('DHCP events record a discovered machine and its timeline, written after the flush interval in one go', () => {
    bus.publish('dhcp.received', {
      mac: MAC,
      msgType: 'DISCOVER',
      arch: 7,
      vendorClass: 'PXEClient:Arch:00007:UNDI:003016',
      uuid: '4c4c4544-0042-3510-8052-b4c04f4e4a31',
      xid: 1,
      port: 67,
    });
    clock.advance(10);
    bus.publish('proxy.offer', { mac: MAC, file: 'ipxe.efi' });
    bus.publish('service.state', { service: 'tftp', state: 'running' });
    assert.equal(store.machines.list().length, 0, 'nothing written before the flush');
    clock.advance(250);
    const machine = store.machines.findByMac(MAC)!;
    assert.equal(machine.discovered, true);
    assert.equal(machine.lastArch, '7');
    assert.equal(machine.uuid, '4c4c4544-0042-3510-8052-b4c04f4e4a31');
    const timeline = store.bootEvents.listForMachine(machine.id);
    assert.deepEqual(
      timeline.map((e) => e.type),
      ['dhcp.received', 'proxy.offer'],
    );
    assert.equal(timeline[1].details.file, 'ipxe.efi');
    assert.equal(store.bootEvents.count(), 2, 'service.state is not part of a timeline');
    assert.equal(recorder.stats().flushes, 1);
  });

  test('a DISCOVER repeated within one flush updates the one machine as separate flushes would', () => {
    bus.publish('dhcp.received', { mac: MAC, msgType: 'DISCOVER', vendorClass: 'PXEClient:Arch:00007:UNDI:003016', xid: 1, port: 67 });
    clock.advance(10);
    bus.publish('dhcp.received', { mac: MAC, msgType: 'DISCOVER', arch: 7, uuid: '4c4c4544-0042-3510-8052-b4c04f4e4a31', xid: 2, port: 67 });
    clock.advance(250);
    assert.equal(recorder.stats().flushes, 1);
    assert.equal(store.machines.list().length, 1);
    const machine = store.machines.findByMac(MAC)!;
    assert.equal(machine.firstSeen, 1_700_000_000_000);
    assert.equal(machine.lastSeen, 1_700_000_000_010);
    assert.equal(machine.lastArch, '7');
    assert.equal(machine.lastVendorClass, 'PXEClient:Arch:00007:UNDI:003016');
    assert.equal(machine.uuid, '4c4c4544-0042-3510-8052-b4c04f4e4a31');
    assert.deepEqual(
      store.bootEvents.listForMachine(machine.id).map((e) => e.details.xid),
      [1, 2],
    );
  });

  test('a burst is written in slices of maxBufferedEvents, one turn of the event loop each', () => {
    const local = attachStoreToBus(bus, store, { clock, maxBufferedEvents: 10 });
    for (let i = 0; i < 25; i++) bus.publish('dhcp.ignored', { mac: MAC, reason: 'not a PXE client' });
    clock.advance(0);
    assert.equal(local.stats().flushes, 3);
    assert.equal(local.stats().eventsSeen, 25);
    local.detach();
  });

  test('a TFTP transfer becomes one row; a thousand progress events cost a handful of row writes', () => {
    bus.publish('tftp.start', {
      mac: MAC,
      ip: '192.0.2.10',
      transferId: 't1',
      file: 'ipxe.efi',
      size: 1_468_000,
      options: { blksize: 1468, tsize: 1_468_000 },
    });
    clock.advance(250);
    const afterStart = recorder.stats().rowsWritten;
    for (let block = 1; block <= 1000; block++) {
      bus.publish('tftp.progress', { ip: '192.0.2.10', transferId: 't1', file: 'ipxe.efi', bytes: block * 1468, retransmits: Math.floor(block / 400) });
      clock.advance(3); // 3 s of transfer in all
    }
    const mid = transferRows()[0];
    assert.equal(mid.outcome, 'running');
    // Written at most once a second, by a flush every 250 ms: the disk lags the wire by at most 1.25 s.
    assert.ok(mid.bytesSent >= (1000 - 1250 / 3) * 1468 && mid.bytesSent <= 1_468_000, `progress reached the disk (${mid.bytesSent})`);
    const progressWrites = recorder.stats().rowsWritten - afterStart;
    assert.ok(progressWrites >= 2 && progressWrites <= 4, `about one progress write per second, got ${progressWrites}`);

    bus.publish('tftp.done', { mac: MAC, ip: '192.0.2.10', transferId: 't1', file: 'ipxe.efi', bytes: 1_468_000, retransmits: 2 });
    clock.advance(250);
    const rows = transferRows();
    assert.equal(rows.length, 1);
    assert.deepEqual(
      (({ outcome, bytesSent, retransmits, size, file, protocol, options, mac, ip }) => ({
        outcome,
        bytesSent,
        retransmits,
        size,
        file,
        protocol,
        options,
        mac,
        ip,
      }))(rows[0]),
      {
        outcome: 'done',
        bytesSent: 1_468_000,
        retransmits: 2,
        size: 1_468_000,
        file: 'ipxe.efi',
        protocol: 'tftp',
        options: { blksize: 1468, tsize: 1_468_000 },
        mac: MAC,
        ip: '192.0.2.10',
      },
    );
    assert.equal(rows[0].endedAt, clock.now() - 250);
    const machine = store.machines.findByMac(MAC)!;
    assert.equal(rows[0].machineId, machine.id);
    const timeline = store.bootEvents.listForMachine(machine.id);
    assert.deepEqual(
      timeline.map((e) => e.type),
      ['tftp.start', 'tftp.done'],
      'progress is not in the timeline',
    );
    assert.equal(timeline[1].transferId, rows[0].id);
    assert.equal(recorder.stats().transfersRunning, 0);
  });

  test('every way a transfer ends is recorded with its reason; refused requests are timeline only', () => {
    const ends: [BootEvent['type'], string, string | undefined][] = [
      ['tftp.probe', 'probe', undefined],
      ['tftp.failed', 'failed', 'timeout after 5 retransmits'],
      ['tftp.aborted', 'aborted', 'client sent ERROR 0: user abort'],
      ['http.done', 'done', undefined],
      ['http.failed', 'failed', 'connection reset'],
    ];
    ends.forEach(([type, , reason], i) => {
      const protocol = type.split('.')[0] as 'tftp' | 'http';
      bus.publish(`${protocol}.start`, { mac: MAC, transferId: `x${i}`, file: `f${i}` });
      bus.publish(type, { mac: MAC, transferId: `x${i}`, file: `f${i}`, reason });
    });
    bus.publish('tftp.refused', { ip: '192.0.2.77', file: '../etc/passwd', reason: 'outside the root' });
    recorder.flush();
    const byFile = new Map(transferRows().map((t) => [t.file, t]));
    ends.forEach(([, outcome, reason], i) => {
      assert.equal(byFile.get(`f${i}`)?.outcome, outcome);
      assert.equal(byFile.get(`f${i}`)?.reason, reason ?? null);
    });
    assert.equal(byFile.size, ends.length);
    const refused = store.bootEvents.listRecent().find((e) => e.type === 'tftp.refused')!;
    assert.equal(refused.machineId, null);
    assert.equal(refused.ip, '192.0.2.77');
  });

  test('a transfer whose start was missed still gets a row; progress overtaken by the end starts no ghost row', () => {
    bus.publish('http.progress', { mac: MAC, ip: '192.0.2.10', transferId: 'h9', file: 'boot.wim', bytes: 5000, size: 10000 });
    bus.publish('http.done', { mac: MAC, ip: '192.0.2.10', transferId: 'h9', file: 'boot.wim', bytes: 10000 });
    bus.publish('http.progress', { mac: MAC, ip: '192.0.2.10', transferId: 'h9', file: 'boot.wim', bytes: 9000 });
    clock.advance(2000);
    const rows = transferRows();
    assert.equal(rows.length, 1);
    assert.equal(rows[0].outcome, 'done');
    assert.equal(rows[0].bytesSent, 10000);
    assert.equal(rows[0].size, 10000);
  });

  test('events without a transfer id are matched by client address and file', () => {
    bus.publish('http.start', { ip: '192.0.2.20', file: 'vmlinuz' });
    bus.publish('http.done', { ip: '192.0.2.20', file: 'vmlinuz', bytes: 42 });
    recorder.flush();
    const rows = transferRows();
    assert.equal(rows.length, 1);
    assert.equal(rows[0].outcome, 'done');
    assert.equal(rows[0].machineId, null, 'no MAC known for that address');
  });

  test('many waiting events are written without waiting for the interval', () => {
    const local = attachStoreToBus(bus, store, { clock, maxBufferedEvents: 10 });
    for (let i = 0; i < 10; i++) bus.publish('dhcp.ignored', { mac: MAC, reason: 'not a PXE client' });
    clock.advance(0);
    assert.equal(local.stats().flushes, 1);
    local.detach();
  });

  test('full DHCP leases and releases are kept', () => {
    bus.publish('dhcp.lease', { mac: MAC, ip: '192.0.2.100', yiaddr: '192.0.2.100', leaseSeconds: 600 });
    recorder.flush();
    assert.equal(store.leases.findByMac(MAC)?.expiresAt, clock.now() + 600_000);
    bus.publish('dhcp.release', { mac: MAC });
    recorder.flush();
    assert.equal(store.leases.findByMac(MAC), undefined);
  });

  test('fetching the last file of a boot-once entry ends the assignment', () => {
    const entry = store.entries.create({
      name: 'Installer',
      kind: 'nbp',
      files: [{ arch: 'bios', role: 'nbp', path: 'installer.0', size: 10, sha256: fakeSha256(1) }],
    });
    const m = store.machines.create({ macs: [MAC], entryId: entry.id, bootOnce: true });
    bus.publish('tftp.start', { mac: MAC, transferId: 'a', file: 'installer.0' });
    bus.publish('tftp.probe', { mac: MAC, transferId: 'a', file: 'installer.0' });
    recorder.flush();
    assert.equal(store.machines.get(m.id)?.entryId, entry.id, 'a size probe is not a boot');
    bus.publish('tftp.start', { mac: MAC, transferId: 'b', file: 'installer.0' });
    bus.publish('tftp.done', { mac: MAC, transferId: 'b', file: 'installer.0', bytes: 10 });
    recorder.flush();
    assert.equal(store.machines.get(m.id)?.entryId, null);
    assert.ok(store.bootEvents.listForMachine(m.id).some((e) => e.type === 'boot-once.cleared'));
  });

  test('a write failure (disk full) turns history off with one store.degraded warning and never throws into the bus', () => {
    bus.publish('dhcp.received', { mac: MAC, msgType: 'DISCOVER' });
    recorder.flush();
    // No room for one more page: the next commit that grows the file gets SQLITE_FULL.
    const pages = store.db.pragma('page_count', { simple: true }) as number;
    store.db.pragma(`max_page_count = ${pages}`);
    const big = 'x'.repeat(3000);
    for (let i = 0; i < 50; i++) bus.publish('dhcp.ignored', { mac: MAC, reason: 'test', padding: big.slice(0, 2000 + i) });
    assert.doesNotThrow(() => clock.advance(250));
    assert.equal(recorder.degraded, true);
    const warnings = seen.filter((e) => e.type === 'store.degraded');
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0].message), /history is off.*full.*SQLITE_FULL.*Booting goes on.*free space on/i);
    assert.equal(warnings[0].kind, 'disk-full');
    assert.equal(recorder.degradation?.code, 'SQLITE_FULL');

    // Later events are dropped quietly: no second warning, no exception, nothing kept in memory.
    for (let i = 0; i < 20; i++) bus.publish('tftp.start', { mac: MAC, transferId: `z${i}`, file: 'x' });
    assert.doesNotThrow(() => recorder.flush());
    assert.equal(recorder.stats().transfersRunning, 0);
    // The probe write every retry interval fails as long as the database cannot be written: still one warning.
    store.db.pragma('query_only = ON');
    clock.advance(30_000);
    assert.equal(seen.filter((e) => e.type === 'store.degraded').length, 1);
    assert.equal(recorder.degraded, true);
    assert.equal(store.bootEvents.count(), 1, 'only what was written before the failure');
    assert.equal(clock.pendingTimers() > 0, true, 'a retry stays scheduled');
    store.db.pragma('query_only = OFF');
  });

  test('after a full disk, no probe write is tried until the folder has free space again', () => {
    recorder.detach();
    let free = 0;
    let probes = 0;
    recorder = attachStoreToBus(bus, store, { clock, freeBytes: () => (probes++, free) });
    store.db.pragma(`max_page_count = ${store.db.pragma('page_count', { simple: true }) as number}`);
    for (let i = 0; i < 50; i++) bus.publish('dhcp.ignored', { mac: MAC, reason: 'x'.repeat(2000 + i) });
    clock.advance(250);
    assert.equal(recorder.degraded, true);
    store.db.pragma('max_page_count = 1073741823');
    clock.advance(60_000);
    assert.equal(recorder.degraded, true, 'a small commit would succeed, but the disk has no room');
    assert.equal(probes, 6);
    free = 64 * 1024 * 1024;
    clock.advance(10_000);
    assert.equal(recorder.degraded, false);
  });

  test('history resumes by itself when the disk takes writes again, and says so once', () => {
    bus.publish('tftp.start', { mac: MAC, transferId: 'before', file: 'a.efi', size: 100 });
    recorder.flush();
    store.db.pragma(`max_page_count = ${store.db.pragma('page_count', { simple: true }) as number}`);
    for (let i = 0; i < 50; i++) bus.publish('dhcp.ignored', { mac: MAC, reason: 'x'.repeat(2000 + i) });
    clock.advance(250);
    assert.equal(recorder.degraded, true);
    bus.publish('dhcp.received', { mac: MAC, msgType: 'DISCOVER' }); // dropped: history is off
    assert.equal(recorder.stats().eventsDropped, 0, 'counted when the episode ends');

    store.db.pragma('max_page_count = 1073741823'); // space is back
    clock.advance(10_000);
    assert.equal(recorder.degraded, false);
    const recovered = seen.filter((e) => e.type === 'store.recovered');
    assert.equal(recovered.length, 1);
    assert.match(String(recovered[0].message), /recorded again/);
    assert.ok((recovered[0].eventsDropped as number) >= 51, `dropped ${recovered[0].eventsDropped}`);
    // The transfer that ran while history was off has no recorded end: closed, not left running.
    const before = transferRows().find((t) => t.transferKey === 'tftp:before')!;
    assert.equal(before.outcome, 'interrupted');
    assert.match(before.reason ?? '', /history was off/);

    bus.publish('dhcp.received', { mac: MAC, msgType: 'DISCOVER', xid: 9 });
    bus.publish('tftp.start', { mac: MAC, transferId: 'after', file: 'b.efi', size: 10 });
    bus.publish('tftp.done', { mac: MAC, transferId: 'after', file: 'b.efi', bytes: 10 });
    clock.advance(250);
    assert.equal(transferRows().find((t) => t.transferKey === 'tftp:after')?.outcome, 'done');
    assert.ok(store.bootEvents.listForMac(MAC).some((e) => e.type === 'dhcp.received' && e.details.xid === 9));
    assert.equal(seen.filter((e) => e.type === 'store.degraded').length, 1);
    assert.deepEqual(store.integrityCheck(), ['ok']);
  });

  test('a DHCP storm is recorded up to the per-second budget and summed up in one dhcp.storm row per second', () => {
    recorder.detach();
    recorder = attachStoreToBus(bus, store, { clock, maxDhcpEventsPerSecond: 100 });
    const mac = (i: number) => `02:5b:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
    clock.advance(1000); // start of a whole second (the clock starts on one)
    for (let i = 0; i < 300; i++) bus.publish('dhcp.received', { mac: mac(i), msgType: 'DISCOVER' });
    bus.publish('dhcp.lease', { mac: MAC, ip: '192.0.2.50', yiaddr: '192.0.2.50', leaseSeconds: 60 });
    bus.publish('tftp.start', { mac: MAC, transferId: 't', file: 'a.efi' });
    clock.advance(500);
    for (let i = 300; i < 400; i++) bus.publish('proxy.offer', { mac: mac(i) });
    clock.advance(1000); // the second is over: its surplus is written without another DHCP event
    assert.equal(store.bootEvents.listRecent({ limit: 1000 }).filter((e) => e.type === 'dhcp.received').length, 100);
    assert.ok(store.leases.findByMac(MAC), 'leases are always recorded');
    assert.equal(transferRows().length, 1, 'transfers are always recorded');
    const storms = store.bootEvents.listRecent({ limit: 1000 }).filter((e) => e.type === 'dhcp.storm');
    assert.equal(storms.length, 1);
    assert.equal(storms[0]!.details.eventsNotRecorded, 300);
    assert.equal(recorder.stats().dhcpEventsOverBudget, 300);
    assert.equal(store.machines.list().length, 101, 'the storm did not add a machine per spoofed MAC');

    // The next second has its own budget.
    for (let i = 0; i < 50; i++) bus.publish('dhcp.received', { mac: mac(1000 + i), msgType: 'DISCOVER' });
    clock.advance(1000);
    assert.equal(store.bootEvents.listRecent({ limit: 1000 }).filter((e) => e.type === 'dhcp.received').length, 150);
    assert.equal(store.bootEvents.listRecent({ limit: 1000 }).filter((e) => e.type === 'dhcp.storm').length, 1);
  });

  test('the budget is the one every budgeting subscriber uses: conflicts, NAKs and errors are kept in a storm', () => {
    recorder.detach();
    recorder = attachStoreToBus(bus, store, { clock, maxDhcpEventsPerSecond: 2 });
    clock.advance(1000);
    for (let i = 0; i < 5; i++) bus.publish('dhcp.received', { mac: MAC, msgType: 'DISCOVER' });
    for (let i = 0; i < 3; i++) bus.publish('dhcp.conflict', { mac: MAC, address: `192.0.2.${60 + i}` });
    bus.publish('dhcp.nak', { mac: MAC });
    clock.advance(1000);
    const types = store.bootEvents.listRecent({ limit: 100 }).map((e) => e.type);
    assert.equal(types.filter((t) => t === 'dhcp.received').length, 2);
    assert.equal(types.filter((t) => t === 'dhcp.conflict').length, 3);
    assert.equal(types.filter((t) => t === 'dhcp.nak').length, 1);
    assert.equal(recorder.stats().dhcpEventsOverBudget, 3);
  });

  test("the DHCP thread's own count of events it did not publish (dhcp.storm) joins that second's row", () => {
    recorder.detach();
    recorder = attachStoreToBus(bus, store, { clock, maxDhcpEventsPerSecond: 100 });
    clock.advance(1000);
    const second = Math.floor(clock.now() / 1000) * 1000;
    for (let i = 0; i < 150; i++) bus.publish('dhcp.received', { mac: `02:5c:00:00:00:${i.toString(16).padStart(2, '0')}`, msgType: 'DISCOVER' });
    bus.publishAt('dhcp.storm', second, { eventsNotPublished: 1000, budgetPerSecond: 1000 });
    clock.advance(1000);
    const storms = store.bootEvents.listRecent({ limit: 1000 }).filter((e) => e.type === 'dhcp.storm');
    assert.equal(storms.length, 1);
    assert.equal(storms[0]!.details.eventsNotRecorded, 1050);
    assert.equal(storms[0]!.time, second);
    assert.equal(recorder.stats().dhcpEventsOverBudget, 1050);
  });

  test('detach writes what is waiting and stops listening; close also closes the store', () => {
    bus.publish('dhcp.received', { mac: MAC, msgType: 'DISCOVER' });
    recorder.detach();
    assert.equal(store.bootEvents.count(), 1);
    bus.publish('dhcp.received', { mac: MAC, msgType: 'REQUEST' });
    clock.advance(1000);
    assert.equal(store.bootEvents.count(), 1);
    assert.equal(clock.pendingTimers(), 0);

    const second = attachStoreToBus(bus, store, { clock });
    bus.publish('proxy.offer', { mac: MAC });
    second.close();
    assert.equal(store.open, false);
    store = openStore(store.path, { clock });
    assert.equal(store.bootEvents.count(), 2);
  });

  test('retention runs periodically while attached', () => {
    const local = attachStoreToBus(bus, store, { clock, retentionIntervalMs: 60_000 });
    const m = store.machines.create({ macs: [MAC] });
    store.settings.set('retention', { maxEventsPerMachine: 3 });
    for (let i = 0; i < 10; i++) store.bootEvents.add({ machineId: m.id, time: clock.now(), type: 'dhcp.received' });
    clock.advance(60_000);
    assert.equal(store.bootEvents.count(m.id), 3);
    local.detach();
  });
});

describe('load: 50 transfers at full speed', () => {
  const seconds = process.env.BOOTBENCH_LONG === '1' ? 10 : 2;
  test(`stays under a few hundred row writes per second (${seconds} s, real clock)`, { timeout: 60_000 }, async (t) => {
    const loadStore = openStore(join(temp.dir, 'load'));
    const loadBus = new EventBus();
    const load = attachStoreToBus(loadBus, loadStore, { clock: systemClock });
    const TRANSFERS = 50;
    for (let i = 0; i < TRANSFERS; i++) {
      loadBus.publish('tftp.start', {
        mac: `52:54:00:00:20:${i.toString(16).padStart(2, '0')}`,
        ip: `192.0.2.${i + 1}`,
        transferId: `l${i}`,
        file: `img${i}`,
        size: 1e9,
      });
    }
    load.flush(); // the 50 starts (machines, rows, timeline) are not part of the steady state
    const started = performance.now();
    let events = 0;
    let listenerMs = 0;
    const bytes = new Array(TRANSFERS).fill(0);
    const beforeRows = load.stats().rowsWritten;
    const beforeFlushes = load.stats().flushes;
    while (performance.now() - started < seconds * 1000) {
      // One burst: every transfer acknowledges a window of 4 blocks, as TFTP at full speed does.
      const burstStart = performance.now();
      for (let burst = 0; burst < 20; burst++) {
        for (let i = 0; i < TRANSFERS; i++) {
          bytes[i] += 4 * 1468;
          loadBus.publish('tftp.progress', { ip: `192.0.2.${i + 1}`, transferId: `l${i}`, file: `img${i}`, bytes: bytes[i], retransmits: 0 });
          events++;
        }
      }
      listenerMs += performance.now() - burstStart;
      await new Promise((r) => setImmediate(r)); // let the flush timer run, as the socket loops would
    }
    const elapsed = (performance.now() - started) / 1000;
    const stats = load.stats();
    const rowsPerSecond = (stats.rowsWritten - beforeRows) / elapsed;
    const commitsPerSecond = (stats.flushes - beforeFlushes) / elapsed;
    const usPerEvent = (listenerMs * 1000) / events;
    t.diagnostic(
      `events ${events} (${Math.round(events / elapsed)}/s), row writes ${Math.round(rowsPerSecond)}/s, commits ${commitsPerSecond.toFixed(1)}/s, publish cost ${usPerEvent.toFixed(2)} us/event`,
    );
    load.close();
    assert.ok(events / elapsed > 20_000, 'the load really was heavy');
    assert.ok(stats.rowsWritten - beforeRows >= TRANSFERS, 'progress of every transfer reached the disk at least once');
    assert.ok(rowsPerSecond < 300, `row writes per second: ${rowsPerSecond}`);
    assert.ok(commitsPerSecond <= 8, `commits per second: ${commitsPerSecond}`);
  });
});
