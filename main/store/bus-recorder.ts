// Records what the services publish into the store: machines seen, the boot timeline, one row
// per transfer. Events wait in memory and are written in one transaction per flush (a timer,
// ~250 ms), so 50 transfers at full speed cost a few dozen row writes and four commits a
// second, not one write per block. This file decides what is recorded and when; the parts
// live beside it: transfer-tracker (rows per transfer), dhcp-storm (the per-second budget),
// machine-ids, event-writer (one batch into SQLite), history-outage (full disk, and back).
import {
  systemClock,
  type Clock,
  type TimerHandle,
  isPerRequestDhcpEvent,
  isTransferEvent,
  type BootEvent,
  type BootEventType,
  type EventBus,
  type Publish,
  silentLogger,
  type Logger,
} from '../core/index.js';
import { DhcpStormCounter } from './dhcp-storm.js';
import { writeEvents } from './event-writer.js';
import { HistoryOutage, type RecorderDegradation } from './history-outage.js';
import { MachineIds } from './machine-ids.js';
import type { Store } from './open-store.js';
import { TransferTracker, type PendingEvent } from './transfer-tracker.js';
import { checkDataFolderSpace } from './write-failure.js';

export type { RecorderDegradation } from './history-outage.js';

export interface AttachStoreOptions {
  clock?: Clock;
  logger?: Logger;
  /** Where `store.degraded` / `store.recovered` go; default: the bus itself. */
  publish?: Publish;
  /** While history is off, how often a probe write checks whether the disk takes writes again. */
  retryIntervalMs?: number;
  /**
   * After a full disk, the probe write waits until the data folder has this much free space
   * (default 1 MiB): a WAL that restarts from its beginning reuses its old frames, so a
   * small commit can succeed on a disk that is still full, and history would flap on and off.
   */
  minFreeBytes?: number;
  /** Free bytes for the database's folder (default: statfs); undefined when unknown. */
  freeBytes?: (folder: string) => number | undefined;
  /** How long events may wait in memory before they are written. */
  flushIntervalMs?: number;
  /**
   * This many waiting events trigger a write without waiting for the interval, and a timed
   * write takes at most this many (the rest follow on the next turn of the event loop), so
   * the event loop is never held long enough to delay DHCP answers.
   */
  maxBufferedEvents?: number;
  /**
   * Per-request DHCP events (isPerRequestDhcpEvent: messages seen, offers, ignored ...)
   * recorded per second at most; beyond that the second's surplus is counted in one
   * `dhcp.storm` row. Leases, releases, conflicts and transfers are always recorded. 0
   * records every event.
   */
  maxDhcpEventsPerSecond?: number;
  /** A running transfer's progress is written at most this often (the UI gets live progress from the bus, not from here). */
  progressIntervalMs?: number;
  /** How often the retention policy runs while attached. */
  retentionIntervalMs?: number;
  /** End boot-once assignments when a machine finished fetching its entry's last file (default true). */
  completeBootOnce?: boolean;
}

export interface RecorderStats {
  eventsSeen: number;
  flushes: number;
  /** Rows inserted, updated or deleted by flushes (SQLite's change count). */
  rowsWritten: number;
  transfersRunning: number;
  degraded: boolean;
  /** Events not recorded while history was off (all episodes). */
  eventsDropped: number;
  /** DHCP events over the per-second budget, counted in `dhcp.storm` rows instead. */
  dhcpEventsOverBudget: number;
}

export interface StoreBusAttachment {
  /** Writes everything waiting now. */
  flush(): void;
  /** Writes what is waiting, then stops listening. The store stays open. */
  detach(): void;
  /** detach() and close the store. */
  close(): void;
  /** True while history is off after a write failed: the services go on, events are not recorded. */
  readonly degraded: boolean;
  /** Why history is off (undefined while it is recorded). */
  readonly degradation: RecorderDegradation | undefined;
  stats(): RecorderStats;
}

/** Too frequent or not about one client: not part of any machine's timeline. */
const NOT_IN_TIMELINE = new Set<BootEventType>([
  'tftp.progress',
  'http.progress',
  'tftp-multicast.progress',
  'service.state',
  'host.warning',
  'store.degraded',
  'store.recovered',
]);

