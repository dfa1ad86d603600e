// Answer files over real HTTP on loopback: the host's file server with the answer-file
// route in front. A PC gets its own preseed; the same request from another machine's
// address, or from an address the host never saw in DHCP, gets 404 and is logged; the
// folders are never listed; the installer's callbacks turn the machine "installed" and end
// its boot once.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { EventBus, type BootEvent } from '../../main/core/events.js';
import { MemoryLogger } from '../../main/core/logger.js';
import { FileResolver } from '../../main/files/index.js';
import { HttpFileServer } from '../../main/http/index.js';
import { attachStoreToBus, openStore, importMachinesCsv, installStates, type Store, type StoreBusAttachment } from '../../main/store/index.js';
import { AnswerFileService, ensureLocalDiskEntry, writeAnswerTemplate } from '../../main/library/index.js';
import { fakeSha256, makeTempDir } from '../helpers/store-temp.js';

const temp = makeTempDir('bootbench-answers-http-');
const events: BootEvent[] = [];
let store: Store;
let server: HttpFileServer;
let entryId = 0;
let recorder: StoreBusAttachment;
// What the host learnt from DHCP: 127.0.0.1 is pc01; 127.0.0.3 is pc02; 127.0.0.2 was never seen.
const seen = new Map([
  ['127.0.0.1', '52:54:00:00:00:01'],
  ['127.0.0.3', '52:54:00:00:00:02'],
]);

function get(path: string, from = '127.0.0.1'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, localAddress: from, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  const dataDir = join(temp.dir, 'data');
  mkdirSync(join(temp.dir, 'root'), { recursive: true });
  store = openStore(dataDir);
  const entry = store.entries.create({
    name: 'Debian installer',
    kind: 'kernel',
    files: [
      { arch: 'any', role: 'kernel', path: 'linux', size: 1, sha256: fakeSha256(1) },
      { arch: 'any', role: 'initrd', path: 'initrd.gz', size: 1, sha256: fakeSha256(2) },
    ],
  });
  entryId = entry.id;
  importMachinesCsv(store, ['mac,name,entry,root password', '52:54:00:00:00:01,pc01,Debian installer,hunter2', '52:54:00:00:00:02,pc02,,swordfish'].join('\n'));
  store.machines.update(store.machines.findByMac('52:54:00:00:00:01')!.id, { bootOnce: true });
  writeAnswerTemplate(
    dataDir,
    entry,
    { dialect: 'preseed', text: 'd-i netcfg/get_hostname string {{name}}\nd-i passwd/root-password password {{root_password}}\n' },
    1,
  );
  const bus = new EventBus();
  bus.subscribe((e) => events.push(e));
  recorder = attachStoreToBus(bus, store);
  let base = '';
  const answers = new AnswerFileService({
    store,
    dataDir,
    serverAddress: '127.0.0.1',
    get httpBaseUrl() {
      return base;
    },
    macForIp: (ip) => seen.get(ip),
    publish: bus.publish,
    localDiskEntry: () => ensureLocalDiskEntry(store),
  });
  server = new HttpFileServer({
    port: 0,
    address: '127.0.0.1',
    // The data folder inside the served one: a set-up to avoid, where the guard must hold.
    files: new FileResolver({ roots: [temp.dir] }),
    dynamic: answers.httpRoute,
    publish: bus.publish,
    logger: new MemoryLogger(),
    macForIp: (ip) => seen.get(ip),
  });
  await server.start();
  base = `http://127.0.0.1:${server.port}`;
});

after(async () => {
  await server.stop();
  recorder.close();
  temp.remove();
});

describe('answer files over HTTP', () => {
  test('the PC gets its own rendered preseed, with the callbacks, and the host logs it', async () => {
    const own = await get(`/answers/e${entryId}/525400000001/preseed.cfg`);
    assert.equal(own.status, 200);
    assert.match(own.body, /^d-i netcfg\/get_hostname string pc01\nd-i passwd\/root-password password hunter2\n/);
    assert.match(
      own.body,
      new RegExp(`preseed/late_command string wget -q -O /dev/null "http://127.0.0.1:${server.port}/answers/e${entryId}/525400000001/installed"`),
    );
    const served = events.find((e) => e.type === 'answers.served');
    assert.ok(served && served.type === 'answers.served');
    assert.equal(served.mac, '52:54:00:00:00:01');
    assert.equal(served.machine, 'pc01');
  });

  test('another machine asking for it gets 404, and the refusal is logged with both names', async () => {
    const before = events.length;
    const other = await get(`/answers/e${entryId}/525400000001/preseed.cfg`, '127.0.0.3');
    assert.equal(other.status, 404);
    assert.doesNotMatch(other.body, /hunter2|pc01/);
    const refused = events.slice(before).find((e) => e.type === 'answers.refused');
    assert.ok(refused && refused.type === 'answers.refused', 'answers.refused published');
    assert.equal(refused.ip, '127.0.0.3');
    assert.equal(refused.mac, '52:54:00:00:00:02');
    assert.match(refused.reason ?? '', /asked by 52:54:00:00:00:02, not by pc01/);
  });

  test('an address the host never saw in DHCP gets 404 too (logged)', async () => {
    const before = events.length;
    const stranger = await get(`/answers/e${entryId}/525400000001/preseed.cfg`, '127.0.0.2');
    assert.equal(stranger.status, 404);
    const refused = events.slice(before).find((e) => e.type === 'answers.refused');
    assert.ok(refused && refused.type === 'answers.refused' && /no DHCP exchange/.test(refused.reason ?? ''));
  });

  test('a template file is never served, whatever path reaches it', async () => {
    assert.ok(existsSync(join(temp.dir, 'data', 'answers', `e${entryId}.json`)));
    for (const path of [`/answers/e${entryId}.json`, `/data/answers/e${entryId}.json`, `/x/ANSWERS/E${entryId}.JSON`]) {
      const got = await get(path);
      assert.equal(got.status, 404, path);
      assert.doesNotMatch(got.body, /hunter2|template/);
    }
  });

  test('answer folders are never listed', async () => {
    for (const path of ['/answers/', `/answers/e${entryId}/`, `/answers/e${entryId}/525400000001/`]) {
      const listing = await get(path);
      assert.equal(listing.status, 404, path);
      assert.doesNotMatch(listing.body, /preseed|525400/);
    }
  });

  test('the callbacks: started reports the hostname, installed turns the row "installed" and ends boot once', async () => {
    const pc01 = () => store.machines.findByMac('52:54:00:00:00:01')!;
    assert.equal(pc01().bootOnce, true);
    assert.equal((await get(`/answers/e${entryId}/525400000001/started?hostname=pc01`)).status, 200);
    const started = events.find((e) => e.type === 'install.started');
    assert.ok(started && started.type === 'install.started' && started.hostname === 'pc01' && started.mac === '52:54:00:00:00:01');
    // A callback from the wrong machine counts for nothing.
    assert.equal((await get(`/answers/e${entryId}/525400000001/installed`, '127.0.0.3')).status, 404);
    assert.equal(pc01().bootOnce, true);
    assert.equal((await get(`/answers/e${entryId}/525400000001/installed`)).status, 200);
    assert.ok(events.some((e) => e.type === 'install.done' && e.mac === '52:54:00:00:00:01'));
    assert.equal(pc01().bootOnce, false);
    assert.equal(store.entries.get(pc01().entryId!)?.kind, 'local-disk');
    // The recorder writes install.* to the machine's timeline; the row's state is read from there.
    recorder.flush();
    assert.deepEqual(installStates(store).get(pc01().id)?.state, 'installed');
  });
});
