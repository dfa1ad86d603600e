// The DHCP service on a thread of its own (dhcp-thread-worker.ts runs it), seen from the
// main thread. Why: the main thread also runs the store (SQLite writes), the recorder, the
// UI's WebSocket or IPC, the library's imports and hashing, and its heap is the big one, so
// its GC pauses are the long ones; a DHCP answer on the main thread waits out such a pause
// or a busy turn of its loop. On its own thread, an answer waits for none of that. The
// start and stop handshake is core/worker-handshake.ts's.
//
// The main thread keeps the truth about machines: the thread holds a copy (assignment-mirror.ts)
// that this side refreshes whenever the store may have changed, and answers its questions.
// A change is reported by the source (`watch`: this process's writes as they run, another
// process's commits through the OS's file watching) and the copy is refreshed at the end of
// that turn of the loop. A poll every 2 s stays as the safety net: each poll reads SQLite's
// data_version and wakes the process, so an idle host should not poll often.
import type { MessagePort, Worker } from 'node:worker_threads';
import { type Publish, type PublishAt, type Logger, type PortWorker, nextMessage, onWorkerGone, startPortWorker, stopPortWorker } from '../core/index.js';
import { DeviceBindError, PortBindError } from '../net/index.js';
import type { MachineBootAssignment } from '../pxe/index.js';
import type { AssignmentViewData, DhcpThreadInit, DhcpThreadServiceOptions, FromDhcpThread, ThreadError, ToDhcpThread } from './dhcp-thread-messages.js';

/** Where the thread's copy of the assignments comes from (the library, on the main thread). */
export interface DhcpAssignmentSource {
  lookup(mac: string, uuid?: string): MachineBootAssignment | undefined;
  view(): AssignmentViewData;
  /** Moves whenever an answer may have changed; `recheck`: look at the store now, not at most every few ms. */
  version(recheck?: boolean): number;
  /** Calls `changed` soon after a change this process makes (the slow poll catches other processes'). */
  watch?(changed: () => void): () => void;
}

export interface DhcpThreadOptions {
  service: DhcpThreadServiceOptions;
  assignments?: DhcpAssignmentSource;
  publish: Publish;
  /** For events the thread reports with the time they happened. */
  publishAt: PublishAt;
  logger: Logger;
  /** Per-request DHCP events published a second at most (default 1000, above the log's and the history's own budgets). */
  eventsPerSecond?: number;
  /** The thread died too often and was not started again: DHCP is off (the host marks its services failed). */
  onGaveUp?: (reason: string) => void;
}

/** The thread could not be had at all (not a DHCP problem): the caller runs DHCP on its own thread instead. */
export class DhcpThreadUnavailable extends Error {
  override readonly name = 'DhcpThreadUnavailable';
}

const START_TIMEOUT_MS = 30_000;
const STOP_WAIT_MS = 5_000;
const VIEW_CHECK_MS = 2000;
/** A thread that dies is started again, at most this often a minute. */
const RESTARTS_PER_MINUTE = 3;

export class DhcpThread {
  private worker?: Worker;
  private port?: MessagePort;
  private viewTimer?: ReturnType<typeof setInterval>;
  private unwatch?: () => void;
  private refreshQueued = false;
  private lastVersion = -1;
  private stopping = false;
  private restarts: number[] = [];
  private boundPorts = { server: 0, pxe: 0 };
  /** A (re)start in progress: stop() waits for it, so no thread outlives the service. */
  private launching?: Promise<void>;

  constructor(private readonly options: DhcpThreadOptions) {}

  get ports(): { server: number; pxe: number } {
    return { ...this.boundPorts };
  }

