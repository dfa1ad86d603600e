// What the image stream sends next and how fast: a pure state machine fed with the
// receivers' feedback and a clock, so pacing and rate are unit-testable without sockets.
//
// Pacing: receivers report the chunk they write next; the stream stays within their window
// (the chunks each keeps ahead) of the position that at least half of them have reached, or
// of a slower receiver's that reads the stream without loss (a busy CPU, a slow disk: what it
// misses it would fetch by HTTP, so waiting for it saves the host's egress), as long as it
// is still within the stream's reach. Such waiting is bounded: it may hold the stream for at
// most HOLD_SHARE of its time, beyond that the room goes on and the slow PC repairs. A PC
// whose lag comes with loss (a slow or lossy port) never holds it: waiting would not cure
// its loss. A PC slower than half the room that is not held for falls out of its window and
// repairs by HTTP.
// Rate: additive steps are too slow for a 1 GbE start from a conservative rate, so until the
// first loss it doubles each interval (a slow start, as TCP's). On loss it goes to what the
// median receiver got per second in that interval (its received count over the time between
// its reports), a little below: that is what the path carries, where a fixed fraction of the
// sending rate would undershoot a fast path and still overshoot a slow one. Then it grows by a
// quarter while far below that rate, by 1% within 10% of it (an overshoot there loses little
// and is seen within an interval or two), by a tenth beyond, and forgets it 50% above it (the
// path has grown). Loss between 0.5% and 2% counts only right after growth: without it, it
// may be a lossy segment's own, which a lower rate does not cure. The median, not the worst:
// one lossy port must not slow the room; loss at most receivers means the shared path (the
// host's NIC, the switch) is full.
// Start: a receiver is ready once it is heard (its feedback, or its asking the host over HTTP
// whether the stream has started). The stream waits for the technician's Go, or for its rule:
// `count` PCs ready (all of them by default) or `afterMs` after the first, whichever is first.
// Until it starts the receivers wait for it; once it has, a PC that comes later joins it.

import { DATA_HEADER_BYTES, DATA_PAYLOAD } from './multicast-datagram.js';

/**
 * What a datagram costs on the wire beyond its UDP payload: UDP 8, IPv4 20, Ethernet header 14
 * and FCS 4, preamble 8, inter-frame gap 12. The rate (and --max-rate) counts these, so a
 * 1 Gbit/s cap fits a 1 GbE port instead of overrunning it by about 4.5%.
 */
export const WIRE_OVERHEAD = 66;

export interface ScheduleOptions {
  /** chunks in the image, in manifest order */
  chunks: number;
  /** the job's PCs (MACs, lower case) */
  expected: Iterable<string>;
  /** when the stream starts; default: when every expected PC is ready, or a minute after the first */
  start?: StartRule;
  /** bytes per second */
  startRate?: number;
  minRate?: number;
  maxRate?: number;
  /** a receiver not heard for this long does not pace the stream */
  silenceMs?: number;
  /** fewer receivers than this are served by HTTP alone: a stream for one PC only adds loss */
  minReceivers?: number;
}

export interface StartRule {
  /** only on go() */
  manual?: boolean;
  /** this many PCs ready start it; undefined: all of them */
  count?: number;
  /** this long after the first PC is ready starts it; undefined: no timer */
  afterMs?: number;
}

/** Where the start stands: for the PCs' rows ("3 of 8 ready, starts at 10:42") and the receivers' question. */
export interface StartState {
  started: boolean;
  startedAt?: number;
  /** PCs heard so far, of the PCs of the job */
  ready: string[];
  of: number;
  manual: boolean;
  count?: number;
  /** when the timer starts it, once a first PC is ready */
  deadline?: number;
  goAt?: number;
}

