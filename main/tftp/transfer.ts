// One TFTP read transfer as a state machine: packets in (ACK, ERROR), packets out through
// an injected `send`, time from an injected clock. No sockets, so loss, duplicates and
// timeouts are unit-tested without waiting.
//
//   negotiating --ACK 0--> sending --ACK of last block--> done
//        |                    |
//        |                    +--client ERROR--> aborted
//        +--client ERROR 8 (tsize asked)--> probe
//   any state --no packet from the client for `abandonAfterMs`--> failed
//
// Blocks are numbered from 1 as plain numbers internally; the wire carries them modulo
// 2^16, so block 65536 goes out as 0 and the transfer goes on (rollover, PXE-NOTES).
//
// Memory: two read-ahead chunks per transfer (each at least one window, 256 KiB by
// default), refilled as ACKs move the window; never the whole file.
import type { Clock, TimerHandle } from '../core/index.js';
import type { TransferSource } from '../files/index.js';
import { encodeError, encodeOack, TftpErrorCode, writeDataHeader } from './packet.js';
import type { NegotiatedTransfer } from './options.js';
import { RttEstimator } from './rtt.js';

export type TransferOutcome = 'done' | 'probe' | 'failed' | 'aborted';
export type TransferPhase = 'negotiating' | 'sending' | TransferOutcome;

export interface TransferResult {
  outcome: TransferOutcome;
  reason?: string;
  /** the client's ERROR code (probe/aborted) */
  errorCode?: number;
  bytes: number;
  size: number;
  retransmits: number;
  durationMs: number;
  /** bytes per second over the whole transfer */
  rate: number;
}

export interface TransferProgress {
  bytes: number;
  size: number;
  retransmits: number;
  rate: number;
  elapsedMs: number;
}

export interface RetransmitPolicy {
  /** Retransmit timer before any round trip was measured. */
  initialRtoMs: number;
  /** Floor of the measured timer (a LAN round trip is well under a millisecond). */
  minRtoMs: number;
  /** Ceiling of the measured timer when the client negotiated no timeout. */
  maxRtoMs: number;
  /**
   * First wait for the ACK of an OACK. A client whose ACK 0 was lost re-sends it on its own
   * timer (1-5 s), and atftp 0.8 aborts on a second OACK, so this outlasts that timer; a
   * client whose OACK was lost repeats its request, answered at once (`handleRepeatedRequest`).
   */
  oackRtoMs: number;
  /**
   * Each timeout without an ACK doubles the wait (RFC 1123 §4.2.3.2) up to this ceiling.
   * Some clients (atftp, U-Boot, PXE ROMs) re-ACK only when their own timer of 1-5 s runs
   * out without any packet, and ignore repeated blocks: only a silence longer than that
   * timer lets them speak again.
   */
  maxBackoffMs: number;
  /** Abandon after this long without any packet from the client (see docs/decisions). */
  abandonAfterMs: number;
}

export const DEFAULT_RETRANSMIT_POLICY: RetransmitPolicy = {
  initialRtoMs: 200,
  minRtoMs: 20,
  maxRtoMs: 1000,
  oackRtoMs: 6000,
  maxBackoffMs: 8000,
  abandonAfterMs: 60_000,
};

/**
 * A policy that abandons a silent transfer after `seconds` instead of 60 s, for tests that
 * watch a transfer be given up (BOOTBENCH_TFTP_ABANDON_SECONDS). The backoff ceiling and the
 * OACK wait shrink with it, so the transfer still retransmits, backing off, before it gives up
 * (the abandon time is at least 3 backoff ceilings). Undefined (the defaults) when unset or invalid.
 */
export function shortAbandonPolicy(seconds: string | undefined): Partial<RetransmitPolicy> | undefined {
  const ms = Number(seconds) * 1000;
  if (!(ms > 0) || ms >= DEFAULT_RETRANSMIT_POLICY.abandonAfterMs) return undefined;
  return {
    abandonAfterMs: ms,
    maxBackoffMs: Math.min(DEFAULT_RETRANSMIT_POLICY.maxBackoffMs, ms / 3),
    oackRtoMs: Math.min(DEFAULT_RETRANSMIT_POLICY.oackRtoMs, ms / 4),
  };
}

