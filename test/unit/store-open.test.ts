import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  openStore,
  resolveDatabasePath,
  migrate,
  readSchemaVersion,
  LATEST_SCHEMA_VERSION,
  MIGRATIONS,
  StoreVersionError,
  StoreOpenError,
  DATABASE_FILE_NAME,
} from '../../main/store/index.js';
import { ManualClock } from '../../main/core/clock.js';
import { MemoryLogger } from '../../main/core/logger.js';
import { makeTempDir } from '../helpers/store-temp.js';

const temp = makeTempDir();
after(() => temp.remove());
let counter = 0;
const freshDir = () => {
  const dir = join(temp.dir, `case-${++counter}`);
  mkdirSync(dir);
  return dir;
};
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Tables, columns, indexes as SQLite stores them, for comparing an upgraded file with a fresh one. */
function schemaOf(db: Database.Database): string[] {
  return (
    db.prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").all() as {
      type: string;
      name: string;
      sql: string | null;
    }[]
  ).map((r) => `${r.type} ${r.name}: ${(r.sql ?? '').replace(/\s+/g, ' ')}`);
}

/** Rows that a database of `version` can hold, written the way that version would have. */
function seedVersion(db: Database.Database, version: number): void {
  if (version >= 1) {
    db.prepare("INSERT INTO entries (id, name, kind, created_at, updated_at) VALUES (1, 'Memtest', 'nbp', 10, 10)").run();
    db.prepare("INSERT INTO entry_files VALUES (1, 'bios', 0, 'nbp', 'memtest.0', 150000, ?)").run('a'.repeat(64));
    db.prepare("INSERT INTO machines (id, name, group_name, entry_id, created_at, updated_at) VALUES (1, 'pc-01', 'room-a', 1, 10, 10)").run();
    db.prepare("INSERT INTO machine_macs VALUES ('52:54:00:00:00:01', 1)").run();
    db.prepare(`INSERT INTO settings VALUES ('mode', '"proxy"', 10)`).run();
  }
  if (version >= 2) {
    db.prepare(`INSERT INTO transfers (id, machine_id, protocol, file, started_at, outcome) VALUES (1, 1, 'tftp', 'memtest.0', 20, 'running')`).run();
    // Version 5 renamed the event for every client DHCP message.
    db.prepare(`INSERT INTO boot_events (machine_id, time, type) VALUES (1, ?, ?)`).run(Date.now(), version >= 5 ? 'dhcp.received' : 'dhcp.discover');
  }
  if (version >= 3) {
    db.prepare(`INSERT INTO leases VALUES ('52:54:00:00:00:01', '192.0.2.100', NULL, 99, 10)`).run();
  }
}

