// What the running host's IGMP listener heard on its NIC, for `bootbench doctor` in another
// process: a querier that asks every 125 s is easily missed in doctor's own few seconds, but
// the host listens the whole time it serves. One row per NIC, owned by the host's process.
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { resolveDatabasePath } from './open-store.js';

export interface IgmpListenRecord {
  interfaceName: string;
  /** the host process that listens: its word stands only while it lives */
  pid: number;
  /** when it began listening */
  since: number;
  /** the last other querier heard, and when */
  querier?: string;
  heardAt?: number;
}

interface Row {
  interface: string;
  pid: number;
  since: number;
  querier: string | null;
  heard_at: number | null;
}

/** The host began listening on the NIC (a new run: what an earlier one heard is dropped). */
export function recordIgmpListening(db: Database.Database, record: { interfaceName: string; pid: number; since: number }): void {
  db.prepare('INSERT OR REPLACE INTO igmp_listen (interface, pid, since, querier, heard_at) VALUES (?, ?, ?, NULL, NULL)').run(
    record.interfaceName,
    record.pid,
    record.since,
  );
}

/** A general query from another querier was heard on the NIC. */
export function recordIgmpQuerierHeard(db: Database.Database, heard: { interfaceName: string; pid: number; querier: string; at: number }): void {
  db.prepare('UPDATE igmp_listen SET querier = ?, heard_at = ? WHERE interface = ? AND pid = ?').run(heard.querier, heard.at, heard.interfaceName, heard.pid);
}

/** The host stopped listening on the NIC. */
export function forgetIgmpListening(db: Database.Database, interfaceName: string, pid: number): void {
  db.prepare('DELETE FROM igmp_listen WHERE interface = ? AND pid = ?').run(interfaceName, pid);
}

/**
 * The row for the NIC in the data folder's database, read without writing anything (no
 * migration, no owner file): undefined when there is no database, no such table (an older
 * schema) or no row.
 */
export function readIgmpListening(location: string, interfaceName: string): IgmpListenRecord | undefined {
  const path = resolveDatabasePath(location);
  if (path === ':memory:' || !existsSync(path)) return undefined;
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const row = db.prepare('SELECT * FROM igmp_listen WHERE interface = ?').get(interfaceName) as Row | undefined;
    if (!row) return undefined;
    return {
      interfaceName: row.interface,
      pid: row.pid,
      since: row.since,
      ...(row.querier !== null ? { querier: row.querier } : {}),
      ...(row.heard_at !== null ? { heardAt: row.heard_at } : {}),
    };
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}
