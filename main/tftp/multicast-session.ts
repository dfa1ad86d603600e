// One RFC 2090 multicast TFTP session: every client that asked for the same file with the
// `multicast` option, one DATA stream to the session's group. A state machine like
// ReadTransfer: packets in (ACK, ERROR, a repeated request), packets out through injected
// senders, time from an injected clock; the sockets live in multicast-path.ts.
//
// RFC 2090 in short:
//   - the OACK carries `multicast` = "addr,port,mc"; mc=1 names the master client, the one
//     that ACKs; the others (mc=0) only listen to the group
//   - an ACK of block n asks for block n+1 (any block, so a new master can ask for what it missed)
//   - when the master finishes or leaves, the next oldest client gets an OACK with mc=1 and
//     ACKs the block before the first one it lacks; a client that does not answer that OACK
//     in time is passed over
//   - any client ends its part with an ACK of the last block or an ERROR, master or not
//
//   client joins --first--> master (OACK mc=1) --ACK n--> DATA n+1 to the group ...
//              \--later--> waiting (OACK mc=0) --master done/left/silent--> offered (OACK mc=1)
//                                                          --its first ACK--> master
//
// Block numbers are not rolled over: a multicast client keeps a bitmap of the blocks it has
// and cannot tell block 1 from block 65537, so sessions take files of at most 65535 blocks.
import type { Clock, TimerHandle } from '../core/index.js';
import type { TransferSource } from '../files/index.js';
import { encodeError, encodeOack, TftpErrorCode, writeDataHeader, type TftpOption } from './packet.js';
import type { RunningTransfer } from './data-path.js';
import {
  DEFAULT_RETRANSMIT_POLICY,
  retransmitWaitMs,
  type RetransmitPolicy,
  type TransferPhase,
  type TransferProgress,
  type TransferResult,
} from './transfer.js';
import { RttEstimator } from './rtt.js';

/** The most blocks a multicast session sends (block numbers are never rolled over, see above). */
export const MAX_MULTICAST_BLOCKS = 65535;

/** RFC 2090 recommends the registered port 1758 (tftp-mcast). */
export const DEFAULT_MULTICAST_PORT = 1758;

/**
 * First group of the default range. 239.255.0.0/16 is the IPv4 Local Scope (RFC 2365 §6.1),
 * meant to stay inside one site, and the session's TTL of 1 keeps it on the link besides.
 * Not 239.255.0.x: addresses whose low 23 bits equal 224.0.0.x share its Ethernet MAC, which
 * snooping switches flood everywhere.
 */
export const DEFAULT_MULTICAST_GROUP = '239.255.69.1';

/** Sessions (files sent multicast at once) a server runs; each takes its own group and port. */
export const DEFAULT_MULTICAST_SESSIONS = 16;

/** Why `address` cannot be a session's first group, or undefined when it can. */
export function multicastGroupProblem(address: string, sessions = 1): string | undefined {
  const octets = address.split('.').map((o) => (/^\d{1,3}$/.test(o) ? Number(o) : NaN));
  if (octets.length !== 4 || octets.some((o) => !(o >= 0 && o <= 255))) return `${address} is not an IPv4 address`;
  if (octets[0] < 224 || octets[0] > 239) return `${address} is not a multicast address (224.0.0.0 to 239.255.255.255)`;
  if (octets[0] === 224 && octets[1] === 0 && octets[2] === 0) return `${address} is in 224.0.0.0/24, reserved for link-local protocols (RFC 5771)`;
  const last = ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) + sessions - 1;
  if (last >>> 0 > 0xefffffff || last >>> 24 !== octets[0]) return `${address}: ${sessions} groups from here would leave ${octets[0]}.0.0.0/8`;
  return undefined;
}

/** The group of session slot `slot`: the first group plus `slot`. */
export function multicastGroupFor(first: string, slot: number): string {
  const n = (first.split('.').reduce((v, o) => v * 256 + Number(o), 0) + slot) >>> 0;
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}

export interface MulticastClient {
  /** `ip:port` (the client's TID) */
  readonly key: string;
  readonly ip: string;
  readonly port: number;
}

export interface MulticastJoin extends MulticastClient {
  /** The client's negotiated options (blksize already the session's), without `multicast`. */
  oack: TftpOption[];
  /** The client asked for tsize: an ERROR before its first ACK is then a size probe. */
  tsizeRequested: boolean;
  /** The timeout it negotiated (RFC 2349), if any. */
  timeoutMs?: number;
  onEnd(result: TransferResult): void;
  /** Progress while it is the master (the server knows nothing of the others until they ACK). */
  onProgress?(progress: TransferProgress): void;
}