describe('openStore', () => {
  test('a folder gets bootbench.db inside; the file is in WAL mode at the latest schema', () => {
    const dir = freshDir();
    const store = openStore(dir);
    try {
      assert.equal(store.path, join(dir, DATABASE_FILE_NAME));
      assert.equal(store.schemaVersion, LATEST_SCHEMA_VERSION);
      assert.deepEqual(
        store.migrationsApplied,
        MIGRATIONS.map((m) => m.version),
      );
      assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(store.db.pragma('foreign_keys', { simple: true }), 1);
      assert.deepEqual(store.integrityCheck(), ['ok']);
    } finally {
      store.close();
    }
    assert.equal(store.open, false);
    const again = openStore(join(dir, DATABASE_FILE_NAME));
    assert.deepEqual(again.migrationsApplied, []);
    again.close();
  });

  test('a missing folder is created; an explicit file path is used as is', () => {
    const base = freshDir();
    const store = openStore(join(base, 'data', 'nested'));
    assert.equal(store.path, join(base, 'data', 'nested', DATABASE_FILE_NAME));
    store.close();
    const file = openStore(join(base, 'other', 'bench.sqlite'));
    assert.equal(file.path, join(base, 'other', 'bench.sqlite'));
    file.close();
    assert.ok(existsSync(join(base, 'other', 'bench.sqlite')));
    assert.equal(resolveDatabasePath(':memory:'), ':memory:');
  });

  for (let from = 0; from < LATEST_SCHEMA_VERSION; from++) {
    test(`a version ${from} database migrates to ${LATEST_SCHEMA_VERSION}, keeping its rows, with the same schema as a new one`, () => {
      const dir = freshDir();
      const path = join(dir, DATABASE_FILE_NAME);
      const old = new Database(path);
      migrate(old, from);
      assert.equal(readSchemaVersion(old), from);
      seedVersion(old, from);
      old.close();

      const logger = new MemoryLogger();
      const store = openStore(path, { logger, clock: new ManualClock(1000) });
      try {
        assert.equal(store.schemaVersion, LATEST_SCHEMA_VERSION);
        assert.deepEqual(
          store.migrationsApplied,
          MIGRATIONS.filter((m) => m.version > from).map((m) => m.version),
        );
        assert.deepEqual(store.integrityCheck(), ['ok']);
        if (from >= 1) {
          const machine = store.machines.findByMac('52:54:00:00:00:01');
          assert.equal(machine?.name, 'pc-01');
          assert.equal(machine?.entryId, 1);
          assert.equal(store.entries.get(1)?.files[0].path, 'memtest.0');
          assert.equal(store.settings.get('mode'), 'proxy');
        }
        if (from >= 2) {
          assert.equal(store.transfers.get(1)?.outcome, 'interrupted');
          assert.equal(store.bootEvents.count(1), 1);
          // Recorded under the event's old name: read under its new one.
          assert.equal(store.bootEvents.listForMachine(1)[0]?.type, 'dhcp.received');
        }
        if (from >= 3) assert.equal(store.leases.findByMac('52:54:00:00:00:01')?.ip, '192.0.2.100');

        const fresh = openStore(':memory:');
        assert.deepEqual(schemaOf(store.db), schemaOf(fresh.db));
        fresh.close();
      } finally {
        store.close();
      }
    });
  }

  test('a database from a newer Bootbench is refused with both versions and the fix, and left untouched', () => {
    const dir = freshDir();
    const path = join(dir, DATABASE_FILE_NAME);
    openStore(path).close();
    const newer = new Database(path);
    newer.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 4}`);
    newer.close();
    const before = sha(path);

    assert.throws(
      () => openStore(dir),
      (err: unknown) => {
        assert.ok(err instanceof StoreVersionError);
        assert.equal(err.fileVersion, LATEST_SCHEMA_VERSION + 4);
        assert.equal(err.supportedVersion, LATEST_SCHEMA_VERSION);
        assert.match(err.message, new RegExp(`schema version ${LATEST_SCHEMA_VERSION + 4}`));
        assert.match(err.message, new RegExp(`up to ${LATEST_SCHEMA_VERSION}`));
        assert.match(err.message, /Update Bootbench/);
        assert.match(err.message, /--data/);
        return true;
      },
    );
    assert.equal(sha(path), before);
    assert.ok(!existsSync(`${path}-wal`) && !existsSync(`${path}-shm`), 'no WAL or shared-memory file was created next to it');
  });

  test('a newer database with commits still in its WAL (its process crashed or is running) is refused too', () => {
    const dir = freshDir();
    const path = join(dir, DATABASE_FILE_NAME);
    openStore(path).close();
    const newer = new Database(path);
    newer.pragma('wal_autocheckpoint = 0');
    newer.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 1}`); // committed to the WAL only
    try {
      const before = sha(path);
      assert.throws(
        () => openStore(path),
        (err: unknown) => err instanceof StoreVersionError && err.fileVersion === LATEST_SCHEMA_VERSION + 1,
      );
      assert.equal(sha(path), before);
    } finally {
      newer.close();
    }
  });

  test("a file that is not SQLite, or another program's database, is refused and not changed", () => {
    const dir = freshDir();
    const junk = join(dir, 'junk.db');
    writeFileSync(junk, 'this is a text file, not a database, and it is long enough to have a header'.repeat(10));
    const before = sha(junk);
    assert.throws(
      () => openStore(junk),
      (err: unknown) => err instanceof StoreOpenError && /not a SQLite database/.test(err.message),
    );
    assert.equal(sha(junk), before);

    const foreign = join(dir, 'foreign.db');
    const other = new Database(foreign);
    other.exec('CREATE TABLE photos (id INTEGER PRIMARY KEY)');
    other.close();
    const foreignBefore = sha(foreign);
    assert.throws(
      () => openStore(foreign),
      (err: unknown) => err instanceof StoreOpenError && /another program/.test(err.message),
    );
    assert.equal(sha(foreign), foreignBefore);

    const tagged = join(dir, 'tagged.db');
    const app = new Database(tagged);
    app.pragma('application_id = 1234');
    app.close();
    assert.throws(
      () => openStore(tagged),
      (err: unknown) => err instanceof StoreOpenError && /application id 1234/.test(err.message),
    );
  });

  test('transfers left running by a previous process are marked interrupted at open', () => {
    const dir = freshDir();
    const clock = new ManualClock(5_000);
    const first = openStore(dir, { clock });
    const a = first.transfers.start({ protocol: 'tftp', file: 'a', startedAt: 1000 });
    const b = first.transfers.start({ protocol: 'http', file: 'b', startedAt: 1000 });
    first.transfers.finish(b, { outcome: 'done', endedAt: 2000 });
    first.close();
    const logger = new MemoryLogger();
    const second = openStore(dir, { clock: new ManualClock(9_000), logger });
    try {
      assert.equal(second.interruptedAtOpen, 1);
      const interrupted = second.transfers.get(a)!;
      assert.equal(interrupted.outcome, 'interrupted');
      assert.equal(interrupted.endedAt, 9_000);
      assert.match(interrupted.reason ?? '', /process ended/);
      assert.equal(second.transfers.get(b)?.outcome, 'done');
      assert.ok(logger.lines.some((l) => l.level === 'warn' && /interrupted/.test(l.message)));
    } finally {
      second.close();
    }
  });
});
