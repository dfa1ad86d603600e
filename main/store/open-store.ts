// Opens (or creates) the one database file of a Bootbench data folder, brings its schema up to
// date and closes what a previous process left open.
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { systemClock, type Clock, silentLogger, type Logger } from '../core/index.js';
import { BootEventRepository, DEFAULT_RETENTION, type RetentionPolicy } from './boot-events.js';
import { EntryRepository } from './entries.js';
import { LeaseRepository } from './leases.js';
import { MachineRepository } from './machines.js';
import { BOOTBENCH_APPLICATION_ID, LATEST_SCHEMA_VERSION, migrate, readSchemaVersion } from './migrations.js';
import { RoomSeatRepository } from './room-seats.js';
import { SettingsRepository } from './settings.js';
import { TransferRepository } from './transfers.js';

export const DATABASE_FILE_NAME = 'bootbench.db';

export interface OpenStoreOptions {
  clock?: Clock;
  logger?: Logger;
  /** Overrides the stored `retention` setting and the defaults. */
  retention?: Partial<RetentionPolicy>;
}

export interface Store {
  /** Absolute path of the database file, or ':memory:'. */
  readonly path: string;
  readonly schemaVersion: number;
  /** Migration steps applied by this open (empty when the file was current). */
  readonly migrationsApplied: number[];
  /** Transfers a previous process left running, closed as 'interrupted' by this open. */
  readonly interruptedAtOpen: number;
  /** Another live process that has the database open (its running transfers were left alone). */
  readonly sharedWithPid?: number;
  readonly machines: MachineRepository;
  readonly entries: EntryRepository;
  readonly transfers: TransferRepository;
  readonly bootEvents: BootEventRepository;
  readonly settings: SettingsRepository;
  readonly leases: LeaseRepository;
  /** Where each PC sits in its room (the room view). */
  readonly seats: RoomSeatRepository;
  /** The driver connection: for the store's own modules and tests; other code calls the repositories. */
  readonly db: Database.Database;
  readonly clock: Clock;
  /** Runs `fn` in one transaction (nested calls join the outer one). */
  transaction<T>(fn: () => T): T;
  retentionPolicy(): RetentionPolicy;
  /** Deletes boot events and finished transfers the retention policy no longer keeps. */
  applyRetention(policy?: RetentionPolicy): { events: number; transfers: number };
  /** PRAGMA integrity_check; ['ok'] when healthy. */
  integrityCheck(): string[];
  close(): void;
  readonly open: boolean;
}

/** The file was written by a newer Bootbench; it is left as it is. */
export class StoreVersionError extends Error {
  constructor(
    readonly path: string,
    readonly fileVersion: number,
    readonly supportedVersion: number,
  ) {
    super(
      `The database ${path} has schema version ${fileVersion}, but this Bootbench knows schema versions up to ${supportedVersion}. ` +
        `It was written by a newer Bootbench and has not been changed. Update Bootbench to the newer version, ` +
        `or start with another data folder (--data DIR) to keep this one for the newer version.`,
    );
    this.name = 'StoreVersionError';
  }
}

/** The file cannot serve as a Bootbench database (not SQLite, another program's, unreadable). */
export class StoreOpenError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'StoreOpenError';
  }
}

