// The imaging agent on a plain Linux host, against loop devices this test makes from its
// own files (never a disk of this machine), talking to the host's imaging routes on
// loopback: capture a GPT reference disk (FAT, ext4, NTFS, raw), deploy it to a blank disk,
// then compare tables, files and bytes; and the refusals that must leave a disk untouched.
// The agent runs under busybox with busybox's applets first on PATH, as in the environment.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageCatalog, ImagingJobs, ImagingRoutes, type MachineReport } from '../../main/imaging/index.js';
import { openStore, type Store } from '../../main/store/index.js';
import { silentLogger } from '../../main/core/logger.js';
import { damageChunk } from '../helpers/damaged-chunk.js';
import { imgioBin, runAgent } from '../helpers/imaging-agent.js';

const AGENT = join(import.meta.dirname, '..', '..', 'build', 'imaging-env', 'agent.sh');
const NEEDED = [
  'busybox',
  'losetup',
  'sfdisk',
  'partclone.extfs',
  'partclone.ntfs',
  'partclone.fat',
  'partclone.dd',
  'partclone.restore',
  'zstd',
  'mkfs.ext4',
  'mkfs.vfat',
  'mkntfs',
  'ntfs-3g',
  'ntfs-3g.probe',
  'blkid',
  'mount',
];

function missingTools(): string[] {
  return NEEDED.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
      return false;
    } catch {
      return true;
    }
  });
}

const skip =
  process.getuid?.() !== 0
    ? 'loop devices need root'
    : missingTools().length
      ? `missing: ${missingTools().join(', ')} (apt-get install busybox-static partclone zstd fdisk e2fsprogs dosfstools ntfs-3g)`
      : undefined;

const MIB = 1024 * 1024;
const REF_MAC = '52:54:00:aa:00:01';
const TARGET_MAC = '52:54:00:aa:00:02';
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const run = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();

interface Loop {
  file: string;
  dev: string;
}