/**
 * Wait before retransmission number `retries` + 1: `base` doubled per timeout without an
 * ACK, capped at `ceilingMs`.
 */
export function retransmitWaitMs(baseMs: number, retries: number, ceilingMs: number): number {
  return Math.min(baseMs * 2 ** Math.min(retries, 30), Math.max(baseMs, ceilingMs));
}

/** Sends one packet: `header` alone, or `header` + `data` as one datagram (scatter/gather). */
export type SendPacket = (header: Uint8Array, data?: Uint8Array) => void;

export interface ReadTransferOptions {
  source: TransferSource;
  negotiated: NegotiatedTransfer;
  send: SendPacket;
  /** Called after a burst of `send`s (end of a window pass), for senders that batch. */
  flush?: () => void;
  clock: Clock;
  onEnd: (result: TransferResult) => void;
  onProgress?: (progress: TransferProgress) => void;
  /** Minimum time between progress callbacks. Default 250 ms (at most ~4 per second). */
  progressIntervalMs?: number;
  retransmit?: Partial<RetransmitPolicy>;
  /** Bytes per read-ahead chunk (two per transfer). Default 256 KiB; at least one window. */
  readAheadBytes?: number;
  /**
   * Datagrams still queued in the socket (dgram `getSendQueueCount`). A chunk buffer whose
   * packets may still be queued is never refilled in place.
   */
  sendQueueLength?: () => number;
}

/** A read-ahead buffer holding `blocksPerChunk` consecutive blocks, with their DATA headers. */
interface ChunkSlot {
  chunk: number;
  ready: boolean;
  loading: boolean;
  data: Buffer;
  headers: Buffer;
  headerViews: Uint8Array[];
  dataViews: Uint8Array[];
  /** the final, shorter block, when this chunk holds it */
  lastBlockView?: Uint8Array;
}

export class ReadTransfer {
  readonly blksize: number;
  readonly windowsize: number;
  readonly size: number;
  readonly lastBlock: number;
  readonly startedAt: number;

  private phaseValue: TransferPhase;
  private readonly policy: RetransmitPolicy;
  private readonly maxRtoMs: number;
  private readonly backoffCeilingMs: number;
  private readonly abandonAfterMs: number;
  private readonly oackWaitMs: number;
  private readonly blocksPerChunk: number;
  private readonly slots: [ChunkSlot | undefined, ChunkSlot | undefined] = [undefined, undefined];
  private readonly progressIntervalMs: number;

  /** lowest block not yet acknowledged */
  private base = 1;
  /** last block of the current window */
  private windowEnd = 0;
  /** next block to put on the wire in this pass over the window */
  private nextToSend = 1;
  /** highest block ever sent */
  private highestSent = 0;
  private timer: TimerHandle | undefined;
  private timerDueAt = 0;
  private deadline = 0;
  private retries = 0;
  /** a duplicate ACK already triggered a re-send since the last timeout */
  private resentOnDuplicate = false;
  private lastProgressAt: number;
  /** when the client's last packet (any ACK or ERROR) arrived; the RRQ at first */
  private lastHeardAt: number;
  private lastProgressEmitAt: number;
  private windowSentAt = 0;
  private windowResent = false;
  private readonly rtt = new RttEstimator();
  private rto: number;
  private retransmitCount = 0;
  private oackPacket: Buffer | undefined;

