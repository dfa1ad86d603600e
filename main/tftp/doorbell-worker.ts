// Starting a worker thread that owns descriptors and polls them itself (the TFTP data path,
// the HTTP zero-copy sender): the libc binding, an eventfd doorbell that wakes its poll(2)
// loop when a command is posted, a MessagePort, and the handshake (the worker's first
// message is 'ready', or 'unavailable' with a reason).
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { startModuleWorker } from '../core/module-worker.js';
import { loadUdpSyscalls, openEventDescriptor, type UdpSyscalls } from './udp-descriptor.js';

const START_TIMEOUT_MS = 10_000;

export interface DoorbellWorker {
  sys: UdpSyscalls;
  worker: Worker;
  /** our end of the worker's channel (unref'd: an idle worker keeps no process alive) */
  port: MessagePort;
  doorbellFd: number;
}

/**
 * Starts `built` (or `source` when the caller runs from source; see startModuleWorker) with
 * `{ port, doorbellFd }` as workerData. Resolves to the worker once it reported ready, or
 * to the reason it cannot run here.
 */
export async function startDoorbellWorker(built: URL, source: URL, sourceMode: boolean, platform: NodeJS.Platform): Promise<DoorbellWorker | { reason: string }> {
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
    // The worker's live heap is small (its buffers are outside it); a small young
    // generation keeps its garbage from adding tens of MiB of RSS under load.
    worker = await startModuleWorker(built, source, sourceMode, { workerData: { port: port2, doorbellFd }, transferList: [port2], resourceLimits: { maxYoungGenerationSizeMb: 4 } });
  } catch (err) {
    sys.close(doorbellFd);
    port1.close();
    return { reason: `worker did not start: ${(err as Error).message}` };
  }
  const first = await new Promise<{ type: string; reason?: string } | Error>((resolve) => {
    const timer = setTimeout(() => resolve(new Error('worker did not report ready in time')), START_TIMEOUT_MS);
    port1.once('message', (event: { type: string; reason?: string }) => {
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
    return { reason: first instanceof Error ? first.message : first.type === 'unavailable' ? String(first.reason) : 'unexpected first message' };
  }
  worker.unref();
  port1.unref();
  return { sys, worker, port: port1, doorbellFd };
}

/**
 * The main thread's side of such a worker: commands posted with a ring of the doorbell
 * (the worker may be inside its poll loop, where it does not see messages on its own),
 * events in, and one failure (the worker erred or exited) that ends all its work.
 */
export abstract class DoorbellWorkerClient<Command, Event> {
  protected failed: Error | undefined;
  protected readonly worker: Worker;
  private readonly doorbell = Buffer.alloc(8);

  protected constructor(
    protected readonly sys: UdpSyscalls,
    private readonly started: DoorbellWorker,
    private readonly workerName: string,
  ) {
    this.worker = started.worker;
    this.doorbell.writeUInt32LE(1, 0);
    started.port.on('message', (event: Event) => this.onEvent(event));
    started.worker.on('error', (err) => this.onWorkerGone(err));
    started.worker.on('exit', (code) => this.onWorkerGone(new Error(`worker exited (${code})`)));
  }

  get usable(): boolean {
    return !this.failed;
  }

  protected command(command: Command): void {
    this.started.port.postMessage(command);
    this.sys.write(this.started.doorbellFd, this.doorbell, 8);
  }

  /** Stops the worker and closes the doorbell; whatever was still listed is ended by `endAll`. */
  protected async terminate(reason: string): Promise<void> {
    this.failed ??= new Error('stopped');
    await this.worker.terminate().catch(() => {});
    this.started.port.close();
    this.sys.close(this.started.doorbellFd);
    this.endAll(reason);
  }

  protected abstract onEvent(event: Event): void;

  /** Ends every piece of work still listed (the worker is gone, and its help with it). */
  protected abstract endAll(reason: string): void;

  private onWorkerGone(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.endAll(`${this.workerName} failed: ${err.message}`);
  }
}
