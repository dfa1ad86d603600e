// What the Live screen shows per transfer: only what the protocol has (HTTP has no blocks,
// windows or resends), and finished transfers with their rate and how far they got.
import type { TransferRecord, TransferRow } from '../../../preload/api.js';
import { formatBytes } from './format.js';

const NOT_APPLICABLE = '–';

/** TFTP block size and window; HTTP has neither. */
export function blockLabel(row: Pick<TransferRow, 'protocol' | 'blksize' | 'windowsize'>): string {
  return row.protocol === 'tftp' ? `${row.blksize ?? 512} / ${row.windowsize ?? 1}` : NOT_APPLICABLE;
}

/** TFTP resends; TCP resends for HTTP are the kernel's and not seen here. */
export function resentLabel(row: Pick<TransferRow, 'protocol' | 'retransmits'>): string {
  return row.protocol === 'tftp' ? String(row.retransmits) : NOT_APPLICABLE;
}

/** Average bytes per second over the whole transfer, when its duration is known. */
export function recordRate(record: Pick<TransferRecord, 'bytes' | 'durationMs'>): number {
  return record.durationMs !== undefined && record.durationMs > 0 && record.bytes > 0 ? (record.bytes * 1000) / record.durationMs : 0;
}

/** A whole file: its size; anything that stopped early: how far it got, of how much. */
export function recordSize(record: Pick<TransferRecord, 'outcome' | 'bytes' | 'size'>): string {
  if (record.outcome === 'probe') return formatBytes(record.size);
  if (record.outcome === 'done' && (record.size === undefined || record.bytes >= record.size)) return formatBytes(record.bytes);
  return record.size === undefined ? formatBytes(record.bytes) : `${formatBytes(record.bytes)} of ${formatBytes(record.size)}`;
}

/**
 * Why it ended. A size probe ends with the firmware's own error text (EDK2: "User aborted
 * the transfer"), which reads like a failure but is the normal first step of its download.
 */
export function recordReason(record: Pick<TransferRecord, 'outcome' | 'reason'>): string {
  if (record.outcome === 'probe') return 'the firmware asked the size first, as it does before downloading';
  return record.reason ?? '';
}