export const DEFAULT_START_AFTER_MS = 60_000;
export const DEFAULT_START_RATE = 12_500_000; // 100 Mbit/s
export const DEFAULT_MIN_RATE = 1_000_000;
export const DEFAULT_MAX_RATE = 125_000_000; // 1 Gbit/s
/** Chunks the stream keeps back from the edge of the pacing receivers' window: feedback is up to ~0.2 s old. */
const WINDOW_MARGIN = 2;
/** The share of the stream's time it may wait for loss-free receivers slower than half the room: the others finish within about that much of their own time. */
const HOLD_SHARE = 0.15;
/** Waiting allowed before any share has built up: the room's first seconds, when positions still settle. */
const HOLD_GRACE_MS = 1000;
/** A gap between two answers of next() longer than this is not counted as waiting (a busy event loop). */
const HOLD_STEP_MS = 50;
const LOSS_SLOWER = 0.02;
const LOSS_FASTER = 0.005;
/** Growth per interval far from where loss was last seen, or before any. */
const FASTER = 1.25;
/** Growth per interval within NEAR of where loss was last seen: an overshoot there costs little. */
const NEAR_FASTER = 1.01;
/** Growth per interval beyond NEAR above it, until FAR above it, where it is forgotten. */
const PAST_FASTER = 1.1;
const NEAR = 0.1;
const FAR = 0.5;
/** Without a delivered rate (reports too sparse), loss cuts by this factor. */
const SLOWER = 0.7;
/** On loss the rate goes a little below what got through, so the queue the overshoot built drains. */
const DRAIN = 0.97;
/** One reaction to loss cuts at most to half (the delivered rate may come from an interval the stream was idle in part). */
const MAX_CUT = 0.5;
/** Growth per interval until the first loss: from 100 Mbit/s to 1 Gbit/s in under half a second. */
const PROBE_FASTER = 2;
/** A full datagram on the wire as the rate counts it (UDP payload, then UDP, IPv4 and Ethernet framing). */
export const DATAGRAM_WIRE_BYTES = DATA_HEADER_BYTES + DATA_PAYLOAD + WIRE_OVERHEAD;
/** The rate's interval: a few of the receivers' feedback intervals; while probing, one. */
const ADAPT_MS = 250;
const PROBE_MS = 100;
/** Timers run late by a few ms: an interval that is almost over counts. */
const ADAPT_SLACK_MS = 10;
/** Loss fractions from fewer datagrams than this say nothing. */
const MIN_SAMPLE = 32;
/** About one feedback interval of the receivers. */
const FEEDBACK_SETTLE_MS = 100;
/** Feedback intervals with no new datagram at a PC before its report of what it lacks is final. */
const QUEUE_DRAIN_MS = 3 * FEEDBACK_SETTLE_MS;

export interface ReceiverView {
  mac: string;
  /** the next chunk it writes */
  position: number;
  /** the first chunk from its position on that it does not hold complete */
  need: number;
  window: number;
  done: boolean;
  lastHeard: number;
  received: number;
  lost: number;
  overrun: number;
  streamKiB: number;
  repairKiB: number;
  /** loss fraction over the last adaptation interval, when it had enough datagrams */
  loss?: number;
  /** bytes per second (on the wire) it received over that interval */
  delivered?: number;
}

interface Receiver extends ReceiverView {
  /** when its datagram count last grew: while it grows, datagrams queued at it are still being read */
  progressAt: number;
  baseReceived: number;
  baseLost: number;
  /** when the report the bases come from arrived */
  baseAt: number;
  /** its last interval with enough datagrams had loss, or it got none while others did: it does not hold the stream */
  lossy: boolean;
  left: boolean;
}

export interface FeedbackInput {
  mac: string;
  position: number;
  need: number;
  window: number;
  done: boolean;
  received: number;
  lost: number;
  overrun: number;
  streamKiB: number;
  repairKiB: number;
}

export class StreamSchedule {
  rate: number;
  peakRate: number;
  /** the next chunk the stream would send */
  cursor = 0;
  /** passes over the image after the first that sent at least one chunk */
  passes = 0;
  chunksSent = 0;
  startedAt: number | undefined;

  private readonly receivers = new Map<string, Receiver>();
  private readonly expected: Set<string>;
  private readonly minRate: number;
  private readonly maxRate: number;
  private readonly rule: StartRule;
  private readonly readyAt = new Map<string, number>();
  private goAt: number | undefined;
  private readonly silenceMs: number;
  private readonly minReceivers: number;
  private firstHeard: number | undefined;
  private passEndedAt = -Infinity;
  /** A new pass was set up and has not sent yet: it counts once it does (it may find nothing to send). */
  private passPending = false;
  /** No loss seen yet: the rate doubles (a slow start, as TCP's) instead of growing by a quarter. */
  private probing = true;
  /** What the median receiver got per second in the interval loss was last seen in: the path's capacity, as far as known. */
  private ceiling: number | undefined;
  /** When the rate last grew: loss right after it is the growth's doing. */
  private raisedAt = -Infinity;
  /** After a cut, feedback of an interval still shows the loss of the rate before it. */
  private cutAt = -Infinity;
  private adaptedAt = -Infinity;
  /** Time the stream waited for loss-free receivers slower than half the room, and when next() last answered so. */
  private heldMs = 0;
  private heldAt: number | undefined;

