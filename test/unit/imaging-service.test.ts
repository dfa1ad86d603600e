// The imaging service's part of the running host: the Secure Boot chain's grub.cfg for a PC
// with a task, and PCs that go silent mid-job (switched off, cable pulled) being failed with
// what they were doing, on an injected clock.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ImagingService, describeWork } from '../../main/imaging/imaging-service.js';
import { ANY_MACHINE } from '../../main/imaging/jobs.js';
import { parseReport } from '../../main/imaging/agent-protocol.js';
import { buildGrubTaskConfig } from '../../main/library/ipxe-script.js';
import { LibraryBootService } from '../../main/library/boot-service.js';
import { ManualClock } from '../../main/core/clock.js';
import { MemoryLogger } from '../../main/core/logger.js';
import { openStore, type Store } from '../../main/store/index.js';
import { makeTempDir } from '../helpers/store-temp.js';

const PC = '52:54:00:aa:10:01';
const OTHER = '52:54:00:aa:10:02';
const BASE = 'http://192.0.2.1:8080';

describe('grub.cfg for a task (Secure Boot chain)', () => {
  const kernel = {
    name: 'the imaging environment',
    kernel: '/bootbench/imaging/vmlinuz',
    initrds: ['/bootbench/imaging/initrd.img'],
    arguments: `bootbench.server=${BASE} console=ttyS0`,
  };

  test('boots the kernel and initrd from the boot server, over TFTP unless HTTP is on port 80', () => {
    const cfg = buildGrubTaskConfig(kernel, { serverAddress: '192.0.2.1', httpPort: 8080, mac: PC });
    assert.match(cfg, /^linux \(tftp,192\.0\.2\.1\)\/bootbench\/imaging\/vmlinuz bootbench\.server=http:\/\/192\.0\.2\.1:8080 console=ttyS0$/m);
    assert.match(cfg, /^initrd \(tftp,192\.0\.2\.1\)\/bootbench\/imaging\/initrd\.img$/m);
    assert.match(cfg, /^boot$/m);
    assert.match(buildGrubTaskConfig(kernel, { serverAddress: '192.0.2.1', httpPort: 80 }), /^linux \(http,192\.0\.2\.1\)\/bootbench/m);
  });

  test('a task that cannot boot says why and returns to the firmware', () => {
    const cfg = buildGrubTaskConfig(
      { name: 'the imaging environment', unavailable: 'it is not built (npm run build:imaging)' },
      { serverAddress: '192.0.2.1', httpPort: 8080 },
    );
    assert.match(cfg, /echo 'Bootbench: the imaging environment: it is not built \(npm run build:imaging\)'/);
    assert.match(cfg, /^exit$/m);
    assert.doesNotMatch(cfg, /^linux /m);
  });
});