export type MasterChangeReason = 'first client' | 'master finished' | 'master left' | 'master timed out';

export interface MulticastSessionCounters {
  /** DATA datagrams sent to the group, re-sends included */
  dataPackets: number;
  /** their payload bytes */
  dataBytes: number;
  /** DATA datagrams of blocks already sent once (a lost block, or a new master's missing ones) */
  repeats: number;
  /** clients that ended with the whole file, and those that did not */
  clientsDone: number;
  clientsFailed: number;
  /** master hand-overs after the first */
  handOvers: number;
}

export interface MulticastSessionOptions {
  source: TransferSource;
  blksize: number;
  group: string;
  port: number;
  clock: Clock;
  /** A unicast packet to one client (OACK, ERROR), from the session's own port. */
  sendTo(client: MulticastClient, packet: Uint8Array): void;
  /** One DATA datagram (header + payload) to the group. */
  sendToGroup(header: Uint8Array, data: Uint8Array): void;
  retransmit?: Partial<RetransmitPolicy>;
  /**
   * How long a master (or a client offered the role) may stay silent before the next
   * client gets the role. atftp's master re-ACKs only on its own 5 s timer when its ACK and
   * our re-send were both lost, so the default outlasts that. Default 10 s.
   */
  masterTimeoutMs?: number;
  /**
   * The first DATA leaves this long after the first master's ACK 0, so that clients started
   * together (a room powered on at once) join before the stream moves on; a later client
   * still gets what it missed as master. Default 0.
   */
  startDelayMs?: number;
  /** Read-ahead chunk size. Default 256 KiB. */
  readAheadBytes?: number;
  progressIntervalMs?: number;
  onMasterChange?(master: MulticastClient | undefined, reason: MasterChangeReason): void;
  onProgress?(counters: MulticastSessionCounters & { clients: number; highestBlock: number }): void;
  /** No client is left: the session is over (the path closes its socket). */
  onEmpty(counters: MulticastSessionCounters): void;
}

type MemberState = 'waiting' | 'offered' | 'master';

interface Member extends MulticastJoin {
  state: MemberState;
  /** highest block it ACKed (it has 1..acked), -1 before its first ACK */
  acked: number;
  ended: boolean;
  startedAt: number;
  /** when it last sent anything, or when it was offered the master role */
  lastHeardAt: number;
  view: RunningTransfer;
}

interface Chunk {
  index: number;
  ready: boolean;
  data: Buffer;
  /** `useCount` when last used (the least recently used chunk is dropped first) */
  usedAt: number;
}

/** Chunks kept in memory: the stream's own and a few for a new master's repairs. */
const MAX_CHUNKS = 4;
/** Ceiling of the re-send backoff: the listeners (atftp: five 5-s timeouts) must keep hearing the stream. */
const MAX_RESEND_WAIT_MS = 2000;

export class MulticastSession {
  readonly blksize: number;
  readonly size: number;
  readonly lastBlock: number;
  readonly startedAt: number;
  readonly counters: MulticastSessionCounters = { dataPackets: 0, dataBytes: 0, repeats: 0, clientsDone: 0, clientsFailed: 0, handOvers: 0 };

  /** oldest first; the master (or the client offered the role) is the first */
  private readonly members: Member[] = [];
  private readonly policy: RetransmitPolicy;
  private readonly masterTimeoutMs: number;
  private readonly blocksPerChunk: number;
  private readonly chunks: Chunk[] = [];
  private readonly progressIntervalMs: number;
  private highestSent = 0;
  /** the block the master asked for last and when it went out */
  private inFlight = 0;
  private sentAt = 0;
  private resent = false;
  /** a block waiting for its chunk to load */
  private pendingBlock = 0;
  private retries = 0;
  private timer: TimerHandle | undefined;
  private readonly rtt = new RttEstimator();
  private rto: number;
  private lastProgressAt: number;
  private closed = false;
  /** abort() is ending every member: no hand-over */
  private aborting = false;
  private useCount = 0;
  /** 'waiting': the first master ACKed and the start delay runs */
  private start: 'not yet' | 'waiting' | 'started' = 'not yet';
  private startTimer: TimerHandle | undefined;

  constructor(private readonly options: MulticastSessionOptions) {
    this.blksize = options.blksize;
    this.size = options.source.size;
    this.lastBlock = Math.floor(this.size / this.blksize) + 1;
    this.policy = { ...DEFAULT_RETRANSMIT_POLICY, ...options.retransmit };
    this.masterTimeoutMs = options.masterTimeoutMs ?? 10_000;
    this.rto = this.policy.initialRtoMs;
    this.blocksPerChunk = Math.max(1, Math.ceil((options.readAheadBytes ?? 256 * 1024) / this.blksize));
    this.progressIntervalMs = options.progressIntervalMs ?? 1000;
    this.startedAt = options.clock.now();
    this.lastProgressAt = this.startedAt;
  }

