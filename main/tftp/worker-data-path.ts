// The TFTP data path off Node's event loop. Node's dgram receive path (a RemoteInfo object,
// callback machinery, libuv) costs more CPU per ACK than a C server's whole round trip,
// while our own code is a small part of a lock-step transfer's time. So the transfers,
// once negotiated, move to worker threads (data-path-worker.ts) that own their sockets
// and run the same ReadTransfer with their own poll loop. The worker reports progress
// (~4/s per transfer) and the end of each transfer.
//
// Where the worker cannot run (not Linux x64/arm64, koffi missing, the worker fails to
// start), `WorkerDataPath.start` resolves to the reason and the server keeps the
// event-loop path (event-loop-data-path.ts).
import { DoorbellWorkerClient, startDoorbellWorker, type DoorbellWorker, openTransferDescriptor } from '../net/index.js';
import { DiskFile } from '../files/index.js';
import type { TransferDataPath, TransferHandlers, TransferSpec } from './data-path.js';
import type { NegotiatedTransfer } from './options.js';
import type { RetransmitPolicy, TransferPhase, TransferProgress, TransferResult } from './transfer.js';

export interface WorkerTransferSpec {
  id: number;
  /** the transfer's own UDP socket (its TID), made by `openSocket`; the worker closes it */
  fd: number;
  ip: string;
  port: number;
  /** the file's (shared) descriptor; it stays open until the worker reports the end */
  fileFd: number;
  size: number;
  negotiated: NegotiatedTransfer;
  retransmit?: Partial<RetransmitPolicy>;
  progressIntervalMs?: number;
  readAheadBytes?: number;
  /** UDP GSO for runs of full blocks (default on; falls back by itself where unsupported) */
  segmentation?: boolean;
  /** Longest busy wait for the next ACK while this is the worker's only transfer (default SPIN_BUDGET_MS; 0 off) */
  busyWaitMs?: number;
}

export type DataPathCommand =
  | { type: 'start'; spec: WorkerTransferSpec }
  | { type: 'abort'; id: number; reason: string }
  | { type: 'repeated-request'; id: number }
  | { type: 'abort-all'; reason: string };

export type DataPathEvent =
  | { type: 'ready' }
  | { type: 'unavailable'; reason: string }
  | { type: 'started'; id: number }
  | { type: 'refused'; id: number; reason: string }
  | { type: 'progress'; id: number; progress: TransferProgress }
  | { type: 'end'; id: number; result: TransferResult }
  | { type: 'junk'; id: number; bytes: number }
  | { type: 'warn'; id: number; message: string };

type WorkerTransferHandlers = Omit<TransferHandlers, 'onStart'>;

const SEND_BUFFER_BYTES = 4 * 1024 * 1024;
const RECEIVE_BUFFER_BYTES = 256 * 1024;
/** How long stop() waits for the worker to report aborted transfers before terminating it. */
const STOP_WAIT_MS = 2_000;

/** One worker thread and the transfers handed to it. */
export class DataPathWorker extends DoorbellWorkerClient<DataPathCommand, DataPathEvent> {
  private readonly handlers = new Map<number, WorkerTransferHandlers>();
  /** each running transfer's socket, closed here only if the worker is gone without closing it */
  private readonly sockets = new Map<number, number>();
  private nextId = 1;
  private idleWaiters: (() => void)[] = [];

  private constructor(started: DoorbellWorker) {
    super(started.sys, started, 'TFTP worker');
  }

  /** A running worker, or the reason the fast path is unavailable. */
  static async start(platform: NodeJS.Platform = process.platform): Promise<{ worker?: DataPathWorker; reason?: string }> {
    const started = await startDoorbellWorker(
      new URL('./data-path-worker.js', import.meta.url),
      new URL('./data-path-worker.ts', import.meta.url),
      import.meta.url.endsWith('.ts'),
      platform,
    );
    if ('reason' in started) return { reason: started.reason };
    return { worker: new DataPathWorker(started) };
  }

  get activeCount(): number {
    return this.handlers.size;
  }

  /** A fresh UDP socket for one transfer (throws on failure; the caller may fall back). */
  openSocket(address: string | undefined): { fd: number; port: number } {
    return openTransferDescriptor(this.sys, address, SEND_BUFFER_BYTES, RECEIVE_BUFFER_BYTES);
  }

  /** Closes a socket from `openSocket` that was never handed to `begin`. */
  closeSocket(fd: number): void {
    this.sys.close(fd);
  }

  /** Hands a transfer to the worker; from here on the worker owns `spec.fd`. */
  begin(spec: Omit<WorkerTransferSpec, 'id'>, handlers: WorkerTransferHandlers): number {
    const id = this.nextId++;
    this.handlers.set(id, handlers);
    this.sockets.set(id, spec.fd);
    this.command({ type: 'start', spec: { ...spec, id } });
    return id;
  }

  abort(id: number, reason: string): void {
    if (this.handlers.has(id)) this.command({ type: 'abort', id, reason });
  }

  /** The client repeated its request on port 69 (see ReadTransfer.handleRepeatedRequest). */
  repeatedRequest(id: number): void {
    if (this.handlers.has(id)) this.command({ type: 'repeated-request', id });
  }

