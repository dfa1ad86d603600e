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
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { startModuleWorker } from '../host/module-worker.js';
import type { NegotiatedTransfer } from './options.js';
import type { RetransmitPolicy, TransferProgress, TransferResult } from './transfer.js';
import { loadUdpSyscalls, openEventDescriptor, openTransferDescriptor, type UdpSyscalls } from './udp-descriptor.js';

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
const START_TIMEOUT_MS = 10_000;
/** How long stop() waits for the worker to report aborted transfers before terminating it. */
const STOP_WAIT_MS = 2_000;

export class WorkerDataPath {
  private readonly handlers = new Map<number, WorkerTransferHandlers>();
  /** each running transfer's socket, closed here only if the worker is gone without closing it */
  private readonly sockets = new Map<number, number>();
  private readonly doorbell = Buffer.alloc(8);
  private nextId = 1;
  private failed: Error | undefined;
  private idleWaiters: (() => void)[] = [];

  private constructor(
    private readonly sys: UdpSyscalls,
    private readonly worker: Worker,
    private readonly port: MessagePort,
    private readonly doorbellFd: number,
  ) {
    this.doorbell.writeUInt32LE(1, 0);
    port.on('message', (event: DataPathEvent) => this.onEvent(event));
    worker.on('error', (err) => this.onWorkerGone(err));
    worker.on('exit', (code) => this.onWorkerGone(new Error(`worker exited (${code})`)));
  }

  /** A running worker, or undefined (with the reason) where the fast path is unavailable. */
  static async start(platform: NodeJS.Platform = process.platform): Promise<{ dataPath?: WorkerDataPath; reason?: string }> {
    const sys = loadUdpSyscalls(platform);
    if (!sys) return { reason: `no koffi/Linux syscalls on ${platform}/${process.arch}` };
    let doorbellFd: number;
    try {
      doorbellFd = openEventDescriptor(sys);
    } catch (err) {
      return { reason: (err as Error).message };
    }
    const { port1, port2 } = new MessageChannel();
    let worker: Worker;
    try {
      // The worker's live heap is small (read-ahead chunks are outside it); a small young
      // generation keeps its garbage from adding tens of MiB of RSS under load.
      worker = await startModuleWorker(new URL('./data-path-worker.js', import.meta.url), new URL('./data-path-worker.ts', import.meta.url), import.meta.url.endsWith('.ts'), { workerData: { port: port2, doorbellFd }, transferList: [port2], resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    } catch (err) {
      sys.close(doorbellFd);
      port1.close();
      return { reason: `worker did not start: ${(err as Error).message}` };
    }
    const first = await new Promise<DataPathEvent | Error>((resolve) => {
      const timer = setTimeout(() => resolve(new Error('worker did not report ready in time')), START_TIMEOUT_MS);
      port1.once('message', (event: DataPathEvent) => {
        clearTimeout(timer);
        resolve(event);
      });
      worker.once('error', (err) => {
        clearTimeout(timer);
        resolve(err);
      });
      worker.once('exit', (code) => {
        clearTimeout(timer);
        resolve(new Error(`worker exited (${code})`));
      });
    });
    if (first instanceof Error || first.type !== 'ready') {
      await worker.terminate().catch(() => {});
      port1.close();
      sys.close(doorbellFd);
      return { reason: first instanceof Error ? first.message : first.type === 'unavailable' ? first.reason : 'unexpected first message' };
    }
    worker.unref();
    port1.unref();
    return { dataPath: new WorkerDataPath(sys, worker, port1, doorbellFd) };
  }

  get usable(): boolean {
    return !this.failed;
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
    if (this.handlers.size > 0 && !this.failed) {
      this.command({ type: 'abort-all', reason });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, STOP_WAIT_MS);
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.failed ??= new Error('stopped');
    await this.worker.terminate().catch(() => {});
    this.port.close();
    this.sys.close(this.doorbellFd);
    this.endAll('server stopping');
  }

  private command(command: DataPathCommand): void {
    this.port.postMessage(command);
    // The worker may be inside its poll loop, where it does not see messages on its own.
    this.sys.write(this.doorbellFd, this.doorbell, 8);
  }

  private onEvent(event: DataPathEvent): void {
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

  private onWorkerGone(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.endAll(`TFTP worker failed: ${err.message}`);
  }

  /** Reports every transfer still listed as failed (the worker is gone; its sockets with it). */
  private endAll(reason: string): void {
    for (const [id, handlers] of [...this.handlers]) {
      const fd = this.sockets.get(id);
      if (fd !== undefined) this.sys.close(fd);
      this.forget(id);
      handlers.onEnd({ outcome: 'failed', reason, bytes: 0, size: 0, retransmits: 0, durationMs: 0, rate: 0 });
    }
  }
}