  /** Whether a file of `size` bytes fits a session at `blksize` (see MAX_MULTICAST_BLOCKS). */
  static fits(size: number, blksize: number): boolean {
    return Math.floor(size / blksize) + 1 <= MAX_MULTICAST_BLOCKS;
  }

  get clientCount(): number {
    return this.members.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The master client, or the client offered the role. */
  get master(): MulticastClient | undefined {
    const first = this.members[0];
    return first && first.state !== 'waiting' ? first : undefined;
  }

  /** Adds a client; the first becomes master. Returns what the server reads of its transfer. */
  join(join: MulticastJoin): RunningTransfer {
    if (this.closed) throw new Error('multicast session closed');
    const now = this.options.clock.now();
    const member = join as Member;
    member.state = 'waiting';
    member.acked = -1;
    member.ended = false;
    member.startedAt = now;
    member.lastHeardAt = now;
    member.view = this.viewOf(member);
    this.members.push(member);
    if (this.members.length === 1) this.offerMaster(member, 'first client');
    else this.options.sendTo(member, this.oackFor(member));
    return member.view;
  }

  /** An ACK from a member's TID (block number as on the wire). */
  handleAck(client: MulticastClient, wireBlock: number): void {
    const member = this.memberOf(client);
    if (!member) return;
    const now = this.options.clock.now();
    member.lastHeardAt = now;
    if (member.state === 'waiting') {
      // RFC 2090: any client may end its part with an ACK of the last block.
      if (wireBlock >= this.lastBlock) this.finishMember(member, { outcome: 'done' });
      return;
    }
    if (member.state === 'offered') {
      member.state = 'master';
      this.retries = 0;
    }
    member.acked = Math.max(member.acked, wireBlock);
    if (wireBlock >= this.lastBlock) {
      this.finishMember(member, { outcome: 'done' });
      return;
    }
    const wanted = wireBlock + 1;
    if (this.start !== 'started' && this.delayStart()) return;
    if (wanted === this.inFlight + 1 && this.inFlight > 0) {
      // The ACK of the block in flight: a clean round trip unless it was re-sent (Karn).
      if (!this.resent) this.sampleRtt(now - this.sentAt);
    } else if (wanted === this.inFlight && now - this.sentAt < this.rto) {
      // The block it asks for left a moment ago: a duplicate ACK (Sorcerer's Apprentice, RFC 1123 §4.2.3.1).
      return;
    }
    this.retries = 0;
    this.sendBlock(wanted);
    this.maybeProgress(now, member);
  }

  /** True while the first DATA waits for the start delay (see MulticastSessionOptions.startDelayMs). */
  private delayStart(): boolean {
    const delay = this.options.startDelayMs ?? 0;
    if (this.start === 'waiting') return true;
    if (delay <= 0) {
      this.start = 'started';
      return false;
    }
    this.start = 'waiting';
    this.clearTimer();
    this.startTimer = this.options.clock.setTimeout(() => {
      this.startTimer = undefined;
      this.start = 'started';
      if (this.closed) return;
      const master = this.members[0];
      // The master's silence is counted from the end of the wait, not from its ACK 0.
      master.lastHeardAt = this.options.clock.now();
      this.sendBlock(Math.max(0, master.acked) + 1);
    }, delay);
    return true;
  }

  /** An ERROR from a member's TID: it leaves. */
  handleError(client: MulticastClient, code: number, message: string): void {
    const member = this.memberOf(client);
    if (!member) return;
    // PXE-NOTES: a size probe asks with tsize and stops with ERROR 8 (or 0) after the OACK.
    if (member.acked < 0 && member.tsizeRequested && (code === TftpErrorCode.OptionNegotiation || code === 0)) {
      this.finishMember(member, { outcome: 'probe', errorCode: code, reason: message || 'size probe' }, 'master left');
      return;
    }
    this.finishMember(member, { outcome: 'aborted', errorCode: code, reason: message || `client sent ERROR ${code}` }, 'master left');
  }

  /** The client repeated its request: its OACK was lost. */
  handleRepeatedRequest(client: MulticastClient): void {
    const member = this.memberOf(client);
    if (!member || member.acked >= 0) return;
    member.lastHeardAt = this.options.clock.now();
    this.options.sendTo(member, this.oackFor(member));
  }

  /** Ends every client's part (each gets an ERROR) and the session. */
  abort(reason: string): void {
    this.aborting = true;
    for (const member of [...this.members]) this.abortMember(member, reason);
    this.close();
  }

  private abortMember(member: Member, reason: string): void {
    if (member.ended) return;
    this.options.sendTo(member, encodeError(TftpErrorCode.NotDefined, reason));
    this.finishMember(member, { outcome: 'failed', reason }, 'master left');
  }

  private memberOf(client: MulticastClient): Member | undefined {
    return this.members.find((m) => m.key === client.key);
  }

  private oackFor(member: Member): Buffer {
    const mc = member.state === 'waiting' ? 0 : 1;
    // The address and port go in every OACK: RFC 2090 lets later ones leave them empty, but
    // atftp's parser then fails on the missing fields.
    return encodeOack([...member.oack, { name: 'multicast', value: `${this.options.group},${this.options.port},${mc}` }]);
  }

  private offerMaster(member: Member, reason: MasterChangeReason): void {
    member.state = 'offered';
    member.lastHeardAt = this.options.clock.now();
    this.retries = 0;
    this.options.sendTo(member, this.oackFor(member));
    this.armTimer();
    this.options.onMasterChange?.(member, reason);
  }

  /** Removes a member; when it held the master role, the next oldest gets it. */
  private finishMember(
    member: Member,
    result: Pick<TransferResult, 'outcome' | 'reason' | 'errorCode'>,
    reasonIfMaster: MasterChangeReason = 'master finished',
  ): void {
    if (member.ended) return;
    member.ended = true;
    const wasMaster = member.state !== 'waiting';
    this.members.splice(this.members.indexOf(member), 1);
    if (result.outcome === 'done') this.counters.clientsDone++;
    else if (result.outcome !== 'probe') this.counters.clientsFailed++;
    const now = this.options.clock.now();
    const durationMs = now - member.startedAt;
    const bytes = result.outcome === 'done' ? this.size : this.bytesOf(member);
    member.onEnd({ ...result, bytes, size: this.size, retransmits: this.counters.repeats, durationMs, rate: durationMs > 0 ? (bytes * 1000) / durationMs : 0 });
    if (!wasMaster || this.aborting) return;
    this.clearTimer();
    this.inFlight = 0;
    const next = this.members[0];
    if (next) {
      this.counters.handOvers++;
      this.offerMaster(next, result.outcome === 'done' ? 'master finished' : reasonIfMaster);
      return;
    }
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    if (this.startTimer) this.options.clock.clearTimeout(this.startTimer);
    this.chunks.length = 0;
    this.options.onMasterChange?.(undefined, 'master finished');
    this.options.onEmpty(this.counters);
  }

  private bytesOf(member: Member): number {
    return Math.max(0, Math.min(this.size, member.acked * this.blksize));
  }

  private sendBlock(block: number): void {
    const chunk = this.chunkFor(block);
    if (!chunk) {
      this.pendingBlock = block; // sent when its chunk is read
      return;
    }
    this.pendingBlock = 0;
    const index = (block - 1) % this.blocksPerChunk;
    const start = index * this.blksize;
    const end = Math.min(chunk.data.length, start + this.blksize);
    const header = Buffer.allocUnsafe(4);
    writeDataHeader(header, 0, block);
    const data = chunk.data.subarray(start, Math.max(start, end));
    this.options.sendToGroup(header, data);
    this.counters.dataPackets++;
    this.counters.dataBytes += data.length;
    if (block <= this.highestSent) this.counters.repeats++;
    else this.highestSent = block;
    const now = this.options.clock.now();
    this.resent = block === this.inFlight;
    this.inFlight = block;
    this.sentAt = now;
    this.armTimer();
  }

  private chunkFor(block: number): Chunk | undefined {
    const index = Math.floor((block - 1) / this.blocksPerChunk);
    let chunk = this.chunks.find((c) => c.index === index);
    if (!chunk) chunk = this.load(index);
    chunk.usedAt = ++this.useCount;
    // The stream moves on: read its next chunk while this one is sent.
    const next = index + 1;
    if (next * this.blocksPerChunk < this.lastBlock && !this.chunks.some((c) => c.index === next)) this.load(next);
    return chunk.ready ? chunk : undefined;
  }

  private load(index: number): Chunk {
    const position = index * this.blocksPerChunk * this.blksize;
    const length = Math.max(0, Math.min(this.blocksPerChunk * this.blksize, this.size - position));
    // Never refilled in place: a datagram still queued in the socket may point into it.
    const chunk: Chunk = { index, ready: false, data: Buffer.allocUnsafe(length), usedAt: ++this.useCount };
    if (this.chunks.length >= MAX_CHUNKS) {
      let oldest = -1;
      this.chunks.forEach((c, i) => {
        if (c.ready && (oldest < 0 || c.usedAt < this.chunks[oldest].usedAt)) oldest = i;
      });
      if (oldest >= 0) this.chunks.splice(oldest, 1);
    }
    this.chunks.push(chunk);
    const done = (read: number): void => {
      if (this.closed) return;
      if (read !== length) {
        this.abort(`file shrank while being sent (read ${read} of ${length} bytes at ${position})`);
        return;
      }
      chunk.ready = true;
      const pending = this.pendingBlock;
      if (pending && Math.floor((pending - 1) / this.blocksPerChunk) === index) this.sendBlock(pending);
    };
    const fail = (err: Error): void => {
      if (!this.closed) this.abort(`read error: ${err.message}`);
    };
    try {
      const result = length > 0 ? this.options.source.read(chunk.data, 0, length, position) : 0;
      if (typeof result === 'number') done(result);
      else result.then(done, fail);
    } catch (err) {
      fail(err as Error);
    }
    return chunk;
  }

  private armTimer(): void {
    this.clearTimer();
    const master = this.members[0];
    if (!master || master.state === 'waiting') return;
    // A client offered the role answers at once; the floor keeps a slow machine from being flooded with OACKs.
    const base = master.state === 'offered' ? Math.max(this.rto, this.policy.initialRtoMs) : this.rto;
    const wait = retransmitWaitMs(base, this.retries, Math.max(base, MAX_RESEND_WAIT_MS));
    const silentFor = this.options.clock.now() - master.lastHeardAt;
    // Never later than the moment the master is passed over.
    this.timer = this.options.clock.setTimeout(() => this.onTimeout(), Math.max(0, Math.min(wait, this.masterTimeoutFor(master) - silentFor)));
  }

  private clearTimer(): void {
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private masterTimeoutFor(master: Member): number {
    // A client that negotiated a timeout (RFC 2349) may wait that long before it re-ACKs.
    return Math.max(this.masterTimeoutMs, 2 * (master.timeoutMs ?? 0));
  }

  private onTimeout(): void {
    this.timer = undefined;
    const master = this.members[0];
    if (this.closed || !master || master.state === 'waiting') return;
    const now = this.options.clock.now();
    if (now - master.lastHeardAt >= this.masterTimeoutFor(master)) {
      const seconds = Math.round((now - master.lastHeardAt) / 100) / 10;
      const what = master.state === 'offered' ? 'did not answer the OACK that made it master' : 'stopped ACKing as master';
      this.options.sendTo(master, encodeError(TftpErrorCode.NotDefined, 'timed out waiting for ACK'));
      this.finishMember(master, { outcome: 'failed', reason: `multicast: ${what} (nothing for ${seconds} s); the next client took over` }, 'master timed out');
      return;
    }
    this.retries++;
    if (master.state === 'offered') {
      this.options.sendTo(master, this.oackFor(master));
      this.armTimer();
    } else if (this.inFlight > 0) {
      this.sendBlock(this.inFlight);
    } else {
      this.armTimer();
    }
  }

  /** RFC 6298 §2 estimator, clamped to [minRto, maxRto]. */
  private sampleRtt(sample: number): void {
    this.rto = this.rtt.sample(sample, this.policy.minRtoMs, this.policy.maxRtoMs);
  }

  private maybeProgress(now: number, master: Member): void {
    if (now - this.lastProgressAt < this.progressIntervalMs) return;
    this.lastProgressAt = now;
    const elapsedMs = now - master.startedAt;
    const bytes = this.bytesOf(master);
    master.onProgress?.({ bytes, size: this.size, retransmits: this.counters.repeats, elapsedMs, rate: elapsedMs > 0 ? (bytes * 1000) / elapsedMs : 0 });
    this.options.onProgress?.({ ...this.counters, clients: this.members.length, highestBlock: this.highestSent });
  }

  private viewOf(member: Member): RunningTransfer {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const session = this;
    return {
      get phase(): TransferPhase {
        return member.ended ? 'done' : member.acked < 0 && member.state !== 'waiting' ? 'negotiating' : 'sending';
      },
      size: this.size,
      get bytesAcknowledged() {
        return session.bytesOf(member);
      },
      get retransmits() {
        return session.counters.repeats;
      },
      startedAt: member.startedAt,
      blksize: this.blksize,
      windowsize: 1,
      abort: (reason: string) => this.abortMember(member, reason),
      handleRepeatedRequest: () => this.handleRepeatedRequest(member),
    };
  }
}
