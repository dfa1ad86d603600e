// The DHCP path's read cache (main/store/read-cache.ts): answers come from memory only while
// the database is unchanged, whether the change came through this connection or another.
import { test, describe, beforeEach, afterEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore, StoreReadCache, type Store } from '../../main/store/index.js';
import { makeTempDir } from '../helpers/store-temp.js';

const temp = makeTempDir();
after(() => temp.remove());
let counter = 0;
let store: Store;

beforeEach(() => {
  store = openStore(join(temp.dir, `read-cache-${++counter}`));
});
afterEach(() => store.close());

describe('StoreReadCache', () => {
  test('reads once while nothing changes', () => {
    const cache = new StoreReadCache(store);
    let reads = 0;
    const read = () => cache.get('k', () => ++reads);
    assert.equal(read(), 1);
    assert.equal(read(), 1);
    assert.equal(reads, 1);
  });

  test('undefined answers are kept too', () => {
    const cache = new StoreReadCache(store);
    let reads = 0;
    cache.get('k', () => void reads++);
    assert.equal(cache.get('k', () => void reads++), undefined);
    assert.equal(reads, 1);
  });

  test('a write through the same connection drops every answer at once', () => {
    const cache = new StoreReadCache(store);
    const group = () => cache.get('group', () => store.machines.getGroup('lab')?.notes);
    assert.equal(group(), undefined);
    store.machines.setGroup({ name: 'lab', entryId: null, notes: 'first' });
    assert.equal(group(), 'first');
    store.machines.setGroup({ name: 'lab', entryId: null, notes: 'second' });
    assert.equal(group(), 'second');
  });

  test('a commit by another connection (another process) drops every answer from the next turn of the event loop', async () => {
    const cache = new StoreReadCache(store);
    const group = () => cache.get('group', () => store.machines.getGroup('lab')?.notes);
    assert.equal(group(), undefined);
    const other = new Database(store.path);
    try {
      other.prepare("INSERT INTO machine_groups (name, entry_id, notes) VALUES ('lab', NULL, 'from elsewhere')").run();
    } finally {
      other.close();
    }
    await new Promise((r) => setImmediate(r)); // another process's commit is looked for once per turn of the event loop
    assert.equal(group(), 'from elsewhere');
  });

  test('keeps at most maxEntries answers, dropping the oldest', () => {
    const cache = new StoreReadCache(store, { maxEntries: 2 });
    const reads: string[] = [];
    const get = (key: string) => cache.get(key, () => reads.push(key));
    get('a');
    get('b');
    get('c');
    get('b');
    get('a');
    assert.deepEqual(reads, ['a', 'b', 'c', 'a']);
  });

  test('a read inside a read sees the same state and is kept under its own key', () => {
    const cache = new StoreReadCache(store);
    let inner = 0;
    const outer = () => cache.get('outer', () => cache.get('inner', () => ++inner) + 10);
    assert.equal(outer(), 11);
    assert.equal(cache.get('inner', () => ++inner), 1);
  });
});
