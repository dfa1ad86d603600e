// The transfers running now, as the history sees them: one row per transfer, started by its
// first event and finished by its last. Progress stays in memory and is written at most once
// an interval per transfer, so 50 transfers at full speed cost a few row writes a second.
import {
  transferIdKey,
  transferOutcomeOf,
  transferProtocolOf,
  type BootEvent,
  type TransferEvent,
  type TransferProtocol,
  normalizeMac,
} from '../core/index.js';

export interface LiveTransfer {
  key: string;
  protocol: TransferProtocol;
  /** The history row, once written. */
  rowId?: number;
  mac?: string;
  ip?: string;
  file: string;
  options?: Record<string, number>;
  size?: number;
  bytesSent: number;
  retransmits: number;
  startedAt: number;
  progressDirty: boolean;
  progressWrittenAt: number;
}

/** An event waiting to be written, with the transfer it starts or ends. */
export interface PendingEvent {
  event: BootEvent;
  transfer?: LiveTransfer;
}

/** Keys of ended transfers remembered, so a progress event overtaken by the end starts no ghost row. */
const MAX_RECENTLY_FINISHED = 1000;

function transferKeyOf(event: TransferEvent): string {
  // Without an id, one client fetching one file at a time is the best key there is.
  return transferIdKey(event) ?? `${transferProtocolOf(event.type)}:${event.ip ?? '?'}:${event.file ?? '?'}`;
}

export class TransferTracker {
  private readonly live = new Map<string, LiveTransfer>();
  private readonly recentlyFinished = new Set<string>();

  get size(): number {
    return this.live.size;
  }

  /**
   * Takes one transfer event: what is to be written goes into `pending` (a start, an end,
   * or the start of a transfer whose own start was missed); progress only updates memory.
   * False for a refusal, which ends a request before any transfer: a plain timeline event.
   */
  observe(event: TransferEvent, pending: PendingEvent[]): boolean {
    const what = event.type.slice(event.type.indexOf('.') + 1);
    const outcome = transferOutcomeOf(event.type);
    if (what === 'progress') {
      if (this.recentlyFinished.has(transferKeyOf(event))) return true;
      this.liveFor(event, false, pending).progressDirty = true;
    } else if (what === 'start') {
      const key = transferKeyOf(event);
      this.live.delete(key); // a reused id starts a new row
      this.recentlyFinished.delete(key);
      pending.push({ event, transfer: this.liveFor(event, true, pending) });
    } else if (outcome && outcome !== 'refused') {
      const transfer = this.liveFor(event, false, pending);
      this.live.delete(transfer.key);
      this.recentlyFinished.add(transfer.key);
      if (this.recentlyFinished.size > MAX_RECENTLY_FINISHED) this.recentlyFinished.delete(this.recentlyFinished.values().next().value!);
      pending.push({ event, transfer });
    } else {
      return false;
    }
    return true;
  }

  /** Running transfers whose progress changed and is due to be written (`intervalMs` since the last write). */
  *dueProgress(now: number, intervalMs: number): Iterable<LiveTransfer> {
    for (const transfer of this.live.values()) {
      if (transfer.progressDirty && transfer.rowId !== undefined && now - transfer.progressWrittenAt >= intervalMs) yield transfer;
    }
  }

  hasUnwrittenProgress(): boolean {
    for (const transfer of this.live.values()) if (transfer.progressDirty) return true;
    return false;
  }

  clear(): void {
    this.live.clear();
  }

  private liveFor(event: TransferEvent, pendingStart: boolean, pending: PendingEvent[]): LiveTransfer {
    const key = transferKeyOf(event);
    let transfer = this.live.get(key);
    if (!transfer) {
      const protocol = transferProtocolOf(event.type);
      transfer = {
        key,
        protocol,
        file: event.file || '?',
        bytesSent: 0,
        retransmits: 0,
        startedAt: event.time,
        progressDirty: false,
        progressWrittenAt: event.time,
      };
      this.live.set(key, transfer);
      // A progress or end event whose start was missed (attached mid-transfer) still gets a row.
      if (!pendingStart) pending.push({ event: { ...event, type: protocol === 'tftp' ? 'tftp.start' : 'http.start' } as TransferEvent, transfer });
    }
    transfer.mac ??= event.mac ? normalizeMac(event.mac) : undefined;
    transfer.ip ??= event.ip || undefined;
    transfer.options = event.options ?? transfer.options;
    transfer.size = event.size ?? transfer.size;
    transfer.bytesSent = event.bytes ?? transfer.bytesSent;
    transfer.retransmits = event.retransmits ?? transfer.retransmits;
    return transfer;
  }
}
