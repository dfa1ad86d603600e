// When a deploy's stream starts: the rule stored with the job (schema 10), Go given through
// the store (as the CLI beside a running host does), the host's answer to a receiver that
// asks whether the stream has started, and where the wait stands as the host records it for
// `bootbench image status` (schema 11). The stream's socket is bound to loopback and sends
// nothing here: it waits for Go, and once given, no receiver feeds it back.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_START_AFTER_SECONDS, ImagingJobs, ImagingService, startRule } from '../../main/imaging/index.js';
import { openStore } from '../../main/store/index.js';
import { storeImaging } from '../../main/api/api-imaging.js';
import { storeApi } from '../../main/api/api-store.js';
import { HostApi } from '../../main/api/api.js';
import type { ImagingJob } from '../../preload/api.js';
import { idleServiceHost } from '../helpers/idle-host.js';
import { imageCommand, describeStart } from '../../main/cli/imaging.js';
import { addSampleImage } from '../helpers/sample-image.js';
import { makeTempDir } from '../helpers/store-temp.js';
import { waitFor } from '../helpers/netns.js';

const A = '52:54:00:aa:50:01';
const B = '52:54:00:aa:50:02';
const C = '52:54:00:aa:50:03';
const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe('stream start rule', () => {
  test('defaults, counts of all the PCs or more, no timer, manual; nonsense refused', () => {
    assert.deepEqual(startRule(undefined, 8), { manual: false, afterSeconds: DEFAULT_START_AFTER_SECONDS });
    assert.deepEqual(startRule({ count: 3 }, 8), { manual: false, count: 3, afterSeconds: 60 });
    assert.deepEqual(startRule({ count: 8 }, 8), { manual: false, count: undefined, afterSeconds: 60 }, 'all of them: the same as all');
    assert.deepEqual(startRule({ afterSeconds: null }, 8), { manual: false, count: undefined, afterSeconds: undefined });
    assert.deepEqual(startRule({ afterSeconds: 10, count: 2 }, 8), { manual: false, count: 2, afterSeconds: 10 });
    assert.deepEqual(startRule({ manual: true }, 8), { manual: true });
    assert.throws(() => startRule({ manual: true, count: 2 }, 8), /Go alone/);
    assert.throws(() => startRule({ count: 0 }, 8), /1 or more/);
    assert.throws(() => startRule({ afterSeconds: -1 }, 8), /whole seconds/);
  });

  test('stored with the job; Go is kept once; the CLI and the API say it; a capture has nothing to start', () => {
    const temp = makeTempDir('bootbench-stream-start-');
    const data = join(temp.dir, 'data');
    const store = openStore(data);
    try {
      let now = 1_000;
      const jobs = new ImagingJobs(store.db, () => now);
      const manual = jobs.create({ kind: 'deploy', image: 'room', macs: [A, B], start: { manual: true } });
      assert.deepEqual(manual.start, { manual: true, count: undefined, afterSeconds: undefined });
      assert.equal(describeStart(manual), `stream starts on Go (bootbench image go ${manual.id})`);
      const auto = jobs.create({ kind: 'deploy', image: 'room', macs: [C, '52:54:00:aa:50:04', '52:54:00:aa:50:05'], start: { count: 2, afterSeconds: 30 } });
      assert.equal(describeStart(auto), 'stream starts when 2 PCs are ready or 30 s after the first, or on Go');
      assert.equal(jobs.goAt(manual.id), undefined);
      now = 2_000;
      assert.equal(jobs.go(manual.id).goAt, 2_000);
      now = 3_000;
      assert.equal(jobs.go(manual.id).goAt, 2_000, 'the first Go stands');
      jobs.recordStreamStart(manual.id, 2_100);
      jobs.recordStreamStart(manual.id, 9_999);
      assert.equal(jobs.get(manual.id)!.streamStartedAt, 2_100);
      const capture = jobs.create({ kind: 'capture', image: 'new', macs: ['52:54:00:aa:50:09'] });
      assert.throws(() => jobs.go(capture.id), /capture/);

      const api = storeImaging({ store, dataDir: () => data });
      assert.deepEqual(api.job(auto.id)!.start, { manual: false, count: 2, afterSeconds: 30 });
      assert.equal(api.job(capture.id)!.start, undefined, 'a capture has no stream');
      assert.ok(api.go(auto.id).goAt! > 0);
      assert.throws(() => api.go(capture.id), /no stream to start/);
    } finally {
      store.close();
      temp.remove();
    }
  });
});