  constructor(private readonly options: ScheduleOptions) {
    this.expected = new Set([...options.expected].map((m) => m.toLowerCase()));
    this.maxRate = options.maxRate ?? DEFAULT_MAX_RATE;
    this.minRate = Math.min(options.minRate ?? DEFAULT_MIN_RATE, this.maxRate);
    this.rate = Math.min(this.maxRate, Math.max(this.minRate, options.startRate ?? DEFAULT_START_RATE));
    this.peakRate = this.rate;
    this.rule = options.start ?? { afterMs: DEFAULT_START_AFTER_MS };
    this.silenceMs = options.silenceMs ?? 3000;
    this.minReceivers = options.minReceivers ?? 2;
  }

  feedback(now: number, f: FeedbackInput): void {
    const mac = f.mac.toLowerCase();
    if (!this.expected.has(mac)) return; // a PC of another job, or a stale session
    this.ready(now, mac);
    const r = this.receivers.get(mac);
    if (!r) {
      this.receivers.set(mac, {
        ...f,
        mac,
        lastHeard: now,
        progressAt: f.received > 0 ? now : -Infinity,
        baseReceived: f.received,
        baseLost: f.lost,
        baseAt: now,
        lossy: false,
        left: false,
      });
      return;
    }
    if (r.left) return;
    if (f.received > r.received) r.progressAt = now;
    Object.assign(r, { ...f, mac, lastHeard: now });
  }

  /** The PC's receiver is there (heard by feedback or by its question over HTTP). */
  ready(now: number, mac: string): void {
    const key = mac.toLowerCase();
    if (!this.expected.has(key) || this.readyAt.has(key)) return;
    this.readyAt.set(key, now);
    this.firstHeard ??= now;
  }

  /** The technician's Go: the stream starts now, with the PCs that are ready; the others join it when they come. */
  go(now: number): void {
    this.goAt ??= now;
  }

  /** The PC finished writing, failed or went to unicast: it no longer paces the stream. */
  leave(mac: string): void {
    const key = mac.toLowerCase();
    const r = this.receivers.get(key);
    if (r) r.left = true;
    else if (this.expected.has(key)) this.receivers.set(key, { ...blank(key), left: true });
  }

  /** Every expected PC has left or finished: the stream can end. */
  finished(): boolean {
    for (const mac of this.expected) {
      const r = this.receivers.get(mac);
      if (!r || (!r.left && !r.done)) return false;
    }
    return true;
  }

  /** Receivers that still need the stream: heard lately, not done, not past the last chunk. */
  private active(now: number): Receiver[] {
    return [...this.receivers.values()].filter((r) => !r.left && !r.done && now - r.lastHeard <= this.silenceMs && r.position < this.options.chunks);
  }

  started(now: number): boolean {
    if (this.startedAt !== undefined) return true;
    if (!this.due(now)) return false;
    this.startedAt = now;
    return true;
  }

  private due(now: number): boolean {
    if (this.goAt !== undefined) return true;
    if (this.rule.manual || this.firstHeard === undefined) return false;
    // Every PC ready, or gone (failed, or on its own by HTTP) before it was: nobody else is coming.
    if ([...this.expected].every((mac) => this.readyAt.has(mac) || this.receivers.get(mac)?.left)) return true;
    if (this.rule.count !== undefined && this.readyAt.size >= this.rule.count) return true;
    return this.rule.afterMs !== undefined && now - this.firstHeard >= this.rule.afterMs;
  }

