// Live transfers. The host pushes snapshots (a few a second); this keeps the newest and
// hands it to the screen at most once per interval, so a bench of 50 PCs stays smooth.
import type { TransferProgress, TransferRecord, TransferRow } from '../../../../preload/api.js';
import { createThrottle, type Scheduler, type Throttle } from '../throttle.js';

export const HISTORY_LIMIT = 200;

export class TransfersState {
  active = $state.raw<TransferRow[]>([]);
  history = $state.raw<TransferRecord[]>([]);
  totalRate = $derived(this.active.reduce((sum, t) => sum + t.rate, 0));
  /** How many times the screen's data changed (tests and the debug footer read it). */
  renders = 0;

  private pendingActive: TransferRow[] | undefined;
  private pendingFinished: TransferRecord[] = [];
  private readonly throttle: Throttle;

  constructor(intervalMs = 250, scheduler?: Scheduler) {
    this.throttle = createThrottle(() => this.flush(), intervalMs, scheduler);
  }

  /** One pushed 'transfer:progress'. */
  apply(progress: TransferProgress): void {
    this.pendingActive = progress.active;
    if (progress.finished.length) this.pendingFinished.push(...progress.finished);
    this.throttle.request();
  }

  /** Initial load (transfers:active, transfers:history). */
  reset(active: TransferRow[], history: TransferRecord[]): void {
    this.throttle.cancel();
    this.pendingActive = undefined;
    this.pendingFinished = [];
    this.active = active;
    this.history = mergeHistory([], history);
    this.renders++;
  }

  private flush(): void {
    if (this.pendingActive) this.active = this.pendingActive;
    if (this.pendingFinished.length) this.history = mergeHistory(this.pendingFinished, this.history);
    this.pendingActive = undefined;
    this.pendingFinished = [];
    this.renders++;
  }

  dispose(): void {
    this.throttle.cancel();
  }
}

/**
 * New records (newest first) on top of the older history, each transfer once: a record pushed
 * live and the same one loaded from history share their transfer key, and the screen keys its
 * rows by id, which must never repeat. Only a new record's key hides an older row: rows stored
 * before keys carried the serving run may share a key and are still different transfers.
 */
export function mergeHistory(added: TransferRecord[], older: TransferRecord[]): TransferRecord[] {
  const ids = new Set<string>();
  const newKeys = new Set(added.map((r) => r.transferKey).filter((k) => k !== undefined));
  const merged: TransferRecord[] = [];
  const newestFirst = [...added].sort((a, b) => b.finishedAt - a.finishedAt);
  for (const [record, isNew] of [...newestFirst.map((r) => [r, true] as const), ...older.map((r) => [r, false] as const)]) {
    if (ids.has(record.id) || (!isNew && record.transferKey !== undefined && newKeys.has(record.transferKey))) continue;
    ids.add(record.id);
    merged.push(record);
    if (merged.length === HISTORY_LIMIT) break;
  }
  return merged;
}