if (skip) test('imaging agent on loop devices', { skip }, () => {});
else
  describe('imaging agent on loop devices', () => {
    const work = mkdtempSync(join(tmpdir(), 'bootbench-imaging-'));
    const loops: string[] = [];
    const mounts: string[] = [];
    let store: Store;
    let catalog: ImageCatalog;
    let jobs: ImagingJobs;
    let server: Server;
    let url = '';
    const files = new Map<string, string>(); // path in ext4 -> sha256
    let rawPartition: Buffer;
    const bootCode = Buffer.from('BOOTBENCH BOOT CODE '.repeat(22)).subarray(0, 440);

    function attach(file: string, offset?: number, size?: number, readOnly = false): string {
      const args = ['-f', '--show'];
      if (offset !== undefined) args.push('-o', String(offset), '--sizelimit', String(size));
      if (readOnly) args.push('-r');
      const dev = run('losetup', [...args, file]).trim();
      loops.push(dev);
      return dev;
    }
    function detach(dev: string): void {
      // Once detached, its number may go to another process: the tear-down must not detach it again.
      const i = loops.lastIndexOf(dev);
      if (i < 0) return;
      loops.splice(i, 1);
      try {
        run('losetup', ['-d', dev]);
      } catch {
        /* gone */
      }
    }
    function disk(name: string, mib: number): Loop {
      const file = join(work, name);
      run('truncate', ['-s', `${mib}M`, file]);
      return { file, dev: attach(file) };
    }
    /** The partitions of a disk file, from its own table. */
    function partitions(file: string): { n: number; start: number; sectors: number }[] {
      return run('sfdisk', ['--dump', file])
        .split('\n')
        .flatMap((line) => {
          const m = /(\d+) : start=\s*(\d+), size=\s*(\d+)/.exec(line);
          return m ? [{ n: Number(m[1]), start: Number(m[2]), sectors: Number(m[3]) }] : [];
        });
    }
    function partitionLoop(file: string, n: number, readOnly = false): string {
      const p = partitions(file).find((x) => x.n === n)!;
      return attach(file, p.start * 512, p.sectors * 512, readOnly);
    }
    function mountAt(dev: string, type: string, readOnly: boolean): string {
      const dir = mkdtempSync(join(work, 'mnt-'));
      if (type === 'ntfs') run('ntfs-3g', readOnly ? ['-o', 'ro', dev, dir] : [dev, dir]);
      else run('mount', ['-t', type, ...(readOnly ? ['-o', 'ro'] : []), dev, dir]);
      mounts.push(dir);
      return dir;
    }
    function unmount(dir: string): void {
      run('umount', [dir]);
      mounts.splice(mounts.indexOf(dir), 1);
    }

    const reports: { job: number; mac: string; report: MachineReport }[] = [];

    /**
     * The row's "X of Y" while writing counts the bytes really written: as partition N begins,
     * the agent reports exactly the streams of the partitions before it (the boot area's 440
     * bytes, not a chunk's nominal 4 MiB), and never more than the image's total.
     */
    function assertWritingProgress(jobId: number, image: string, label: string): void {
      const parts = catalog.get(image)!.partitions;
      const total = parts.reduce((n, p) => n + p.streamBytes, 0);
      const writing = reports.filter((r) => r.job === jobId && r.report.phase === 'writing').map((r) => r.report);
      let before = 0;
      for (const p of parts) {
        const seen = writing.filter((r) => r.part === p.number).map((r) => r.bytes);
        assert.ok(seen.includes(before), `${label}: as partition ${p.number} began, ${before} bytes were written; reports said ${seen.join(', ')}`);
        before += p.streamBytes;
      }
      for (const r of writing) assert.ok(r.total === total && r.bytes! <= total, `${label}: ${r.bytes} of ${r.total}, the image's total is ${total}`);
    }

    /**
     * The row's "X of Y" while reading counts stream bytes, and partclone streams only the used
     * blocks: the total starts at the partitions' sizes (the boot area without its 72 table bytes)
     * and takes each partition's stream size once it is known: a partclone partition's as soon as
     * partclone has counted its used blocks, every partition's as it ends. So while partition N
     * is read the total is one of two values, and the last report before done is the whole
     * stream, read.
     */
    function assertCaptureProgress(jobId: number, image: string, label: string): void {
      const parts = catalog.get(image)!.partitions;
      const full = (p: (typeof parts)[number]) => p.sectors * 512 - (p.tool === 'boot' ? 72 : 0);
      const totalAfter = (i: number) => parts.reduce((n, p, j) => n + (j < i ? p.streamBytes : full(p)), 0);
      const streams = totalAfter(parts.length);
      const mine = reports.filter((r) => r.job === jobId).map((r) => r.report);
      assert.equal(mine.at(-1)?.phase, 'done', `${label}: the capture's last report`);
      const last = mine.at(-2)!;
      assert.deepEqual([last.phase, last.bytes, last.total], ['reading', streams, streams], `${label}: the last report before done`);
      const reading = mine.filter((r) => r.phase === 'reading');
      parts.forEach((p, i) => {
        const allowed = [totalAfter(i), totalAfter(i + 1)];
        const seen = reading.filter((r) => r.part === p.number);
        for (const r of seen)
          assert.ok(allowed.includes(r.total!), `${label}: while partition ${p.number} was read the total was ${r.total}, not one of ${allowed.join(', ')}`);
        assert.ok(
          seen.some((r) => r.total === allowed[1]),
          `${label}: no report as partition ${p.number} ended, with the total ${allowed[1]}; seen ${seen.map((r) => r.total).join(', ')}`,
        );
      });
      // The ext4 root is mostly free: once read, the total is far below the partitions' sizes.
      const root = parts.findIndex((p) => p.tool === 'extfs');
      assert.ok(totalAfter(root) - totalAfter(root + 1) > 10 * MIB, `${label}: the ext4 stream is ${parts[root].streamBytes} bytes of ${full(parts[root])}`);
      assert.ok(streams < 0.7 * totalAfter(0), `${label}: the streams are ${streams} bytes of ${totalAfter(0)}`);
    }

    /** Runs the agent as the PC with `mac`, allowed to see only `disks` (with bb-imgio unless `imgio` is false). */
    function agent(mac: string, disks: string[], imgio = true): Promise<{ code: number | null; out: string }> {
      return runAgent(url, mac, disks, work, imgio);
    }

    before(async () => {
      store = openStore(join(work, 'data'));
      catalog = new ImageCatalog(join(work, 'data'));
      jobs = new ImagingJobs(store.db);
      store.machines.create({ macs: [TARGET_MAC], name: 'pc-07' });
      const routes = new ImagingRoutes({
        catalog,
        jobs,
        logger: silentLogger,
        machineName: (mac) => store.machines.findByMac(mac)?.name,
        onProgress: (job, mac, _phase, report) => reports.push({ job: job.id, mac, report }),
      });
      server = createServer((req, res) => {
        void routes.handle(req, res, new URL(req.url ?? '/', 'http://x')).then((handled) => {
          if (!handled) res.writeHead(404).end();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

      // The reference PC's disk: GPT with an ESP, an ext4 root, an NTFS Windows and raw data.
      const ref = join(work, 'reference.img');
      run('truncate', ['-s', '64M', ref]);
      run(
        'sfdisk',
        ['-q', ref],
        [
          'label: gpt',
          'start=2048, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
          'size=40960, type=0FC63DAF-8483-4772-8E79-3D69C47D8E4D',
          'size=24576, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
          'size=8192, type=0FC63DAF-8483-4772-8E79-3D69C47D8E4D',
          '',
        ].join('\n'),
      );
      const refDev = attach(ref);
      writeFileSync(refDev, bootCode);
      detach(refDev);
      const esp = partitionLoop(ref, 1);
      run('mkfs.vfat', ['-F', '32', '-n', 'ESP', esp]);
      const root = partitionLoop(ref, 2);
      run('mkfs.ext4', ['-q', '-F', root]);
      const rootDir = mountAt(root, 'ext4', false);
      mkdirSync(join(rootDir, 'etc'));
      writeFileSync(join(rootDir, 'etc', 'hostname'), 'reference\n');
      for (let i = 0; i < 4; i++) {
        const data = Buffer.alloc(1.5 * MIB + i * 4096);
        for (let j = 0; j < data.length; j += 4) data.writeUInt32LE((j * 2654435761 + i) >>> 0, j);
        writeFileSync(join(rootDir, `file-${i}.bin`), data);
        files.set(`file-${i}.bin`, sha256(data));
      }
      unmount(rootDir);
      const windows = partitionLoop(ref, 3);
      run('mkntfs', ['-Q', '-q', '-F', windows]);
      const winDir = mountAt(windows, 'ntfs', false);
      mkdirSync(join(winDir, 'Windows', 'System32'), { recursive: true });
      writeFileSync(join(winDir, 'Windows', 'System32', 'marker.txt'), 'windows marker\n');
      unmount(winDir);
      rawPartition = Buffer.alloc(8192 * 512);
      for (let j = 0; j < rawPartition.length; j += 512) rawPartition.write(`raw sector ${j / 512}\n`, j);
      const raw = partitionLoop(ref, 4);
      writeFileSync(raw, rawPartition);
      for (const dev of [esp, root, windows, raw]) detach(dev);
    });

    after(async () => {
      for (const dir of [...mounts].reverse())
        try {
          run('umount', [dir]);
        } catch {
          /* not mounted */
        }
      for (const dev of [...loops].reverse()) detach(dev);
      await new Promise<void>((resolve) => server?.close(() => resolve()));
      store?.close();
      rmSync(work, { recursive: true, force: true });
    });

    test('capture: the reference disk becomes an image whose chunks all check out', async () => {
      const ref = attach(join(work, 'reference.img'));
      const job = jobs.create({ kind: 'capture', image: 'lab-ref', macs: [REF_MAC] });
      const result = await agent(REF_MAC, [ref]);
      assert.equal(result.code, 0, `agent failed:\n${result.out}\n${JSON.stringify(jobs.get(job.id))}`);
      if (imgioBin(work)) assert.match(result.out, /chunks move through bb-imgio/);
      const manifest = catalog.get('lab-ref');
      assert.ok(manifest, 'no image after the capture');
      assert.deepEqual(
        manifest.partitions.map((p) => [p.number, p.tool]),
        [
          [0, 'boot'],
          [1, 'fat'],
          [2, 'extfs'],
          [3, 'ntfs'],
          [4, 'dd'],
        ],
      );
      assert.equal(manifest.label, 'gpt');
      assert.equal(manifest.diskBytes, 64 * MIB);
      const verify = await catalog.verify('lab-ref');
      assert.deepEqual({ bad: verify.bad, missing: verify.missing }, { bad: [], missing: [] });
      assert.equal(jobs.get(job.id)!.machines[0].result, 'done');
      assertCaptureProgress(job.id, 'lab-ref', 'bb-imgio');
      const summary = catalog.summary(manifest);
      assert.ok(summary.storedBytes < summary.usedBytes, `stored ${summary.storedBytes} should be below used ${summary.usedBytes}: chunks are compressed`);
    });

    test('deploy: a blank disk gets the same table, files and bytes, verified, and the name from the machine list', async () => {
      const target = disk('target.img', 80);
      const job = jobs.create({ kind: 'deploy', image: 'lab-ref', macs: [TARGET_MAC] });
      const result = await agent(TARGET_MAC, [target.dev]);
      if (imgioBin(work)) assert.match(result.out, /chunks move through bb-imgio/);
      const row = jobs.get(job.id)!.machines[0];
      assert.equal(
        result.code,
        0,
        `agent failed:\n${result.out}\n${JSON.stringify(row)}\n${JSON.stringify(catalog.get('lab-ref')!.partitions.map((p) => ({ ...p, chunks: p.chunks.length })))}`,
      );
      assert.equal(row.result, 'done');
      assert.equal(row.phase, 'done');
      assert.ok(row.total > 0 && row.bytes === row.total, `bytes ${row.bytes} of ${row.total}`);
      assertWritingProgress(job.id, 'lab-ref', imgioBin(work) ? 'bb-imgio' : 'shell path');

      const refFile = join(work, 'reference.img');
      assert.deepEqual(partitions(target.file), partitions(refFile), 'partition tables differ');
      assert.deepEqual(readFileSync(target.file).subarray(0, 440), bootCode, 'the MBR boot code was not deployed');
      const root = partitionLoop(target.file, 2, true);
      const rootDir = mountAt(root, 'ext4', true);
      for (const [name, hash] of files) assert.equal(sha256(readFileSync(join(rootDir, name))), hash, `${name} differs`);
      assert.equal(readFileSync(join(rootDir, 'etc', 'hostname'), 'utf8').trim(), 'pc-07');
      unmount(rootDir);
      const windows = partitionLoop(target.file, 3, true);
      const winDir = mountAt(windows, 'ntfs', true);
      assert.equal(readFileSync(join(winDir, 'Windows', 'System32', 'marker.txt'), 'utf8'), 'windows marker\n');
      assert.match(readFileSync(join(winDir, 'Windows', 'Panther', 'unattend.xml'), 'utf8'), /<ComputerName>pc-07<\/ComputerName>/);
      unmount(winDir);
      const raw = partitionLoop(target.file, 4, true);
      assert.equal(sha256(readFileSync(raw)), sha256(rawPartition), 'raw partition differs');
    });

    test('without bb-imgio the shell path captures the very same chunks and deploys them, verified', async (t) => {
      if (!imgioBin(work)) return t.skip('bb-imgio cannot be built here (libzstd-dev, libssl-dev): both captures took the shell path');
      const ref = attach(join(work, 'reference.img'));
      const job = jobs.create({ kind: 'capture', image: 'lab-ref-shell', macs: [REF_MAC] });
      const captured = await agent(REF_MAC, [ref], false);
      assert.equal(captured.code, 0, `agent failed:\n${captured.out}\n${JSON.stringify(jobs.get(job.id))}`);
      assert.doesNotMatch(captured.out, /bb-imgio/);
      const shape = (name: string) => catalog.get(name)!.partitions.map((p) => ({ n: p.number, bytes: p.streamBytes, sha: p.streamSha256, chunks: p.chunks }));
      // Same cut, same zstd frames, same names: an image from either path shares its chunks with the other's.
      assert.deepEqual(shape('lab-ref-shell'), shape('lab-ref'));
      assertCaptureProgress(job.id, 'lab-ref-shell', 'shell path');

      const target = disk('shell-target.img', 80);
      const deployJob = jobs.create({ kind: 'deploy', image: 'lab-ref', macs: [TARGET_MAC] });
      const deployed = await agent(TARGET_MAC, [target.dev], false);
      assert.equal(deployed.code, 0, `agent failed:\n${deployed.out}\n${JSON.stringify(jobs.get(deployJob.id))}`);
      assert.match(deployed.out, /deployed image lab-ref to loop\d+, verified/);
      assertWritingProgress(deployJob.id, 'lab-ref', 'shell path');
      const raw = partitionLoop(target.file, 4, true);
      assert.equal(sha256(readFileSync(raw)), sha256(rawPartition), 'raw partition differs');
    });

    test('refusals leave the disk byte for byte unchanged: too small, two disks and no selector', async () => {
      const small = disk('small.img', 40);
      writeFileSync(small.dev, Buffer.from('previous contents of the small disk\n'));
      const before = sha256(readFileSync(small.file));
      const job = jobs.create({ kind: 'deploy', image: 'lab-ref', macs: [TARGET_MAC] });
      const result = await agent(TARGET_MAC, [small.dev]);
      assert.equal(result.code, 1, result.out);
      const row = jobs.get(job.id)!.machines[0];
      assert.equal(row.result, 'failed');
      assert.match(row.reason ?? '', /the image needs \d+: use a larger disk/);
      assert.equal(sha256(readFileSync(small.file)), before, 'the small disk was written');

      const second = disk('second.img', 80);
      const beforeSecond = sha256(readFileSync(second.file));
      const job2 = jobs.create({ kind: 'deploy', image: 'lab-ref', macs: [TARGET_MAC] });
      const result2 = await agent(TARGET_MAC, [small.dev, second.dev]);
      assert.equal(result2.code, 1, result2.out);
      assert.match(jobs.get(job2.id)!.machines[0].reason ?? '', /2 internal disks and the task names none.*disks seen: name=loop/);
      assert.equal(sha256(readFileSync(small.file)), before);
      assert.equal(sha256(readFileSync(second.file)), beforeSecond);
    });

    test('a damaged chunk is caught before it is written, and the PC is reported failed', async () => {
      const manifest = catalog.get('lab-ref')!;
      const sha = manifest.partitions.find((p) => p.tool === 'extfs')!.chunks[0];
      const repair = damageChunk(catalog, sha);
      try {
        // bb-imgio's check and the shell path's.
        for (const imgio of [true, false]) {
          const target = disk(`damaged-target-${imgio}.img`, 80);
          const job = jobs.create({ kind: 'deploy', image: 'lab-ref', macs: [TARGET_MAC] });
          const result = await agent(TARGET_MAC, [target.dev], imgio);
          assert.equal(result.code, 1, result.out);
          const row = jobs.get(job.id)!.machines[0];
          assert.equal(row.result, 'failed');
          assert.match(row.reason ?? '', new RegExp(`partition 2 failed: chunk ${sha} arrived damaged`));
          // The damaged chunk is the partition's first: nothing of the partition's data area was written.
          const written = partitionLoop(target.file, 2, true);
          assert.ok(
            readFileSync(written).every((b) => b === 0),
            `imgio=${imgio}: bytes of partition 2 were written`,
          );
        }
        assert.equal((await catalog.verify('lab-ref')).bad.length, 1, 'image verify must see the damaged chunk');
      } finally {
        repair();
      }
    });

    /** A one-partition GPT disk whose partition gets `prepare`d, and the store's chunk count. */
    function ntfsDisk(name: string, prepare: (partition: string) => void): string {
      const file = join(work, name);
      run('truncate', ['-s', '32M', file]);
      run('sfdisk', ['-q', file], 'label: gpt\nstart=2048, size=40960, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n');
      const part = partitionLoop(file, 1);
      run('mkntfs', ['-Q', '-q', '-F', part]);
      prepare(part);
      detach(part);
      return file;
    }

    test('capture is refused before anything is sent: a BitLocker volume, a hibernated Windows', async () => {
      const bitlocker = ntfsDisk('bitlocker.img', (part) => {
        // What blkid recognises a BitLocker volume by: the signature in its boot sector.
        const sector = readFileSync(part).subarray(0, 512);
        sector.write('-FVE-FS-', 3, 'latin1');
        writeFileSync(part, sector, { flag: 'r+' });
      });
      const hibernated = ntfsDisk('hibernated.img', (part) => {
        const dir = mountAt(part, 'ntfs', false);
        // ntfs-3g reads a hiberfil.sys that starts with HIBR as "Windows is hibernated".
        writeFileSync(join(dir, 'hiberfil.sys'), Buffer.concat([Buffer.from('HIBR'), Buffer.alloc(8188)]));
        unmount(dir);
      });
      const cases = [
        { file: bitlocker, name: 'bl', reason: /partition 1 is BitLocker-encrypted.*Turn BitLocker off/ },
        { file: hibernated, name: 'hib', reason: /partition 1 \(NTFS\) is hibernated.*powercfg \/h off/ },
      ];
      for (const c of cases) {
        const chunksBefore = catalog.chunks.list().length;
        const dev = attach(c.file);
        const job = jobs.create({ kind: 'capture', image: c.name, macs: [REF_MAC] });
        const result = await agent(REF_MAC, [dev]);
        assert.equal(result.code, 1, result.out);
        const row = jobs.get(job.id)!.machines[0];
        assert.equal(row.result, 'failed');
        assert.match(row.reason ?? '', c.reason);
        assert.equal(catalog.chunks.list().length, chunksBefore, 'chunks were sent before the refusal');
        assert.equal(catalog.get(c.name), undefined);
      }
    });

    test('the agent refuses to run on a plain host without a list of disks it may use', async () => {
      const result = await new Promise<number | null>((resolve) => {
        const child = spawn('/bin/busybox', ['sh', AGENT, 'run', url, TARGET_MAC], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
        child.on('exit', resolve);
      });
      assert.equal(result, 64);
      assert.equal(readdirSync(work).filter((n) => n.startsWith('bootbench-agent.')).length, 0, 'agent left its work folder behind');
    });
  });
