// The DHCP thread (started by dhcp-thread.ts): the whole DhcpService (Proxy DHCP or full
// DHCP on 67, the boot server on 4011) on its own event loop and its own small heap. A
// DISCOVER is received, decided and answered here; the main thread only hears about it.
//
// What crosses to the main thread:
//   - events, batched once per turn of this loop. Per-request events (isPerRequestDhcpEvent)
//     are budgeted: at most `eventsPerSecond`, the rest counted and reported once a second
//     (`storm`), so a DISCOVER storm costs the main thread a bounded amount of work;
//   - log lines (after the events before them);
//   - questions for machines that may have an assignment of their own (assignment-mirror.ts).
import { workerData, type MessagePort } from 'node:worker_threads';
import { isPerRequestDhcpEvent, PerSecondBudget, type Logger, type BootEventFields, type BootEventType } from '../core/index.js';
import { createScopedUdpSocketFactory } from '../net/index.js';
import type { MachineBootAssignment } from '../pxe/index.js';
import { AssignmentMirror } from './assignment-mirror.js';
import type { DhcpThreadInit, FromDhcpThread, ThreadError, ToDhcpThread } from './dhcp-thread-messages.js';
import { DhcpService } from './service.js';

const { port, init } = workerData as { port: MessagePort; init: DhcpThreadInit };
const post = (message: FromDhcpThread) => port.postMessage(message);

// ------------------------------------------------------------------------------ events
/** A batch is sent at the end of this loop turn, or at once when it is this long. */
const MAX_BATCH = 256;
let batch: [BootEventType, number, BootEventFields[BootEventType]][] = [];

function flushEvents(): void {
  if (batch.length === 0) return;
  post({ t: 'events', list: batch });
  batch = [];
}

const budget = new PerSecondBudget(init.eventsPerSecond, (left, secondStart) => {
  flushEvents(); // the storm report follows the events of its second
  post({ t: 'storm', time: secondStart, left });
});

function publish<T extends BootEventType>(type: T, fields: BootEventFields[T]): void {
  const now = Date.now();
  if (isPerRequestDhcpEvent(type) && !budget.admit(now)) return;
  if (batch.length === 0) setImmediate(flushEvents);
  batch.push([type, now, fields]);
  if (batch.length >= MAX_BATCH) flushEvents();
}

function logLine(level: 'info' | 'warn' | 'error') {
  return (message: string, fields?: Record<string, unknown>) => {
    flushEvents(); // keep the order the main thread sees
    post({ t: 'log', level, message, fields });
  };
}
const logger: Logger = { debug() {}, info: logLine('info'), warn: logLine('warn'), error: logLine('error') };

// ------------------------------------------------------------------------- assignments
const questions = new Map<number, (answer: { assignment: MachineBootAssignment | undefined; keep: boolean }) => void>();
let nextQuestion = 1;
const mirror = new AssignmentMirror(
  init.view,
  (mac, uuid) =>
    new Promise((resolve) => {
      const id = nextQuestion++;
      questions.set(id, resolve);
      post({ t: 'lookup', id, mac, uuid });
    }),
);

// ----------------------------------------------------------------------------- service
const service = new DhcpService({
  ...init.options,
  policy: { ...init.options.policy, lookupMachine: init.lookups ? mirror.assignmentFor : undefined },
  socketFactory: createScopedUdpSocketFactory(),
  publish,
  logger,
});

function threadError(err: unknown): ThreadError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err), fields: {} };
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(err)) if (key !== 'name' && key !== 'message' && key !== 'stack') fields[key] = value;
  return { name: err.name, message: err.message, stack: err.stack, fields };
}

port.on('message', (message: ToDhcpThread) => {
  switch (message.t) {
    case 'lookup': {
      const answer = questions.get(message.id);
      questions.delete(message.id);
      answer?.({ assignment: message.assignment, keep: message.keep });
      break;
    }
    case 'assignments':
      mirror.reset(message.view);
      break;
    case 'stop':
      void service.stop().finally(() => {
        budget.close();
        flushEvents();
        post({ t: 'stopped' });
        port.close();
      });
      break;
  }
});

service.start().then(
  () => post({ t: 'started', ports: { server: service.ports.server, pxe: service.ports.pxe } }),
  (err) => {
    flushEvents();
    post({ t: 'failed', error: threadError(err) });
    port.close();
  },
);
