// Option negotiation for a read request: RFC 2347 (OACK), RFC 2348 (blksize),
// RFC 2349 (timeout, tsize), RFC 7440 (windowsize), RFC 2090 (multicast). Pure.
import type { TftpOption } from './packet.js';

export interface TftpLimits {
  /** Largest blksize we accept: the interface MTU - 32 (IPv4 20 + UDP 8 + TFTP 4). */
  maxBlksize: number;
  /** Largest windowsize we accept (RFC 7440 lets the server answer less than asked). */
  maxWindowsize: number;
  /**
   * Largest window in bytes (windowsize x blksize); default 1 MiB. Each transfer keeps two
   * chunks of at least one window in memory, so 64 blocks of 65464 bytes for 50 clients
   * would be 400 MiB.
   */
  maxWindowBytes?: number;
  /** Whether this server offers RFC 2090 multicast (off unless configured). */
  multicast?: boolean;
}

export interface IgnoredOption {
  name: string;
  value: string;
  reason: string;
}

export interface NegotiatedTransfer {
  /** Options to acknowledge, in the client's order; empty = answer with DATA 1, no OACK (RFC 2347 §2). */
  oack: TftpOption[];
  blksize: number;
  windowsize: number;
  /** Negotiated retransmit timeout (RFC 2349 §2), when the client asked for one. */
  timeoutMs?: number;
  /** The client asked for tsize: an ERROR right after our OACK is then a size probe. */
  tsizeRequested: boolean;
  /** Options left out of the OACK, and why (for the log). */
  ignored: IgnoredOption[];
  /** What the client asked for, as sent (for events). */
  requested: Record<string, string>;
  /**
   * RFC 2090: the client asked for multicast and the server offers it. The `multicast`
   * entry of the OACK (group, port, master flag) is the session's to write, so it is not in
   * `oack`; windowsize is left out (RFC 2090 transfers are lock-step: each ACK asks for one block).
   */
  multicast?: boolean;
}

const DECIMAL = /^[0-9]{1,10}$/;

export const DEFAULT_BLKSIZE = 512; // RFC 1350
const MIN_BLKSIZE = 8; // RFC 2348 §2
const MAX_BLKSIZE = 65464; // RFC 2348 §2

export function negotiateReadOptions(options: TftpOption[], fileSize: number | undefined, limits: TftpLimits): NegotiatedTransfer {
  const result: NegotiatedTransfer = { oack: [], blksize: DEFAULT_BLKSIZE, windowsize: 1, tsizeRequested: false, ignored: [], requested: {} };
  const seen = new Set<string>();
  for (const { name, value } of options) {
    if (seen.has(name)) {
      // RFC 2347 does not define repeats; the first one is what a sane client meant.
      result.ignored.push({ name, value, reason: 'repeated option (first one used)' });
      continue;
    }
    seen.add(name);
    result.requested[name] = value;
    const numeric = DECIMAL.test(value) ? Number(value) : NaN;
    switch (name) {
      case 'blksize': {
        // RFC 2348 §2: 8..65464. Larger requests are clamped to what the link carries
        // without IP fragmentation (firmware stacks often drop fragments).
        if (!(numeric >= MIN_BLKSIZE)) {
          result.ignored.push({ name, value, reason: `blksize must be a number from ${MIN_BLKSIZE} to ${MAX_BLKSIZE}` });
          break;
        }
        result.blksize = Math.min(numeric, MAX_BLKSIZE, limits.maxBlksize);
        result.oack.push({ name, value: String(result.blksize) });
        break;
      }
      case 'tsize': {
        // RFC 2349 §2: the client sends 0 in an RRQ; we answer the real size, or leave
        // the option out when the size is unknown.
        if (Number.isNaN(numeric)) {
          result.ignored.push({ name, value, reason: 'tsize must be a number' });
          break;
        }
        result.tsizeRequested = true;
        if (fileSize !== undefined) result.oack.push({ name, value: String(fileSize) });
        break;
      }
      case 'timeout': {
        // RFC 2349 §2: 1..255 seconds, acknowledged unchanged.
        if (!(numeric >= 1 && numeric <= 255)) {
          result.ignored.push({ name, value, reason: 'timeout must be 1 to 255 seconds' });
          break;
        }
        result.timeoutMs = numeric * 1000;
        result.oack.push({ name, value: String(numeric) });
        break;
      }
      case 'windowsize': {
        // RFC 7440 §3: 1..65535; the server may answer a smaller value.
        if (!(numeric >= 1 && numeric <= 65535)) {
          result.ignored.push({ name, value, reason: 'windowsize must be 1 to 65535' });
          break;
        }
        result.windowsize = Math.min(numeric, limits.maxWindowsize);
        result.oack.push({ name, value: String(result.windowsize) });
        break;
      }
      case 'multicast': {
        // RFC 2090: the value is empty in a request; any value is read as the same request.
        if (!limits.multicast) {
          result.ignored.push({ name, value, reason: 'multicast is off on this server' });
          break;
        }
        result.multicast = true;
        break;
      }
      default:
        // RFC 2347 §2: unknown options are left out of the OACK.
        result.ignored.push({ name, value, reason: 'unsupported option' });
    }
  }
  if (result.multicast) {
    const at = result.oack.findIndex((o) => o.name === 'windowsize');
    if (at >= 0) {
      result.ignored.push({ name: 'windowsize', value: result.requested.windowsize, reason: 'not with multicast (RFC 2090 is lock-step)' });
      result.oack.splice(at, 1);
      result.windowsize = 1;
    }
  }
  // Bound the window in bytes once blksize is known (options may come in any order).
  const windowEntry = result.oack.find((o) => o.name === 'windowsize');
  if (windowEntry) {
    const byBytes = Math.max(1, Math.floor((limits.maxWindowBytes ?? 1024 * 1024) / result.blksize));
    if (result.windowsize > byBytes) {
      result.windowsize = byBytes;
      windowEntry.value = String(byBytes);
    }
  }
  return result;
}