  constructor(private readonly options: ReadTransferOptions) {
    const { negotiated, source, clock } = options;
    this.blksize = negotiated.blksize;
    this.windowsize = negotiated.windowsize;
    this.size = source.size;
    // A file that is an exact multiple of blksize ends with an empty block (RFC 1350 §6).
    this.lastBlock = Math.floor(this.size / this.blksize) + 1;
    this.policy = { ...DEFAULT_RETRANSMIT_POLICY, ...options.retransmit };
    this.maxRtoMs = negotiated.timeoutMs ?? this.policy.maxRtoMs;
    // A client that negotiated a timeout (RFC 2349) re-ACKs after it: the silence must outlast it.
    this.backoffCeilingMs = Math.max(this.policy.maxBackoffMs, 2 * (negotiated.timeoutMs ?? 0));
    this.abandonAfterMs = Math.max(this.policy.abandonAfterMs, 3 * this.backoffCeilingMs);
    this.oackWaitMs = Math.max(this.policy.oackRtoMs, 2 * (negotiated.timeoutMs ?? 0));
    this.rto = Math.min(this.policy.initialRtoMs, this.maxRtoMs);
    const readAhead = options.readAheadBytes ?? 256 * 1024;
    this.blocksPerChunk = Math.max(this.windowsize, Math.ceil(readAhead / this.blksize));
    this.progressIntervalMs = options.progressIntervalMs ?? 250;
    this.startedAt = clock.now();
    this.lastProgressAt = this.startedAt;
    this.lastHeardAt = this.startedAt;
    this.lastProgressEmitAt = this.startedAt;
    this.phaseValue = negotiated.oack.length > 0 ? 'negotiating' : 'sending';
  }

  get phase(): TransferPhase {
    return this.phaseValue;
  }

  get finished(): boolean {
    return this.phaseValue !== 'negotiating' && this.phaseValue !== 'sending';
  }

  /** Bytes the client has acknowledged. */
  get bytesAcknowledged(): number {
    return Math.min(this.size, (this.base - 1) * this.blksize);
  }

  get retransmits(): number {
    return this.retransmitCount;
  }

  /** Current retransmit timer (ms), for diagnostics and tests. */
  get retransmitTimeoutMs(): number {
    return this.rto;
  }

  /** Sends the OACK, or the first window when no options were accepted. */
  start(): void {
    // Read ahead while the OACK travels: by ACK 0 the first chunk is in memory.
    this.slotFor(1);
    if (this.phaseValue === 'negotiating') {
      this.oackPacket = encodeOack(this.options.negotiated.oack);
      this.sendNow(this.oackPacket);
      this.windowSentAt = this.options.clock.now();
      this.armTimer(retransmitWaitMs(this.oackWaitMs, 0, this.backoffCeilingMs));
    } else {
      this.beginWindow();
      this.pump();
      this.prefetchNextChunk();
    }
  }

  /** An ACK from the client's TID, block number as on the wire (0..65535). */
  handleAck(wireBlock: number): void {
    if (this.finished) return;
    const now = this.options.clock.now();
    this.lastHeardAt = now;
    if (this.phaseValue === 'negotiating') {
      // RFC 2347 §2: ACK 0 accepts the OACK. Anything else is stray.
      if (wireBlock !== 0) return;
      this.sampleRtt(now - this.windowSentAt);
      this.phaseValue = 'sending';
      this.progressMade(now);
      this.beginWindow();
      this.pump();
      this.prefetchNextChunk();
      return;
    }
    // Map the 16-bit number onto the blocks in flight: base-1 (already acknowledged) up to
    // the highest block sent. Anything further back is a late ACK of an older window.
    const acked = this.base - 1 + ((wireBlock - ((this.base - 1) & 0xffff)) & 0xffff);
    if (acked > this.highestSent) return; // late ACK from before a rollover, or nonsense
    if (acked === this.base - 1) {
      // Duplicate ACK: never re-send on it while our timer has not run out (Sorcerer's
      // Apprentice, RFC 1123 §4.2.3.1). After a timeout it is a client that re-ACKed on its
      // own timer because it still lacks `base`: answer it once per timeout instead of
      // letting it wait out our backed-off timer.
      if (this.retries > 0 && !this.resentOnDuplicate && this.phaseValue === 'sending') {
        this.resentOnDuplicate = true;
        this.resendWindow();
      }
      return;
    }
    // RFC 7440 §4: an ACK for block k inside the window means the client has 1..k in order;
    // the next window starts at k+1, whether or not the rest of the old one arrived.
    const completeWindow = acked === this.windowEnd;
    if (completeWindow && !this.windowResent) this.sampleRtt(now - this.windowSentAt); // Karn: no samples from retransmissions
    this.base = acked + 1;
    this.progressMade(now);
    if (acked >= this.lastBlock) {
      this.finish({ outcome: 'done' });
      return;
    }
    // The next window goes out before any bookkeeping: in lock-step the time from ACK to
    // DATA is the transfer rate.
    this.beginWindow();
    this.pump();
    this.prefetchNextChunk();
    this.maybeEmitProgress(now);
  }

