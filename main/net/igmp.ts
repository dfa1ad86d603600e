// IGMP for a host that streams multicast across switches it does not manage: the general
// query an IGMP querier sends, and the rule deciding when Bootbench sends it. A switch with
// IGMP snooping forwards a group only to ports whose PCs reported membership, and forgets a
// port when its membership is not refreshed (260 s by default, RFC 2236 section 8.4); the
// reports are answers to a querier's queries, so on a segment without a querier the stream
// stops a few minutes in. Pure: no socket here (igmp-querier.ts has it).
import { internetChecksum } from './icmp-probe.js';

export const IGMP_MEMBERSHIP_QUERY = 0x11;
export const ALL_SYSTEMS = '224.0.0.1';
/** RFC 2113: the Router Alert IP option (type 148, length 4, value 0), which RFC 2236 section 2 asks IGMP messages to carry. */
export const ROUTER_ALERT = Buffer.from([0x94, 0x04, 0x00, 0x00]);

/**
 * IGMPv2 general query (RFC 2236 section 2), 8 bytes, to 224.0.0.1 with TTL 1:
 *
 *   0        1               2                 4
 *   | 0x11   | max resp time | checksum        |
 *   | group address 0.0.0.0 (general query)    |
 *
 * Max resp time is in tenths of a second. Version 2 rather than 3: it is what snooping
 * switches' own queriers send by default (Linux bridge, most managed switches), every
 * snooping switch understands it, and IGMPv3 hosts answer it (RFC 3376 section 7).
 */
export function encodeGeneralQuery(maxResponseMs: number): Buffer {
  const buf = Buffer.alloc(8);
  buf[0] = IGMP_MEMBERSHIP_QUERY;
  buf[1] = Math.max(1, Math.min(255, Math.round(maxResponseMs / 100)));
  buf.writeUInt16BE(internetChecksum(buf), 2);
  return buf;
}

export interface HeardIgmp {
  type: number;
  /** the IPv4 source address */
  from: string;
  /** 2 or 3 for a membership query (by length, RFC 3376 section 7.1); undefined otherwise */
  version?: 1 | 2 | 3;
  group: string;
}

/**
 * An IGMP message as a raw IPv4 socket hands it over: the IP header (its length in the
 * first byte's low nibble, in 32-bit words) and then the IGMP message. Undefined for a
 * datagram too short, not IGMP, or with a wrong checksum.
 */
export function decodeIgmpDatagram(datagram: Buffer, length = datagram.length): HeardIgmp | undefined {
  if (length < 20 || datagram[0] >> 4 !== 4) return undefined;
  const headerLength = (datagram[0] & 0x0f) * 4;
  if (datagram[9] !== 2 || length < headerLength + 8) return undefined;
  const totalLength = Math.min(length, datagram.readUInt16BE(2) || length);
  const message = datagram.subarray(headerLength, totalLength);
  if (message.length < 8 || internetChecksum(message) !== 0) return undefined;
  const from = `${datagram[12]}.${datagram[13]}.${datagram[14]}.${datagram[15]}`;
  const type = message[0];
  const group = `${message[4]}.${message[5]}.${message[6]}.${message[7]}`;
  if (type !== IGMP_MEMBERSHIP_QUERY) return { type, from, group };
  // RFC 3376 section 7.1: 8 bytes with max resp 0 is v1, 8 bytes otherwise v2, 12 or more v3.
  const version = message.length >= 12 ? 3 : message[1] === 0 ? 1 : 2;
  return { type, from, group, version };
}

const ipNumber = (address: string) => address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);

export interface QuerierTimings {
  /** between our general queries; well under the membership interval of any switch (260 s by default) */
  queryIntervalMs: number;
  /** the max response time our queries carry; RFC 2236 requires it shorter than the query interval */
  maxResponseMs: number;
  /** queries sent at the start, `startupIntervalMs` apart, so a lost one does not cost a whole interval */
  startupCount: number;
  startupIntervalMs: number;
  /** how long another querier counts as present after its last query (RFC 2236 section 8.5: 2 x 125 s + 10 s / 2) */
  otherQuerierPresentMs: number;
}

export const DEFAULT_QUERIER_TIMINGS: QuerierTimings = {
  queryIntervalMs: 15_000,
  maxResponseMs: 10_000,
  startupCount: 2,
  startupIntervalMs: 2_000,
  otherQuerierPresentMs: 255_000,
};

export type QuerierRole =
  /** not asked to query (no stream) */
  | { role: 'idle'; other?: string }
  /** streaming, and we send the queries */
  | { role: 'querying' }
  /** streaming, and another querier keeps the switches' memberships fresh */
  | { role: 'quiet'; other: string };

/**
 * When Bootbench queries. It is not a router, so it is polite before it starts: a stream
 * that begins while another querier was heard recently sends nothing. Once querying it
 * follows RFC 2236 section 3: a query from a lower address (0.0.0.0, a switch's own
 * querier without an address, included) makes it a non-querier until that querier has been
 * silent for the other-querier-present interval; a higher address is a router that yields
 * to us, as the RFC has it, and is ignored.
 */
export class QuerierElection {
  private active = false;
  private lastOther: { from: string; at: number } | undefined;
  private quietUntil = 0;
  private nextQueryAt = 0;
  private startupLeft = 0;
  sent = 0;

  constructor(
    private readonly ownAddress: string,
    readonly timings: QuerierTimings = DEFAULT_QUERIER_TIMINGS,
  ) {}

  /** A membership query was heard (any version) from `from`. Our own are ignored. */
  heard(from: string, now: number): void {
    if (from === this.ownAddress) return;
    this.lastOther = { from, at: now };
    const lower = ipNumber(from) < ipNumber(this.ownAddress);
    if (!this.active || lower) this.quietUntil = now + this.timings.otherQuerierPresentMs;
  }

  start(now: number): void {
    if (this.active) return;
    this.active = true;
    this.startupLeft = this.timings.startupCount;
    this.nextQueryAt = now;
  }

  stop(): void {
    this.active = false;
  }

  /** Whether a general query is due now. */
  due(now: number): boolean {
    return this.active && now >= this.quietUntil && now >= this.nextQueryAt;
  }

  /** Records a query sent at `now`, scheduling the next one. */
  queried(now: number): void {
    this.sent += 1;
    if (this.startupLeft > 0) this.startupLeft -= 1;
    this.nextQueryAt = now + (this.startupLeft > 0 ? this.timings.startupIntervalMs : this.timings.queryIntervalMs);
  }

  /** When `due` may next turn true; undefined while idle. */
  wakeAt(now: number): number | undefined {
    if (!this.active) return undefined;
    return Math.max(now, this.quietUntil, this.nextQueryAt);
  }

  role(now: number): QuerierRole {
    const other = this.lastOther && now - this.lastOther.at < this.timings.otherQuerierPresentMs ? this.lastOther.from : undefined;
    if (!this.active) return other ? { role: 'idle', other } : { role: 'idle' };
    if (now < this.quietUntil && other) return { role: 'quiet', other };
    return { role: 'querying' };
  }
}