  /** Resolves once 67 and 4011 are bound in the thread; rejects with the service's own error (PortBindError ...). */
  async start(): Promise<void> {
    this.stopping = false;
    await this.launchTracked();
    this.viewTimer = setInterval(() => this.refreshView(), VIEW_CHECK_MS);
    this.viewTimer.unref();
    this.unwatch = this.options.assignments?.watch?.(() => {
      if (this.refreshQueued) return;
      this.refreshQueued = true;
      setImmediate(() => {
        this.refreshQueued = false;
        this.refreshView(true);
      });
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.viewTimer) clearInterval(this.viewTimer);
    this.viewTimer = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
    await this.launching?.catch(() => {});
    const { worker, port } = this;
    if (!worker || !port) return;
    const stopped = nextMessage<FromDhcpThread>(port, (m) => m.t === 'stopped');
    this.send({ t: 'stop' });
    await stopPortWorker({ worker, port }, stopped, STOP_WAIT_MS);
    this.worker = this.port = undefined;
  }

  /** launch(), remembered in `launching` until the thread is up or failed: stop() waits for it. */
  private launchTracked(): Promise<void> {
    const launching: Promise<void> = this.launch().finally(() => {
      if (this.launching === launching) this.launching = undefined;
    });
    this.launching = launching;
    return launching;
  }

  private async launch(): Promise<void> {
    const o = this.options;
    let view: AssignmentViewData | undefined;
    if (o.assignments) {
      this.lastVersion = o.assignments.version();
      view = o.assignments.view();
    }
    const init: DhcpThreadInit = { options: o.service, lookups: !!o.assignments, view, eventsPerSecond: o.eventsPerSecond ?? 1000 };
    let started: PortWorker<FromDhcpThread>;
    try {
      started = await startPortWorker<FromDhcpThread>({
        built: new URL('./dhcp-thread-worker.js', import.meta.url),
        source: new URL('./dhcp-thread-worker.ts', import.meta.url),
        sourceMode: import.meta.url.endsWith('.ts'),
        name: 'the DHCP thread',
        workerData: { init },
        // Its live data is a few packets and a copy of the assignments: a small young
        // generation keeps each scavenge short.
        resourceLimits: { maxYoungGenerationSizeMb: 2 },
        timeoutMs: START_TIMEOUT_MS,
        isAnswer: (m) => m.t === 'started' || m.t === 'failed',
        // Questions are answered on the port they came on: one can come before 'started'
        // (port 67 is bound before 4011), and during a restart `this.port` is not this one yet.
        onMessage: (m, port) => this.onMessage(m, port),
      });
    } catch (err) {
      throw new DhcpThreadUnavailable((err as Error).message);
    }
    const { worker, port, answer } = started;
    if (answer.t === 'failed' || this.stopping) {
      // A failed start, or stop() came while this (re)start ran: it waits for us; do not leave a thread behind.
      await stopPortWorker(started);
      if (answer.t === 'failed') throw rebuildError(answer.error);
      return;
    }
    if (answer.t === 'started') this.boundPorts = answer.ports;
    this.worker = worker;
    this.port = port;
    onWorkerGone(worker, (error, code) => this.onThreadGone(worker, error ? `failed: ${error.stack ?? error.message}` : `exited (${code})`));
  }

  private send(message: ToDhcpThread): void {
    this.port?.postMessage(message);
  }

  private onMessage(m: FromDhcpThread, port: MessagePort): void {
    const o = this.options;
    switch (m.t) {
      case 'events':
        for (const [type, time, details] of m.list) o.publishAt(type, time, details);
        break;
      case 'storm':
        o.publishAt('dhcp.storm', m.time, { eventsNotPublished: m.left, budgetPerSecond: o.eventsPerSecond ?? 1000 });
        break;
      case 'log':
        o.logger[m.level](m.message, m.fields);
        break;
      case 'lookup': {
        let assignment: MachineBootAssignment | undefined;
        let keep = true;
        try {
          assignment = o.assignments?.lookup(m.mac, m.uuid);
        } catch (err) {
          o.logger.warn(`could not read the assignment of ${m.mac}: ${(err as Error).message}; it boots the default this time`);
          assignment = safeView(o.assignments, o.logger)?.defaultAssignment;
          keep = false; // asked again next time, not pinned to the default
        }
        port.postMessage({ t: 'lookup', id: m.id, assignment, keep } satisfies ToDhcpThread);
        // The read may have noticed a change first (another process's commit): pass it on.
        this.refreshView();
        break;
      }
    }
  }

  /** Sends a new copy when the store may have changed since the last one. */
  private refreshView(recheck = false): void {
    const source = this.options.assignments;
    if (!source || !this.port) return;
    let version: number;
    try {
      version = source.version(recheck);
    } catch {
      return; // the store is unreadable right now: keep the copy the thread has
    }
    if (version === this.lastVersion) return;
    const view = safeView(source, this.options.logger);
    if (!view) return;
    this.lastVersion = version;
    this.send({ t: 'assignments', view });
  }

  /** A thread that ends by itself is a bug or a crash: say so, and serve again. */
  private onThreadGone(worker: Worker, how: string): void {
    if (this.stopping || worker !== this.worker) return;
    this.worker = undefined;
    this.port?.close();
    this.port = undefined;
    const o = this.options;
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < 60_000);
    const again = this.restarts.length < RESTARTS_PER_MINUTE;
    const reason = `the DHCP thread ${how}; ${again ? 'starting it again' : `it stopped ${RESTARTS_PER_MINUTE} times within a minute, so DHCP stays off until the services are restarted`}`;
    o.logger.error(reason);
    o.publish('dhcp.error', { reason });
    if (!again) return o.onGaveUp?.(reason);
    this.restarts.push(now);
    this.launchTracked().catch((err) => {
      const message = `the DHCP thread could not start again: ${(err as Error).message}`;
      o.logger.error(message);
      o.publish('dhcp.error', { reason: message });
      o.onGaveUp?.(message);
    });
  }
}

function safeView(source: DhcpAssignmentSource | undefined, logger: Logger): AssignmentViewData | undefined {
  try {
    return source?.view();
  } catch (err) {
    logger.warn(`could not read which machines have their own assignment: ${(err as Error).message}`);
    return undefined;
  }
}

/** The thread's error as the class the callers know (their messages already say what to do). */
function rebuildError(e: ThreadError): Error {
  const f = e.fields;
  let err: Error;
  if (e.name === 'PortBindError')
    err = new PortBindError(
      e.message,
      f.port as number,
      f.code as string,
      f.protocol as PortBindError['protocol'],
      f.reason as PortBindError['reason'],
      (f.owners as PortBindError['owners']) ?? [],
    );
  else if (e.name === 'DeviceBindError') err = new DeviceBindError(e.message, f.interfaceName as string, f.code as string);
  else {
    err = new Error(e.message);
    Object.assign(err, f);
  }
  if (e.stack) err.stack = e.stack;
  return err;
}
