// The Library screen's answer-file calls over the real store: a template is saved per entry,
// one with an unknown variable is refused naming it, the refusals name each machine that
// lacks a value, and the machine list carries the install state the installer reported.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openStore, type Store } from '../../main/store/index.js';
import { storeApi } from '../../main/api/api-store.js';
import { HostApi } from '../../main/api/api.js';
import type { AnswerTemplateInfo, Machine } from '../../preload/api.js';
import { idleServiceHost } from '../helpers/idle-host.js';
import { fakeSha256, makeTempDir } from '../helpers/store-temp.js';

const temp = makeTempDir('bootbench-answers-api-');
let store: Store;
let api: HostApi;
let entryId = 0;

before(() => {
  const dataDir = join(temp.dir, 'data');
  store = openStore(dataDir);
  api = new HostApi({ host: idleServiceHost(), store: storeApi(store, { dataDir: () => dataDir }), listInterfaces: () => [], shell: 'web' });
  entryId = store.entries.create({
    name: 'Fedora',
    kind: 'kernel',
    files: [{ arch: 'any', role: 'kernel', path: 'vmlinuz', size: 1, sha256: fakeSha256(1) }],
  }).id;
});
after(() => {
  store.close();
  temp.remove();
});

async function call<T>(name: string, request?: unknown): Promise<T> {
  const reply = await api.handle(name, request);
  if ('error' in reply) throw new Error(`${reply.error.code}: ${reply.error.message}`);
  return reply.result as T;
}

test('a template with an unknown variable is not saved; the message names it', async () => {
  await assert.rejects(
    call('answers:set', { entryId, dialect: 'kickstart', text: 'network --hostname={{name}}\nlang {{locale}}\n' }),
    /invalid-request: Not saved\. .*\{\{locale\}\}/,
  );
  assert.deepEqual(await call<AnswerTemplateInfo[]>('answers:list'), []);
  await assert.rejects(call('answers:set', { entryId, dialect: 'nsis', text: 'x' }), /invalid-request/);
});

test('once the machine list has the column, it saves; refusals name the machine and the variable', async () => {
  await call('machines:import-csv', { csv: 'mac,name,entry,locale\n52:54:00:00:00:01,pc01,Fedora,de_DE\n52:54:00:00:00:02,pc02,Fedora,\n' });
  const saved = await call<AnswerTemplateInfo>('answers:set', { entryId, dialect: 'kickstart', text: 'network --hostname={{name}}\nlang {{locale}}\n' });
  assert.equal(saved.dialect, 'kickstart');
  assert.ok(saved.variables.includes('locale') && saved.variables.includes('name') && saved.variables.includes('http_base_url'));
  assert.equal(saved.refusals.length, 1);
  assert.match(saved.refusals[0], /^pc02 has no value for \{\{locale\}\}/);
  const listed = await call<AnswerTemplateInfo[]>('answers:list');
  assert.deepEqual(
    listed.map((a) => [a.entryId, a.dialect, a.text, a.refusals.length]),
    [[entryId, 'kickstart', undefined, 1]],
  );
  assert.equal((await call<AnswerTemplateInfo>('answers:get', { entryId })).text, 'network --hostname={{name}}\nlang {{locale}}\n');
});

test('assigning the entry to a machine (or a group) that lacks a value is refused, naming it', async () => {
  const pc02 = store.machines.findByMac('52:54:00:00:00:02')!;
  await call('machines:update', { id: pc02.id, entryId: null, group: 'room-3' });
  await assert.rejects(call('machines:update', { id: pc02.id, entryId }), /invalid-request: Not assigned: pc02 has no value for \{\{locale\}\}/);
  await assert.rejects(call('machines:assign-group', { group: 'room-3', entryId }), /Not assigned: pc02 has no value for \{\{locale\}\}/);
  assert.equal(store.machines.get(pc02.id)!.entryId, null, 'nothing was assigned');
  const pc01 = store.machines.findByMac('52:54:00:00:00:01')!;
  assert.equal((await call<Machine>('machines:update', { id: pc01.id, entryId })).entryId, entryId);
});

test('the machine list shows what the installer reported', async () => {
  const pc01 = store.machines.findByMac('52:54:00:00:00:01')!;
  store.bootEvents.add({ machineId: pc01.id, time: 1000, type: 'install.done' });
  const machines = await call<Machine[]>('machines:list');
  assert.deepEqual(machines.find((m) => m.id === pc01.id)?.install, { state: 'installed', time: 1000 });
  assert.equal(machines.find((m) => m.name === 'pc02')?.install, undefined);
});

test('removing the template leaves the entry without one', async () => {
  const removed = await call<AnswerTemplateInfo>('answers:remove', { entryId });
  assert.equal(removed.dialect, undefined);
  assert.deepEqual(await call<AnswerTemplateInfo[]>('answers:list'), []);
});