  /**
   * The client's request again, from the same port: it timed out waiting for our first
   * answer. Before ACK 0 that answer (the OACK) was lost: send it again now. Later it is a
   * late duplicate and changes nothing.
   */
  handleRepeatedRequest(): void {
    if (this.phaseValue !== 'negotiating') return;
    this.lastHeardAt = this.options.clock.now();
    this.retransmitCount++;
    this.sendNow(this.oackPacket!);
  }

  /** An ERROR from the client's TID. */
  handleError(code: number, message: string): void {
    if (this.finished) return;
    // PXE-NOTES: firmware asks with tsize, reads the OACK, then stops with ERROR 8 (some
    // send 0): it wanted the size, not the file.
    if (this.phaseValue === 'negotiating' && this.options.negotiated.tsizeRequested && (code === TftpErrorCode.OptionNegotiation || code === 0)) {
      this.finish({ outcome: 'probe', errorCode: code, reason: message || 'size probe' });
      return;
    }
    this.finish({ outcome: 'aborted', errorCode: code, reason: message || `client sent ERROR ${code}` });
  }

  /** Ends the transfer from our side (server stopping); tells the client. */
  abort(reason: string): void {
    if (this.finished) return;
    this.sendNow(encodeError(TftpErrorCode.NotDefined, reason));
    this.finish({ outcome: 'failed', reason });
  }

  /** A packet outside the window stream (OACK, ERROR): never left waiting in a batch. */
  private sendNow(packet: Uint8Array): void {
    this.options.send(packet);
    this.options.flush?.();
  }

  private beginWindow(): void {
    this.windowEnd = Math.min(this.base + this.windowsize - 1, this.lastBlock);
    this.nextToSend = this.base;
    this.windowResent = false;
    this.retries = 0;
  }

  /**
   * Reads the chunk after base's ahead of need. (Not the one after windowEnd's: when the
   * window spans two chunks, that would evict base's own chunk.)
   */
  private prefetchNextChunk(): void {
    if (this.finished) return;
    const nextChunk = this.chunkOf(this.base) + 1;
    if (nextChunk <= this.chunkOf(this.lastBlock)) this.slotFor(nextChunk * this.blocksPerChunk + 1);
  }

  /** Puts the rest of the current window on the wire; stops early if a chunk is still loading. */
  private pump(): void {
    const send = this.options.send;
    while (this.nextToSend <= this.windowEnd) {
      const block = this.nextToSend;
      const slot = this.slotFor(block);
      if (!slot) {
        this.options.flush?.();
        return; // resumed by the chunk load
      }
      const index = (block - 1) % this.blocksPerChunk;
      const data = block === this.lastBlock ? slot.lastBlockView! : slot.dataViews[index];
      send(slot.headerViews[index], data);
      this.nextToSend = block + 1;
      if (block > this.highestSent) this.highestSent = block;
      if (this.finished) return; // a send failure may end the transfer
    }
    this.options.flush?.();
    if (!this.windowResent) this.windowSentAt = this.options.clock.now();
    this.armTimer(retransmitWaitMs(this.rto, this.retries, this.backoffCeilingMs));
  }