export function attachStoreToBus(bus: EventBus, store: Store, options: AttachStoreOptions = {}): StoreBusAttachment {
  const clock = options.clock ?? store.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const flushIntervalMs = options.flushIntervalMs ?? 250;
  const maxBufferedEvents = options.maxBufferedEvents ?? 128;
  const retentionIntervalMs = options.retentionIntervalMs ?? 3600_000;

  let pending: PendingEvent[] = [];
  let batchBeingWritten = 0;
  const transfers = new TransferTracker();
  const machines = new MachineIds(store);
  // A storm row is written as soon as its second is over (at most one a second).
  const storm = new DhcpStormCounter(options.maxDhcpEventsPerSecond ?? 500, clock, logger, () => scheduleFlush(0));
  const outage = new HistoryOutage({
    store,
    clock,
    logger,
    warn: options.publish ?? bus.publish,
    retryIntervalMs: options.retryIntervalMs ?? 10_000,
    minFreeBytes: options.minFreeBytes ?? 1024 * 1024,
    freeBytes: options.freeBytes ?? ((folder: string) => checkDataFolderSpace(folder, 0).freeBytes),
    dropWaiting: () => {
      const dropped = pending.length + batchBeingWritten;
      batchBeingWritten = 0;
      pending = [];
      storm.clear();
      transfers.clear();
      machines.clear();
      if (flushTimer) clock.clearTimeout(flushTimer);
      flushTimer = undefined;
      return dropped;
    },
  });
  const writer = { store, machines, transfers, progressIntervalMs: options.progressIntervalMs ?? 1000, completeBootOnce: options.completeBootOnce ?? true };
  // mac -> imaging job and phase last recorded: its agent reports every second, the timeline keeps the steps.
  const imagingSteps = new Map<string, string>();
  let flushTimer: TimerHandle | undefined;
  let flushDueAt = 0;
  let retentionTimer: TimerHandle | undefined;
  let attached = true;
  const stats = { eventsSeen: 0, flushes: 0, rowsWritten: 0 };

  function scheduleFlush(ms: number): void {
    if (!attached || outage.active) return;
    const due = clock.now() + ms;
    if (flushTimer) {
      if (flushDueAt <= due) return;
      clock.clearTimeout(flushTimer);
    }
    flushDueAt = due;
    flushTimer = clock.setTimeout(() => {
      flushTimer = undefined;
      flush(maxBufferedEvents);
    }, ms);
  }

  function scheduleRetention(): void {
    if (!attached) return;
    retentionTimer = clock.setTimeout(() => {
      retentionTimer = undefined;
      outage.guarded(() => store.applyRetention());
      scheduleRetention();
    }, retentionIntervalMs);
  }

  /** A new step of an imaging job on this PC's timeline (its agent repeats the same one every second). */
  function newImagingStep(event: BootEvent & { type: 'imaging.progress' }): boolean {
    if (!event.mac) return true;
    const step = `${event.job} ${event.phase}`;
    if (imagingSteps.get(event.mac) === step) return false;
    imagingSteps.set(event.mac, step);
    if (imagingSteps.size > 10_000) imagingSteps.delete(imagingSteps.keys().next().value!);
    return true;
  }

  const listener = (event: BootEvent): void => {
    if (!attached) return;
    if (outage.active) {
      if (!NOT_IN_TIMELINE.has(event.type)) outage.countDropped();
      return;
    }
    try {
      stats.eventsSeen++;
      if (event.type === 'dhcp.storm') {
        // The DHCP thread's count of per-request events it did not publish: this second's surplus.
        storm.countLeftOut(event.eventsNotPublished, event.time);
        return;
      }
      if (event.type === 'imaging.progress' && !newImagingStep(event)) return;
      if (isTransferEvent(event) && transfers.observe(event, pending)) {
        // recorded (or kept in memory) as part of its transfer
      } else if (!NOT_IN_TIMELINE.has(event.type) || (event.type === 'host.warning' && event.mac)) {
        // A host warning about one machine (its boot once was used) belongs to its timeline.
        if (isPerRequestDhcpEvent(event.type) && !storm.admit(event.time)) return;
        pending.push({ event });
      }
      if (pending.length >= maxBufferedEvents) scheduleFlush(0);
      else if (pending.length > 0 || transfers.size > 0) scheduleFlush(flushIntervalMs);
    } catch (err) {
      outage.begin(err);
    }
  };

  let unsubscribe: (() => void) | undefined = bus.subscribe(listener);
  function stopListening(): void {
    unsubscribe?.();
    unsubscribe = undefined;
    if (flushTimer) clock.clearTimeout(flushTimer);
    if (retentionTimer) clock.clearTimeout(retentionTimer);
    flushTimer = retentionTimer = undefined;
    outage.stop();
    attached = false;
  }

  /** Writes up to `maxEvents` waiting events (all by default) and the progress that is due. */
  function flush(maxEvents = Infinity): void {
    if (flushTimer) {
      clock.clearTimeout(flushTimer);
      flushTimer = undefined;
    }
    outage.guarded(() => {
      const batch = pending.length > maxEvents ? pending.splice(0, maxEvents) : pending;
      if (batch === pending) pending = [];
      const now = clock.now();
      const before = (store.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
      batchBeingWritten = batch.length;
      try {
        store.transaction(() => writeEvents(writer, batch, storm.takeRows(), now));
      } finally {
        machines.endBatch();
      }
      batchBeingWritten = 0;
      stats.rowsWritten += (store.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n - before;
      stats.flushes++;
    });
    if (outage.active) return;
    if (pending.length > 0) scheduleFlush(0);
    // Progress that was not due yet still has to reach the disk later.
    else if (transfers.hasUnwrittenProgress()) scheduleFlush(flushIntervalMs);
  }

  scheduleRetention();

  const detach = () => {
    if (attached) {
      storm.close(); // the second being counted is summed up now
      flush();
    }
    stopListening();
  };

  return {
    flush: () => flush(),
    detach,
    close: () => {
      detach();
      store.close();
    },
    get degraded() {
      return outage.active;
    },
    get degradation() {
      return outage.degradation;
    },
    stats: () => ({
      ...stats,
      transfersRunning: transfers.size,
      degraded: outage.active,
      eventsDropped: outage.eventsDropped,
      dhcpEventsOverBudget: storm.overBudget,
    }),
  };
}