  /** Aborts every transfer (each client gets an ERROR), waits for their ends, stops the worker. */
  async stop(reason = 'server stopping'): Promise<void> {
    let idle: Promise<void> | undefined;
    if (this.handlers.size > 0 && !this.failed) {
      idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      this.command({ type: 'abort-all', reason });
    }
    await this.terminate('server stopping', idle, STOP_WAIT_MS);
  }

  protected onEvent(event: DataPathEvent): void {
    if (event.type === 'ready' || event.type === 'unavailable' || event.type === 'started') return;
    const handlers = this.handlers.get(event.id);
    if (!handlers) return;
    switch (event.type) {
      case 'progress':
        handlers.onProgress(event.progress);
        return;
      case 'junk':
        handlers.onJunk(event.bytes);
        return;
      case 'warn':
        handlers.onSendError(event.message);
        return;
      case 'refused':
        this.forget(event.id);
        handlers.onRefused(event.reason);
        return;
      case 'end':
        this.forget(event.id);
        handlers.onEnd(event.result);
    }
  }

  private forget(id: number): void {
    this.handlers.delete(id);
    this.sockets.delete(id);
    if (this.handlers.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Reports every transfer still listed as failed (the worker is gone; its sockets with it). */
  protected endAll(reason: string): void {
    for (const [id, handlers] of [...this.handlers]) {
      const fd = this.sockets.get(id);
      if (fd !== undefined) this.sys.close(fd);
      this.forget(id);
      handlers.onEnd({ outcome: 'failed', reason, bytes: 0, size: 0, retransmits: 0, durationMs: 0, rate: 0 });
    }
  }
}

export interface WorkerDataPathOptions {
  /** bind address of the transfers' sockets (the server's) */
  address?: string;
  retransmit?: Partial<RetransmitPolicy>;
  progressIntervalMs?: number;
  readAheadBytes?: number;
  /** Longest busy wait for the next ACK while a worker has a single transfer (spin-wait.ts), in ms. */
  busyWaitMs?: number;
  /** A complaint logged at most once a while under `key`. */
  logOnce(key: string, message: string): void;
  clock: { now(): number };
}

/** Transfers on worker threads, each to the least busy one. */
export class WorkerDataPath implements TransferDataPath {
  readonly kind = 'worker';

  private constructor(
    readonly workers: DataPathWorker[],
    private readonly options: WorkerDataPathOptions,
  ) {}

  /** `count` workers, or the reason there are none here. */
  static async start(count: number, options: WorkerDataPathOptions, platform?: NodeJS.Platform): Promise<{ dataPath?: WorkerDataPath; reason?: string }> {
    const started = await Promise.all(Array.from({ length: count }, () => DataPathWorker.start(platform)));
    const workers = started.flatMap((s) => (s.worker ? [s.worker] : []));
    const reason = started.find((s) => s.reason)?.reason ?? '';
    return workers.length > 0 ? { dataPath: new WorkerDataPath(workers, options) } : { reason };
  }

  /** Whether a worker still runs (all of them can fail). */
  get usable(): boolean {
    return this.workers.some((w) => w.usable);
  }

  async begin(spec: TransferSpec, handlers: TransferHandlers): Promise<boolean> {
    const { file, negotiated, ip, port } = spec;
    if (!(file instanceof DiskFile)) return false; // the worker reads through a descriptor
    let worker: DataPathWorker | undefined;
    for (const w of this.workers) if (w.usable && (!worker || w.activeCount < worker.activeCount)) worker = w;
    if (!worker) return false;
    const o = this.options;
    let fd: number;
    try {
      fd = worker.openSocket(o.address).fd;
    } catch (err) {
      o.logOnce('worker-socket', `TFTP: transfer socket for the worker failed (${(err as Error).message}); using the event loop`);
      return false;
    }
    const chosen = worker;
    let id = 0;
    // What the server reads of the transfer: the worker's last report.
    const state = {
      phase: (negotiated.oack.length > 0 ? 'negotiating' : 'sending') as TransferPhase,
      size: file.size,
      bytesAcknowledged: 0,
      retransmits: 0,
      startedAt: o.clock.now(),
      blksize: negotiated.blksize,
      windowsize: negotiated.windowsize,
      abort: (reason: string) => chosen.abort(id, reason),
      handleRepeatedRequest: () => chosen.repeatedRequest(id),
    };
    handlers.onStart(state);
    id = chosen.begin(
      {
        fd,
        ip,
        port,
        fileFd: file.descriptorFd,
        size: file.size,
        negotiated,
        retransmit: o.retransmit,
        progressIntervalMs: o.progressIntervalMs,
        readAheadBytes: o.readAheadBytes,
        busyWaitMs: o.busyWaitMs,
      },
      {
        onProgress: (progress) => {
          state.phase = 'sending';
          state.bytesAcknowledged = progress.bytes;
          state.retransmits = progress.retransmits;
          handlers.onProgress(progress);
        },
        onEnd: (result) => {
          state.phase = result.outcome;
          handlers.onEnd(result);
        },
        onRefused: (reason) => handlers.onRefused(reason),
        onJunk: (bytes) => handlers.onJunk(bytes),
        onSendError: (message) => handlers.onSendError(message),
      },
    );
    return true;
  }

  async stop(reason: string): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop(reason)));
  }
}