  private onTimeout(): void {
    const now = this.options.clock.now();
    const silence = now - this.lastHeardAt;
    if (silence >= this.abandonAfterMs) {
      this.sendNow(encodeError(TftpErrorCode.NotDefined, 'timed out waiting for ACK'));
      const seconds = Math.round(silence / 100) / 10;
      // RFC 1350 §6: the ACK of the last block may be lost after the client has left with the file.
      const finalWindow = this.phaseValue === 'sending' && this.windowEnd === this.lastBlock && this.highestSent === this.lastBlock;
      const reason = finalWindow
        ? `no ACK for the last block: nothing from the client for ${seconds} s (it may have the whole file and its final ACK was lost)`
        : `nothing from the client for ${seconds} s (no progress for ${Math.round((now - this.lastProgressAt) / 100) / 10} s; ${this.phaseValue === 'negotiating' ? 'OACK' : 'window'} re-sent ${this.retries} times)`;
      this.finish({ outcome: 'failed', reason });
      return;
    }
    this.retries++;
    this.resentOnDuplicate = false;
    if (this.phaseValue === 'negotiating') {
      this.retransmitCount++;
      this.sendNow(this.oackPacket!);
      this.armTimer(retransmitWaitMs(this.oackWaitMs, this.retries, this.backoffCeilingMs));
      return;
    }
    this.resendWindow();
  }

  /** Puts the current window on the wire again from `base`; the timer keeps its backoff. */
  private resendWindow(): void {
    this.retransmitCount += this.nextToSend - this.base;
    this.nextToSend = this.base;
    this.windowResent = true;
    this.pump();
  }

  /**
   * Sets the retransmit deadline. In lock-step this runs once per block, so the clock's
   * timer is not replaced each time: a timer that fires before the (moved) deadline simply
   * re-arms for the rest. A timer due later than the new deadline is replaced.
   */
  private armTimer(ms: number): void {
    const clock = this.options.clock;
    // Never later than the moment the transfer is abandoned, so it ends on time.
    const deadline = Math.min(clock.now() + ms, this.lastHeardAt + this.abandonAfterMs);
    this.deadline = deadline;
    if (this.timer && this.timerDueAt <= deadline) return;
    if (this.timer) clock.clearTimeout(this.timer);
    this.timerDueAt = deadline;
    this.timer = clock.setTimeout(this.timeoutCallback, deadline - clock.now());
  }

  private readonly timeoutCallback = (): void => {
    this.timer = undefined;
    if (this.finished) return;
    const early = this.deadline - this.options.clock.now();
    if (early > 0) {
      this.timerDueAt = this.deadline;
      this.timer = this.options.clock.setTimeout(this.timeoutCallback, early);
      return;
    }
    this.onTimeout();
  };

  /** RFC 6298 §2 estimator, clamped to [minRto, negotiated timeout]. */
  private sampleRtt(sample: number): void {
    this.rto = this.rtt.sample(sample, this.policy.minRtoMs, this.maxRtoMs);
  }

  private progressMade(now: number): void {
    this.lastProgressAt = now;
    this.retries = 0;
    this.resentOnDuplicate = false;
  }

  private maybeEmitProgress(now: number): void {
    if (!this.options.onProgress || now - this.lastProgressEmitAt < this.progressIntervalMs) return;
    this.lastProgressEmitAt = now;
    const elapsedMs = now - this.startedAt;
    const bytes = this.bytesAcknowledged;
    this.options.onProgress({ bytes, size: this.size, retransmits: this.retransmitCount, elapsedMs, rate: elapsedMs > 0 ? (bytes * 1000) / elapsedMs : 0 });
  }

  private finish(result: Pick<TransferResult, 'outcome' | 'reason' | 'errorCode'>): void {
    if (this.finished) return;
    this.phaseValue = result.outcome;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.slots[0] = this.slots[1] = undefined;
    const durationMs = this.options.clock.now() - this.startedAt;
    const bytes = this.bytesAcknowledged;
    this.options.onEnd({
      ...result,
      bytes,
      size: this.size,
      retransmits: this.retransmitCount,
      durationMs,
      rate: durationMs > 0 ? (bytes * 1000) / durationMs : 0,
    });
  }

