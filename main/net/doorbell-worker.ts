// A worker thread that owns descriptors and polls them itself (the TFTP data path, the
// HTTP zero-copy sender): the Linux calls, an eventfd doorbell that wakes its poll(2) loop
// when a command is posted, and the port handshake of core/worker-handshake.ts (the
// worker's first message is 'ready', or 'unavailable' with a reason).
import type { MessagePort, Worker } from 'node:worker_threads';
import { onWorkerGone, startPortWorker, stopPortWorker } from '../core/index.js';
import { loadLinuxSyscalls, type LinuxSyscalls } from './libc.js';
import { openEventDescriptor } from './udp-descriptor.js';

const START_TIMEOUT_MS = 10_000;

export interface DoorbellWorker {
  sys: LinuxSyscalls;
  worker: Worker;
  /** our end of the worker's channel (unref'd: an idle worker keeps no process alive) */
  port: MessagePort;
  doorbellFd: number;
}

type FirstMessage = { type: string; reason?: string };

/**
 * Starts `built` (or `source` when the caller runs from source; see startModuleWorker) with
 * `{ port, doorbellFd }` as workerData. Resolves to the worker once it reported ready, or
 * to the reason it cannot run here.
 */
export async function startDoorbellWorker(
  built: URL,
  source: URL,
  sourceMode: boolean,
  platform: NodeJS.Platform,
): Promise<DoorbellWorker | { reason: string }> {
  const sys = loadLinuxSyscalls(platform);
  if (!sys) return { reason: `no koffi/Linux syscalls on ${platform}/${process.arch}` };
  let doorbellFd: number;
  try {
    doorbellFd = openEventDescriptor(sys);
  } catch (err) {
    return { reason: (err as Error).message };
  }
  try {
    const started = await startPortWorker<FirstMessage>({
      built,
      source,
      sourceMode,
      name: 'worker',
      workerData: { doorbellFd },
      // The worker's live heap is small (its buffers are outside it); a small young
      // generation keeps its garbage from adding tens of MiB of RSS under load.
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
      timeoutMs: START_TIMEOUT_MS,
      isAnswer: () => true,
    });
    if (started.answer.type !== 'ready') {
      await stopPortWorker(started);
      sys.close(doorbellFd);
      return { reason: started.answer.type === 'unavailable' ? String(started.answer.reason) : 'unexpected first message' };
    }
    started.worker.unref();
    started.port.unref();
    return { sys, worker: started.worker, port: started.port, doorbellFd };
  } catch (err) {
    sys.close(doorbellFd);
    return { reason: (err as Error).message };
  }
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
    protected readonly sys: LinuxSyscalls,
    private readonly started: DoorbellWorker,
    private readonly workerName: string,
  ) {
    this.worker = started.worker;
    this.doorbell.writeUInt32LE(1, 0);
    started.port.on('message', (event: Event) => this.onEvent(event));
    onWorkerGone(started.worker, (error, code) => this.onWorkerGone(error ?? new Error(`worker exited (${code})`)));
  }

  get usable(): boolean {
    return !this.failed;
  }

  protected command(command: Command): void {
    this.started.port.postMessage(command);
    this.sys.write(this.started.doorbellFd, this.doorbell, 8);
  }

  /**
   * Stops the worker (after `finished`, at most `waitMs`) and closes the doorbell; whatever
   * was still listed is ended by `endAll`.
   */
  protected async terminate(reason: string, finished?: Promise<void>, waitMs = 0): Promise<void> {
    const running = !this.failed;
    this.failed ??= new Error('stopped');
    await stopPortWorker(this.started, running ? finished : undefined, waitMs);
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
