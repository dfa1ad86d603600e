// The DHCP path's read cache (main/store/read-cache.ts): answers come from memory only while
// the database is unchanged, whether the change came through this connection or another.
import { test, describe, beforeEach, afterEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore, StoreReadCache, watchStoreChanges, type Store } from '../../main/store/index.js';
import { ManualClock, systemClock } from '../../main/core/clock.js';
import { makeTempDir } from '../helpers/store-temp.js';

const temp = makeTempDir();
after(() => temp.remove());
let counter = 0;
let store: Store;

beforeEach(() => {
  store = openStore(join(temp.dir, `read-cache-${++counter}`));
});
afterEach(() => store.close());

/** Group lab's notes, read through `cache`. */
function labNotesThrough(cache: StoreReadCache): () => string | undefined {
  return () => cache.get('group', () => store.machines.getGroup('lab')?.notes);
}

/** A commit by another connection, as `bootbench entries import` beside a running host makes. */
function commitFromAnotherConnection(groupNotes: string): void {
  const other = new Database(store.path);
  try {
    other.prepare("INSERT INTO machine_groups (name, entry_id, notes) VALUES ('lab', NULL, ?)").run(groupNotes);
  } finally {
    other.close();
  }
}

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
    assert.equal(
      cache.get('k', () => void reads++),
      undefined,
    );
    assert.equal(reads, 1);
  });

  test('a write through the same connection drops every answer at once', () => {
    const cache = new StoreReadCache(store);
    const group = labNotesThrough(cache);
    assert.equal(group(), undefined);
    store.machines.setGroup({ name: 'lab', entryId: null, notes: 'first' });
    assert.equal(group(), 'first');
    store.machines.setGroup({ name: 'lab', entryId: null, notes: 'second' });
    assert.equal(group(), 'second');
  });

  test('a commit by another connection (another process) drops every answer once the next check is due', () => {
    const clock = new ManualClock(1_000_000);
    const cache = new StoreReadCache(store, { clock, otherWritesCheckMs: 20 });
    const group = labNotesThrough(cache);
    assert.equal(group(), undefined);
    commitFromAnotherConnection('from elsewhere');
    clock.advance(19);
    assert.equal(group(), undefined, 'looked for at most every 20 ms');
    clock.advance(1);
    assert.equal(group(), 'from elsewhere');
  });

  test("with otherWritesCheckMs 0 another connection's commit is seen by the next read", () => {
    const cache = new StoreReadCache(store, { clock: new ManualClock(0), otherWritesCheckMs: 0 });
    const group = labNotesThrough(cache);
    assert.equal(group(), undefined);
    commitFromAnotherConnection('at once');
    assert.equal(group(), 'at once');
  });

  test('a write through the same connection is seen at once, between two checks for other connections', () => {
    const clock = new ManualClock(5_000);
    const cache = new StoreReadCache(store, { clock, otherWritesCheckMs: 60_000 });
    const group = labNotesThrough(cache);
    assert.equal(group(), undefined);
    store.machines.setGroup({ name: 'lab', entryId: null, notes: 'edited' });
    assert.equal(group(), 'edited');
  });

  test('a clock set back makes the check for other connections due', () => {
    let time = 100_000;
    const cache = new StoreReadCache(store, { clock: { ...systemClock, now: () => time }, otherWritesCheckMs: 20 });
    const group = labNotesThrough(cache);
    assert.equal(group(), undefined);
    commitFromAnotherConnection('later');
    time = 50_000;
    assert.equal(group(), 'later');
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
    assert.equal(
      cache.get('inner', () => ++inner),
      1,
    );
  });
});

describe('watchStoreChanges', () => {
  test("reports this connection's writes as they run, and another connection's commit through the file watch", async () => {
    let calls = 0;
    const stop = watchStoreChanges(store, () => calls++);
    try {
      store.machines.setGroup({ name: 'own', entryId: null, notes: 'x' });
      assert.ok(calls > 0, 'a write through this connection is reported at once');
      await new Promise((r) => setTimeout(r, 50));
      calls = 0;
      commitFromAnotherConnection('from another process');
      const deadline = Date.now() + 2000;
      while (calls === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.ok(calls > 0, "another connection's commit was not reported within 2 s");
    } finally {
      stop();
    }
    calls = 0;
    store.machines.setGroup({ name: 'after', entryId: null, notes: 'y' });
    assert.equal(calls, 0, 'nothing is reported once stopped');
  });
});