  private chunkOf(block: number): number {
    return Math.floor((block - 1) / this.blocksPerChunk);
  }

  /**
   * The slot holding `block`, or undefined while it loads (the load resumes `pump`).
   * Only the chunks of the current window (at most two, since a window fits in a chunk)
   * are ever needed, so a slot holding an older chunk is free to refill.
   */
  private slotFor(block: number): ChunkSlot | undefined {
    const chunk = this.chunkOf(block);
    const which = chunk & 1;
    let slot = this.slots[which];
    if (slot && slot.chunk === chunk) return slot.ready ? slot : undefined;
    const queued = this.options.sendQueueLength?.() ?? 0;
    // Refill in place unless a read is still writing into it or its packets may still sit
    // in the socket queue (the kernel copies them only when they leave).
    if (!slot || slot.loading || queued > 0) {
      slot = this.newSlot();
      this.slots[which] = slot;
    }
    this.load(slot, chunk);
    return slot.ready ? slot : undefined;
  }

  private newSlot(): ChunkSlot {
    const n = this.blocksPerChunk;
    const data = Buffer.allocUnsafe(n * this.blksize);
    const headers = Buffer.allocUnsafe(n * 4);
    const headerViews = new Array<Uint8Array>(n);
    const dataViews = new Array<Uint8Array>(n);
    for (let i = 0; i < n; i++) {
      headerViews[i] = headers.subarray(i * 4, i * 4 + 4);
      dataViews[i] = data.subarray(i * this.blksize, (i + 1) * this.blksize);
    }
    return { chunk: -1, ready: false, loading: false, data, headers, headerViews, dataViews };
  }

  private load(slot: ChunkSlot, chunk: number): void {
    slot.chunk = chunk;
    slot.ready = false;
    slot.loading = true;
    slot.lastBlockView = undefined;
    const firstBlock = chunk * this.blocksPerChunk + 1;
    const position = (firstBlock - 1) * this.blksize;
    const length = Math.max(0, Math.min(slot.data.length, this.size - position));
    const complete = (bytesRead: number): void => {
      if (this.finished || this.slots[chunk & 1] !== slot || slot.chunk !== chunk) {
        slot.loading = false;
        return;
      }
      if (bytesRead !== length) {
        this.sendNow(encodeError(TftpErrorCode.NotDefined, 'read error'));
        this.finish({ outcome: 'failed', reason: `file shrank while being sent (read ${bytesRead} of ${length} bytes at ${position})` });
        return;
      }
      const blocks = Math.min(this.blocksPerChunk, this.lastBlock - firstBlock + 1);
      for (let i = 0; i < blocks; i++) writeDataHeader(slot.headers, i * 4, (firstBlock + i) & 0xffff);
      if (firstBlock + blocks - 1 === this.lastBlock) {
        const offset = (this.lastBlock - firstBlock) * this.blksize;
        slot.lastBlockView = slot.data.subarray(offset, offset + (this.size - (this.lastBlock - 1) * this.blksize));
      }
      slot.loading = false;
      slot.ready = true;
    };
    const fail = (err: Error): void => {
      slot.loading = false;
      if (this.finished) return;
      this.sendNow(encodeError(TftpErrorCode.NotDefined, 'read error'));
      this.finish({ outcome: 'failed', reason: `read error: ${err.message}` });
    };
    let result: number | Promise<number>;
    try {
      result = length > 0 ? this.options.source.read(slot.data, 0, length, position) : 0;
    } catch (err) {
      fail(err as Error);
      return;
    }
    if (typeof result === 'number') {
      complete(result);
      return;
    }
    result.then((bytesRead) => {
      const wasReady = slot.ready;
      complete(bytesRead);
      // A window may be waiting for this chunk.
      if (!wasReady && slot.ready && this.phaseValue === 'sending' && this.nextToSend <= this.windowEnd) this.pump();
    }, fail);
  }
}
