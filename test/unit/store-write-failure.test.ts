// A database that cannot be written (full disk) under the host (issue 9 item 7): failures are
// sorted by cause, UI edits answer with the fix and save nothing, and the host's state carries
// the "history is off" problem while it lasts.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { checkDataFolderSpace, classifyWriteFailure, openStore, savingTo, StoreWriteError, type Store } from '../../main/store/index.js';
import { storeApi } from '../../main/api/api-store.js';
import { HostApi } from '../../main/api/api.js';
import { ServiceHost } from '../../main/host/service-host.js';
import { defaultServeConfig } from '../../main/host/config.js';
import { ManualClock } from '../../main/core/clock.js';
import type { BootEvent } from '../../main/core/events.js';
import { makeTempDir } from '../helpers/store-temp.js';
import { idleServiceHost } from '../helpers/idle-host.js';

const temp = makeTempDir();
after(() => temp.remove());
let counter = 0;

/** A store whose file may not grow by one more page: the next growing commit gets SQLITE_FULL. */
function fillUp(store: Store): void {
  store.db.pragma(`max_page_count = ${store.db.pragma('page_count', { simple: true }) as number}`);
}
const makeRoomAgain = (store: Store) => store.db.pragma('max_page_count = 1073741823');

describe('classifyWriteFailure', () => {
  const path = '/var/lib/bootbench/bootbench.db';
  const error = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  test('a full disk names the folder to free space on', () => {
    const f = classifyWriteFailure(error('SQLITE_FULL', 'database or disk is full'), path);
    assert.equal(f.kind, 'disk-full');
    assert.equal(f.folder, '/var/lib/bootbench');
    assert.match(f.fix, /free space on \/var\/lib\/bootbench/);
  });
  test('a WAL or shm file that cannot grow (IOERR) is the disk too', () => {
    assert.equal(classifyWriteFailure(error('SQLITE_IOERR_WRITE'), path).kind, 'disk-error');
    assert.equal(classifyWriteFailure(error('SQLITE_IOERR_SHMSIZE'), path).kind, 'disk-error');
    assert.equal(classifyWriteFailure(error('SQLITE_IOERR_WRITE', 'disk I/O error: No space left on device'), path).kind, 'disk-full');
  });
  test('read-only and other failures', () => {
    assert.equal(classifyWriteFailure(error('SQLITE_READONLY'), path).kind, 'read-only');
    assert.equal(classifyWriteFailure(error('SQLITE_CONSTRAINT_UNIQUE'), path).kind, 'other');
  });
  test('savingTo keeps input errors and SQLite errors that are not the disk as they are', () => {
    assert.throws(
      () =>
        savingTo(path, () => {
          throw new TypeError('bad MAC');
        }),
      TypeError,
    );
    assert.throws(
      () =>
        savingTo(path, () => {
          throw error('SQLITE_CONSTRAINT_UNIQUE');
        }),
      (e: Error) => !(e instanceof StoreWriteError),
    );
    assert.throws(
      () =>
        savingTo(path, () => {
          throw error('SQLITE_FULL');
        }),
      StoreWriteError,
    );
  });
});

describe('checkDataFolderSpace (for bootbench doctor)', () => {
  test('low free space is a problem with a fix; enough is none; unreadable is unknown', () => {
    const low = checkDataFolderSpace('/data', 64 * 1024 * 1024, () => ({ bavail: 1000, bsize: 4096 }));
    assert.equal(low.freeBytes, 4_096_000);
    assert.match(low.problem!, /only 3 MiB free under the data folder \/data.*history stops/);
    assert.match(low.fix!, /free space on \/data/);
    assert.equal(checkDataFolderSpace('/data', 1024, () => ({ bavail: 1000, bsize: 4096 })).problem, undefined);
    assert.deepEqual(
      checkDataFolderSpace('/nowhere', 1024, () => {
        throw new Error('ENOENT');
      }),
      { folder: '/nowhere' },
    );
    assert.ok(checkDataFolderSpace(temp.dir).freeBytes! > 0, 'the real statfs answers');
  });
});

describe('UI edits on a full disk', () => {
  test('a machine edit and a CSV import answer with the fix, save nothing, and work again with space', async () => {
    const dir = join(temp.dir, `api-${++counter}`);
    const store = openStore(dir);
    try {
      const api = new HostApi({
        host: idleServiceHost(new ServiceHost({ config: defaultServeConfig(dir) }).bus),
        store: storeApi(store),
        listInterfaces: () => [],
        shell: 'web',
      });
      const machine = store.machines.create({ macs: ['52:54:00:00:00:01'], name: 'pc1' });
      fillUp(store);
      const rows = Array.from(
        { length: 200 },
        (_, i) => `52:54:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')},,pc-${i}-${'n'.repeat(100)},room,`,
      );
      const csvReply = await api.handle('machines:import-csv', { csv: `mac,uuid,name,group,entry\n${rows.join('\n')}\n` });
      assert.ok('error' in csvReply, 'the import cannot have succeeded');
      assert.match(csvReply.error.message, /not saved.*disk holding .* is full.*free space on/i);
      assert.equal(store.machines.list().length, 1, 'nothing half-written');

      // An in-place update may still fit its page; a database that refuses every write does not.
      store.db.pragma('query_only = ON');
      const updateReply = await api.handle('machines:update', { id: machine.id, name: 'renamed' });
      assert.ok('error' in updateReply, 'the update cannot have succeeded');
      assert.match(updateReply.error.message, /not saved.*cannot be written.*make .* writable/i);
      assert.equal(store.machines.get(machine.id)?.name, 'pc1');
      store.db.pragma('query_only = OFF');
      makeRoomAgain(store);
      const again = await api.handle('machines:import-csv', { csv: `mac,uuid,name,group,entry\n${rows.join('\n')}\n` });
      assert.ok(!('error' in again), JSON.stringify(again));
      assert.equal(store.machines.list().length, 201);
    } finally {
      store.close();
    }
  });
});

describe('the service host while history is off', () => {
  test('its status carries the store problem, a service.state is pushed, and both clear on recovery', () => {
    const dir = join(temp.dir, `host-${++counter}`);
    mkdirSync(dir, { recursive: true });
    const clock = new ManualClock(1_700_000_000_000);
    const store = openStore(dir, { clock });
    const host = new ServiceHost({ config: defaultServeConfig(dir), store, clock });
    const events: BootEvent[] = [];
    host.bus.subscribe((e) => events.push(e));
    try {
      fillUp(store);
      for (let i = 0; i < 60; i++)
        host.bus.publish('dhcp.received', { mac: `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`, msgType: 'DISCOVER', padding: 'p'.repeat(1500) });
      clock.advance(300);
      assert.equal(events.filter((e) => e.type === 'store.degraded').length, 1);
      const problems = host.status().problems;
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, /history is off.*free space on/i);
      const state = events.findLast((e) => e.type === 'service.state')!;
      assert.deepEqual((state.status as { problems: string[] }).problems, problems);

      makeRoomAgain(store);
      clock.advance(10_000);
      assert.equal(events.filter((e) => e.type === 'store.recovered').length, 1);
      assert.deepEqual(host.status().problems, []);
      assert.deepEqual((events.findLast((e) => e.type === 'service.state')!.status as { problems: string[] }).problems, []);
    } finally {
      store.close();
    }
  });
});
