// Answers to per-request store reads (what a MAC boots, whether the library has entries),
// kept until the database changes. Proxy DHCP asks them for every DISCOVER; in a storm the
// SQLite round trips were a fifth of the host's CPU.
//
// Writes through this connection (the UI, the recorder, boot-once) are seen at once: every
// writing statement is counted in JS by open-store.ts, checked on every read for free, so an
// assignment edited in the UI holds for the very next request. Two other signs are read
// from SQLite at most every `otherWritesCheckMs` (20 ms): PRAGMA data_version, which moves
// when another connection commits (`bootbench entries import` beside a running host), and
// total_changes(), for writes on this connection that bypass prepared statements (exec).
// Reading them opens a read transaction, which cost more than the lookup it saves (once per
// turn of the event loop was still 3-5 % of the host in a DISCOVER storm). So a
// request may be answered from the state of up to 20 ms before such a write; it might as well
// have arrived 20 ms earlier, and a client that started booting a moment before an import
// gets the old answer either way. Any of them moving drops every cached answer. The
// recorder's writes move them several times a second, which only costs one re-read per key.
import type Database from 'better-sqlite3';
import { systemClock, type Clock } from '../core/index.js';
import { localWriteCount, type Store } from './open-store.js';

export interface StoreReadCacheOptions {
  /** Answers kept at most; the oldest goes first (storms bring a new MAC per packet). */
  maxEntries?: number;
  /** Another connection's commits (and exec() writes) are looked for at most this often (default 20 ms; 0: on every read). */
  otherWritesCheckMs?: number;
  /** Default: the system clock (not the store's: a test's manual clock would hide other processes' commits for good). */
  clock?: Clock;
}

const DEFAULT_OTHER_WRITES_CHECK_MS = 20;

export class StoreReadCache {
  private readonly values = new Map<string, unknown>();
  private readonly maxEntries: number;
  private readonly otherWritesCheckMs: number;
  private readonly clock: Clock;
  private readonly totalChanges: Database.Statement<[], { n: number }>;
  private readonly dataVersion: Database.Statement<[], { data_version: number }>;
  private changes = -1;
  private version = -1;
  private writes = -1;
  /** Inside a read: nested reads see the same database state, no need to ask again. */
  private reading = false;
  /** When data_version and total_changes() were last read (-Infinity: never). */
  private otherWritesCheckedAt = -Infinity;
  /** Moves each time the kept answers are dropped. */
  private drops = 0;

  constructor(
    private readonly store: Store,
    options: StoreReadCacheOptions = {},
  ) {
    this.maxEntries = options.maxEntries ?? 4096;
    this.otherWritesCheckMs = options.otherWritesCheckMs ?? DEFAULT_OTHER_WRITES_CHECK_MS;
    this.clock = options.clock ?? systemClock;
    // Two statements, not one with pragma_data_version(): that table-valued form compiles
    // the pragma again on every run, three times the cost.
    this.totalChanges = store.db.prepare('SELECT total_changes() AS n');
    this.dataVersion = store.db.prepare('PRAGMA data_version');
  }

  /** The answer for `key`, from `read()` when the store changed since it was kept (or never was). */
  get<T>(key: string, read: () => T): T {
    if (!this.reading) this.dropIfChanged();
    if (this.values.has(key)) return this.values.get(key) as T;
    const outer = this.reading;
    this.reading = true;
    let value: T;
    try {
      value = read();
    } finally {
      this.reading = outer;
    }
    if (this.values.size >= this.maxEntries) this.values.delete(this.values.keys().next().value!);
    this.values.set(key, value);
    return value;
  }

  /**
   * A number that moves whenever a kept answer may have changed (the store is checked as
   * get() does; `recheck`: another connection's commits are looked for now, not at most every
   * otherWritesCheckMs, for a caller told that the files changed).
   */
  generation(recheck = false): number {
    if (recheck) this.otherWritesCheckedAt = -Infinity;
    if (!this.reading) this.dropIfChanged();
    return this.drops;
  }

  private dropIfChanged(): void {
    const counted = localWriteCount(this.store.db);
    const writes = counted ?? -1;
    let changes = this.changes;
    let version = this.version;
    const now = counted === undefined ? 0 : this.clock.now();
    // A clock that went back (the system time was set) makes the check due too.
    if (counted === undefined || now - this.otherWritesCheckedAt >= this.otherWritesCheckMs || now < this.otherWritesCheckedAt) {
      changes = this.totalChanges.get()!.n;
      version = this.dataVersion.get()!.data_version;
      this.otherWritesCheckedAt = now;
    }
    if (writes === this.writes && changes === this.changes && version === this.version) return;
    this.values.clear();
    this.drops++;
    this.writes = writes;
    this.changes = changes;
    this.version = version;
  }
}

const cachesByStore = new WeakMap<Store, StoreReadCache>();

/** One cache per open store, shared by the DHCP lookups of the host and the library. */
export function storeReadCache(store: Store): StoreReadCache {
  let cache = cachesByStore.get(store);
  if (!cache) {
    cache = new StoreReadCache(store);
    cachesByStore.set(store, cache);
  }
  return cache;
}
