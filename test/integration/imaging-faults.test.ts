// Imaging faults against the real `bootbench serve` in a namespace pair, with the agent in
// the other namespace writing loop devices this test makes from its own files (never a disk
// of this machine):
//   - the PC goes dark mid-deploy (the agent and everything it started are killed): the host
//     notices the silence and fails the PC with the phase, partition and a plain reason; a
//     second deploy of the same PC succeeds;
//   - the host is killed (SIGKILL) while a capture uploads: after a restart there is no
//     image, no chunk no image names, the database passes its integrity check, and the job
//     says the host stopped during the capture.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Lab, missingPrograms, netnsUnavailableReason, waitFor } from '../helpers/netns.js';
import { PROJECT_ROOT, ServeProcess } from '../helpers/serve-process.js';
import { imgioBin } from '../helpers/imaging-agent.js';

const AGENT = join(PROJECT_ROOT, 'build', 'imaging-env', 'agent.sh');
const CLI = join(PROJECT_ROOT, 'main', 'cli', 'bootbench.ts');
const SILENCE_SECONDS = 3;
const skip =
  (process.getuid?.() !== 0 ? 'loop devices and namespaces need root' : undefined) ??
  netnsUnavailableReason() ??
  missingPrograms('busybox', 'losetup', 'sfdisk', 'partclone.dd', 'partclone.restore', 'zstd', 'curl', 'blkid');

const REF_MAC = '52:54:00:aa:20:01';
const PC_MAC = '52:54:00:aa:20:02';
const MIB = 1024 * 1024;
const run = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();

interface Row {
  phase: string;
  bytes: number;
  result: string | null;
  reason: string | null;
}

