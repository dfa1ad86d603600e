// The start/stop handshake shared by the DHCP thread and the doorbell workers
// (main/core/worker-handshake.ts), with a worker that misbehaves on request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextMessage, startPortWorker, stopPortWorker, WorkerStartError } from '../../main/core/worker-handshake.js';

type Message = { type: string; reason?: string };

function start(mode: string, timeoutMs = 20_000, seen: Message[] = []) {
  return startPortWorker<Message>({
    built: new URL('./fixtures/handshake-worker.js', import.meta.url),
    source: new URL('./fixtures/handshake-worker.ts', import.meta.url),
    sourceMode: true,
    name: 'the test worker',
    workerData: { mode },
    timeoutMs,
    isAnswer: (m) => m.type !== 'hello',
    onMessage: (m) => seen.push(m),
  });
}

test('a worker that answers is started; messages before the answer reach onMessage; stop waits for its account', async () => {
  const seen: Message[] = [];
  const started = await start('ready', 20_000, seen);
  assert.equal(started.answer.type, 'ready');
  assert.deepEqual(
    seen.map((m) => m.type),
    ['hello', 'ready'],
  );
  const stopped = nextMessage<Message>(started.port, (m) => m.type === 'stopped');
  started.port.postMessage({ type: 'stop' });
  let exited = false;
  started.worker.once('exit', () => (exited = true));
  await stopPortWorker(started, stopped, 5_000);
  assert.equal(exited, true);
});

test('a refusal is the answer, for the caller to handle', async () => {
  const started = await start('refuse');
  assert.deepEqual(started.answer, { type: 'unavailable', reason: 'not here' });
  await stopPortWorker(started);
});

test('an answer sent just before the worker exits still wins', async () => {
  const started = await start('answer-then-exit');
  assert.equal(started.answer.type, 'ready');
  await stopPortWorker(started);
});

test('a worker that exits, throws or stays silent before answering is a start failure', async () => {
  await assert.rejects(start('exit'), (err: Error) => err instanceof WorkerStartError && /the test worker exited \(3\) before it started/.test(err.message));
  await assert.rejects(start('throw'), (err: Error) => err instanceof WorkerStartError && /the test worker failed: boom/.test(err.message));
  await assert.rejects(start('silent', 1_500), (err: Error) => err instanceof WorkerStartError && /did not report in time/.test(err.message));
});
