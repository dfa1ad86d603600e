// History off and back on. A failing write (full disk, disk error) turns history off with one
// `store.degraded` warning and never reaches the bus; a probe write every retry interval turns
// it back on (`store.recovered`) once the disk takes writes again.
import type { Clock, TimerHandle, Publish, Logger } from '../core/index.js';
import type { Store } from './open-store.js';
import { classifyWriteFailure, type WriteFailure } from './write-failure.js';

/** Why history is off, while it is. */
export interface RecorderDegradation extends WriteFailure {
  since: number;
  /** One sentence for the UI and the log: what happened and the fix. */
  message: string;
}

export interface HistoryOutageOptions {
  store: Store;
  clock: Clock;
  logger: Logger;
  /** Where `store.degraded` / `store.recovered` go. */
  warn: Publish;
  retryIntervalMs: number;
  /** After a full disk, the probe write waits until the data folder has this much free space. */
  minFreeBytes: number;
  freeBytes: (folder: string) => number | undefined;
  /** Drops everything waiting in memory: nothing is kept while the disk is full. Returns how many events it held. */
  dropWaiting: () => number;
}

export class HistoryOutage {
  private episode: RecorderDegradation | undefined;
  private droppedThisEpisode = 0;
  private retryTimer: TimerHandle | undefined;
  private stopped = false;
  /** Events not recorded while history was off, in episodes that ended. */
  eventsDropped = 0;

  constructor(private readonly o: HistoryOutageOptions) {}

  /** True while history is off. */
  get active(): boolean {
    return this.episode !== undefined;
  }

  get degradation(): RecorderDegradation | undefined {
    return this.episode && { ...this.episode };
  }

  /** One event not recorded because history is off. */
  countDropped(): void {
    this.droppedThisEpisode++;
  }

  /** Runs a write; a failure turns history off instead of reaching the caller. */
  guarded(write: () => void): void {
    if (this.episode || !this.o.store.open) return;
    try {
      write();
    } catch (err) {
      this.begin(err);
    }
  }

  /** Turns history off after `err` (nothing if it is off already). */
  begin(err: unknown): void {
    if (this.episode) return;
    const { store, clock, logger } = this.o;
    const failure = classifyWriteFailure(err, store.path);
    const message = `Boot history is off: ${failure.problem} (${failure.code}). Booting goes on. To fix: ${failure.fix}; history resumes by itself once writes succeed again.`;
    this.episode = { ...failure, since: clock.now(), message };
    logger.error(message, { code: failure.code, path: store.path });
    // Nothing waits in memory while the disk is full: a long outage must not grow the host.
    this.droppedThisEpisode = this.o.dropWaiting();
    this.scheduleRetry();
    this.o.warn('store.degraded', {
      message,
      source: 'store',
      code: failure.code,
      kind: failure.kind,
      fix: failure.fix,
      path: store.path,
      folder: failure.folder,
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) this.o.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = this.o.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.tryRecover();
    }, this.o.retryIntervalMs);
  }

  /**
   * A probe write: the gap itself goes into the history (a row that belongs to no machine),
   * and transfers that were running when history went off are closed, since their ends
   * were not recorded. A commit that needs new pages is the only true test of free space.
   */
  private tryRecover(): void {
    const { store, clock, logger } = this.o;
    if (!this.episode || this.stopped || !store.open) return;
    const episode = this.episode;
    const now = clock.now();
    const free = episode.kind === 'disk-full' && store.path !== ':memory:' ? this.o.freeBytes(episode.folder) : undefined;
    if (free !== undefined && free < this.o.minFreeBytes) {
      this.scheduleRetry();
      return;
    }
    try {
      store.transaction(() => {
        store.bootEvents.add({
          time: now,
          type: 'store.recovered',
          details: { offSince: episode.since, code: episode.code, eventsDropped: this.droppedThisEpisode },
        });
        if (store.sharedWithPid === undefined) store.transfers.markInterrupted(now, 'history was off (the database could not be written) when it ended');
      });
    } catch (err) {
      logger.debug('the database still cannot be written; history stays off', { code: (err as { code?: string }).code });
      this.scheduleRetry();
      return;
    }
    this.episode = undefined;
    this.eventsDropped += this.droppedThisEpisode;
    const message = `Boot history is recorded again: ${store.path} takes writes again (history was off for ${Math.round((now - episode.since) / 1000)} s, ${this.droppedThisEpisode} events not recorded).`;
    logger.info(message, { path: store.path });
    this.o.warn('store.recovered', { message, source: 'store', path: store.path, offForMs: now - episode.since, eventsDropped: this.droppedThisEpisode });
    this.droppedThisEpisode = 0;
  }
}