describe('images:deploy start and images:go', () => {
  test('the start rule goes with the deploy; contradictions and Go without a stream are refused with the reason', async () => {
    const temp = makeTempDir('bootbench-stream-api-');
    const data = join(temp.dir, 'data');
    await addSampleImage(data, { name: 'room', mac: '52:54:00:cc:00:09', machine: 'ref', chunksPerPartition: 1 });
    const store = openStore(data);
    const api = new HostApi({ host: idleServiceHost(), store: storeApi(store, { dataDir: () => data }), listInterfaces: () => [], shell: 'web' });
    const call = async (name: string, request: unknown) => {
      const reply = await api.handle(name, request);
      return 'error' in reply ? `${reply.error.code}: ${reply.error.message}` : (reply.result as ImagingJob);
    };
    try {
      const held = (await call('images:deploy', { image: 'room', macs: [A, B], start: { manual: true } })) as ImagingJob;
      assert.deepEqual(held.start, { manual: true, count: undefined, afterSeconds: undefined });
      const timed = (await call('images:deploy', { image: 'room', macs: [A, B, C], start: { count: 2, afterSeconds: null } })) as ImagingJob;
      assert.deepEqual(timed.start, { manual: false, count: 2, afterSeconds: undefined });
      const plain = (await call('images:deploy', { image: 'room', macs: [A, B] })) as ImagingJob;
      assert.deepEqual(plain.start, { manual: false, count: undefined, afterSeconds: 60 });
      assert.match(String(await call('images:deploy', { image: 'room', macs: [A, B], start: { manual: true, count: 2 } })), /^invalid-request: .*Go alone/);
      assert.match(String(await call('images:deploy', { image: 'room', macs: [A, B], start: { count: 0 } })), /^invalid-request: .*1 or more/);
      const one = (await call('images:deploy', { image: 'room', macs: [C] })) as ImagingJob;
      assert.equal(one.start, undefined, 'one PC: no stream, nothing to start');
      assert.match(String(await call('images:go', { jobId: one.id })), /^invalid-request: Job \d+ has no stream to start/);
      assert.match(String(await call('images:go', { jobId: 999 })), /^not-found: There is no job 999/);
      const given = (await call('images:go', { jobId: plain.id })) as ImagingJob;
      assert.ok(given.goAt! > 0);
    } finally {
      store.close();
      temp.remove();
    }
  });
});

describe('bootbench image deploy --start..., image go', () => {
  test('the options are stored; go by job number or image name; refusals name the fix', async () => {
    const temp = makeTempDir('bootbench-stream-cli-');
    const data = join(temp.dir, 'data');
    await addSampleImage(data, { name: 'room', mac: '52:54:00:cc:00:09', machine: 'ref', chunksPerPartition: 1 });
    const io = () => {
      const out = { stdout: '', stderr: '' };
      return { out, io: { stdout: (t: string) => (out.stdout += t), stderr: (t: string) => (out.stderr += t) } };
    };
    const cli = async (...args: string[]) => {
      const { out, io: sink } = io();
      const code = await imageCommand([...args, '--data', data], sink);
      return { code, ...out };
    };
    try {
      const manual = await cli('deploy', 'room', '--machine', A, '--machine', B, '--start', 'manual', '--json');
      assert.equal(manual.code, 0, manual.stderr);
      const job = JSON.parse(manual.stdout);
      assert.deepEqual(job.start, { manual: true });
      const k = await cli(
        'deploy',
        'room',
        '--machine',
        C,
        '--machine',
        '52:54:00:aa:50:04',
        '--machine',
        '52:54:00:aa:50:05',
        '--start-when',
        '2',
        '--start-after',
        'off',
      );
      assert.equal(k.code, 0, k.stderr);
      assert.match(k.stdout, /stream starts when 2 PCs are ready, or on Go/);

      const both = await cli('deploy', 'room', '--machine', A, '--machine', B, '--start', 'manual', '--start-when', '2');
      assert.equal(both.code, 2);
      assert.match(both.stderr, /--start manual waits for Go alone/);
      const bad = await cli('deploy', 'room', '--machine', A, '--machine', B, '--start-after', 'soon');
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--start-after soon: use whole seconds/);

      const ambiguous = await cli('go', 'room');
      assert.equal(ambiguous.code, 1, 'two deploys of room are open');
      assert.match(ambiguous.stderr, /being deployed by jobs \d+, \d+: give the job number/);
      const go = await cli('go', String(job.id));
      assert.equal(go.code, 0, go.stderr);
      assert.match(go.stdout, new RegExp(`job ${job.id}: Go at .*; the running host starts the stream within a second`));
      const again = await cli('go', String(job.id));
      assert.match(again.stdout, /Go was given at/);
      const status = await cli('status', '--job', String(job.id));
      assert.match(status.stdout, /Go given at .*: the stream starts as soon as the host has ready PCs/);
      const missing = await cli('go', '999');
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no job 999/);
    } finally {
      temp.remove();
    }
  });
});