  startState(now: number): StartState {
    const started = this.started(now);
    return {
      started,
      startedAt: this.startedAt,
      ready: [...this.readyAt.keys()],
      of: this.expected.size,
      manual: this.rule.manual === true,
      count: this.rule.count,
      deadline: this.rule.afterMs !== undefined && this.firstHeard !== undefined && !this.rule.manual ? this.firstHeard + this.rule.afterMs : undefined,
      goAt: this.goAt,
    };
  }

  /** The chunk to send now, or undefined to wait (not started, too few receivers, or ahead of their windows). */
  next(now: number): number | undefined {
    if (!this.started(now)) return undefined;
    const active = this.active(now);
    if (active.length < this.minReceivers) return undefined;
    if (this.cursor >= this.options.chunks) {
      // A new pass only once half the room is through (done PCs count as through): before
      // that the faster half still holds the tail it was sent, and a pass would only repeat it.
      const room = [...this.receivers.values()].filter((r) => r.done || (!r.left && now - r.lastHeard <= this.silenceMs));
      const through = room.map((r) => ({ position: r.done ? this.options.chunks : r.position }));
      if (pacePosition(through) < this.options.chunks) return undefined;
      // And only on feedback sent after the last pass ended (and one interval on, for
      // datagrams still queued at the receivers): before it, what they lack is not known.
      if (active.some((r) => r.lastHeard <= this.passEndedAt + FEEDBACK_SETTLE_MS)) return undefined;
      // Nor while a PC still reads datagrams of the pass that ended: a slow PC (a busy CPU)
      // lags in reading its socket, and what it reports lacking is then still on its way in.
      if (active.some((r) => now - r.progressAt < QUEUE_DRAIN_MS)) return undefined;
      // From the first chunk a PC still writing lacks; what each holds it is not sent again.
      const from = Math.min(...active.map((r) => Math.max(r.need, r.position)));
      if (from >= this.options.chunks) return undefined;
      this.passPending = true;
      this.cursor = from;
    }
    const window = Math.min(...active.map((r) => r.window || 1));
    const reach = Math.max(1, window - WINDOW_MARGIN);
    const half = pacePosition(active);
    // Loss-free PCs behind half the room that the stream has not yet left (its next chunk is still in their window).
    const heldAt = this.heldAt;
    this.heldAt = undefined;
    const slower = active.filter((r) => !r.lossy && r.position < half && this.cursor < r.position + (r.window || 1));
    const mayHold = slower.length > 0 && this.heldMs < HOLD_GRACE_MS + HOLD_SHARE * (now - (this.startedAt ?? now));
    const pacing = mayHold ? slower : [];
    const pace = Math.min(half, ...pacing.map((r) => r.position));
    // Nobody who paces needs what lies behind what it holds.
    const needed = Math.min(pacePosition(active.map((r) => ({ position: Math.max(r.need, r.position) }))), ...pacing.map((r) => Math.max(r.need, r.position)));
    if (this.cursor < needed) this.cursor = needed;
    if (this.cursor >= this.options.chunks) return undefined;
    if (this.cursor >= pace + reach) {
      // Waiting for a slower PC, where half the room alone would let it send: the time from
      // one such answer to the next counts against the share.
      if (this.cursor < half + reach) {
        if (heldAt !== undefined) this.heldMs += Math.min(HOLD_STEP_MS, now - heldAt);
        this.heldAt = now;
      }
      return undefined;
    }
    this.chunksSent += 1;
    if (this.passPending) {
      this.passes += 1;
      this.passPending = false;
    }
    // Until its last datagram is out (sent()), the pass is not over.
    if (this.cursor + 1 >= this.options.chunks) this.passEndedAt = Infinity;
    return this.cursor++;
  }

  /** The last datagram of `chunk` is out. */
  sent(chunk: number, now: number): void {
    if (chunk + 1 >= this.options.chunks) this.passEndedAt = now;
  }

