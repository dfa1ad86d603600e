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
    this.history = history.slice(0, HISTORY_LIMIT);
    this.renders++;
  }

  private flush(): void {
    if (this.pendingActive) this.active = this.pendingActive;
    if (this.pendingFinished.length) {
      const newestFirst = [...this.pendingFinished].sort((a, b) => b.finishedAt - a.finishedAt);
      const known = new Set(newestFirst.map((r) => r.id));
      this.history = [...newestFirst, ...this.history.filter((r) => !known.has(r.id))].slice(0, HISTORY_LIMIT);
    }
    this.pendingActive = undefined;
    this.pendingFinished = [];
    this.renders++;
  }

  dispose(): void {
    this.throttle.cancel();
  }
}
