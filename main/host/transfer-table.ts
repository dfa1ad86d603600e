// The transfers running now, kept from the TFTP and HTTP servers' events: what the UI's live
// view asks for (`transfers:active`) when it opens, before any progress event reaches it.
import { isTransferEvent, transferProtocolOf, type BootEvent } from '../core/index.js';
import type { TransferRow } from '../../preload/api.js';

export class TransferTable {
  private readonly rows = new Map<string, TransferRow>();

  /** Feeds one bus event; a transfer's start and progress update its row, its end removes it. */
  observe(event: BootEvent): void {
    if (!isTransferEvent(event) || event.transferId === undefined) return;
    const id = event.transferId;
    if (!event.type.endsWith('.start') && !event.type.endsWith('.progress')) {
      this.rows.delete(id);
      return;
    }
    const previous = this.rows.get(id);
    const startedAt = previous?.startedAt ?? event.time;
    const bytes = event.bytes ?? previous?.bytes ?? 0;
    // A publisher that reports no rate (files read from inside an ISO) still gets one: the average so far.
    const rate = event.rate ?? (event.time > startedAt ? (bytes * 1000) / (event.time - startedAt) : (previous?.rate ?? 0));
    this.rows.set(id, {
      id,
      mac: event.mac ?? previous?.mac,
      ip: event.ip ?? previous?.ip ?? '',
      file: event.file ?? previous?.file ?? '',
      protocol: transferProtocolOf(event.type),
      size: event.size ?? previous?.size,
      bytes,
      rate,
      blksize: event.options?.blksize ?? previous?.blksize,
      windowsize: event.options?.windowsize ?? previous?.windowsize,
      retransmits: event.retransmits ?? previous?.retransmits ?? 0,
      startedAt,
    });
  }

  /** Copies of the running transfers' rows. */
  list(): TransferRow[] {
    return [...this.rows.values()].map((t) => ({ ...t }));
  }

  /** The services stopped: nothing is running any more. */
  clear(): void {
    this.rows.clear();
  }
}