  /**
   * Called often (every 50 ms) with whether sending was held back by the rate since it last
   * acted (rather than by pacing or by having nothing to send): only then can a higher rate
   * help. It acts every ADAPT_MS, every PROBE_MS while probing; true when it did.
   */
  adapt(now: number, limitedByRate: boolean): boolean {
    const interval = this.probing ? PROBE_MS : ADAPT_MS;
    if (now - this.adaptedAt < interval - ADAPT_SLACK_MS) return false;
    this.adaptedAt = now;
    const losses: number[] = [];
    const delivered: number[] = [];
    const missed: Receiver[] = [];
    for (const r of this.active(now)) {
      const received = (r.received - r.baseReceived) >>> 0;
      const lost = (r.lost - r.baseLost) >>> 0;
      const span = r.lastHeard - r.baseAt;
      r.baseReceived = r.received;
      r.baseLost = r.lost;
      r.baseAt = r.lastHeard;
      if (received + lost >= MIN_SAMPLE) {
        r.loss = lost / (received + lost);
        r.lossy = r.loss >= LOSS_FASTER;
        losses.push(r.loss);
      } else {
        r.loss = undefined;
        if (span > 0) missed.push(r);
      }
      // Counts and the time they arrived at belong together: the rate is the receiver's own, however late its reports come.
      r.delivered = span > 0 && received + lost >= MIN_SAMPLE ? (received * DATAGRAM_WIRE_BYTES * 1000) / span : undefined;
      if (r.delivered !== undefined) delivered.push(r.delivered);
    }
    if (losses.length === 0) return true;
    // It reported, but the stream reached others and not it: its port drops multicast, or it does not listen.
    for (const r of missed) r.lossy = true;
    const loss = median(losses);
    const got = delivered.length > 0 ? median(delivered) : undefined;
    // Loss that follows growth is the growth's: the path is full. Loss without it, up to
    // LOSS_SLOWER, may be a lossy segment's own, which a lower rate would not cure.
    const grew = now - this.raisedAt <= 2 * interval;
    if (loss >= LOSS_FASTER && (this.probing || loss > LOSS_SLOWER || grew)) {
      this.probing = false;
      // The interval after a cut still reports loss from before it: one reaction per episode.
      if (now - this.cutAt > interval + ADAPT_SLACK_MS) this.cut(now, got);
    } else if (loss < LOSS_FASTER && limitedByRate) this.raise(now);
    this.peakRate = Math.max(this.peakRate, this.rate);
    return true;
  }

  /** Loss: down to about what the median receiver got (the path's capacity), not a fixed fraction of the rate. */
  private cut(now: number, got: number | undefined): void {
    const before = this.rate;
    this.ceiling = got;
    const target = got === undefined ? before * SLOWER : got * DRAIN;
    this.rate = Math.max(this.minRate, Math.min(before, Math.max(before * MAX_CUT, target)));
    this.cutAt = now;
    this.raisedAt = -Infinity;
  }

  /** No loss and the rate held the stream back: grow, fast far from the last loss, slowly near it. */
  private raise(now: number): void {
    let factor = FASTER;
    if (this.probing) factor = PROBE_FASTER;
    else if (this.ceiling !== undefined) {
      const at = this.rate / this.ceiling;
      if (at < 1 - NEAR) {
        // Quickly back to just below it, then slowly.
        this.rate = Math.min(this.maxRate, Math.max(this.rate, Math.min(this.rate * FASTER, this.ceiling * (1 - NEAR / 2))));
        this.raisedAt = now;
        return;
      }
      if (at < 1 + NEAR) factor = NEAR_FASTER;
      else if (at < 1 + FAR) factor = PAST_FASTER;
      else this.ceiling = undefined; // the path has grown (a slow PC left): probe as before any loss
    }
    if (this.rate >= this.maxRate) return;
    this.rate = Math.min(this.maxRate, this.rate * factor);
    this.raisedAt = now;
  }

  view(): ReceiverView[] {
    return [...this.receivers.values()].map(({ baseReceived: _r, baseLost: _l, baseAt: _a, lossy: _y, left: _x, ...v }) => v);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** The position at least half of the receivers have reached. */
function pacePosition(active: { position: number }[]): number {
  const positions = active.map((r) => r.position).sort((a, b) => b - a);
  return positions[Math.ceil(positions.length / 2) - 1];
}

function blank(mac: string): Receiver {
  return {
    mac,
    position: 0,
    need: 0,
    window: 0,
    done: false,
    lastHeard: 0,
    progressAt: -Infinity,
    received: 0,
    lost: 0,
    overrun: 0,
    streamKiB: 0,
    repairKiB: 0,
    baseReceived: 0,
    baseLost: 0,
    baseAt: 0,
    lossy: false,
    left: false,
  };
}
