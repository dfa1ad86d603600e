// One row per TFTP/HTTP transfer: what was asked, what was negotiated, how far it got, how it ended.
import type Database from 'better-sqlite3';

export type TransferProtocol = 'tftp' | 'http';
export type TransferOutcome = 'running' | 'done' | 'failed' | 'probe' | 'aborted' | 'interrupted';
export type FinishedOutcome = Exclude<TransferOutcome, 'running' | 'interrupted'>;

export interface Transfer {
  id: number;
  /** The serving process's id for the transfer (event field `transferId`); not unique across restarts. */
  transferKey: string | null;
  machineId: number | null;
  mac: string | null;
  ip: string | null;
  protocol: TransferProtocol;
  file: string;
  /** Negotiated options (TFTP blksize, tsize, windowsize; HTTP range ...). */
  options: Record<string, unknown>;
  size: number | null;
  bytesSent: number;
  retransmits: number;
  startedAt: number;
  endedAt: number | null;
  outcome: TransferOutcome;
  reason: string | null;
}

export interface TransferStart {
  transferKey?: string | null;
  machineId?: number | null;
  mac?: string | null;
  ip?: string | null;
  protocol: TransferProtocol;
  file: string;
  options?: Record<string, unknown>;
  size?: number | null;
  startedAt: number;
}

export interface TransferProgress {
  bytesSent: number;
  retransmits?: number;
  size?: number | null;
  options?: Record<string, unknown>;
}

export interface TransferFinish {
  outcome: FinishedOutcome;
  reason?: string | null;
  bytesSent?: number;
  retransmits?: number;
  size?: number | null;
  endedAt: number;
}

interface TransferRow {
  id: number;
  transfer_key: string | null;
  machine_id: number | null;
  mac: string | null;
  ip: string | null;
  protocol: TransferProtocol;
  file: string;
  options: string;
  size: number | null;
  bytes_sent: number;
  retransmits: number;
  started_at: number;
  ended_at: number | null;
  outcome: TransferOutcome;
  reason: string | null;
}

function toTransfer(row: TransferRow): Transfer {
  let options: Record<string, unknown> = {};
  try {
    options = JSON.parse(row.options) as Record<string, unknown>;
  } catch {
    // A hand-edited or truncated value must not hide the rest of the row.
  }
  return {
    id: row.id,
    transferKey: row.transfer_key,
    machineId: row.machine_id,
    mac: row.mac,
    ip: row.ip,
    protocol: row.protocol,
    file: row.file,
    options,
    size: row.size,
    bytesSent: row.bytes_sent,
    retransmits: row.retransmits,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    outcome: row.outcome,
    reason: row.reason,
  };
}

export class TransferRepository {
  private readonly insert: Database.Statement;
  private readonly updateProgress: Database.Statement;
  private readonly updateFinish: Database.Statement;
  private readonly byId: Database.Statement<[number], TransferRow>;

  constructor(private readonly db: Database.Database) {
    this.insert = db.prepare(`INSERT INTO transfers
      (transfer_key, machine_id, mac, ip, protocol, file, options, size, bytes_sent, retransmits, started_at, outcome)
      VALUES (@transferKey, @machineId, @mac, @ip, @protocol, @file, @options, @size, 0, 0, @startedAt, 'running')`);
    this.updateProgress = db.prepare(`UPDATE transfers SET bytes_sent = @bytesSent,
        retransmits = coalesce(@retransmits, retransmits), size = coalesce(@size, size), options = coalesce(@options, options)
      WHERE id = @id AND outcome = 'running'`);
    this.updateFinish = db.prepare(`UPDATE transfers SET outcome = @outcome, reason = @reason, ended_at = @endedAt,
        bytes_sent = coalesce(@bytesSent, bytes_sent), retransmits = coalesce(@retransmits, retransmits), size = coalesce(@size, size)
      WHERE id = @id`);
    this.byId = db.prepare('SELECT * FROM transfers WHERE id = ?');
  }

  start(input: TransferStart): number {
    return Number(
      this.insert.run({
        transferKey: input.transferKey ?? null,
        machineId: input.machineId ?? null,
        mac: input.mac ?? null,
        ip: input.ip ?? null,
        protocol: input.protocol,
        file: input.file,
        options: JSON.stringify(input.options ?? {}),
        size: input.size ?? null,
        startedAt: input.startedAt,
      }).lastInsertRowid,
    );
  }

  /** Returns false when the transfer is no longer running (finished or interrupted). */
  progress(id: number, progress: TransferProgress): boolean {
    return (
      this.updateProgress.run({
        id,
        bytesSent: progress.bytesSent,
        retransmits: progress.retransmits ?? null,
        size: progress.size ?? null,
        options: progress.options ? JSON.stringify(progress.options) : null,
      }).changes > 0
    );
  }

  finish(id: number, result: TransferFinish): boolean {
    return (
      this.updateFinish.run({
        id,
        outcome: result.outcome,
        reason: result.reason ?? null,
        endedAt: result.endedAt,
        bytesSent: result.bytesSent ?? null,
        retransmits: result.retransmits ?? null,
        size: result.size ?? null,
      }).changes > 0
    );
  }

  get(id: number): Transfer | undefined {
    const row = this.byId.get(id);
    return row && toTransfer(row);
  }

  /** Newest first. */
  listForMachine(machineId: number, options: { limit?: number; before?: number } = {}): Transfer[] {
    const rows = this.db
      .prepare('SELECT * FROM transfers WHERE machine_id = ? AND started_at < ? ORDER BY started_at DESC, id DESC LIMIT ?')
      .all(machineId, options.before ?? Number.MAX_SAFE_INTEGER, options.limit ?? 1000) as TransferRow[];
    return rows.map(toTransfer);
  }

  /** Newest first, all machines. */
  listRecent(options: { limit?: number; outcome?: TransferOutcome } = {}): Transfer[] {
    const rows = (
      options.outcome
        ? this.db.prepare('SELECT * FROM transfers WHERE outcome = ? ORDER BY started_at DESC, id DESC LIMIT ?').all(options.outcome, options.limit ?? 100)
        : this.db.prepare('SELECT * FROM transfers ORDER BY started_at DESC, id DESC LIMIT ?').all(options.limit ?? 100)
    ) as TransferRow[];
    return rows.map(toTransfer);
  }

  listRunning(): Transfer[] {
    return (this.db.prepare("SELECT * FROM transfers WHERE outcome = 'running' ORDER BY id").all() as TransferRow[]).map(toTransfer);
  }

  /**
   * Rows still 'running' belong to a process that ended without finishing them (crash, kill -9,
   * power loss): nothing will ever finish them, so they are closed as interrupted.
   */
  markInterrupted(endedAt: number, reason = 'the serving process ended during the transfer'): number {
    return this.db.prepare("UPDATE transfers SET outcome = 'interrupted', reason = ?, ended_at = ? WHERE outcome = 'running'").run(reason, endedAt).changes;
  }

  /** Retention: drops finished transfers that started before `cutoff`. */
  deleteOlderThan(cutoff: number): number {
    return this.db.prepare("DELETE FROM transfers WHERE started_at < ? AND outcome <> 'running'").run(cutoff).changes;
  }
}