describe('imaging service', () => {
  let temp: ReturnType<typeof makeTempDir>;
  let store: Store;
  let clock: ManualClock;
  let logger: MemoryLogger;
  let imaging: ImagingService;
  let server: Server;
  let url = '';

  function post(path: string, body: string | Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(`${url}${path}`, { method: 'POST' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end(body);
    });
  }
  const reportFor = (job: number, mac: string, text: string) => post(`/imaging/jobs/${job}/report?mac=${mac}`, text);
  const row = (job: number, mac: string) => imaging.jobs.get(job)!.machines.find((m) => m.mac === mac)!;

  before(async () => {
    temp = makeTempDir('bootbench-imaging-service-');
    store = openStore(join(temp.dir, 'data'));
    clock = new ManualClock(1_700_000_000_000);
    logger = new MemoryLogger();
    imaging = new ImagingService({ store, dataDir: join(temp.dir, 'data'), logger, clock, silenceSeconds: 60 });
    server = createServer((req, res) => {
      void imaging.handle(req, res, new URL(req.url ?? '/', 'http://x')).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    imaging.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    store.close();
    temp.remove();
  });

  test('a PC with a pending job gets the environment as a GRUB kernel; others get nothing from it', () => {
    const job = imaging.jobs.create({ kind: 'deploy', image: 'win11', macs: [PC] });
    const task = imaging.grubKernel(PC, `${BASE}/`);
    if (imaging.environmentDir) {
      assert.deepEqual(task, {
        name: 'the imaging environment',
        kernel: '/bootbench/imaging/vmlinuz',
        initrds: ['/bootbench/imaging/initrd.img'],
        arguments: `bootbench.server=${BASE} console=tty0 console=ttyS0 quiet panic=30`,
      });
    } else {
      assert.ok(task && 'unavailable' in task && /npm run build:imaging/.test(task.unavailable));
    }
    assert.equal(imaging.grubKernel(OTHER, BASE), undefined);
    imaging.jobs.report(job.id, PC, { phase: 'failed', reason: 'test over' });
    assert.equal(imaging.grubKernel(PC, BASE), undefined, 'a finished job boots nothing');
  });

  test("the library serves the task as the PC's grub.cfg, ahead of its assignment", async () => {
    const job = imaging.jobs.create({ kind: 'deploy', image: 'win11', macs: [PC] });
    const library = new LibraryBootService({
      store,
      dataDir: join(temp.dir, 'data'),
      httpBaseUrl: BASE,
      serverAddress: '192.0.2.1',
      httpPort: 8080,
      taskKernel: (mac) => imaging.grubKernel(mac, BASE),
    });
    const generated = new Map<string, (r: { protocol: 'tftp' | 'http'; ip?: string; mac?: string; path: string }) => unknown>();
    library.mountInto({ mount: () => {}, generate: (path, fn) => void generated.set(path, fn) });
    const grubCfg = generated.get('/grub/grub.cfg')!;
    const cfg = String(await grubCfg({ protocol: 'tftp', mac: PC, path: '/grub/grub.cfg' }));
    assert.match(cfg, imaging.environmentDir ? /^linux \(tftp,192\.0\.2\.1\)\/bootbench\/imaging\/vmlinuz bootbench\.server=/m : /not built/);
    assert.equal(
      await grubCfg({ protocol: 'tftp', mac: OTHER, path: '/grub/grub.cfg' }),
      undefined,
      'a PC without a task or assignment falls through to the root',
    );
    imaging.jobs.report(job.id, PC, { phase: 'failed', reason: 'test over' });
  });

  test('a capture for the next machine that boots is claimed by the first PC that asks, once, and only a capture may wait for anyone', async () => {
    assert.throws(() => imaging.jobs.create({ kind: 'deploy', image: 'win11', macs: [ANY_MACHINE] }), /only a capture/);
    const job = imaging.jobs.create({ kind: 'capture', image: 'reference', macs: [ANY_MACHINE] });
    assert.equal(imaging.waitingForAnyMachine(), true);
    assert.ok(!imaging.pendingMacs().has(ANY_MACHINE), 'the placeholder is not a MAC the DHCP view learns');
    assert.equal(imaging.grubKernel(undefined, BASE), undefined, 'a request without a MAC claims nothing');
    // The first PC that asks for its task (here the agent itself) becomes the capture's PC.
    const first = await new Promise<string>((resolve, reject) =>
      request(`${url}/imaging/task?mac=${PC}`, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve(text));
      })
        .on('error', reject)
        .end(),
    );
    assert.match(first, new RegExp(`job=${job.id}`));
    assert.equal(imaging.waitingForAnyMachine(), false);
    assert.deepEqual(
      imaging.jobs.get(job.id)!.machines.map((m) => [m.mac, m.phase]),
      [[PC, 'booting']],
    );
    assert.equal(imaging.grubKernel(OTHER, BASE), undefined, 'a second PC gets nothing: the capture has its PC');
    assert.ok(imaging.pendingMacs().has(PC));
    // A PC that already has a job of its own keeps it rather than claiming the open capture.
    const own = imaging.jobs.create({ kind: 'deploy', image: 'win11', macs: [OTHER] });
    const open = imaging.jobs.create({ kind: 'capture', image: 'second', macs: [ANY_MACHINE] });
    assert.equal(imaging.jobs.claimFor(OTHER)?.id, own.id);
    assert.equal(imaging.waitingForAnyMachine(), true);
    imaging.jobs.report(own.id, OTHER, { phase: 'failed', reason: 'test over' });
    imaging.jobs.report(job.id, PC, { phase: 'failed', reason: 'test over' });
    // A newer capture for the next machine replaces the unclaimed one, as for a named PC.
    const newer = imaging.jobs.create({ kind: 'capture', image: 'third', macs: [ANY_MACHINE] });
    assert.equal(imaging.jobs.get(open.id)!.machines[0].result, 'failed');
    // Claimed through grub.cfg (the Secure Boot chain) this time: the host logs which PC it was.
    assert.ok(imaging.grubKernel(OTHER, BASE));
    assert.equal(imaging.jobs.get(newer.id)!.machines[0].mac, OTHER);
    assert.ok(logger.lines.some((l) => l.message.includes(`${OTHER} is the next machine that booted`)));
    imaging.jobs.report(newer.id, OTHER, { phase: 'failed', reason: 'test over' });
  });

  test('a report names the partition in work', () => {
    assert.deepEqual(parseReport('phase=writing\nbytes=10\ntotal=20\npart=3\n'), { phase: 'writing', bytes: 10, total: 20, part: 3 });
    assert.throws(() => parseReport('phase=writing\npart=two\n'), /part must be a whole number/);
    assert.equal(describeWork('writing', 2), 'writing partition 2');
    assert.equal(describeWork('reading', 0), 'reading the boot area');
    assert.equal(describeWork('partitioning', 2), 'writing the partition table');
  });

  test('a working PC that goes silent is failed with the phase and partition it was in; a waiting one is not', async () => {
    const deploy = imaging.jobs.create({ kind: 'deploy', image: 'win11', macs: [PC, OTHER] });
    assert.equal(await reportFor(deploy.id, PC, 'phase=writing\nbytes=4194304\ntotal=8388608\npart=2\n'), 200);
    clock.advance(59_000);
    assert.equal(imaging.failSilentMachines(), 0, 'under the limit nothing happens');
    assert.equal(row(deploy.id, PC).result, undefined);
    clock.advance(2_000);
    assert.equal(imaging.failSilentMachines(), 1);
    const failed = row(deploy.id, PC);
    assert.equal(failed.result, 'failed');
    assert.equal(failed.phase, 'failed');
    assert.equal(
      failed.reason,
      'no word from the PC for 61 s while writing partition 2: it was switched off or lost the network. Check its power and cable, then deploy to it again',
    );
    assert.ok(
      logger.lines.some((l) => l.message.includes('no word from the PC')),
      'the host log says so too',
    );
    assert.equal(row(deploy.id, OTHER).result, undefined, 'a PC that never booted is still waiting');
    assert.equal(row(deploy.id, OTHER).phase, 'waiting');
    // A late report from the PC does not bring the row back.
    await reportFor(deploy.id, PC, 'phase=writing\nbytes=5000000\npart=2\n');
    assert.equal(row(deploy.id, PC).result, 'failed');
    // The same PC deploys again with a new job.
    const again = imaging.jobs.create({ kind: 'deploy', image: 'win11', macs: [PC] });
    await reportFor(again.id, PC, 'phase=verifying\npart=1\n');
    await reportFor(again.id, PC, 'phase=done\n');
    clock.advance(3_600_000);
    assert.equal(imaging.failSilentMachines(), 0, 'a finished PC is never failed');
    assert.equal(row(again.id, PC).result, 'done');
  });

  test('watch() checks by itself on the clock until stop()', async () => {
    const job = imaging.jobs.create({ kind: 'deploy', image: 'win11', macs: [OTHER] });
    await reportFor(job.id, OTHER, 'phase=partitioning\n');
    imaging.watch();
    clock.advance(66_000);
    assert.match(row(job.id, OTHER).reason ?? '', /^no word from the PC for 6\d s while writing the partition table:/);
    imaging.stop();
    assert.equal(clock.pendingTimers(), 0);
  });

  test('a silent capture is failed and its chunks removed, unless another capture is under way', async () => {
    const chunk = Buffer.alloc(1000, 7); // the store checks the name, not the compression
    const sha = createHash('sha256').update(chunk).digest('hex');
    const chunks = () => (existsSync(imaging.catalog.chunks.path(sha)) ? 1 : 0);
    const first = imaging.jobs.create({ kind: 'capture', image: 'one', macs: [PC] });
    const second = imaging.jobs.create({ kind: 'capture', image: 'two', macs: [OTHER] });
    await reportFor(first.id, PC, 'phase=reading\npart=1\n');
    assert.equal(await post(`/imaging/chunks/${sha}?job=${first.id}&mac=${PC}`, chunk), 201);
    clock.advance(30_000);
    await reportFor(second.id, OTHER, 'phase=reading\npart=1\n');
    clock.advance(31_000);
    assert.equal(imaging.failSilentMachines(), 1);
    assert.match(row(first.id, PC).reason ?? '', /while reading partition 1:.*capture it again$/);
    assert.equal(chunks(), 1, 'another capture is working: nothing is collected under it');
    clock.advance(31_000);
    assert.equal(imaging.failSilentMachines(), 1);
    assert.equal(chunks(), 0, 'no capture left working: the chunks no image names are gone');
  });
});
