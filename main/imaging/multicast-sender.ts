// The image stream for a deploy to several PCs: every chunk of the image, in manifest order,
// as UDP datagrams to an administratively scoped group on the job's NIC (TTL 1: it never
// leaves the bench segment), paced by StreamSchedule. Receivers (bb-stream-recv in the
// imaging environment) answer with feedback datagrams to the same port, unicast; what they
// miss they fetch by HTTP from the chunk route, so the stream never goes back for anyone.
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../core/index.js';
import { createBatchSender, type BatchSender } from '../tftp/index.js';
import { DATA_HEADER_BYTES, DATA_PAYLOAD, decodeFeedback, encodeData, encodeDataHeader } from './multicast-datagram.js';
import {
  DATAGRAM_WIRE_BYTES,
  StreamSchedule,
  WIRE_OVERHEAD,
  type ReceiverView,
  type ScheduleOptions,
  type StartRule,
  type StartState,
} from './multicast-schedule.js';

/**
 * Groups come from 239.255.0.0/16, the IPv4 Local Scope of RFC 2365 (section 6.1): routers
 * do not forward it beyond the site, and with TTL 1 it stays on the segment anyway. One group
 * per job (the last byte from its id) so that an IGMP-snooping switch sends a job's stream
 * only to its own PCs; 239.255.255.250 (SSDP) and 239.255.255.253 (SLP) are never chosen.
 */
export function streamGroupFor(jobId: number): string {
  return `239.255.66.${1 + (jobId % 250)}`;
}

export interface MulticastSenderOptions {
  /** the NIC's IPv4 address: the stream leaves through it and feedback arrives on it */
  address: string;
  group: string;
  /** UDP port for the group and for feedback; 0 = any free port */
  port?: number;
  session?: number;
  /** chunk files in manifest order (a chunk used twice is sent twice: the receivers count by index) */
  chunkPaths: string[];
  expected: string[];
  logger: Logger;
  rate?: Pick<ScheduleOptions, 'startRate' | 'minRate' | 'maxRate' | 'silenceMs' | 'minReceivers'>;
  /** when the stream starts (default: every PC ready, or a minute after the first) */
  start?: StartRule;
  /** a bound socket for tests; default a fresh udp4 socket */
  socket?: Socket;
  /** false: one dgram send per datagram even where sendmmsg is available (tests, comparison) */
  batchSend?: boolean;
  /** false: batches by sendmmsg only, without UDP GSO (tests, comparison) */
  segmentation?: boolean;
}

export interface StreamStats {
  group: string;
  port: number;
  session: number;
  rate: number;
  peakRate: number;
  chunks: number;
  chunksSent: number;
  passes: number;
  bytesSent: number;
  receivers: ReceiverView[];
  /** The NIC's IGMP querier: what was heard and what Bootbench does (set by the imaging service). */
  querier?: string;
  start: StartState;
}

/** How often the schedule is asked to adapt the rate (it acts every 100 or 250 ms). */
const ADAPT_TICK_MS = 50;
/** Datagrams handed to the kernel and not yet confirmed: beyond this the pump waits. */
const MAX_PENDING = 512;
/**
 * Datagrams per batch: a 4 ms burst at 1 Gbit/s is about 350. A multiple of the 45 full
 * datagrams (1428 bytes) one UDP GSO send can carry (65507 bytes of UDP payload).
 */
const BATCH = 180;

