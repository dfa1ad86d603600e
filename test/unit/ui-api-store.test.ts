// The UI contract over the real store (SQLite in memory): CSV import, assignment, groups,
// timeline and history come back in the contract's shapes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, type Store } from '../../main/store/index.js';
import { storeApi } from '../../main/api/api-store.js';
import { HostApi } from '../../main/api/api.js';
import type { CsvImportResult, Machine, MachineGroup, Timeline, TransferRecord } from '../../preload/api.js';
import { idleServiceHost } from '../helpers/idle-host.js';

let store: Store;
let api: HostApi;

before(() => {
  store = openStore(':memory:');
  const host = idleServiceHost();
  api = new HostApi({ host, store: storeApi(store), listInterfaces: () => [], shell: 'web' });
});
after(() => store.close());

async function call<T>(name: string, request?: unknown): Promise<T> {
  const reply = await api.handle(name, request);
  if ('error' in reply) throw new Error(`${reply.error.code}: ${reply.error.message}`);
  return reply.result as T;
}

test('CSV import, machine list, assignment and export', async () => {
  const entry = store.entries.create({
    name: 'iPXE',
    kind: 'nbp',
    files: [{ arch: 'uefi64', role: 'nbp', path: 'ipxe.efi', size: 1000, sha256: 'a'.repeat(64) }],
  });
  const imported = await call<CsvImportResult>('machines:import-csv', {
    csv: 'mac,name,group\n52:54:00:00:00:01,pc-01,row-a\n52:54:00:00:00:02,pc-02,row-a\nnot-a-mac,pc-03,row-a\n',
  });
  assert.equal(imported.added, 2);
  assert.equal(imported.problems.length, 1);
  assert.match(imported.problems[0]!, /^line 4: /);
  const list = await call<Machine[]>('machines:list');
  assert.deepEqual(list.map((m) => m.name).sort(), ['pc-01', 'pc-02']);
  const pc1 = list.find((m) => m.name === 'pc-01')!;
  assert.equal(pc1.entryId, undefined, 'nulls become absent fields');
  const updated = await call<Machine>('machines:update', { id: pc1.id, entryId: entry.id, bootOnce: true });
  assert.equal(updated.entryId, entry.id);
  assert.equal(updated.bootOnce, true);
  const cleared = await call<Machine>('machines:update', { id: pc1.id, entryId: null });
  assert.equal(cleared.entryId, undefined);
  const missing = await api.handle('machines:update', { id: pc1.id, entryId: 999 });
  assert.ok('error' in missing && /no boot entry number 999/.test(missing.error.message));
  const group = await call<MachineGroup>('machines:assign-group', { group: 'row-a', entryId: entry.id });
  assert.deepEqual(group, { name: 'row-a', entryId: entry.id, count: 2 });
  const csv = await call<{ filename: string; csv: string }>('machines:export-csv');
  assert.match(csv.filename, /^bootbench-machines-\d{4}-\d\d-\d\d\.csv$/);
  assert.match(csv.csv, /52:54:00:00:00:02/);
  const entries = await call<{ name: string; archs: string[]; size: number }[]>('entries:list');
  assert.deepEqual(
    entries.map((e) => [e.name, e.archs, e.size]),
    [['iPXE', ['uefi64'], 1000]],
  );
});

test('timeline and history come from the recorded events and transfers', async () => {
  const machine = store.machines.findByMac('52:54:00:00:00:02')!;
  const t0 = Date.now();
  store.bootEvents.add({ machineId: machine.id, mac: '52:54:00:00:00:02', time: t0, type: 'dhcp.received', details: { msgType: 'DISCOVER', arch: 7 } });
  store.bootEvents.add({ machineId: machine.id, mac: '52:54:00:00:00:02', time: t0 + 10, type: 'proxy.offer', details: { file: 'ipxe.efi' } });
  const timeline = await call<Timeline>('timeline:get', { machineId: machine.id });
  assert.deepEqual(
    timeline.events.map((e) => e.type),
    ['dhcp.received', 'proxy.offer'],
  );
  assert.equal(timeline.machine!.name, 'pc-02');
  assert.match(timeline.diagnosis.message, /no request came/);
  const byMac = await call<Timeline>('timeline:get', { mac: '52-54-00-00-00-02' });
  assert.equal(byMac.events.length, 2);

  const id = store.transfers.start({
    transferKey: 'tftp-7',
    mac: '52:54:00:00:00:02',
    ip: '192.0.2.100',
    protocol: 'tftp',
    file: 'ipxe.efi',
    size: 1000,
    startedAt: t0,
  });
  store.transfers.finish(id, { outcome: 'done', bytesSent: 1000, endedAt: t0 + 400 });
  store.transfers.start({ transferKey: 'tftp-8', protocol: 'tftp', file: 'running.bin', startedAt: t0 });
  const history = await call<TransferRecord[]>('transfers:history', { limit: 10 });
  assert.equal(history.length, 1, 'running transfers are not history');
  assert.deepEqual(
    { ...history[0]!, finishedAt: 0 },
    {
      id: `stored-${id}`,
      transferKey: 'tftp-7',
      mac: '52:54:00:00:00:02',
      ip: '192.0.2.100',
      file: 'ipxe.efi',
      protocol: 'tftp',
      size: 1000,
      bytes: 1000,
      outcome: 'done',
      finishedAt: 0,
      durationMs: 400,
      reason: undefined,
    },
  );
});

test('the timeline is green only once the machine fetched the last file its entry needs', async () => {
  const entry = store.entries.create({
    name: 'Rescue',
    kind: 'kernel',
    files: [
      { arch: 'uefi64', role: 'kernel', path: 'rescue/vmlinuz', size: 50, sha256: 'b'.repeat(64) },
      { arch: 'uefi64', role: 'initrd', path: 'rescue/initrd.img', size: 70, sha256: 'c'.repeat(64) },
    ],
  });
  const machine = store.machines.create({ macs: ['52:54:00:00:00:31'], name: 'pc-31', entryId: entry.id });
  const t0 = Date.now();
  const add = (dt: number, type: string, details: Record<string, unknown>) =>
    store.bootEvents.add({ machineId: machine.id, mac: '52:54:00:00:00:31', time: t0 + dt, type, details });
  add(0, 'dhcp.received', { msgType: 'DISCOVER', arch: 7 });
  add(10, 'tftp.done', { file: 'bootbench/snponly.efi', bytes: 10, size: 10 });
  add(20, 'http.done', { file: `/library/e${entry.id}/vmlinuz`, bytes: 50, size: 50 });
  const partway = await call<Timeline>('timeline:get', { machineId: machine.id });
  assert.equal(partway.diagnosis.level, 'warning', partway.diagnosis.message);
  assert.match(partway.diagnosis.message, /not yet everything Rescue needs: initrd\.img never came/);
  add(30, 'http.done', { file: `/library/e${entry.id}/initrd.img`, bytes: 70, size: 70 });
  const complete = await call<Timeline>('timeline:get', { machineId: machine.id });
  assert.equal(complete.diagnosis.level, 'ok');
  assert.match(complete.diagnosis.message, /^Downloaded \/library\/e\d+\/initrd\.img, the last file Rescue needs/);
});