async function cliStatus(data: string, job: number, ...extra: string[]) {
  const out = { stdout: '', stderr: '' };
  const code = await imageCommand(['status', '--job', String(job), '--data', data, ...extra], {
    stdout: (t) => (out.stdout += t),
    stderr: (t) => (out.stderr += t),
  });
  return { code, ...out };
}

describe('image status on a waiting stream', () => {
  test("the host's word while its process lives: PCs ready and the timer's deadline; once it is gone, no readiness but that no host holds the stream", () => {
    const temp = makeTempDir('bootbench-stream-status-');
    const store = openStore(join(temp.dir, 'data'));
    try {
      let now = 100_000;
      const jobs = new ImagingJobs(store.db, () => now);
      const job = jobs.create({ kind: 'deploy', image: 'room', macs: [A, B, C], start: { afterSeconds: 30 } });
      const at = (ms: number) => new Date(ms).toLocaleTimeString();
      const rule = 'stream starts when every PC is ready or 30 s after the first, or on Go';
      const alive = (pid: number) => pid === 4242;
      assert.equal(
        describeStart(jobs.get(job.id)!, { hostPid: 4242, alive }),
        `${rule}; the running Bootbench (process 4242) holds no stream for it: no PC of it is ready (none has asked for its task yet, or that host sends deploys by HTTP)`,
      );
      assert.equal(
        describeStart(jobs.get(job.id)!, { alive }),
        `${rule}; no Bootbench host is running on this data folder, so no PC is ready: start bootbench serve (or the app) on it`,
      );
      jobs.recordStreamWait(job.id, { ready: [A, B.toUpperCase()], deadline: 130_000, pid: 4242 });
      now = 101_000;
      jobs.recordStreamWait(job.id, { ready: [B], deadline: 130_000, pid: 4242 });
      const waiting = jobs.get(job.id)!;
      assert.deepEqual(
        waiting.machines.map((m) => [m.mac, m.readyAt]),
        [
          [A, undefined],
          [B, 100_000],
          [C, undefined],
        ],
        'B keeps when it was first heard; A is no longer ready',
      );
      assert.equal(describeStart(waiting, { hostPid: 4242, alive }), `1 of 3 PCs ready; stream starts when every PC is ready or at ${at(130_000)}, or on Go`);
      assert.equal(describeStart(waiting), rule, 'without a status context (a new deploy): the rule alone');
      // The host crashed: its word stays in the store but says nothing of who is ready now.
      const dead = () => false;
      const stale = describeStart(waiting, { alive: dead })!;
      assert.equal(
        stale,
        `${rule}; no Bootbench host is running on this data folder (the host that held it, process 4242, stopped after ${at(101_000)}), so no PC is ready: start bootbench serve (or the app) on it`,
      );
      assert.match(
        describeStart(waiting, { hostPid: 7, alive: (pid) => pid === 7 })!,
        /the running Bootbench \(process 7\) holds no stream for it \(the host that held it, process 4242/,
      );
      jobs.go(job.id);
      assert.match(describeStart(jobs.get(job.id)!, { alive })!, /^1 of 3 PCs ready; Go given at .*: the stream starts as soon as the host has ready PCs$/);
      // A host that stops clears its word.
      jobs.forgetStreamWait(job.id);
      const cleared = jobs.get(job.id)!;
      assert.equal(cleared.streamHeardAt, undefined);
      assert.deepEqual(
        cleared.machines.map((m) => m.readyAt),
        [undefined, undefined, undefined],
      );
    } finally {
      store.close();
      temp.remove();
    }
  });
});

describe('the host and a waiting stream', () => {
  test('a receiver asking is told "waiting" and counted ready; Go through the store starts the stream and is recorded', async () => {
    const temp = makeTempDir('bootbench-stream-host-');
    const data = join(temp.dir, 'data');
    await addSampleImage(data, { name: 'room', mac: '52:54:00:cc:00:09', machine: 'ref', chunksPerPartition: 2 });
    const store = openStore(data);
    const imaging = new ImagingService({ store, dataDir: data, logger: silent, stream: { address: '127.0.0.1' } });
    const server = createServer((req, res) => {
      void imaging.handle(req, res, new URL(req.url ?? '/', 'http://host')).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const get = async (path: string) => {
      const res = await fetch(`${base}${path}`);
      return { status: res.status, text: await res.text() };
    };
    try {
      const job = imaging.jobs.create({ kind: 'deploy', image: 'room', macs: [A, B, C], start: { manual: true } });
      const task = await get(`/imaging/task?mac=${A}`);
      const session = /^stream=[\d.]+:\d+:([0-9a-f]{8})$/m.exec(task.text)?.[1];
      assert.ok(session, task.text);
      const first = await fetch(`${base}/imaging/streams/${session}?mac=${A}`);
      // bb-stream-recv reads a body of known length.
      assert.equal(first.headers.get('content-length'), '27');
      assert.equal(await first.text(), 'state=waiting\nready=1\nof=3\n');
      assert.deepEqual(await get(`/imaging/streams/${session}?mac=${B}`), { status: 200, text: 'state=waiting\nready=2\nof=3\n' });
      assert.equal((await get(`/imaging/streams/00000000?mac=${A}`)).status, 404);

      const shown = storeImaging({ store, dataDir: () => data, liveStream: (id) => imaging.streamNow(id) }).job(job.id)!;
      assert.deepEqual(shown.stream?.start, { started: false, startedAt: undefined, ready: 2, of: 3, deadline: undefined });
      assert.deepEqual(
        shown.machines.map((m) => [m.mac, m.waitingForStream]),
        [
          [A, true],
          [B, true],
          [C, undefined],
        ],
      );

      // bootbench image status, another process on the data folder, reads what the host records of the wait.
      await waitFor(() => imaging.jobs.get(job.id)!.machines.filter((m) => m.readyAt !== undefined).length === 2 || undefined, 5000, 'the wait in the store');
      const status = await cliStatus(data, job.id);
      assert.match(status.stdout, new RegExp(`2 of 3 PCs ready; stream starts on Go \\(bootbench image go ${job.id}\\)`));
      assert.match(status.stdout, new RegExp(`${A} {2}ready since [^,]+, waiting for the stream`));
      assert.match(status.stdout, new RegExp(`${C} {2}waiting\n`));
      const json = JSON.parse((await cliStatus(data, job.id, '--json')).stdout)[0];
      assert.deepEqual(json.streamWait, { ready: 2, of: 3 });
      assert.ok(json.machines[0].readyAt > 0);

      // Go as another process would give it: a row in the store the host looks for.
      new ImagingJobs(store.db).go(job.id);
      await waitFor(() => imaging.jobs.get(job.id)!.streamStartedAt, 5000, 'the host to start the stream on Go');
      assert.deepEqual(await get(`/imaging/streams/${session}?mac=${C}`), { status: 200, text: 'state=started\nready=3\nof=3\n' });
      assert.match((await cliStatus(data, job.id)).stdout, /stream started at .* \(Go\)/);
      assert.equal(imaging.jobs.get(job.id)!.streamHeardAt, undefined, 'started: the wait is no longer recorded');

      // A host that stops while a stream waits takes its word on that wait with it.
      const D = '52:54:00:aa:50:0d';
      const E = '52:54:00:aa:50:0e';
      const held = imaging.jobs.create({ kind: 'deploy', image: 'room', macs: [D, E], start: { manual: true } });
      const heldSession = /^stream=[\d.]+:\d+:([0-9a-f]{8})$/m.exec((await get(`/imaging/task?mac=${D}`)).text)?.[1];
      assert.equal((await get(`/imaging/streams/${heldSession}?mac=${D}`)).text, 'state=waiting\nready=1\nof=2\n');
      await waitFor(() => imaging.jobs.get(held.id)!.streamHeardAt, 5000, 'the wait in the store');
      assert.match((await cliStatus(data, held.id)).stdout, /1 of 2 PCs ready; stream starts on Go/);
      imaging.stop();
      assert.equal(imaging.jobs.get(held.id)!.streamHeardAt, undefined);
      assert.deepEqual(
        imaging.jobs.get(held.id)!.machines.map((m) => m.readyAt),
        [undefined, undefined],
      );
      const after = (await cliStatus(data, held.id)).stdout;
      assert.match(after, /stream starts on Go .*; no Bootbench host is running on this data folder, so no PC is ready/);
      assert.doesNotMatch(after, /PCs ready;|ready since/);
    } finally {
      imaging.stop();
      server.close();
      store.close();
      temp.remove();
    }
  });
});

test('image status: a streamed PC reads what it wrote from the stream and by repair', async () => {
  const temp = makeTempDir('bootbench-stream-shares-');
  const data = join(temp.dir, 'data');
  const store = openStore(data);
  try {
    const jobs = new ImagingJobs(store.db);
    const job = jobs.create({ kind: 'deploy', image: 'room', macs: [A, B], start: { manual: true } });
    jobs.report(job.id, A, { phase: 'done', bytes: 32 * 1048576, total: 32 * 1048576 });
    jobs.recordStream(job.id, A, 30 * 1048576, 2 * 1048576);
    const out = (await cliStatus(data, job.id)).stdout;
    assert.match(out, new RegExp(`${A} {2}done 32\\.0 MiB of 32\\.0 MiB, written 30\\.0 MiB from the stream, 2\\.0 MiB by repair\n`));
    assert.match(out, new RegExp(`${B} {2}waiting\n`), 'a PC the stream has not served shows no shares');
  } finally {
    store.close();
    temp.remove();
  }
});
