// Numbers and times as a technician reads them.
import type { TransferRow } from '../../../preload/api.js';

/** Binary units (1 KiB = 1024 bytes), named as such: the same figures `ls -lh` shows. */
export function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 9.95 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return bytesPerSecond > 0 ? `${formatBytes(bytesPerSecond)}/s` : '–';
}

/** Seconds left, or undefined when the size or the rate is unknown. */
export function etaSeconds(row: Pick<TransferRow, 'size' | 'bytes' | 'rate'>): number | undefined {
  if (row.size === undefined || row.rate <= 0) return undefined;
  return Math.max(0, (row.size - row.bytes) / row.rate);
}

export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '–';
  if (seconds < 1) return '<1 s';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s.toString().padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${(m % 60).toString().padStart(2, '0')} min`;
}

/** 0..1, or undefined when the size is unknown. */
export function fraction(row: Pick<TransferRow, 'size' | 'bytes'>): number | undefined {
  if (!row.size) return undefined;
  return Math.min(1, Math.max(0, row.bytes / row.size));
}

export function formatClock(time: number): string {
  const d = new Date(time);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => n.toString().padStart(2, '0')).join(':');
}

export function formatAgo(time: number | undefined, now: number): string {
  if (time === undefined) return 'never';
  const s = Math.max(0, Math.round((now - time) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(time).toLocaleDateString();
}

function ipToNumber(ip: string): number {
  return ip.split('.').reduce((n, p) => n * 256 + Number(p), 0);
}
function numberToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/**
 * A pool proposal for full DHCP mode inside the NIC's subnet, leaving out the NIC's own
 * address and the network's first addresses (routers and switches usually sit there).
 */
export function suggestPool(address: string, prefixLength: number): { first: string; last: string } | undefined {
  if (prefixLength < 8 || prefixLength > 30) return undefined;
  const size = 2 ** (32 - prefixLength);
  const own = ipToNumber(address);
  const network = own - (own % size);
  const highest = network + size - 2; // below the broadcast address
  const span = Math.min(99, Math.floor(size / 2));
  let first = network + Math.max(2, Math.round((size * 100) / 256));
  let last = Math.min(highest, first + span);
  if (own >= first && own <= last) {
    if (own + 1 <= highest) {
      first = own + 1;
      last = Math.min(highest, first + span);
    } else {
      last = own - 1;
      first = Math.max(network + 1, last - span);
    }
  }
  if (first > last) return undefined;
  return { first: numberToIp(first), last: numberToIp(last) };
}
