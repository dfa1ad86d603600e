import { test, describe, beforeEach, afterEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { openStore, parseCsv, exportMachinesCsv, importMachinesCsv, exportMachineHistory, type Store } from '../../main/store/index.js';
import { ManualClock } from '../../main/core/clock.js';
import { makeTempDir } from '../helpers/store-temp.js';

const temp = makeTempDir();
after(() => temp.remove());
let counter = 0;
let store: Store;
let clock: ManualClock;

beforeEach(() => {
  clock = new ManualClock(Date.UTC(2026, 10, 29, 8, 0, 0));
  store = openStore(join(temp.dir, `csv-${++counter}`), { clock });
  store.entries.create({ name: 'Windows 11 install', kind: 'wim' });
  store.entries.create({ name: 'Local disk', kind: 'local-disk' });
});
afterEach(() => store.close());

describe('parseCsv', () => {
  test('quotes, doubled quotes, separators and newlines inside quotes, CRLF, BOM; records keep their first line number', () => {
    const text = '\uFEFFmac,name\r\n52:54:00:00:00:01,"pc, ""one"""\r\n\r\n52:54:00:00:00:02,"two\nlines"\n52:54:00:00:00:03,three';
    const { records, problems } = parseCsv(text);
    assert.deepEqual(problems, []);
    assert.deepEqual(records, [
      { line: 1, fields: ['mac', 'name'] },
      { line: 2, fields: ['52:54:00:00:00:01', 'pc, "one"'] },
      { line: 4, fields: ['52:54:00:00:00:02', 'two\nlines'] },
      { line: 6, fields: ['52:54:00:00:00:03', 'three'] },
    ]);
  });

  test('semicolon-separated files (European spreadsheets) are detected from the header', () => {
    const { records } = parseCsv('mac;name;group\n52:54:00:00:00:01;pc 1;room, west\n');
    assert.deepEqual(records[1].fields, ['52:54:00:00:00:01', 'pc 1', 'room, west']);
  });

  test('an unterminated quote is reported at the line where the field began', () => {
    const { problems } = parseCsv('mac,name\n52:54:00:00:00:01,"open\n52:54:00:00:00:02,x\n');
    assert.equal(problems.length, 1);
    assert.equal(problems[0].line, 2);
    assert.match(problems[0].problem, /never closed/);
  });

  test("property: any table of fields written by the exporter's quoting parses back unchanged", () => {
    const field = fc
      .string({ maxLength: 12 })
      .map((s) => s.trim())
      .filter((s) => !s.includes('\r'));
    fc.assert(
      fc.property(fc.array(fc.array(field, { minLength: 2, maxLength: 4 }), { minLength: 1, maxLength: 6 }), (rows) => {
        const width = rows[0].length;
        const table = rows.map((r) => [...r, ...Array(width).fill('x')].slice(0, width)).map((r) => ['id', ...r]);
        const text = table.map((r) => r.map((f) => (/[",\n;]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(',')).join('\n');
        const parsed = parseCsv(text, ',');
        assert.deepEqual(parsed.problems, []);
        assert.deepEqual(
          parsed.records.map((r) => r.fields),
          table,
        );
      }),
      { numRuns: 200 },
    );
  });
});

describe('machines CSV', () => {
  test('export lists every machine with its MACs, UUID, name, group and entry name; import of it changes nothing', () => {
    const win = store.entries.findByName('Windows 11 install')!;
    store.machines.create({
      macs: ['52:54:00:00:00:01', '52:54:00:00:00:02'],
      uuid: '4c4c4544-0042-3510-8052-b4c04f4e4a31',
      name: 'pc-01',
      group: 'room "A"',
      entryId: win.id,
    });
    store.machines.create({ macs: ['52:54:00:00:00:03'], name: 'pc-02, spare' });
    const csv = exportMachinesCsv(store);
    assert.equal(
      csv,
      'mac,uuid,name,group,entry\r\n' +
        '52:54:00:00:00:03,,"pc-02, spare",,\r\n' +
        '52:54:00:00:00:01 52:54:00:00:00:02,4c4c4544-0042-3510-8052-b4c04f4e4a31,pc-01,"room ""A""",Windows 11 install\r\n',
    );
    const before = store.machines.list();
    const result = importMachinesCsv(store, csv);
    assert.deepEqual(result, { created: 0, updated: 2, problems: [] });
    assert.deepEqual(
      store.machines.list().map(({ updatedAt: _u, ...m }) => m),
      before.map(({ updatedAt: _u, ...m }) => m),
    );
  });

  test('a classroom list creates machines, updates known ones, and reports every bad row with line, problem and fix', () => {
    const existing = store.machines.upsertSeen({ mac: '52:54:00:00:00:05', time: clock.now() }).machine;
    assert.equal(existing.discovered, true);
    const csv = [
      'MAC;Name;Group;Entry;UUID', // other order, other case, ';' separator
      '52-54-00-00-00-01;pc-01;room-12;Windows 11 install;',
      '5254.0000.0002;pc-02;room-12;;4C4C4544-0042-3510-8052-B4C04F4E4A32', // line 3
      '52:54:00:00:00:zz;pc-03;room-12;;', // bad MAC
      '52:54:00:00:00:01;pc-04;room-12;;', // MAC again
      ';pc-05;room-12;;', // neither MAC nor UUID
      '52:54:00:00:00:06;pc-06;room-12;Linux;', // unknown entry
      '52:54:00:00:00:07;pc-07;room-12;;not-a-uuid',
      '52:54:00:00:00:05;pc-08 (was discovered);room-12;Local disk;',
      '52:54:00:00:00:09;pc-09;room-12;;;extra',
    ].join('\n');
    const result = importMachinesCsv(store, csv);
    assert.equal(result.created, 2);
    assert.equal(result.updated, 1);
    assert.deepEqual(
      result.problems.map((p) => [p.line, p.problem]),
      [
        [4, '"52:54:00:00:00:zz" is not a MAC address'],
        [5, 'MAC 52:54:00:00:00:01 appears again (first on line 2)'],
        [6, 'the row has neither a MAC nor a UUID'],
        [7, 'there is no boot entry "Linux"'],
        [8, '"not-a-uuid" is not a UUID'],
        [10, '6 fields but the header has 5'],
      ],
    );
    for (const p of result.problems) assert.ok(p.fix.length > 10, `line ${p.line} has a fix`);

    const pc1 = store.machines.findByMac('52:54:00:00:00:01')!;
    assert.equal(pc1.name, 'pc-01');
    assert.equal(pc1.group, 'room-12');
    assert.equal(pc1.entryId, store.entries.findByName('Windows 11 install')!.id);
    assert.equal(store.machines.findByMac('52:54:00:00:00:02')?.uuid, '4c4c4544-0042-3510-8052-b4c04f4e4a32');
    const updated = store.machines.get(existing.id)!;
    assert.equal(updated.name, 'pc-08 (was discovered)');
    assert.equal(updated.discovered, false);
    assert.equal(updated.entryId, store.entries.findByName('Local disk')!.id);
    for (const mac of ['52:54:00:00:00:06', '52:54:00:00:00:07', '52:54:00:00:00:09']) assert.equal(store.machines.findByMac(mac), undefined);
  });

  test('empty cells keep stored values; "-" clears the entry; no header is accepted when the first cell is a MAC', () => {
    const disk = store.entries.findByName('Local disk')!;
    const m = store.machines.create({ macs: ['52:54:00:00:00:01'], name: 'keep', group: 'g', entryId: disk.id });
    assert.deepEqual(importMachinesCsv(store, '52:54:00:00:00:01,,,,-\n').problems, []);
    const after = store.machines.get(m.id)!;
    assert.equal(after.name, 'keep');
    assert.equal(after.group, 'g');
    assert.equal(after.entryId, null);
  });

  test('a row whose MACs belong to two machines is refused', () => {
    store.machines.create({ macs: ['52:54:00:00:00:01'] });
    store.machines.create({ macs: ['52:54:00:00:00:02'] });
    const result = importMachinesCsv(store, 'mac,name\n"52:54:00:00:00:01 52:54:00:00:00:02",merged\n');
    assert.equal(result.problems[0]?.line, 2);
    assert.match(result.problems[0].problem, /belong to different machines/);
    assert.equal(store.machines.list().filter((m) => m.name === 'merged').length, 0);
  });

  test('a file without a usable header, or empty, says how it should start', () => {
    assert.match(importMachinesCsv(store, 'hello,world\n1,2\n').problems[0].fix, /mac,uuid,name,group,entry/);
    assert.match(importMachinesCsv(store, 'name,group\npc,room\n').problems[0].problem, /no mac or uuid column/);
    assert.match(importMachinesCsv(store, '').problems[0].problem, /no rows/);
  });

  test('dry run counts without writing; a failure while writing leaves nothing half-written', () => {
    const csv = 'mac,name\n52:54:00:00:00:01,a\n52:54:00:00:00:02,b\n52:54:00:00:00:03,c\n';
    assert.deepEqual(importMachinesCsv(store, csv, { dryRun: true }), { created: 3, updated: 0, problems: [] });
    assert.equal(store.machines.list().length, 0);

    // The third insert fails inside the transaction (a trigger stands in for a full disk).
    store.db.exec(`CREATE TEMP TRIGGER fail_third BEFORE INSERT ON machine_macs WHEN NEW.mac = '52:54:00:00:00:03'
      BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    assert.throws(() => importMachinesCsv(store, csv), /disk full/);
    assert.equal(store.machines.list().length, 0, 'the first two rows were rolled back');
  });
});

describe('machine history', () => {
  test('exports the machine, its entry, its transfers and its timeline as JSON, oldest first', () => {
    const win = store.entries.findByName('Windows 11 install')!;
    const m = store.machines.create({ macs: ['52:54:00:00:00:01'], name: 'pc-01', entryId: win.id });
    const t1 = store.transfers.start({ machineId: m.id, protocol: 'tftp', file: 'ipxe.efi', startedAt: 100 });
    store.transfers.finish(t1, { outcome: 'done', endedAt: 200 });
    const t2 = store.transfers.start({ machineId: m.id, protocol: 'http', file: 'boot.wim', startedAt: 300 });
    store.bootEvents.add({ machineId: m.id, time: 50, type: 'dhcp.received' });
    store.bootEvents.add({ machineId: m.id, time: 300, type: 'http.start', transferId: t2 });
    const other = store.machines.create({ macs: ['52:54:00:00:00:02'] });
    store.bootEvents.add({ machineId: other.id, time: 60, type: 'dhcp.received' });

    const history = exportMachineHistory(store, m.id)!;
    const json = JSON.parse(JSON.stringify(history));
    assert.equal(json.format, 'bootbench.machine-history');
    assert.equal(json.exportedAt, '2026-11-29T08:00:00.000Z');
    assert.equal(json.machine.name, 'pc-01');
    assert.deepEqual(json.entry, { id: win.id, name: 'Windows 11 install', kind: 'wim' });
    assert.deepEqual(
      json.transfers.map((t: { id: number }) => t.id),
      [t1, t2],
    );
    assert.deepEqual(
      json.events.map((e: { type: string }) => e.type),
      ['dhcp.received', 'http.start'],
    );
    assert.equal(exportMachineHistory(store, 9999), undefined);
  });
});
