// The Images screen's calls over the real store and image catalog of a temporary data folder:
// the list with its sizes, capture and deploy jobs made from machine ids, MACs or a group,
// the refusals (each naming the problem and the fix), delete refused while a deploy writes
// the image and keeping shared chunks, verify finding a damaged chunk, jobs another process
// made on the same folder, and the live push and timeline lines from the host's imaging events.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../../main/store/index.js';
import { storeApi } from '../../main/api/api-store.js';
import { HostApi, connectApiEvents, type ApiStore } from '../../main/api/api.js';
import { summarizeEvent } from '../../main/api/boot-diagnosis.js';
import { EventBus } from '../../main/core/events.js';
import { ManualClock } from '../../main/core/clock.js';
import { ANY_MACHINE, ImageCatalog, ImagingJobs } from '../../main/imaging/index.js';
import { attachStoreToBus } from '../../main/store/bus-recorder.js';
import type { ApiEvents, ImageInfo, ImagingJob, ImageVerifyResult } from '../../preload/api.js';
import { idleServiceHost } from '../helpers/idle-host.js';
import { addSampleImage } from '../helpers/sample-image.js';

const PC1 = '52:54:00:bb:00:01';
const PC2 = '52:54:00:bb:00:02';
const PC3 = '52:54:00:bb:00:03';

let work: string;
let store: Store;
let apiStore: ApiStore;
let api: HostApi;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'bb-images-api-'));
  store = openStore(work);
  apiStore = storeApi(store, { dataDir: () => work });
  api = new HostApi({ host: idleServiceHost(), store: apiStore, listInterfaces: () => [], shell: 'web' });
  store.machines.create({ macs: [PC1], name: 'bench-01', group: 'row-a' });
  store.machines.create({ macs: [PC2], name: 'bench-02', group: 'row-a' });
  store.machines.create({ macs: [PC3], name: 'bench-03', group: 'row-b' });
  store.machines.create({ macs: [], uuid: '4c4c4544-0000-1000-8000-000000000001', name: 'no-nic', group: 'row-c' });
  await addSampleImage(work, { name: 'gpt-ref', mac: PC1, machine: 'bench-01', seed: 'shared', createdAt: 1_700_000_000_000 });
  await addSampleImage(work, { name: 'gpt-copy', seed: 'shared' });
});
after(() => {
  store.close();
  rmSync(work, { recursive: true, force: true });
});

async function call<T>(name: string, request?: unknown): Promise<T> {
  const reply = await api.handle(name, request);
  if ('error' in reply) throw new Error(`${reply.error.code}: ${reply.error.message}`);
  return reply.result as T;
}
async function refusal(name: string, request: unknown): Promise<string> {
  const reply = await api.handle(name, request);
  assert.ok('error' in reply, `${name} ${JSON.stringify(request)} was refused`);
  return `${reply.error.code}: ${reply.error.message}`;
}
const machineId = (name: string) => store.machines.list().find((m) => m.name === name)!.id;
const finish = (job: ImagingJob) => {
  const jobs = new ImagingJobs(store.db);
  for (const m of job.machines) jobs.report(job.id, m.anyMachine ? ANY_MACHINE : m.mac, { phase: 'failed', reason: 'test over' });
};

describe('images:list', () => {
  test('each image with its source machine, sizes and date', async () => {
    const list = await call<ImageInfo[]>('images:list');
    assert.deepEqual(
      list.map((i) => i.name),
      ['gpt-copy', 'gpt-ref'],
    );
    const ref = list.find((i) => i.name === 'gpt-ref')!;
    assert.deepEqual(ref.source, { mac: PC1, machine: 'bench-01', disk: 'vda', model: 'QEMU HARDDISK', serial: 'REF-0001' });
    assert.equal(ref.diskBytes, 256 * 1024 * 1024);
    assert.equal(ref.usedBytes, 2 * 2 * 3 * 1024 * 1024, 'the streams of both partitions');
    assert.equal(ref.storedBytes, 4 * 64 * 1024, 'its four chunks as stored');
    assert.equal(ref.partitions, 2);
    assert.equal(ref.createdAt, 1_700_000_000_000);
    assert.deepEqual(ref.deployingJobs, []);
  });
});

