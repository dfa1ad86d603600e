// Writes what the services publish into the store: machines seen, the boot timeline, one row per
// transfer. Events are buffered and written in one transaction per flush (a timer, ~250 ms), and
// transfer progress is kept in memory and written at most once a second per transfer, so 50
// transfers at full speed cost a few dozen row writes and four commits per second, not one
// write per block. A failing write (full disk, disk error) turns history off with one
// `store.degraded` warning and never reaches the bus; a probe write every retry interval turns
// it back on (`store.recovered`) once the disk takes writes again (issue 9 item 7).
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import type { BootEvent, EventBus, Publish } from '../core/events.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { completeBootOnceIfLastFile } from './boot-assignment.js';
import { normalizeMac } from './identifiers.js';
import type { Store } from './open-store.js';
import type { FinishedOutcome, TransferProtocol } from './transfers.js';
import { checkDataFolderSpace, classifyWriteFailure, type WriteFailure } from './write-failure.js';

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
   * the event loop is never held long enough to delay DHCP answers (issue 9 item 8).
   */
  maxBufferedEvents?: number;
  /**
   * DHCP events (DISCOVERs, offers, ignored ...) recorded per second at most; beyond that the
   * second's surplus is counted in one `dhcp.storm` row. A lab powering on stays far below
   * (50 PCs make a few hundred); a DISCOVER storm (a starvation attack, a looping client,
   * issue 9's 5,000/s) would otherwise cost the main thread a SQLite row per packet and fill
   * the machines list with thousands of spoofed MACs. Leases, releases and transfers are
   * always recorded. 0 records every event.
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

/** Why history is off, while it is. */
export interface RecorderDegradation extends WriteFailure {
  since: number;
  /** One sentence for the UI and the log: what happened and the fix. */
  message: string;
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

const FINISHING: Partial<Record<BootEvent['type'], FinishedOutcome>> = {
  'tftp.done': 'done',
  'tftp.failed': 'failed',
  'tftp.probe': 'probe',
  'tftp.aborted': 'aborted',
  'http.done': 'done',
  'http.failed': 'failed',
};

/** Too frequent or not about one client: not part of any machine's timeline. */
const NOT_IN_TIMELINE = new Set<BootEvent['type']>(['tftp.progress', 'http.progress', 'service.state', 'host.warning', 'store.degraded', 'store.recovered']);

/** DHCP events that change state (the lease table) or are rare: never left out in a storm. */
const DHCP_ALWAYS_RECORDED = new Set<BootEvent['type']>(['dhcp.lease', 'dhcp.release', 'dhcp.decline', 'dhcp.nak', 'dhcp.error']);

/** Details are for reading later, not a dump: anything bigger is cut to its field names. */
const MAX_DETAILS_JSON = 4096;

/** MAC -> machine id answers kept between flushes. */
const MAX_REMEMBERED_MACS = 4096;

interface LiveTransfer {
  key: string;
  protocol: TransferProtocol;
  rowId?: number;
  mac?: string;
  ip?: string;
  file: string;
  options?: Record<string, unknown>;
  size?: number;
  bytesSent: number;
  retransmits: number;
  startedAt: number;
  progressDirty: boolean;
  progressWrittenAt: number;
}

interface PendingEvent {
  event: BootEvent;
  transfer?: LiveTransfer;
}

const asString = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const asCount = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);
const asObject = (v: unknown): Record<string, unknown> | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;

/** The transfer's own key when the event carries the serving run's id for it. */
export function transferIdKey(event: BootEvent, protocol: TransferProtocol): string | undefined {
  const id = event.transferId ?? event.requestId ?? event.id;
  return typeof id === 'string' || typeof id === 'number' ? `${protocol}:${id}` : undefined;
}

function transferKeyOf(event: BootEvent, protocol: TransferProtocol): string {
  // Without an id, one client fetching one file at a time is the best key there is.
  return transferIdKey(event, protocol) ?? `${protocol}:${event.ip ?? '?'}:${asString(event.file) ?? '?'}`;
}

/** The event's details as stored: serialised once here, not again by the repository. */
function eventDetailsJson(event: BootEvent): string {
  const { type: _type, time: _time, mac: _mac, ip: _ip, ...details } = event;
  const json = JSON.stringify(details);
  if (json.length <= MAX_DETAILS_JSON) return json;
  return JSON.stringify({ truncated: true, fields: Object.keys(details) });
}

