// Writes one batch of events into the store, inside the caller's transaction: the machine each
// belongs to, the timeline row, transfer rows started and finished, leases, the progress that
// is due, and the end of a boot once when a machine fetched its entry's last file.
import { transferOutcomeOf, type BootEvent, normalizeMac } from '../core/index.js';
import { completeBootOnceIfLastFile } from './boot-assignment.js';
import type { StormRow } from './dhcp-storm.js';
import type { MachineIds } from './machine-ids.js';
import type { Store } from './open-store.js';
import type { PendingEvent, TransferTracker } from './transfer-tracker.js';

/** Details are for reading later, not a dump: anything bigger is cut to its field names. */
const MAX_DETAILS_JSON = 4096;

export interface EventWriterContext {
  store: Store;
  machines: MachineIds;
  transfers: TransferTracker;
  /** A running transfer's progress is written at most this often. */
  progressIntervalMs: number;
  /** End boot-once assignments when a machine fetched its entry's last file. */
  completeBootOnce: boolean;
}

/** The event's fields as stored: serialised once here, not again by the repository. */
function eventDetailsJson(event: BootEvent): string {
  const { type: _type, time: _time, mac: _mac, ip: _ip, ...details } = event;
  const json = JSON.stringify(details);
  if (json.length <= MAX_DETAILS_JSON) return json;
  return JSON.stringify({ truncated: true, fields: Object.keys(details) });
}

export function writeEvents(ctx: EventWriterContext, batch: PendingEvent[], stormRows: StormRow[], now: number): void {
  const { store } = ctx;
  for (const row of stormRows) store.bootEvents.add({ time: row.time, type: 'dhcp.storm', details: row.details });
  for (const { event, transfer } of batch) {
    const machineId = ctx.machines.idFor(event);
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
    const outcome = transferOutcomeOf(event.type);
    if (transfer && outcome && outcome !== 'refused') {
      store.transfers.finish(transfer.rowId!, {
        outcome,
        reason: ('reason' in event && event.reason) || null,
        bytesSent: transfer.bytesSent,
        retransmits: transfer.retransmits,
        size: transfer.size,
        endedAt: event.time,
      });
      transfer.progressDirty = false;
    }
    if (event.type === 'dhcp.lease' && event.mac) {
      const ip = event.yiaddr || event.ip;
      if (ip && event.leaseSeconds !== undefined) store.leases.upsert({ mac: event.mac, ip, expiresAt: event.time + event.leaseSeconds * 1000 });
    } else if (event.type === 'dhcp.release' && event.mac) {
      store.leases.release(event.mac);
    }
    // A wake for a MAC not in the machine list is kept by its MAC: the timeline of that MAC shows it.
    if (machineId !== undefined || event.ip || event.type === 'wake.sent') {
      store.bootEvents.add({
        machineId,
        mac: event.mac ? normalizeMac(event.mac) : null,
        ip: event.ip || undefined,
        time: event.time,
        type: event.type,
        transferId: transfer?.rowId,
        detailsJson: eventDetailsJson(event),
      });
    }
    if (ctx.completeBootOnce && outcome === 'done' && event.mac && transfer) {
      completeBootOnceIfLastFile(store, { mac: event.mac, file: transfer.file, time: event.time });
    }
  }
  for (const transfer of ctx.transfers.dueProgress(now, ctx.progressIntervalMs)) {
    store.transfers.progress(transfer.rowId!, {
      bytesSent: transfer.bytesSent,
      retransmits: transfer.retransmits,
      size: transfer.size,
      options: transfer.options,
    });
    transfer.progressDirty = false;
    transfer.progressWrittenAt = now;
  }
}