if (skip) test('imaging faults: a PC switched off mid-deploy, the host killed mid-capture', { skip }, () => {});
else
  describe('imaging faults: a PC switched off mid-deploy, the host killed mid-capture', () => {
    const work = mkdtempSync(join(tmpdir(), 'bootbench-imaging-faults-'));
    const data = join(work, 'data');
    const root = join(work, 'root');
    const loops: string[] = [];
    let lab: Lab;
    let serverNs = '';
    let pcNs = '';
    let serve: ServeProcess;

    function cli(...args: string[]): string {
      return execFileSync(process.execPath, ['--import', 'tsx', CLI, ...args, '--data', data], { cwd: PROJECT_ROOT }).toString();
    }
    function attach(file: string): string {
      const dev = run('losetup', ['-f', '--show', file]).trim();
      loops.push(dev);
      return dev;
    }
    function startServe(): Promise<void> {
      serve = new ServeProcess(lab, serverNs, ['--interface', 'bench0', '--root', root, '--data', data]);
      return serve.ready();
    }
    /** The PC's row of a job, read beside the running host as the CLI does. */
    function row(job: number, mac: string): Row | undefined {
      const db = new Database(join(data, 'bootbench.db'), { readonly: true, fileMustExist: true });
      try {
        return db.prepare('SELECT phase, bytes, result, reason FROM image_job_machines WHERE job_id = ? AND mac = ?').get(job, mac) as Row | undefined;
      } finally {
        db.close();
      }
    }
    /** `image status`, which exits 1 once a PC has failed: its output either way. */
    function status(...args: string[]): string {
      try {
        return cli('image', 'status', ...args);
      } catch (err) {
        return String((err as { stdout?: Buffer }).stdout ?? '');
      }
    }
    function latestJob(): number {
      const jobs = JSON.parse(status('--json')) as { id: number }[];
      return jobs[jobs.length - 1].id;
    }
    /** The agent as the PC with `mac`, in the PC's namespace, allowed to touch only `disk`. */
    function agent(mac: string, disk: string): { child: ChildProcess; done: Promise<{ code: number | null; out: string }> } {
      const bin = join(work, 'busybox-bin');
      if (!existsSync(bin)) {
        mkdirSync(bin);
        for (const applet of run('busybox', ['--list']).split('\n')) if (applet && applet !== 'losetup') symlinkSync('/bin/busybox', join(bin, applet));
      }
      // Its own process group, so "switching the PC off" ends the agent and all it started.
      // env(1) sets busybox's applets first on PATH only past `ip netns exec`, which is iproute2's.
      // bb-imgio as in the imaging environment, when this host can build it.
      const imgio = imgioBin(work);
      const env = [`PATH=${bin}:${imgio ? `${imgio}:` : ''}/usr/sbin:/usr/bin:/sbin:/bin`, `BOOTBENCH_AGENT_DISKS=${disk}`, `BOOTBENCH_AGENT_TMP=${work}`];
      const child = lab.spawn(pcNs, '/usr/bin/env', ['-i', ...env, '/bin/busybox', 'sh', AGENT, 'run', 'http://192.0.2.1:8080', mac], { detached: true });
      let out = '';
      child.stdout?.on('data', (d) => (out += d));
      child.stderr?.on('data', (d) => (out += d));
      const done = new Promise<{ code: number | null; out: string }>((resolve) => child.on('exit', (code) => resolve({ code, out })));
      return { child, done };
    }
    function chunkFiles(): string[] {
      const dir = join(data, 'images', 'chunks');
      return existsSync(dir)
        ? readdirSync(dir, { recursive: true })
            .map(String)
            .filter((f) => f.endsWith('.zst') || f.endsWith('.part'))
        : [];
    }

    before(async () => {
      mkdirSync(root, { recursive: true });
      // One partition of incompressible data: dozens of chunks, so each phase lasts long enough to be interrupted.
      const reference = join(work, 'reference.img');
      run('truncate', ['-s', '112M', reference]);
      run('sfdisk', ['-q', reference], 'label: gpt\nstart=2048, size=196608, type=0FC63DAF-8483-4772-8E79-3D69C47D8E4D\n');
      const payload = join(work, 'payload.bin');
      writeFileSync(payload, randomBytes(96 * MIB));
      run('dd', [`if=${payload}`, `of=${reference}`, 'bs=512', 'seek=2048', 'conv=notrunc', 'status=none']);
      rmSync(payload);
      process.env.BOOTBENCH_IMAGING_SILENCE_SECONDS = String(SILENCE_SECONDS);
      lab = new Lab('bbif');
      serverNs = lab.namespace('s');
      pcNs = lab.namespace('c');
      lab.veth(serverNs, 'bench0', '192.0.2.1/24', pcNs, 'eth0', '192.0.2.10/24');
      await startServe();
      cli('image', 'capture', '--machine', REF_MAC, '--name', 'ref', '--then', 'poweroff');
      const capture = await agent(REF_MAC, attach(reference)).done;
      assert.equal(capture.code, 0, `the reference capture failed:\n${capture.out}`);
    });

    after(async () => {
      await lab?.destroy();
      // A killed agent leaves the partition loops it made on our disks: those go first.
      const onOurs = loops.flatMap((dev) =>
        run('losetup', ['-n', '-O', 'NAME', '-j', dev])
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean),
      );
      for (const dev of [...onOurs, ...loops.reverse()])
        try {
          run('losetup', ['-d', dev]);
        } catch {
          /* gone */
        }
      delete process.env.BOOTBENCH_IMAGING_SILENCE_SECONDS;
      rmSync(work, { recursive: true, force: true });
    });

    test('a PC switched off while writing is failed with what it was doing; a second deploy succeeds', async (t) => {
      const target = join(work, 'target.img');
      run('truncate', ['-s', '112M', target]);
      const disk = attach(target);
      // A veth moves the image faster than one report a second can catch it mid-write: the
      // host's sending is capped (~25 MB/s) until the PC is switched off.
      lab.exec(serverNs, 'tc', ['qdisc', 'add', 'dev', 'bench0', 'root', 'tbf', 'rate', '200mbit', 'burst', '64kb', 'latency', '400ms']);
      cli('image', 'deploy', 'ref', '--machine', PC_MAC, '--then', 'poweroff');
      const job = latestJob();
      const pc = agent(PC_MAC, disk);
      await waitFor(
        () => {
          const r = row(job, PC_MAC);
          return r?.phase === 'writing' && r.bytes >= 8 * MIB
            ? r
            : r?.result
              ? assert.fail(`the deploy ended before it could be interrupted: ${JSON.stringify(r)}`)
              : undefined;
        },
        60_000,
        'the PC to be writing',
      );
      process.kill(-pc.child.pid!, 'SIGKILL');
      await pc.done;
      lab.exec(serverNs, 'tc', ['qdisc', 'del', 'dev', 'bench0', 'root']);
      const killedAt = Date.now();
      const failed = await waitFor(
        () => {
          const r = row(job, PC_MAC);
          return r?.result ? r : undefined;
        },
        (SILENCE_SECONDS + 10) * 1000,
        'the host to notice the silence',
      );
      t.diagnostic(`failed ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the PC went dark: ${failed.reason}`);
      assert.equal(failed.result, 'failed');
      assert.match(
        failed.reason ?? '',
        new RegExp(
          `^no word from the PC for \\d+ s while writing partition 1: it was switched off or lost the network\\. Check its power and cable, then deploy to it again$`,
        ),
      );
      const text = status();
      assert.match(text, /no word from the PC/, `image status shows the reason:\n${text}`);

      cli('image', 'deploy', 'ref', '--machine', PC_MAC, '--then', 'poweroff');
      const again = latestJob();
      const second = await agent(PC_MAC, disk).done;
      assert.equal(second.code, 0, `the second deploy failed:\n${second.out}`);
      assert.equal(row(again, PC_MAC)?.result, 'done');
      run('sync', []);
      const deployed = readFileSync(target).subarray(2048 * 512, (2048 + 196608) * 512);
      const reference = readFileSync(join(work, 'reference.img')).subarray(2048 * 512, (2048 + 196608) * 512);
      const differing = [...Array(deployed.length / MIB).keys()].filter(
        (i) => !deployed.subarray(i * MIB, (i + 1) * MIB).equals(reference.subarray(i * MIB, (i + 1) * MIB)),
      );
      const zeros = differing.filter((i) => deployed.subarray(i * MIB, (i + 1) * MIB).every((b) => b === 0)).length;
      assert.deepEqual(
        differing,
        [],
        `${zeros} of them zeros: the partition holds the reference bytes after the second deploy (MiB that differ listed)\n${second.out}`,
      );
    });

    test('the host killed mid-capture leaves no image, no orphan chunk and an intact database', async () => {
      const before = new Set(chunkFiles());
      const source = join(work, 'source.img');
      run('cp', ['--sparse=always', join(work, 'reference.img'), source]);
      // Different bytes from the reference image, so every chunk the capture sends is new.
      run('dd', ['if=/dev/urandom', `of=${source}`, 'bs=1M', 'seek=1', 'count=96', 'conv=notrunc', 'status=none']);
      cli('image', 'capture', '--machine', REF_MAC, '--name', 'interrupted', '--then', 'poweroff');
      const job = latestJob();
      const pc = agent(REF_MAC, attach(source));
      await waitFor(
        () =>
          chunkFiles().length > before.size + 1
            ? true
            : row(job, REF_MAC)?.result
              ? assert.fail('the capture ended before the host could be killed')
              : undefined,
        60_000,
        'chunks to arrive',
      );
      assert.equal(await serve.stop('SIGKILL'), null, 'the host was killed, not stopped');
      const arrived = chunkFiles().length - before.size;
      const gone = await pc.done;
      assert.notEqual(gone.code, 0, `the agent cannot finish without its host:\n${gone.out}`);

      await startServe();
      assert.ok(arrived > 0, 'chunks had arrived before the kill');
      const images = (JSON.parse(cli('image', 'list', '--json')) as { name: string }[]).map((i) => i.name);
      assert.deepEqual(images, ['ref'], 'the interrupted capture left no image');
      assert.deepEqual(new Set(chunkFiles()), before, `the ${arrived} chunk(s) of the interrupted capture were removed at start, the image's were kept`);
      assert.match(cli('image', 'verify', 'ref'), /all \d+ chunks check out/);
      const db = new Database(join(data, 'bootbench.db'), { readonly: true });
      try {
        assert.equal((db.prepare('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check, 'ok');
      } finally {
        db.close();
      }
      const r = row(job, REF_MAC);
      assert.equal(r?.result, 'failed');
      assert.match(r?.reason ?? '', /^the host stopped during the capture/);
    });
  });
