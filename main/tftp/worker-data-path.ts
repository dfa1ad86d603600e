// The TFTP data path off Node's event loop (issue 8). Profiles of lock-step transfers showed
// Node's dgram receive path (RemoteInfo object, callback machinery, libuv) costing about
// 10 us of CPU per ACK against 4 us for a C server's whole round trip, while our own code
// was ~5% of the time. So the transfers, once negotiated, move to one worker thread
// (data-path-worker.ts) that owns their sockets and runs the same ReadTransfer with its
// own poll loop. Requests on port 69, path safety, file opening, option negotiation and
// events stay on the main thread; the worker reports progress (~4/s per transfer) and the
// end of each transfer.
//
// Where the worker cannot run (not Linux x64/arm64, koffi missing, the worker fails to
// start), `WorkerDataPath.start` resolves to undefined and the server keeps the dgram path.
import { DoorbellWorkerClient, startDoorbellWorker, type DoorbellWorker } from '../net/doorbell-worker.js';
import type { NegotiatedTransfer } from './options.js';
import type { RetransmitPolicy, TransferProgress, TransferResult } from './transfer.js';
import { openTransferDescriptor } from '../net/udp-descriptor.js';

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

export interface WorkerTransferHandlers {
  onProgress(progress: TransferProgress): void;
  onEnd(result: TransferResult): void;
  /** The worker could not take the transfer (nothing was sent). */
  onRefused(reason: string): void;
  onJunk(bytes: number): void;
  onWarn(message: string): void;
}

const SEND_BUFFER_BYTES = 4 * 1024 * 1024;
const RECEIVE_BUFFER_BYTES = 256 * 1024;
/** How long stop() waits for the worker to report aborted transfers before terminating it. */
const STOP_WAIT_MS = 2_000;

export class WorkerDataPath extends DoorbellWorkerClient<DataPathCommand, DataPathEvent> {
  private readonly handlers = new Map<number, WorkerTransferHandlers>();
  /** each running transfer's socket, closed here only if the worker is gone without closing it */
  private readonly sockets = new Map<number, number>();
  private nextId = 1;
  private idleWaiters: (() => void)[] = [];

  private constructor(started: DoorbellWorker) {
    super(started.sys, started, 'TFTP worker');
  }

  /** A running worker, or undefined (with the reason) where the fast path is unavailable. */
  static async start(platform: NodeJS.Platform = process.platform): Promise<{ dataPath?: WorkerDataPath; reason?: string }> {
    const started = await startDoorbellWorker(new URL('./data-path-worker.js', import.meta.url), new URL('./data-path-worker.ts', import.meta.url), import.meta.url.endsWith('.ts'), platform);
    if ('reason' in started) return { reason: started.reason };
    return { dataPath: new WorkerDataPath(started) };
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
        handlers.onWarn(event.message);
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