/** A folder (existing, ending in a separator, or without an extension) gets bootbench.db inside it. */
export function resolveDatabasePath(location: string): string {
  if (location === ':memory:') return location;
  const full = resolve(location);
  if (existsSync(full) ? statSync(full).isDirectory() : /[\\/]$/.test(location) || extname(full) === '') {
    return join(full, DATABASE_FILE_NAME);
  }
  return full;
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Reads version and owner without writing anything. Without a pending WAL the file header is
 * authoritative (https://sqlite.org/fileformat2.html#database_header: user_version at offset
 * 60, application_id at 68, both big-endian), and reading it creates no -wal/-shm files next
 * to a database we may have to refuse. With a pending WAL, a read-only connection reads the
 * committed values (the WAL files exist already, so it adds nothing).
 */
function inspectExistingFile(path: string): { version: number; applicationId: number } | undefined {
  const header = Buffer.alloc(100);
  const fd = openSync(path, 'r');
  let length: number;
  try {
    length = readSync(fd, header, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  if (length === 0) return undefined; // an empty file becomes a new database
  if (length < 100 || !header.subarray(0, 16).equals(SQLITE_HEADER)) {
    throw new StoreOpenError(`${path} is not a SQLite database: move it away or choose another data folder (--data DIR)`);
  }
  const walPending = existsSync(`${path}-wal`) && statSync(`${path}-wal`).size > 0;
  if (!walPending) return { version: header.readInt32BE(60), applicationId: header.readInt32BE(68) };

  let probe: Database.Database | undefined;
  try {
    probe = new Database(path, { readonly: true, fileMustExist: true });
    return {
      version: readSchemaVersion(probe),
      applicationId: probe.pragma('application_id', { simple: true }) as number,
    };
  } catch {
    // The read-write open below reads the version before it changes anything.
    return undefined;
  } finally {
    probe?.close();
  }
}

// The owner file names the process that serves the database's running transfers.
const ownerFileOf = (path: string) => `${path}.owner`;

function liveOwnerOf(path: string): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(ownerFileOf(path), 'utf8'), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    // EPERM: alive but another user's; ESRCH: gone (killed, crashed).
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

function claimOwnership(path: string): void {
  try {
    writeFileSync(ownerFileOf(path), String(process.pid));
  } catch {
    // Without the owner file a second process may close our transfers as interrupted; harmless.
  }
}

function releaseOwnership(path: string): void {
  try {
    if (readFileSync(ownerFileOf(path), 'utf8') === String(process.pid)) unlinkSync(ownerFileOf(path));
  } catch {
    // already gone
  }
}

function checkOwnership(path: string, version: number, applicationId: number): void {
  if (applicationId !== 0 && applicationId !== BOOTBENCH_APPLICATION_ID) {
    throw new StoreOpenError(`${path} belongs to another program (application id ${applicationId}): choose another data folder (--data DIR)`);
  }
  if (version > LATEST_SCHEMA_VERSION) throw new StoreVersionError(path, version, LATEST_SCHEMA_VERSION);
}

export function openStore(location: string, options: OpenStoreOptions = {}): Store {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const path = resolveDatabasePath(location);
  const inMemory = path === ':memory:';

  if (!inMemory && existsSync(path)) {
    const found = inspectExistingFile(path);
    if (found) checkOwnership(path, found.version, found.applicationId);
  } else if (!inMemory) {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (err) {
      throw new StoreOpenError(`cannot create the data folder ${dirname(path)}: ${(err as Error).message}; choose a writable folder (--data DIR)`, err);
    }
  }

  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (err) {
    throw new StoreOpenError(`cannot open ${path}: ${(err as Error).message}; check the file's permissions or choose another data folder (--data DIR)`, err);
  }

  try {
    db.pragma('busy_timeout = 5000');
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number };
    const version = readSchemaVersion(db);
    checkOwnership(path, version, db.pragma('application_id', { simple: true }) as number);
    if (version === 0 && tables.n > 0) {
      throw new StoreOpenError(`${path} holds tables of another program: choose another data folder (--data DIR)`);
    }

    if (!inMemory) {
      const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
      if (mode !== 'wal') logger.warn('the database could not switch to WAL mode; writes may block readers', { path, mode });
    }
    // NORMAL under WAL: a crash or power loss may drop the last commits but never corrupts the file.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');

    const migrationsApplied = migrate(db);
    if (migrationsApplied.length > 0) logger.info('database schema migrated', { path, from: version, to: LATEST_SCHEMA_VERSION });
    cachePreparedStatements(db);

    const now = () => clock.now();
    const settings = new SettingsRepository(db, now, (message) => logger.warn(message, { path }));
    const transfers = new TransferRepository(db);
    const bootEvents = new BootEventRepository(db);
    // Running rows are only orphans if no other live process (the headless host next to the
    // app, say) is still serving them.
    const owner = inMemory ? undefined : liveOwnerOf(path);
    const interruptedAtOpen = owner === undefined ? transfers.markInterrupted(clock.now()) : 0;
    if (interruptedAtOpen > 0) logger.warn('transfers left running by a previous process were marked interrupted', { count: interruptedAtOpen });
    if (owner !== undefined) logger.info('the database is also open in another Bootbench process', { path, pid: owner });
    else if (!inMemory) claimOwnership(path);

    const retentionPolicy = (): RetentionPolicy => ({ ...DEFAULT_RETENTION, ...settings.get('retention'), ...options.retention });
    const applyRetention = (policy = retentionPolicy()) =>
      db.transaction(() => ({
        events: bootEvents.prune(policy, clock.now()),
        transfers: transfers.deleteOlderThan(clock.now() - policy.maxAgeMs),
      }))();

    const store: Store = {
      path,
      schemaVersion: readSchemaVersion(db),
      migrationsApplied,
      interruptedAtOpen,
      sharedWithPid: owner,
      machines: new MachineRepository(db, now),
      entries: new EntryRepository(db, now),
      transfers,
      bootEvents,
      settings,
      leases: new LeaseRepository(db, now),
      seats: new RoomSeatRepository(db),
      db,
      clock,
      transaction: (fn) => db.transaction(fn)(),
      retentionPolicy,
      applyRetention,
      integrityCheck: () => (db.pragma('integrity_check') as { integrity_check: string }[]).map((row) => row.integrity_check),
      close: () => {
        if (!db.open) return;
        db.close();
        if (!inMemory && owner === undefined) releaseOwnership(path);
      },
      get open() {
        return db.open;
      },
    };
    applyRetention();
    return store;
  } catch (err) {
    db.close();
    if (err instanceof StoreVersionError || err instanceof StoreOpenError) throw err;
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_NOTADB') {
      throw new StoreOpenError(`${path} is not a SQLite database: move it away or choose another data folder (--data DIR)`, err);
    }
    throw new StoreOpenError(`cannot prepare the database ${path}: ${(err as Error).message}`, err);
  }
}

/**
 * The repositories prepare their SQL where they use it; better-sqlite3 compiles every
 * prepare() anew, and for the per-DISCOVER lookups (machine, assignment, default entry)
 * compiling cost more than the query. Statements are reused by SQL text;
 * none of them is iterated, so one statement object per text is safe to share.
 */
function cachePreparedStatements(db: Database.Database): void {
  const prepare = db.prepare.bind(db);
  const cache = new Map<string, Database.Statement>();
  const writes: LocalWrites = { count: 0, listeners: new Set() };
  writesByConnection.set(db, writes);
  db.prepare = ((sql: string) => {
    let statement = cache.get(sql);
    if (!statement) {
      statement = prepare(sql);
      if (!statement.reader) countRuns(statement, writes);
      cache.set(sql, statement);
    }
    return statement;
  }) as typeof db.prepare;
}

interface LocalWrites {
  count: number;
  listeners: Set<() => void>;
}

const writesByConnection = new WeakMap<Database.Database, LocalWrites>();

function countRuns(statement: Database.Statement, writes: LocalWrites): void {
  const run = statement.run.bind(statement);
  statement.run = ((...params: unknown[]) => {
    writes.count++;
    try {
      return run(...(params as []));
    } finally {
      for (const listener of writes.listeners) listener();
    }
  }) as typeof statement.run;
}

/**
 * Calls `listener` after every writing statement this connection runs (the ones
 * localWriteCount counts), so a copy kept elsewhere (the DHCP thread's assignments) can be
 * refreshed at once instead of by polling. It should only note that something changed: it
 * runs inside the writer's transaction. Returns the unsubscribe function.
 */
export function onLocalWrites(db: Database.Database, listener: () => void): () => void {
  const writes = writesByConnection.get(db);
  if (!writes) return () => {};
  writes.listeners.add(listener);
  return () => writes.listeners.delete(listener);
}

/**
 * How many writing statements this connection has run (counted in JS, so asking costs
 * nothing; SELECT total_changes() per request was a tenth of the host's DHCP work in a
 * storm). Undefined for a connection openStore did not open. A rolled-back write counts too.
 */
export function localWriteCount(db: Database.Database): number | undefined {
  return writesByConnection.get(db)?.count;
}
