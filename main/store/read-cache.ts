// Answers to per-request store reads (what a MAC boots, whether the library has entries),
// kept until the database changes. Proxy DHCP asks them for every DISCOVER; in a storm the
// SQLite round trips were a fifth of the host's CPU (issue 8 profile).
//
// "Changed" is exact, not time-based: every writing statement this connection runs (the UI,
// the recorder, boot-once) is counted in JS by open-store.ts, checked on every read for free;
// PRAGMA data_version moves when another connection commits (`bootbench entries import`
// beside a running host), checked once per turn of the event loop: it opens a read
// transaction, which cost more than the lookup it saves (9 % of the host in a storm), and the
// requests handled in one turn had all arrived before it began, so none of them can be
// ordered after another process's commit anyway. SQLite's total_changes() is checked in the
// same once-per-turn step, for writes that bypass prepared statements (exec). Any of them
// moving drops every cached answer. The recorder's writes move them several times a second,
// which only costs one re-read per key.
import type Database from 'better-sqlite3';
import { localWriteCount, type Store } from './open-store.js';

export interface StoreReadCacheOptions {
  /** Answers kept at most; the oldest goes first (storms bring a new MAC per packet). */
  maxEntries?: number;
}

export class StoreReadCache {
  private readonly values = new Map<string, unknown>();
  private readonly maxEntries: number;
  private readonly totalChanges: Database.Statement<[], { n: number }>;
  private readonly dataVersion: Database.Statement<[], { data_version: number }>;
  private changes = -1;
  private version = -1;
  private writes = -1;
  /** Inside a read: nested reads see the same database state, no need to ask again. */
  private reading = false;
  private versionCheckedThisTurn = false;
  private readonly nextTurn = () => {
    this.versionCheckedThisTurn = false;
  };

  constructor(private readonly store: Store, options: StoreReadCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 4096;
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

  private dropIfChanged(): void {
    const counted = localWriteCount(this.store.db);
    const writes = counted ?? -1;
    let changes = this.changes;
    let version = this.version;
    if (!this.versionCheckedThisTurn || counted === undefined) {
      changes = this.totalChanges.get()!.n;
      version = this.dataVersion.get()!.data_version;
      if (!this.versionCheckedThisTurn) setImmediate(this.nextTurn);
      this.versionCheckedThisTurn = true;
    }
    if (writes === this.writes && changes === this.changes && version === this.version) return;
    this.values.clear();
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
