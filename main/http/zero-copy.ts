// Zero-copy HTTP bodies (Linux): a file range goes from the page cache to the connection's
// socket by sendfile(2), in one worker thread that polls every such socket, as nginx does.
// Through a stream, each MiB is read into a Buffer, handed to libuv and copied into the
// socket, several times the CPU of the transfer itself.
//
// The main thread keeps everything HTTP: parsing, path safety, validators, ranges, headers
// and events. Once the headers are in the kernel it hands the worker a dup(2) of the socket
// (so the worker never writes to a descriptor number that Node closed and reused), the
// file's descriptor, an offset and a length; the worker reports progress and the end, and
// the response is then ended through Node as usual (keep-alive goes on).
//
// Where the syscalls are missing (Windows, macOS, koffi absent) or the worker fails,
// `ZeroCopySender.start` resolves to a reason and the server keeps streaming.
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { startModuleWorker } from '../host/module-worker.js';
import { loadUdpSyscalls, openEventDescriptor, type UdpSyscalls } from '../tftp/udp-descriptor.js';

export type SendfileCommand =
  | { type: 'start'; id: number; socketFd: number; fileFd: number; start: number; length: number; progressIntervalMs: number }
  | { type: 'abort'; id: number; reason: string };

export type SendfileEvent =
  | { type: 'ready' }
  | { type: 'unavailable'; reason: string }
  | { type: 'progress'; id: number; bytes: number }
  | { type: 'end'; id: number; bytes: number; error?: string };

export interface ZeroCopyHandlers {
  /** bytes sent so far (cumulative) */
  onProgress(bytes: number): void;
  onEnd(bytes: number, error: string | undefined): void;
}

const START_TIMEOUT_MS = 10_000;

export class ZeroCopySender {
  private readonly handlers = new Map<number, ZeroCopyHandlers>();
  /** each response's socket duplicate, closed here only if the worker is gone without closing it */
  private readonly sockets = new Map<number, number>();
  private readonly doorbell = Buffer.alloc(8);
  private nextId = 1;
  private failed: Error | undefined;

  private constructor(
    private readonly sys: UdpSyscalls,
    private readonly worker: Worker,
    private readonly port: MessagePort,
    private readonly doorbellFd: number,
  ) {
    this.doorbell.writeUInt32LE(1, 0);
    port.on('message', (event: SendfileEvent) => this.onEvent(event));
    worker.on('error', (err) => this.onWorkerGone(err));
    worker.on('exit', (code) => this.onWorkerGone(new Error(`worker exited (${code})`)));
  }

  /** A running sender, or the reason there is none on this platform. */
  static async start(platform: NodeJS.Platform = process.platform): Promise<{ sender?: ZeroCopySender; reason?: string }> {
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
      worker = await startModuleWorker(new URL('./sendfile-worker.js', import.meta.url), new URL('./sendfile-worker.ts', import.meta.url), import.meta.url.endsWith('.ts'), { workerData: { port: port2, doorbellFd }, transferList: [port2], resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    } catch (err) {
      sys.close(doorbellFd);
      port1.close();
      return { reason: `worker did not start: ${(err as Error).message}` };
    }
    const first = await new Promise<SendfileEvent | Error>((resolve) => {
      const timer = setTimeout(() => resolve(new Error('worker did not report ready in time')), START_TIMEOUT_MS);
      port1.once('message', (event: SendfileEvent) => {
        clearTimeout(timer);
        resolve(event);
      });
      worker.once('error', (err) => {
        clearTimeout(timer);
        resolve(err);
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
    return { sender: new ZeroCopySender(sys, worker, port1, doorbellFd) };
  }

  get usable(): boolean {
    return !this.failed;
  }

  /**
   * Sends `length` bytes of `fileFd` from `start` to the connection `socketFd` (which is
   * duplicated here; the caller's stays Node's). Returns an abort function.
   */
  send(socketFd: number, fileFd: number, start: number, length: number, progressIntervalMs: number, handlers: ZeroCopyHandlers): (reason: string) => void {
    const dup = this.sys.dup(socketFd);
    if (dup < 0) throw new Error(`dup failed: errno ${this.sys.errno()}`);
    const id = this.nextId++;
    this.handlers.set(id, handlers);
    this.sockets.set(id, dup);
    this.command({ type: 'start', id, socketFd: dup, fileFd, start, length, progressIntervalMs });
    return (reason) => {
      if (this.handlers.has(id)) this.command({ type: 'abort', id, reason });
    };
  }

  async stop(): Promise<void> {
    this.failed ??= new Error('stopped');
    await this.worker.terminate().catch(() => {});
    this.port.close();
    this.sys.close(this.doorbellFd);
    this.endAll('server stopping');
  }

  private command(command: SendfileCommand): void {
    this.port.postMessage(command);
    // The worker may be inside its poll loop, where it does not see messages on its own.
    this.sys.write(this.doorbellFd, this.doorbell, 8);
  }

  private onEvent(event: SendfileEvent): void {
    if (event.type === 'ready' || event.type === 'unavailable') return;
    const handlers = this.handlers.get(event.id);
    if (!handlers) return;
    if (event.type === 'progress') {
      handlers.onProgress(event.bytes);
      return;
    }
    this.handlers.delete(event.id);
    this.sockets.delete(event.id);
    handlers.onEnd(event.bytes, event.error);
  }

  private onWorkerGone(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.endAll(`zero-copy worker failed: ${err.message}`);
  }

  /** The worker is gone: every response still listed fails, and its socket duplicate is closed. */
  private endAll(reason: string): void {
    for (const [id, handlers] of [...this.handlers]) {
      this.handlers.delete(id);
      const fd = this.sockets.get(id);
      this.sockets.delete(id);
      if (fd !== undefined) this.sys.close(fd);
      handlers.onEnd(0, reason);
    }
  }
}
