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
import { DoorbellWorkerClient, startDoorbellWorker, type DoorbellWorker } from '../net/index.js';

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

export class ZeroCopySender extends DoorbellWorkerClient<SendfileCommand, SendfileEvent> {
  private readonly handlers = new Map<number, ZeroCopyHandlers>();
  /** each response's socket duplicate, closed here only if the worker is gone without closing it */
  private readonly sockets = new Map<number, number>();
  private nextId = 1;

  private constructor(started: DoorbellWorker) {
    super(started.sys, started, 'zero-copy worker');
  }

  /** A running sender, or the reason there is none on this platform. */
  static async start(platform: NodeJS.Platform = process.platform): Promise<{ sender?: ZeroCopySender; reason?: string }> {
    const started = await startDoorbellWorker(
      new URL('./sendfile-worker.js', import.meta.url),
      new URL('./sendfile-worker.ts', import.meta.url),
      import.meta.url.endsWith('.ts'),
      platform,
    );
    if ('reason' in started) return { reason: started.reason };
    return { sender: new ZeroCopySender(started) };
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

  stop(): Promise<void> {
    return this.terminate('server stopping');
  }

  protected onEvent(event: SendfileEvent): void {
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

  /** The worker is gone: every response still listed fails, and its socket duplicate is closed. */
  protected endAll(reason: string): void {
    for (const [id, handlers] of [...this.handlers]) {
      this.handlers.delete(id);
      const fd = this.sockets.get(id);
      this.sockets.delete(id);
      if (fd !== undefined) this.sys.close(fd);
      handlers.onEnd(0, reason);
    }
  }
}
