// The per-machine boot timeline: DISCOVER seen, offer sent, ignored (why), lease, downloads.
// Kept bounded by age and by count per machine, so a year of classroom use stays small.
import type Database from 'better-sqlite3';
import { normalizeMac } from '../core/index.js';

export interface StoredBootEvent {
  id: number;
  machineId: number | null;
  mac: string | null;
  ip: string | null;
  time: number;
  /** A bus event type (`dhcp.received`, `tftp.done` ...) or a store one (`boot-once.cleared`). */
  type: string;
  transferId: number | null;
  details: Record<string, unknown>;
}

export type NewBootEvent = Omit<StoredBootEvent, 'id' | 'machineId' | 'mac' | 'ip' | 'transferId' | 'details'> & {
  machineId?: number | null;
  mac?: string | null;
  ip?: string | null;
  transferId?: number | null;
  details?: Record<string, unknown>;
  /** `details` already serialised (the recorder measures its length anyway); wins over `details`. */
  detailsJson?: string;
};

export interface RetentionPolicy {
  /** Events (and finished transfers) older than this are deleted. */
  maxAgeMs: number;
  /** Newest events kept per machine. */
  maxEventsPerMachine: number;
  /** Newest events kept that belong to no machine (clients whose MAC was never learnt). */
  maxUnattributedEvents: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = {
  maxAgeMs: 180 * 24 * 3600 * 1000,
  maxEventsPerMachine: 2000,
  maxUnattributedEvents: 10000,
};

interface EventRow {
  id: number;
  machine_id: number | null;
  mac: string | null;
  ip: string | null;
  time: number;
  type: string;
  transfer_id: number | null;
  details: string;
}

function toEvent(row: EventRow): StoredBootEvent {
  let details: Record<string, unknown> = {};
  try {
    details = JSON.parse(row.details) as Record<string, unknown>;
  } catch {
    // keep the event visible even if its details were damaged
  }
  return { id: row.id, machineId: row.machine_id, mac: row.mac, ip: row.ip, time: row.time, type: row.type, transferId: row.transfer_id, details };
}

export class BootEventRepository {
  private readonly insert: Database.Statement;

  constructor(private readonly db: Database.Database) {
    this.insert = db.prepare(`INSERT INTO boot_events (machine_id, mac, ip, time, type, transfer_id, details)
      VALUES (@machineId, @mac, @ip, @time, @type, @transferId, @details)`);
  }

  add(event: NewBootEvent): number {
    return Number(
      this.insert.run({
        machineId: event.machineId ?? null,
        mac: event.mac ?? null,
        ip: event.ip ?? null,
        time: event.time,
        type: event.type,
        transferId: event.transferId ?? null,
        details: event.detailsJson ?? JSON.stringify(event.details ?? {}),
      }).lastInsertRowid,
    );
  }

  /** Oldest first, as a timeline reads. `since`/`until` bound the time; `limit` keeps the newest. */
  listForMachine(machineId: number, options: { since?: number; until?: number; limit?: number } = {}): StoredBootEvent[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM (SELECT * FROM boot_events WHERE machine_id = ? AND time >= ? AND time <= ?
          ORDER BY time DESC, id DESC LIMIT ?) ORDER BY time, id`,
      )
      .all(machineId, options.since ?? 0, options.until ?? Number.MAX_SAFE_INTEGER, options.limit ?? 10000) as EventRow[];
    return rows.map(toEvent);
  }

  /** Oldest first, by the MAC the events carried (also finds events recorded before the machine was merged). */
  listForMac(mac: string, options: { limit?: number } = {}): StoredBootEvent[] {
    const rows = this.db
      .prepare(`SELECT * FROM (SELECT * FROM boot_events WHERE mac = ? ORDER BY time DESC, id DESC LIMIT ?) ORDER BY time, id`)
      .all(normalizeMac(mac) ?? mac, options.limit ?? 10000) as EventRow[];
    return rows.map(toEvent);
  }

  /** Newest first, every machine. */
  listRecent(options: { limit?: number } = {}): StoredBootEvent[] {
    return (this.db.prepare('SELECT * FROM boot_events ORDER BY time DESC, id DESC LIMIT ?').all(options.limit ?? 200) as EventRow[]).map(toEvent);
  }

  count(machineId?: number | null): number {
    const row =
      machineId === undefined
        ? this.db.prepare('SELECT count(*) AS n FROM boot_events').get()
        : machineId === null
          ? this.db.prepare('SELECT count(*) AS n FROM boot_events WHERE machine_id IS NULL').get()
          : this.db.prepare('SELECT count(*) AS n FROM boot_events WHERE machine_id = ?').get(machineId);
    return (row as { n: number }).n;
  }

  /** Applies the retention policy; returns how many events were deleted. */
  prune(policy: RetentionPolicy, now: number): number {
    return this.db.transaction(() => {
      let deleted = this.db.prepare('DELETE FROM boot_events WHERE time < ?').run(now - policy.maxAgeMs).changes;
      // Only machines over the limit are touched, so a routine prune costs one grouped scan.
      const crowded = this.db
        .prepare('SELECT machine_id FROM boot_events WHERE machine_id IS NOT NULL GROUP BY machine_id HAVING count(*) > ?')
        .all(policy.maxEventsPerMachine) as { machine_id: number }[];
      const trim = this.db.prepare(`DELETE FROM boot_events WHERE machine_id = @machineId AND id NOT IN
          (SELECT id FROM boot_events WHERE machine_id = @machineId ORDER BY time DESC, id DESC LIMIT @keep)`);
      for (const { machine_id } of crowded) deleted += trim.run({ machineId: machine_id, keep: policy.maxEventsPerMachine }).changes;
      deleted += this.db
        .prepare(
          `DELETE FROM boot_events WHERE machine_id IS NULL AND id NOT IN
          (SELECT id FROM boot_events WHERE machine_id IS NULL ORDER BY time DESC, id DESC LIMIT ?)`,
        )
        .run(policy.maxUnattributedEvents).changes;
      return deleted;
    })();
  }
}