describe('images:capture', () => {
  test('by machine id or MAC: a capture job for that PC, with its name from the machine list', async () => {
    const job = await call<ImagingJob>('images:capture', { machineId: machineId('bench-03'), name: 'win11-lab', then: 'poweroff' });
    assert.equal(job.kind, 'capture');
    assert.equal(job.image, 'win11-lab');
    assert.equal(job.then, 'poweroff');
    assert.deepEqual(
      job.machines.map((m) => [m.mac, m.machine, m.machineId, m.phase]),
      [[PC3, 'bench-03', machineId('bench-03'), 'waiting']],
    );
    const byMac = await call<ImagingJob>('images:capture', { mac: PC3.toUpperCase(), name: 'win11-lab-2', disk: 'SN-123' });
    assert.equal(byMac.machines[0]!.mac, PC3);
    assert.equal(byMac.disk, 'SN-123');
    assert.equal(byMac.then, 'disk');
    finish(byMac);
  });

  test('the next machine that boots: one row that names no PC until one claims it', async () => {
    const job = await call<ImagingJob>('images:capture', { nextMachine: true, name: 'whoever-boots' });
    assert.deepEqual(
      job.machines.map((m) => [m.mac, m.anyMachine, m.machine, m.phase]),
      [['', true, undefined, 'waiting']],
    );
    assert.match(
      await refusal('images:capture', { nextMachine: true, mac: PC1, name: 'x1' }),
      /needs one machine: pick the machine to capture, or the next machine/,
    );
    assert.match(await refusal('images:capture', { nextMachine: false, name: 'x1' }), /nextMachine/);
    finish(job);
  });

  test('refusals name the problem and the fix', async () => {
    assert.match(
      await refusal('images:capture', { machineId: machineId('bench-01'), name: 'gpt-ref' }),
      /An image named "gpt-ref" exists: choose another name, or delete it first/,
    );
    assert.match(
      await refusal('images:capture', { machineId: machineId('bench-01'), name: 'my image!' }),
      /invalid-request: Image name: image name "my image!" is not allowed: use letters, digits/,
    );
    assert.match(
      await refusal('images:capture', { machineId: machineId('no-nic'), name: 'x1' }),
      /Machine "no-nic" has no MAC address, so it cannot be told its task: add its MAC on the Machines screen/,
    );
    assert.match(await refusal('images:capture', { machineId: 9999, name: 'x1' }), /not-found: There is no machine number 9999/);
    assert.match(await refusal('images:capture', { name: 'x1' }), /needs one machine: pick the machine to capture/);
    assert.match(await refusal('images:capture', { machineId: machineId('bench-01'), mac: PC1, name: 'x1' }), /needs one machine/);
    assert.match(await refusal('images:capture', { mac: 'not-a-mac', name: 'x1' }), /mac must be a MAC address such as/);
    assert.match(await refusal('images:capture', { mac: PC1, name: '' }), /name must not be empty: give the image a name/);
    assert.match(await refusal('images:capture', { mac: PC1, name: 'x1', then: 'reboot' }), /then must be "disk" .* or "poweroff"/);
    assert.match(await refusal('images:capture', { mac: PC1, name: 'x1', disk: 'a;rm -rf' }), /disk must be the disk's serial or model/);
  });
});

describe('images:deploy', () => {
  test('to machines by id and MAC, or to a group: one row per PC, waiting for its boot', async () => {
    const job = await call<ImagingJob>('images:deploy', { image: 'gpt-ref', machineIds: [machineId('bench-01')], macs: [PC2] });
    assert.equal(job.kind, 'deploy');
    assert.deepEqual(
      job.machines.map((m) => [m.mac, m.machine, m.phase]),
      [
        [PC1, 'bench-01', 'waiting'],
        [PC2, 'bench-02', 'waiting'],
      ],
    );
    const group = await call<ImagingJob>('images:deploy', { image: 'gpt-ref', group: 'ROW-A', then: 'poweroff' });
    assert.deepEqual(
      group.machines.map((m) => m.mac),
      [PC1, PC2],
      'group names match as the Machines screen does, ignoring case',
    );
    const earlier = (await call<ImagingJob[]>('imaging:jobs')).find((j) => j.id === job.id)!;
    assert.ok(
      earlier.machines.every((m) => m.result === 'failed' && m.reason === 'Replaced by a newer job for this machine'),
      'a PC belongs to one unfinished job',
    );
    const listed = (await call<ImageInfo[]>('images:list')).find((i) => i.name === 'gpt-ref')!;
    assert.deepEqual(listed.deployingJobs, [group.id]);
    finish(group);
  });

  test('refusals name the problem and the fix', async () => {
    assert.match(
      await refusal('images:deploy', { image: 'nope', machineIds: [machineId('bench-01')] }),
      /not-found: There is no image named "nope" .*reload the image list/,
    );
    assert.match(
      await refusal('images:deploy', { image: 'gpt-ref', group: 'row-z' }),
      /Group "row-z" has no machines: put machines in it on the Machines screen, or pick machines/,
    );
    assert.match(
      await refusal('images:deploy', { image: 'gpt-ref', group: 'row-c' }),
      /Machines of group "row-c" without a MAC address cannot be told their task: no-nic\. Add their MACs/,
    );
    assert.match(await refusal('images:deploy', { image: 'gpt-ref' }), /needs machines or a group \(not both\)/);
    assert.match(await refusal('images:deploy', { image: 'gpt-ref', machineIds: [] }), /needs machines or a group/);
    assert.match(await refusal('images:deploy', { image: 'gpt-ref', group: 'row-a', macs: [PC1] }), /needs machines or a group \(not both\)/);
    assert.match(await refusal('images:deploy', { image: 'gpt-ref', machineIds: [machineId('no-nic')] }), /has no MAC address/);
    assert.match(await refusal('images:deploy', { image: 'gpt-ref', machineIds: [1], extra: 1 }), /Unrecognized key/);
  });
});

describe('images:delete and images:verify', () => {
  test('delete is refused while a deploy writes the image, then removes only chunks no other image uses', async () => {
    const job = await call<ImagingJob>('images:deploy', { image: 'gpt-copy', macs: [PC3] });
    assert.match(
      await refusal('images:delete', { name: 'gpt-copy' }),
      new RegExp(`Image "gpt-copy" is being deployed \\(job ${job.id}\\): wait until its PCs are done or failed, then delete it`),
    );
    new ImagingJobs(store.db).report(job.id, PC3, { phase: 'done' });
    const deleted = await call<{ name: string; chunks: number }>('images:delete', { name: 'gpt-copy' });
    assert.deepEqual(deleted, { name: 'gpt-copy', chunks: 0, bytes: 0 }, 'gpt-ref uses every chunk of gpt-copy');
    assert.deepEqual(
      (await call<ImageInfo[]>('images:list')).map((i) => i.name),
      ['gpt-ref'],
    );
    assert.match(await refusal('images:delete', { name: 'gpt-copy' }), /not-found: There is no image named "gpt-copy"/);
    const verified = await call<ImageVerifyResult>('images:verify', { name: 'gpt-ref' });
    assert.deepEqual({ ok: verified.ok, chunks: verified.chunks, bad: verified.bad }, { ok: true, chunks: 4, bad: [] }, 'the shared chunks are still there');
  });

  test('verify finds a damaged chunk', async () => {
    await addSampleImage(work, { name: 'to-damage', seed: 'damage' });
    const catalog = new ImageCatalog(work);
    const sha = catalog.get('to-damage')!.partitions[1]!.chunks[0]!;
    writeFileSync(catalog.chunks.path(sha), 'bit rot');
    const result = await call<ImageVerifyResult>('images:verify', { name: 'to-damage' });
    assert.equal(result.ok, false);
    assert.deepEqual(result.bad, [sha]);
    assert.match(await refusal('images:verify', { name: 'absent' }), /not-found: There is no image named "absent"/);
  });
});

test('jobs another process makes on the same data folder are listed', async () => {
  const other = openStore(work);
  try {
    const made = new ImagingJobs(other.db).create({ kind: 'deploy', image: 'gpt-ref', macs: [PC2] });
    const jobs = await call<ImagingJob[]>('imaging:jobs');
    assert.equal(jobs[0]!.id, made.id, 'newest first');
    assert.deepEqual(
      jobs.map((j) => j.id),
      [...jobs.map((j) => j.id)].sort((a, b) => b - a),
    );
    const seen = jobs.find((j) => j.id === made.id);
    assert.deepEqual(
      seen?.machines.map((m) => [m.mac, m.machine, m.phase]),
      [[PC2, 'bench-02', 'waiting']],
    );
    new ImagingJobs(other.db).report(made.id, PC2, { phase: 'failed', reason: 'test over' });
  } finally {
    other.close();
  }
});

test('without a data folder the calls say imaging is unavailable', async () => {
  const memory = openStore(':memory:');
  try {
    const bare = new HostApi({ host: idleServiceHost(), store: storeApi(memory), listInterfaces: () => [], shell: 'web' });
    const reply = await bare.handle('images:list', undefined);
    assert.ok('error' in reply && reply.error.code === 'unavailable');
  } finally {
    memory.close();
  }
});

describe('live rows and the timeline', () => {
  test('imaging events push the changed jobs with rows from the store, a few times a second at most; the timeline gets each step once', async () => {
    const clock = new ManualClock(1000);
    const bus = new EventBus(() => clock.now());
    const pushes: { event: keyof ApiEvents; payload: any }[] = [];
    connectApiEvents({ host: idleServiceHost(bus), store: apiStore, sink: (event, payload) => pushes.push({ event, payload }), clock, intervalMs: 250 });
    const job = await call<ImagingJob>('images:deploy', { image: 'gpt-ref', macs: [PC1] });
    const jobs = new ImagingJobs(store.db);
    const report = (phase: 'booting' | 'writing' | 'failed', bytes: number, reason?: string) => {
      jobs.report(job.id, PC1, { phase, bytes, total: 1000, reason });
      bus.publish('imaging.progress', { mac: PC1, job: job.id, kind: 'deploy', image: 'gpt-ref', phase, ...(reason ? { reason } : {}) });
    };
    report('booting', 0);
    for (let i = 1; i <= 10; i++) {
      report('writing', i * 50);
      clock.advance(100);
    }
    const progress = pushes.filter((p) => p.event === 'imaging:progress');
    assert.ok(progress.length >= 3 && progress.length <= 6, `about 4 pushes a second, got ${progress.length}`);
    clock.advance(300);
    const last = pushes.filter((p) => p.event === 'imaging:progress').at(-1)!.payload as ApiEvents['imaging:progress'];
    assert.deepEqual(
      last.jobs.map((j) => [j.id, j.machines[0]!.phase, j.machines[0]!.bytes, j.machines[0]!.machine]),
      [[job.id, 'writing', 500, 'bench-01']],
    );
    report('failed', 500, 'writing partition 2 failed: No space left on device');
    clock.advance(300);
    const steps = pushes.filter((p) => p.event === 'timeline:event').map((p) => p.payload.summary);
    assert.deepEqual(steps, [
      'Imaging: deploy of gpt-ref — booting the imaging environment',
      'Imaging: deploy of gpt-ref — writing',
      'Imaging: deploy of gpt-ref — failed: writing partition 2 failed: No space left on device',
    ]);
    const failed = pushes.filter((p) => p.event === 'timeline:event').at(-1)!.payload;
    assert.equal(failed.level, 'problem');
  });

  test('the store records each step of a PC once, not each of its reports, and the timeline reads them', async () => {
    const clock = new ManualClock(Date.now());
    const bus = new EventBus(() => clock.now());
    const recorder = attachStoreToBus(bus, store, { clock });
    const event = (phase: string) => ({ mac: PC3, job: 777, kind: 'deploy', image: 'gpt-ref', phase });
    bus.publish('imaging.progress', event('booting'));
    for (let i = 0; i < 20; i++) bus.publish('imaging.progress', event('writing'));
    bus.publish('imaging.progress', event('verifying'));
    bus.publish('imaging.progress', event('verifying'));
    recorder.flush();
    recorder.detach();
    const timeline = await call<{ events: { summary: string }[] }>('timeline:get', { machineId: machineId('bench-03') });
    assert.deepEqual(
      timeline.events.map((e) => e.summary).filter((s) => s.startsWith('Imaging')),
      ['Imaging: deploy of gpt-ref — booting the imaging environment', 'Imaging: deploy of gpt-ref — writing', 'Imaging: deploy of gpt-ref — verifying'],
    );
  });

  test("the agent's refusal names the screen's Disk field, not the command line's option, and the disks it saw in words", async () => {
    const made = await call<ImagingJob>('images:deploy', { image: 'gpt-ref', macs: [PC2] });
    const seen =
      'name=nvme0n1 size=512110190592 transport=nvme removable=0 model=Samsung_SSD_980 serial=S64DNF0R;name=sdb size=16013942784 transport=usb removable=1 model=- serial=-';
    new ImagingJobs(store.db).report(made.id, PC2, {
      phase: 'failed',
      reason: `2 internal disks and the task names none: choose one by serial or model (--disk); disks seen: ${seen}`,
    });
    const row = (await call<ImagingJob[]>('imaging:jobs')).find((j) => j.id === made.id)!.machines[0]!;
    assert.equal(
      row.reason,
      '2 internal disks and the task names none: choose one by serial or model (the Disk field of the Images screen); disks seen: nvme0n1 (NVMe, 477 GB, Samsung SSD 980, serial S64DNF0R); sdb (USB, 15 GB, removable)',
    );
  });

  test('a recorded imaging event reads as a step in plain words', () => {
    const line = summarizeEvent({ type: 'imaging.progress', time: 1, mac: PC1, job: 3, kind: 'capture', image: 'win11', phase: 'reading' });
    assert.deepEqual([line.summary, line.level], ['Imaging: capture of win11 — reading the disk', 'info']);
  });
});