/** Datagrams of one UDP GSO send: 45 x 1428 bytes fit in 65507. */
const RUN = Math.floor(65507 / (DATA_HEADER_BYTES + DATA_PAYLOAD));
/** A stored chunk is at most 4 MiB compressed and a little more when zstd could not shrink it. */
const CHUNK_BUFFER_BYTES = 4 * 1024 * 1024 + 64 * 1024;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class MulticastSender {
  readonly session: number;
  readonly schedule: StreamSchedule;
  private readonly socket: Socket;
  private port = 0;
  private stopped = false;
  private adaptTimer: NodeJS.Timeout | undefined;
  private rateLimited = false;
  private bytesSent = 0;
  private seq = 0;
  private pending = 0;
  private drained: (() => void) | undefined;
  private pumping: Promise<void> | undefined;
  private batch: BatchSender | undefined;
  /** The batch's datagram headers, one slot per datagram of a batch, reused batch after batch. */
  private readonly headers = Buffer.alloc(BATCH * DATA_HEADER_BYTES);
  private headerSlot = 0;
  private readonly cache = new Map<number, Promise<Buffer>>();
  private readonly spare: ArrayBuffer[] = [];

  constructor(private readonly options: MulticastSenderOptions) {
    this.session = options.session ?? randomBytes(4).readUInt32BE(0);
    this.schedule = new StreamSchedule({ chunks: options.chunkPaths.length, expected: options.expected, start: options.start, ...options.rate });
    this.socket = options.socket ?? createSocket({ type: 'udp4', reuseAddr: false });
  }

  /** `GROUP:PORT:SESSION`, the task's stream= value. */
  get address(): string {
    return `${this.options.group}:${this.port}:${this.session.toString(16).padStart(8, '0')}`;
  }

  async start(): Promise<void> {
    const { socket, options } = this;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(options.port ?? 0, options.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    this.port = socket.address().port;
    socket.setMulticastInterface(options.address);
    socket.setMulticastTTL(1);
    socket.setMulticastLoopback(false);
    // Room for a burst of feedback from a whole room while the pump holds the event loop.
    try {
      socket.setRecvBufferSize(1 << 20);
      socket.setSendBufferSize(4 << 20);
    } catch {
      /* the system's limits stay */
    }
    // The datagrams of a pacing tick in one system call on the socket's own descriptor (its
    // multicast interface, TTL and loopback apply to it); dgram where that is unavailable.
    // Runs of full datagrams as UDP GSO sends where the kernel and the route allow it (Linux
    // 4.18): one trip through the stack (and through a software bridge) per run instead of per
    // datagram; a receiver with UDP_GRO takes the run in one read too.
    if (options.batchSend !== false)
      this.batch = createBatchSender(
        socket,
        options.group,
        this.port,
        BATCH,
        { segmentSize: options.segmentation === false ? 0 : DATA_HEADER_BYTES + DATA_PAYLOAD },
        // Headers and chunk buffers are reused once the batch is out, while dgram keeps what it
        // queues until it is sent: it gets a copy.
        (header, data) => socket.send(Buffer.concat(data ? [header, data] : [header]), this.port, options.group),
      );
    socket.on('message', (packet) => {
      const f = decodeFeedback(packet);
      if (f && f.session === this.session) this.schedule.feedback(Date.now(), f);
    });
    socket.on('error', (error) => options.logger.warn(`imaging stream ${options.group}: ${error.message}`));
    this.adaptTimer = setInterval(() => {
      const held = this.rateLimited;
      if (!this.schedule.adapt(Date.now(), held)) return;
      this.rateLimited = false;
      // Where pacing stands, for tracing a slow stream: the rate, whether it held the pump, the cursor and the room's positions.
      const room = this.schedule
        .view()
        .map((r) => `${r.position}/${r.need}${r.lost ? ` lost ${r.lost}` : ''}`)
        .join(' ');
      options.logger.debug(
        `imaging stream ${options.group}: rate ${(this.schedule.rate / 1e6).toFixed(1)} MB/s${held ? ', held by it' : ''}, ${(this.bytesSent / 1e6).toFixed(1)} MB sent, next chunk ${this.schedule.cursor}; PCs at ${room}`,
      );
    }, ADAPT_TICK_MS);
    this.pumping = this.pump().catch((error: Error) => {
      options.logger.error(`imaging stream ${options.group}: ${error.message}; the PCs finish by HTTP`);
      this.close();
    });
    options.logger.info(
      `imaging: stream ${this.address} from ${options.address} for ${options.expected.length} PCs (${options.chunkPaths.length} chunks, ${this.batch ? (options.segmentation === false ? 'sendmmsg' : 'UDP GSO or sendmmsg') : 'one send per datagram'})`,
    );
  }

  /** The PC no longer needs the stream (writing done, failed, or on its own by HTTP). */
  leave(mac: string): void {
    this.schedule.leave(mac);
  }

  finished(): boolean {
    return this.schedule.finished();
  }

  /** A receiver asked whether the stream has started: it is ready. True once it has. */
  ask(mac: string): boolean {
    this.schedule.ready(Date.now(), mac);
    return this.schedule.started(Date.now());
  }

  /** The technician's Go. */
  go(): void {
    this.schedule.go(Date.now());
  }

  startState(): StartState {
    return this.schedule.startState(Date.now());
  }

  stats(): StreamStats {
    const s = this.schedule;
    return {
      group: this.options.group,
      port: this.port,
      session: this.session,
      rate: s.rate,
      peakRate: s.peakRate,
      chunks: this.options.chunkPaths.length,
      chunksSent: s.chunksSent,
      passes: s.passes,
      bytesSent: this.bytesSent,
      receivers: s.view(),
      start: s.startState(Date.now()),
    };
  }

  async stop(): Promise<void> {
    this.close();
    await this.pumping;
  }

  private close(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.adaptTimer) clearInterval(this.adaptTimer);
    this.drained?.();
    try {
      this.socket.close();
    } catch {
      /* already closed */
    }
  }

  private chunk(index: number): Promise<Buffer> {
    let read = this.cache.get(index);
    if (!read) {
      read = this.readChunk(index);
      this.cache.set(index, read);
    }
    // The pump asks for a chunk once it is done with the one before: the others' buffers are free.
    for (const [key, other] of this.cache) {
      if (key === index || key === index + 1) continue;
      this.cache.delete(key);
      other.then(
        (buffer) => this.spare.push(buffer.buffer as ArrayBuffer),
        () => undefined,
      );
    }
    // The next chunk is read while this one goes out.
    if (index + 1 < this.options.chunkPaths.length && !this.cache.has(index + 1)) {
      const next = this.readChunk(index + 1);
      next.catch(() => undefined);
      this.cache.set(index + 1, next);
    }
    return read;
  }

  /**
   * A chunk file into a buffer the pump used before: a fresh one of several MiB per chunk
   * kept V8's collector busy. Every datagram is sent (or copied to dgram) before its chunk's
   * buffer comes back here.
   */
  private async readChunk(index: number): Promise<Buffer> {
    const file = await open(this.options.chunkPaths[index], 'r');
    try {
      const { size } = await file.stat();
      let memory = this.spare.pop();
      if (!memory || memory.byteLength < size) memory = new ArrayBuffer(Math.max(size, CHUNK_BUFFER_BYTES));
      const buffer = Buffer.from(memory, 0, size);
      for (let at = 0; at < size;) {
        const { bytesRead } = await file.read(buffer, at, size - at, at);
        if (bytesRead === 0) throw new Error(`chunk file ${this.options.chunkPaths[index]} ended after ${at} of ${size} bytes`);
        at += bytesRead;
      }
      return buffer;
    } finally {
      await file.close();
    }
  }

  private flush(): void {
    this.batch?.flush();
    this.headerSlot = 0;
  }

  private async pump(): Promise<void> {
    const total = this.options.chunkPaths.length;
    let tokens = 0;
    let last = performance.now();
    let current: { index: number; data: Buffer; offset: number } | undefined;
    while (!this.stopped) {
      if (this.schedule.finished()) break;
      if (!current) {
        const index = this.schedule.next(Date.now());
        if (index === undefined) {
          await sleep(5);
          tokens = 0;
          last = performance.now();
          continue;
        }
        current = { index, data: await this.chunk(index), offset: 0 };
      }
      const now = performance.now();
      // A burst of at most 4 ms at the current rate: short enough for switch and receiver buffers.
      const burst = Math.max(4 * (DATA_PAYLOAD + 28), this.schedule.rate * 0.004);
      tokens = Math.min(burst, tokens + (this.schedule.rate * (now - last)) / 1000);
      last = now;
      // Datagrams go out a whole GSO run at a time (64 KiB, half a millisecond at 1 Gbit/s): one
      // system call each rather than a few datagrams a call. At a low rate a run is what a burst
      // allows: a run leaves at line rate, and 64 KiB at once would overflow the few ms of buffer
      // a slower switch port has.
      const run = this.batch ? Math.max(1, Math.min(RUN, Math.floor(burst / DATAGRAM_WIRE_BYTES))) : 1;
      const quantum = this.batch ? run * DATAGRAM_WIRE_BYTES : DATA_PAYLOAD;
      if (tokens < quantum) {
        this.rateLimited = true;
        await sleep(1);
        continue;
      }
      const batch = this.batch;
      let counted = 0;
      // A run once started is finished: a little beyond the tokens, taken from the next tick's.
      while (current && (tokens >= quantum || (batch && counted % run !== 0)) && this.pending < MAX_PENDING && !this.stopped) {
        counted++;
        const { index, data, offset } = current;
        const payload = data.subarray(offset, offset + DATA_PAYLOAD);
        const header = { session: this.session, seq: this.seq, chunk: index, chunkLength: data.length, offset, chunks: total };
        this.seq = (this.seq + 1) >>> 0;
        if (batch) {
          // The slots follow the batch's own count: it sends (or hands to dgram, copied) when full and at each flush.
          const at = this.headerSlot * DATA_HEADER_BYTES;
          batch.add(encodeDataHeader(header, this.headers.subarray(at, at + DATA_HEADER_BYTES)), payload);
          this.headerSlot = (this.headerSlot + 1) % BATCH;
        } else {
          this.pending += 1;
          this.socket.send(encodeData(header, payload), this.port, this.options.group, () => {
            this.pending -= 1;
            if (this.pending < MAX_PENDING / 2) this.drained?.();
          });
        }
        const length = DATA_HEADER_BYTES + payload.length;
        this.bytesSent += length;
        tokens -= length + WIRE_OVERHEAD;
        current.offset += payload.length;
        if (current.offset >= data.length) {
          this.flush();
          this.schedule.sent(index, Date.now());
          current = undefined;
        }
      }
      if (batch && !this.stopped) {
        this.flush();
        // What sendmmsg left (a full socket buffer) waits in dgram's queue: let it drain first.
        while (this.socket.getSendQueueCount() >= MAX_PENDING && !this.stopped) await sleep(1);
      }
      if (this.pending >= MAX_PENDING) {
        await new Promise<void>((resolve) => (this.drained = resolve));
        this.drained = undefined;
      } else await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.close();
  }
}
