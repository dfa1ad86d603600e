// Starting and stopping a worker thread that talks over a MessagePort of its own (the DHCP
// thread, the TFTP data path, the HTTP zero-copy sender). The handshake is the same for
// each: the worker gets its end of the channel in workerData and answers once it is set up
// (ready, or its reason not to run); until then a crash, an exit or silence is a start
// failure. Stopping asks the worker to finish its work, waits a bounded time, terminates.
import { MessageChannel, receiveMessageOnPort, type MessagePort, type ResourceLimits, type Worker } from 'node:worker_threads';
import { startModuleWorker } from './module-worker.js';

export interface PortWorkerOptions<Message> {
  /** The worker module built (.js) and from source (.ts), and which one runs (see startModuleWorker). */
  built: URL;
  source: URL;
  sourceMode: boolean;
  /** What the thread is called in errors ("the DHCP thread"). */
  name: string;
  /** The worker's workerData; `port`, its end of the channel, is added. */
  workerData: Record<string, unknown>;
  resourceLimits?: ResourceLimits;
  /** How long the worker may take to answer. */
  timeoutMs: number;
  /** Whether `message` is the worker's answer to being started (its ready message or its refusal). */
  isAnswer(message: Message): boolean;
  /** Every message from the first on, the answer included: a worker may ask questions before it answers. */
  onMessage?(message: Message, port: MessagePort): void;
}

export interface PortWorker<Message> {
  worker: Worker;
  /** our end of the channel */
  port: MessagePort;
  /** the worker's answer; a refusal is the caller's to handle (stopPortWorker) */
  answer: Message;
}

/** The worker did not load, crashed, exited or stayed silent before it answered. */
export class WorkerStartError extends Error {
  override readonly name = 'WorkerStartError';
}

export async function startPortWorker<Message>(options: PortWorkerOptions<Message>): Promise<PortWorker<Message>> {
  const { port1, port2 } = new MessageChannel();
  let worker: Worker;
  try {
    worker = await startModuleWorker(options.built, options.source, options.sourceMode, {
      workerData: { ...options.workerData, port: port2 },
      transferList: [port2],
      resourceLimits: options.resourceLimits,
    });
  } catch (err) {
    port1.close();
    throw new WorkerStartError(`${options.name} did not start: ${(err as Error).message}`);
  }
  const answered = new Promise<Message>((resolve, reject) => {
    const timer = setTimeout(() => reject(new WorkerStartError(`${options.name} did not report in time`)), options.timeoutMs);
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const onMessage = (message: Message): void => {
      options.onMessage?.(message, port1);
      if (options.isAnswer(message)) settle(() => resolve(message));
    };
    port1.on('message', onMessage);
    // The worker's answer comes over the port, its end over the worker: whichever is heard
    // first, an answer already sent wins.
    const ended = (why: string): void => {
      if (settled) return;
      for (let pending = receiveMessageOnPort(port1); pending && !settled; pending = receiveMessageOnPort(port1)) onMessage(pending.message as Message);
      settle(() => reject(new WorkerStartError(why)));
    };
    worker.once('error', (err) => ended(`${options.name} failed: ${err.message}`));
    worker.once('exit', (code) => ended(`${options.name} exited (${code}) before it started`));
  });
  try {
    return { worker, port: port1, answer: await answered };
  } catch (err) {
    await worker.terminate().catch(() => {});
    port1.close();
    throw err;
  }
}

/**
 * Waits until `finished` (the worker's own account that its work is done), the worker's
 * exit or `waitMs`, whichever comes first, then terminates the worker and closes the port.
 * The caller has asked the worker to finish before.
 */
export async function stopPortWorker(started: { worker: Worker; port: MessagePort }, finished?: Promise<unknown>, waitMs = 0): Promise<void> {
  if (finished && waitMs > 0) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      void finished.then(done, done);
      started.worker.once('exit', done);
    });
  }
  await started.worker.terminate().catch(() => {});
  started.port.close();
}

/** A promise of the first message on `port` that `matches`. */
export function nextMessage<Message>(port: MessagePort, matches: (message: Message) => boolean): Promise<Message> {
  return new Promise((resolve) => {
    const listener = (message: Message): void => {
      if (!matches(message)) return;
      port.off('message', listener);
      resolve(message);
    };
    port.on('message', listener);
  });
}

/**
 * Calls `gone` once when a started worker ends (an uncaught exception is always followed by
 * the exit, so a restart after `gone` finds the dead worker's resources released), with the
 * error when there was one.
 */
export function onWorkerGone(worker: Worker, gone: (error: Error | undefined, exitCode: number) => void): void {
  let error: Error | undefined;
  worker.on('error', (err) => (error ??= err));
  worker.once('exit', (code) => gone(error, code));
}