export function attachStoreToBus(bus: EventBus, store: Store, options: AttachStoreOptions = {}): StoreBusAttachment {
  const clock = options.clock ?? store.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const warn = options.publish ?? bus.publish;
  const flushIntervalMs = options.flushIntervalMs ?? 250;
  const maxBufferedEvents = options.maxBufferedEvents ?? 128;
  const progressIntervalMs = options.progressIntervalMs ?? 1000;
  const retentionIntervalMs = options.retentionIntervalMs ?? 3600_000;
  const completeBootOnce = options.completeBootOnce ?? true;
  const retryIntervalMs = options.retryIntervalMs ?? 10_000;
  const maxDhcpEventsPerSecond = options.maxDhcpEventsPerSecond ?? 500;
  const minFreeBytes = options.minFreeBytes ?? 1024 * 1024;
  const freeBytes = options.freeBytes ?? ((folder: string) => checkDataFolderSpace(folder, 0).freeBytes);

  let pending: PendingEvent[] = [];
  const live = new Map<string, LiveTransfer>();
  // A cache (each hit is checked against the store, so dropping entries is safe), bounded
  // because a DISCOVER storm brings a new MAC with every packet.
  const machineIdByMac = new Map<string, number>();
  // Machines recorded or checked in the flush being written: sure to exist until it commits.
  const machineIdsThisFlush = new Map<string, number>();
  // Keys of transfers that ended recently: a progress event overtaken by the end must not start a ghost row.
  const recentlyFinished = new Set<string>();
  // mac -> imaging job and phase last recorded: its agent reports every second, the timeline keeps the steps.
  const imagingSteps = new Map<string, string>();
  let flushTimer: TimerHandle | undefined;
  let retentionTimer: TimerHandle | undefined;
  let retryTimer: TimerHandle | undefined;
  let degradation: RecorderDegradation | undefined;
  let droppedThisEpisode = 0;
  let batchBeingWritten = 0;
  let attached = true;
  const stats = { eventsSeen: 0, flushes: 0, rowsWritten: 0, eventsDropped: 0, dhcpEventsOverBudget: 0 };
  // The per-second DHCP budget: the second being counted, events recorded and left out in it.
  const storm = { second: 0, recorded: 0, overBudget: 0, inEpisode: false };
  let stormRows: { time: number; details: Record<string, unknown> }[] = [];

  /** False when this DHCP event is over the second's budget (it is counted instead). */
  function withinDhcpBudget(event: BootEvent): boolean {
    const second = Math.floor(event.time / 1000);
    if (second !== storm.second) closeStormSecond(second);
    if (storm.recorded < maxDhcpEventsPerSecond) {
      storm.recorded++;
      return true;
    }
    // Nothing of the event is kept: a storm must not promote garbage into V8's old space.
    storm.overBudget++;
    stats.dhcpEventsOverBudget++;
    return false;
  }

  function closeStormSecond(next: number): void {
    if (storm.overBudget > 0) {
      stormRows.push({ time: storm.second * 1000, details: { eventsNotRecorded: storm.overBudget, budgetPerSecond: maxDhcpEventsPerSecond } });
      if (!storm.inEpisode) {
        logger.warn(`DHCP storm: more than ${maxDhcpEventsPerSecond} DHCP events a second; history records that many each second and counts the rest (answers are not affected)`, { eventsNotRecorded: storm.overBudget });
      }
      storm.inEpisode = true;
      scheduleFlush(flushIntervalMs);
    } else if (next > storm.second + 1 || storm.recorded < maxDhcpEventsPerSecond) {
      storm.inEpisode = false;
    }
    storm.second = next;
    storm.recorded = 0;
    storm.overBudget = 0;
  }

  let flushDueAt = 0;
  const scheduleFlush = (ms: number) => {
    if (!attached) return;
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
  };

  const scheduleRetention = () => {
    if (!attached) return;
    retentionTimer = clock.setTimeout(() => {
      retentionTimer = undefined;
      guarded(() => store.applyRetention());
      scheduleRetention();
    }, retentionIntervalMs);
  };

  function degrade(err: unknown): void {
    if (degradation) return;
    const failure = classifyWriteFailure(err, store.path);
    const message = `Boot history is off: ${failure.problem} (${failure.code}). Booting goes on. To fix: ${failure.fix}; history resumes by itself once writes succeed again.`;
    degradation = { ...failure, since: clock.now(), message };
    droppedThisEpisode = pending.length + batchBeingWritten;
    batchBeingWritten = 0;
    logger.error(message, { code: failure.code, path: store.path });
    // Nothing waits in memory while the disk is full: a long outage must not grow the host.
    pending = [];
    stormRows = [];
    live.clear();
    machineIdByMac.clear();
    if (flushTimer) clock.clearTimeout(flushTimer);
    flushTimer = undefined;
    scheduleRetry();
    warn('store.degraded', { message, source: 'store', code: failure.code, kind: failure.kind, fix: failure.fix, path: store.path, folder: failure.folder });
  }

  const scheduleRetry = () => {
    if (!attached || retryTimer) return;
    retryTimer = clock.setTimeout(() => {
      retryTimer = undefined;
      tryRecover();
    }, retryIntervalMs);
  };

  /**
   * A probe write: the gap itself goes into the history (a row that belongs to no machine),
   * and transfers that were running when history went off are closed, since their ends
   * were not recorded. A commit that needs new pages is the only true test of free space.
   */
  function tryRecover(): void {
    if (!degradation || !attached || !store.open) return;
    const episode = degradation;
    const now = clock.now();
    const free = episode.kind === 'disk-full' && store.path !== ':memory:' ? freeBytes(episode.folder) : undefined;
    if (free !== undefined && free < minFreeBytes) {
      scheduleRetry();
      return;
    }
    try {
      store.transaction(() => {
        store.bootEvents.add({ time: now, type: 'store.recovered', details: { offSince: episode.since, code: episode.code, eventsDropped: droppedThisEpisode } });
        if (store.sharedWithPid === undefined) store.transfers.markInterrupted(now, 'history was off (the database could not be written) when it ended');
      });
    } catch (err) {
      logger.debug('the database still cannot be written; history stays off', { code: (err as { code?: string }).code });
      scheduleRetry();
      return;
    }
    degradation = undefined;
    stats.eventsDropped += droppedThisEpisode;
    const message = `Boot history is recorded again: ${store.path} takes writes again (history was off for ${Math.round((now - episode.since) / 1000)} s, ${droppedThisEpisode} events not recorded).`;
    logger.info(message, { path: store.path });
    warn('store.recovered', { message, source: 'store', path: store.path, offForMs: now - episode.since, eventsDropped: droppedThisEpisode });
    droppedThisEpisode = 0;
  }

  function guarded(write: () => void): void {
    if (degradation || !store.open) return;
    try {
      write();
    } catch (err) {
      degrade(err);
    }
  }

  function liveFor(event: BootEvent, protocol: TransferProtocol, pendingStart: boolean): LiveTransfer {
    const key = transferKeyOf(event, protocol);
    let transfer = live.get(key);
    if (!transfer) {
      transfer = {
        key,
        protocol,
        file: asString(event.file) ?? asString(event.path) ?? '?',
        bytesSent: 0,
        retransmits: 0,
        startedAt: event.time,
        progressDirty: false,
        progressWrittenAt: event.time,
      };
      live.set(key, transfer);
      // A progress or end event whose start was missed (attached mid-transfer) still gets a row.
      if (!pendingStart) pending.push({ event: { ...event, type: `${protocol}.start` as BootEvent['type'] }, transfer });
    }
    transfer.mac ??= event.mac ? normalizeMac(event.mac) : undefined;
    transfer.ip ??= asString(event.ip);
    transfer.options = asObject(event.options) ?? transfer.options;
    transfer.size = asCount(event.size) ?? asCount(event.tsize) ?? transfer.size;
    transfer.bytesSent = asCount(event.bytes) ?? asCount(event.bytesSent) ?? transfer.bytesSent;
    transfer.retransmits = asCount(event.retransmits) ?? transfer.retransmits;
    return transfer;
  }

  const listener = (event: BootEvent): void => {
    if (!attached) return;
    if (degradation) {
      if (!NOT_IN_TIMELINE.has(event.type)) droppedThisEpisode++;
      return;
    }
    try {
      stats.eventsSeen++;
      if (event.type === 'dhcp.storm') {
        // The DHCP thread's count of per-request events it did not publish: this second's surplus.
        const second = Math.floor(event.time / 1000);
        if (second > storm.second) closeStormSecond(second);
        const left = Number(event.eventsNotPublished) || 0;
        storm.overBudget += left;
        stats.dhcpEventsOverBudget += left;
        if (left > 0) scheduleFlush(Math.max(0, (storm.second + 1) * 1000 - clock.now()));
        return;
      }
      if (event.type === 'imaging.progress' && event.mac) {
        const step = `${String(event.job)} ${String(event.phase)}`;
        if (imagingSteps.get(event.mac) === step) return;
        imagingSteps.set(event.mac, step);
        if (imagingSteps.size > 10_000) imagingSteps.delete(imagingSteps.keys().next().value!);
      }
      const dot = event.type.indexOf('.');
      const service = dot < 0 ? event.type : event.type.slice(0, dot);
      const what = dot < 0 ? '' : event.type.slice(dot + 1);
      const protocol = service === 'tftp' || service === 'http' ? (service as TransferProtocol) : undefined;
      if (protocol && what === 'progress') {
        if (recentlyFinished.has(transferKeyOf(event, protocol))) return;
        const transfer = liveFor(event, protocol, false);
        transfer.progressDirty = true;
      } else if (protocol && what === 'start') {
        live.delete(transferKeyOf(event, protocol)); // a reused id starts a new row
        recentlyFinished.delete(transferKeyOf(event, protocol));
        pending.push({ event, transfer: liveFor(event, protocol, true) });
      } else if (protocol && FINISHING[event.type]) {
        const transfer = liveFor(event, protocol, false);
        live.delete(transfer.key);
        recentlyFinished.add(transfer.key);
        if (recentlyFinished.size > 1000) recentlyFinished.delete(recentlyFinished.values().next().value!);
        pending.push({ event, transfer });
      } else if (!NOT_IN_TIMELINE.has(event.type) || (event.type === 'host.warning' && event.mac)) {
        // A host warning about one machine (its boot once was used) belongs to its timeline.
        const dhcpSide = service === 'dhcp' || service === 'proxy' || service === 'pxe';
        if (dhcpSide && maxDhcpEventsPerSecond > 0 && !DHCP_ALWAYS_RECORDED.has(event.type) && !withinDhcpBudget(event)) return;
        pending.push({ event });
      }
      if (pending.length >= maxBufferedEvents) scheduleFlush(0);
      else if (pending.length > 0 || live.size > 0) scheduleFlush(flushIntervalMs);
    } catch (err) {
      degrade(err);
    }
  };

  let unsubscribe: (() => void) | undefined = bus.subscribe(listener);
  function stopListening(): void {
    unsubscribe?.();
    unsubscribe = undefined;
    if (flushTimer) clock.clearTimeout(flushTimer);
    if (retentionTimer) clock.clearTimeout(retentionTimer);
    if (retryTimer) clock.clearTimeout(retryTimer);
    flushTimer = retentionTimer = retryTimer = undefined;
    attached = false;
  }

  function rememberMachineId(mac: string, id: number): number {
    machineIdsThisFlush.set(mac, id);
    machineIdByMac.delete(mac); // re-inserted as the newest
    machineIdByMac.set(mac, id);
    if (machineIdByMac.size > MAX_REMEMBERED_MACS) machineIdByMac.delete(machineIdByMac.keys().next().value!);
    return id;
  }

  function machineIdFor(event: BootEvent): number | undefined {
    const mac = event.mac ? normalizeMac(event.mac) : undefined;
    if (!mac) return undefined;
    const thisFlush = machineIdsThisFlush.get(mac);
    if (event.type === 'dhcp.discover') {
      // DISCOVERs are rare (a few per boot) and carry what identifies the machine: always recorded.
      const seen = {
        uuid: asString(event.uuid),
        arch: typeof event.arch === 'number' || typeof event.arch === 'string' ? event.arch : undefined,
        vendorClass: asString(event.vendorClass),
        ip: asString(event.ip) ?? asString(event.requestedIp) ?? asString(event.ciaddr),
        time: event.time,
      };
      // The same MAC again in this flush (a client repeating its DISCOVER): the MAC is known
      // now, so recording it is the update alone.
      if (thisFlush !== undefined) {
        store.machines.touchSeenById(thisFlush, seen);
        return thisFlush;
      }
      return rememberMachineId(mac, store.machines.recordSeen({ mac, ...seen }).id);
    }
    if (thisFlush !== undefined) return thisFlush;
    const known = machineIdByMac.get(mac);
    if (known !== undefined && store.machines.exists(known)) return rememberMachineId(mac, known);
    return rememberMachineId(mac, store.machines.recordSeen({ mac, ip: asString(event.ip), time: event.time }).id);
  }

  function writePending(batch: PendingEvent[], now: number): void {
    if (stormRows.length > 0) {
      for (const row of stormRows) store.bootEvents.add({ time: row.time, type: 'dhcp.storm', details: row.details });
      stormRows = [];
    }
    for (const { event, transfer } of batch) {
      const machineId = machineIdFor(event);
      if (transfer && transfer.rowId === undefined) {
        transfer.rowId = store.transfers.start({
          transferKey: transfer.key,
          machineId,
          mac: transfer.mac,
          ip: transfer.ip,
          protocol: transfer.protocol,
          file: transfer.file,
          options: transfer.options,
          size: transfer.size,
          startedAt: transfer.startedAt,
        });
        transfer.progressDirty = transfer.bytesSent > 0;
        transfer.progressWrittenAt = now;
      }
      const outcome = FINISHING[event.type];
      if (transfer && outcome) {
        store.transfers.finish(transfer.rowId!, {
          outcome,
          reason: asString(event.reason) ?? (asString(event.error) ?? null),
          bytesSent: transfer.bytesSent,
          retransmits: transfer.retransmits,
          size: transfer.size,
          endedAt: event.time,
        });
        transfer.progressDirty = false;
      }
      if (event.type === 'dhcp.lease' && event.mac) {
        const ip = asString(event.yiaddr) ?? asString(event.ip);
        const seconds = asCount(event.leaseSeconds);
        if (ip && seconds !== undefined) store.leases.upsert({ mac: event.mac, ip, hostname: asString(event.hostname), expiresAt: event.time + seconds * 1000 });
      } else if (event.type === 'dhcp.release' && event.mac) {
        store.leases.release(event.mac);
      }
      if (machineId !== undefined || event.ip) {
        store.bootEvents.add({
          machineId,
          mac: event.mac ? normalizeMac(event.mac) : null,
          ip: asString(event.ip),
          time: event.time,
          type: event.type,
          transferId: transfer?.rowId,
          detailsJson: eventDetailsJson(event),
        });
      }
      if (completeBootOnce && outcome === 'done' && event.mac && transfer) {
        completeBootOnceIfLastFile(store, { mac: event.mac, file: transfer.file, time: event.time });
      }
    }
    for (const transfer of live.values()) {
      if (!transfer.progressDirty || transfer.rowId === undefined || now - transfer.progressWrittenAt < progressIntervalMs) continue;
      store.transfers.progress(transfer.rowId, {
        bytesSent: transfer.bytesSent,
        retransmits: transfer.retransmits,
        size: transfer.size,
        options: transfer.options,
      });
      transfer.progressDirty = false;
      transfer.progressWrittenAt = now;
    }
  }

  /** Writes up to `maxEvents` waiting events (all by default) and the progress that is due. */
  function flush(maxEvents = Infinity): void {
    if (flushTimer) {
      clock.clearTimeout(flushTimer);
      flushTimer = undefined;
    }
    // A storm's last second is summed up once it is over, even if no DHCP event follows.
    const second = Math.floor(clock.now() / 1000);
    if (storm.overBudget > 0 && second > storm.second) closeStormSecond(second);
    guarded(() => {
      const batch = pending.length > maxEvents ? pending.splice(0, maxEvents) : pending;
      if (batch === pending) pending = [];
      const now = clock.now();
      const before = (store.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
      batchBeingWritten = batch.length;
      try {
        store.transaction(() => writePending(batch, now));
      } finally {
        machineIdsThisFlush.clear();
      }
      batchBeingWritten = 0;
      stats.rowsWritten += (store.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n - before;
      stats.flushes++;
    });
    if (degradation) return;
    if (storm.overBudget > 0) scheduleFlush((storm.second + 1) * 1000 - clock.now());
    if (pending.length > 0) scheduleFlush(0);
    // Progress that was not due yet still has to reach the disk later.
    else if ([...live.values()].some((t) => t.progressDirty)) scheduleFlush(flushIntervalMs);
  }

  scheduleRetention();

  const detach = () => {
    if (attached) flush();
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
      return degradation !== undefined;
    },
    get degradation() {
      return degradation && { ...degradation };
    },
    stats: () => ({ ...stats, transfersRunning: live.size, degraded: degradation !== undefined }),
  };
}
