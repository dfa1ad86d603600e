// A switch with IGMP snooping and no querier: the stream reaches a PC's port only while the
// PC's membership is fresh, and memberships are refreshed only by answers to a querier's
// queries. Bootbench queries while it streams, so the room gets the image from the stream;
// with its querier off, the same bridge cuts the stream a few seconds in and the PCs finish
// by HTTP repair. Namespaces, a Linux bridge, three agents on loop devices (as in
// imaging-stream.test.ts), bb-stream-recv compiled here.
//
// The Linux bridge floods a group to every port while it knows no querier at all (a choice
// most snooping switches do not make), which would hide the problem. So the bridge's own
// querier is switched on only to make it prune like them: its query interval is an hour, so
// after its one startup query (before any PC joins) it stays silent, and a membership that
// nobody refreshes expires after the membership interval (3 s here instead of 260 s).
//
//   host ns eth0 198.18.9.1 --- br0 (switch ns, snooping on) --- agents 198.18.9.1x
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectJsonLines, Lab, missingPrograms, netnsUnavailableReason, waitFor } from '../helpers/netns.js';
import { PROJECT_ROOT } from '../helpers/serve-process.js';
import { busyboxBin, storeRawImage, streamReceiverBin } from '../helpers/stream-image.js';

const AGENT = join(PROJECT_ROOT, 'build', 'imaging-env', 'agent.sh');
const RUNNER = join(import.meta.dirname, 'imaging-igmp-runner.ts');
const CLI = join(PROJECT_ROOT, 'main', 'cli', 'bootbench.ts');
const skip =
  (process.getuid?.() !== 0 ? 'loop devices and namespaces need root' : undefined) ??
  netnsUnavailableReason() ??
  missingPrograms('busybox', 'losetup', 'sfdisk', 'partclone.dd', 'partclone.restore', 'zstd', 'curl', 'gcc');

const MIB = 1024 * 1024;
const HOST = '198.18.9.1';
const HTTP_PORT = 8080;
const PART_START = 2048;
const PART_MIB = 48;
const DISK_MIB = PART_MIB + 4;
/** The stream's rate, bytes per second: the deploy lasts well beyond the membership interval. */
const STREAM_RATE = 1_500_000;
const MEMBERSHIP_CS = 300;
function run(cmd: string, args: string[], input?: string | Buffer): Buffer {
  return execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 256 * MIB });
}

interface AgentRun {
  mac: string;
  code: number | null;
  out: string;
  streamBytes: number;
  repairBytes: number;
}

if (skip) test('imaging stream across a snooping switch with no querier', { skip }, () => {});
else
  describe('imaging stream across a snooping switch with no querier', () => {
    const work = mkdtempSync(join(tmpdir(), 'bootbench-igmp-'));
    const data = join(work, 'data');
    const bin = join(work, 'bin');
    const loops: string[] = [];
    const lab = new Lab('bbig');
    let hostNs = '';
    let switchNs = '';
    const agentNs: string[] = [];
    let runner: ChildProcess | undefined;
    let lines: Record<string, any>[] = [];
    let runnerErr = () => '';
    let reference: Buffer;
    let compressedBytes = 0;

    function attach(file: string): string {
      const dev = run('losetup', ['-f', '--show', file]).toString().trim();
      loops.push(dev);
      return dev;
    }
    async function ask(command: string, key: string): Promise<any> {
      const from = lines.length;
      runner!.stdin!.write(`${command}\n`);
      const line = await waitFor(() => lines.slice(from).find((l) => key in l || 'error' in l), 10_000, `the runner to answer ${command}`);
      if ('error' in line) throw new Error(`runner: ${line.error}`);
      return line;
    }
    function runnerLog(): string {
      return [...lines.filter((l) => l.log).map((l) => `${l.log}: ${l.message}`), runnerErr()].join('\n');
    }
    async function startRunner(querier: 'auto' | 'off'): Promise<void> {
      if (runner) {
        runner.stdin!.end();
        await new Promise((resolve) => runner!.once('exit', resolve));
      }
      runner = lab.spawn(
        hostNs,
        process.execPath,
        [
          '--import',
          'tsx',
          RUNNER,
          '--data',
          data,
          '--address',
          HOST,
          '--port',
          String(HTTP_PORT),
          '--interface',
          'eth0',
          '--querier',
          querier,
          '--max-rate',
          String(STREAM_RATE),
        ],
        { cwd: PROJECT_ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
      );
      const collected = collectJsonLines(runner);
      lines = collected.lines;
      runnerErr = collected.stderr;
      await waitFor(() => lines.some((l) => l.ready), 30_000, `the runner to start: ${runnerErr()}`);
    }
    function agent(ns: string, mac: string, disk: string): Promise<AgentRun> {
      const env = [`PATH=${join(work, 'busybox-bin')}:${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, `BOOTBENCH_AGENT_DISKS=${disk}`, `BOOTBENCH_AGENT_TMP=${work}`];
      const child = lab.spawn(ns, '/usr/bin/env', ['-i', ...env, '/bin/busybox', 'sh', AGENT, 'run', `http://${HOST}:${HTTP_PORT}`, mac], { detached: true });
      let out = '';
      child.stdout?.on('data', (d) => (out += d));
      child.stderr?.on('data', (d) => (out += d));
      return new Promise((resolve) =>
        child.on('exit', (code) => {
          const m = /bb-stream-recv: (\d+) bytes from the stream, (\d+) by repair/.exec(out);
          resolve({ mac, code, out, streamBytes: Number(m?.[1] ?? 0), repairBytes: Number(m?.[2] ?? 0) });
        }),
      );
    }
    /** A deploy to every agent: each disk checked against the image; returns the runs and the PCs' rows. */
    async function deploy(tag: string): Promise<{ runs: AgentRun[]; rows: { mac: string; streamed?: number; repaired?: number }[]; stats: string }> {
      const macs = agentNs.map((_, i) => `52:54:00:aa:4${tag}:0${i}`);
      const disks = macs.map((mac) => {
        const file = join(work, `disk-${mac.replace(/:/g, '')}.img`);
        run('truncate', ['-s', `${DISK_MIB}M`, file]);
        return { file, dev: attach(file) };
      });
      const job = (await ask(`deploy room ${macs.join(' ')}`, 'job')).job as number;
      const runs = await Promise.all(macs.map((mac, i) => agent(agentNs[i], mac, disks[i].dev)));
      const ended = await waitFor(
        () => lines.find((l) => typeof l.message === 'string' && l.message.startsWith(`imaging: stream of job ${job} ended`)),
        10_000,
        'the stream to end',
      );
      const status = (await ask(`status ${job}`, 'status')).status;
      for (const [i, r] of runs.entries()) {
        assert.equal(r.code, 0, `agent ${r.mac} failed:\n${r.out}\nhost:\n${runnerLog()}`);
        run('sync', []);
        const disk = readFileSync(disks[i].file);
        const part = disk.subarray(PART_START * 512, PART_START * 512 + PART_MIB * MIB);
        assert.ok(part.equals(reference), `${r.mac}: partition 1 equals the image`);
      }
      return { runs, rows: status.machines, stats: (ended.message as string).replace(/^imaging: /, '') };
    }
    /** `bootbench doctor --json` on a PC of the segment (it exits 1 on its other findings; the JSON is there anyway). */
    function doctorFrom(ns: string): Promise<{ level: string; message: string }[]> {
      // A data folder of its own: a PC of the segment has no host's record to read, so doctor listens itself.
      const doctorData = join(work, `doctor-${ns}`);
      const child = lab.spawn(ns, process.execPath, ['--import', 'tsx', CLI, 'doctor', '--interface', 'eth0', '--data', doctorData, '--json'], {
        cwd: PROJECT_ROOT,
      });
      let out = '';
      let err = '';
      child.stdout?.on('data', (d) => (out += d));
      child.stderr?.on('data', (d) => (err += d));
      return new Promise((resolve, reject) =>
        child.on('exit', () => {
          try {
            resolve(JSON.parse(out));
          } catch {
            reject(new Error(`doctor printed no JSON:\n${out}\n${err}`));
          }
        }),
      );
    }

    before(async () => {
      busyboxBin(join(work, 'busybox-bin'));
      streamReceiverBin(bin);
      // The image: one raw partition, half random, half repetitive.
      reference = Buffer.alloc(PART_MIB * MIB);
      for (let i = 0; i < PART_MIB; i++) {
        if (i % 2 === 0) randomBytes(MIB).copy(reference, i * MIB);
        else reference.fill(`igmp test mebibyte ${i} `, i * MIB, (i + 1) * MIB);
      }
      ({ compressedBytes } = await storeRawImage({ data, work, sourceMac: '52:54:00:aa:40:01', partition: reference }));

      hostNs = lab.namespace('h');
      switchNs = lab.namespace('w');
      for (let i = 0; i < 3; i++) agentNs.push(lab.namespace(`a${i}`));
      lab.switchOf(switchNs, [
        { ns: hostNs, ifname: 'eth0', cidr: `${HOST}/24` },
        ...agentNs.map((ns, i) => ({ ns, ifname: 'eth0', cidr: `198.18.9.${10 + i}/24` })),
      ]);
      const sysfs = (name: string, value: number) => lab.exec(switchNs, 'sh', ['-c', `echo ${value} > /sys/class/net/br0/bridge/${name}`]);
      sysfs('multicast_snooping', 1);
      sysfs('multicast_membership_interval', MEMBERSHIP_CS);
      // Its own queries: one at the start, then an hour apart; another querier counts as present for an hour.
      sysfs('multicast_query_interval', 360_000);
      sysfs('multicast_querier_interval', 360_000);
      sysfs('multicast_startup_query_count', 1);
      // IGMPv3, so the PCs' kernels do not keep a record of a v2 querier for doctor to find.
      sysfs('multicast_igmp_version', 3);
      sysfs('multicast_querier', 1);
      // A PC's two unsolicited reports a second apart (IGMPv2's default spreads them over 10 s).
      for (const ns of agentNs) lab.exec(ns, 'sysctl', ['-qw', 'net.ipv4.conf.eth0.igmpv2_unsolicited_report_interval=1000']);
      await new Promise((r) => setTimeout(r, 1000));
    });

    after(async () => {
      runner?.stdin?.end();
      await lab.destroy();
      for (const dev of loops.reverse())
        try {
          run('losetup', ['-d', dev]);
        } catch {
          /* gone */
        }
      rmSync(work, { recursive: true, force: true });
    });

    test('doctor on the segment hears no querier before anything streams', async () => {
      const finding = (await doctorFrom(agentNs[0])).find((f) => /IGMP/.test(f.message));
      assert.match(
        finding?.message ?? '',
        /^no IGMP querier heard on eth0 in doctor's own 5 s listen \(no running Bootbench host listens there\): Bootbench will send queries while it streams/,
      );
    });

    test('Bootbench queries while it streams: the bridge keeps forwarding, every PC gets most of the image from the stream', async (t) => {
      await startRunner('auto');
      const deploying = deploy('1');
      // Meanwhile a PC of the segment running doctor hears Bootbench as the querier.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const [heard, { runs, rows, stats }] = await Promise.all([doctorFrom(agentNs[0]), deploying]);
      const querier = await ask('querier', 'querier');
      t.diagnostic(
        `membership interval ${MEMBERSHIP_CS / 100} s; ${querier.sent} queries sent; ` +
          runs.map((r) => `${r.mac}: ${(r.streamBytes / MIB).toFixed(1)} MiB streamed, ${(r.repairBytes / MIB).toFixed(1)} MiB repaired`).join('; ') +
          ` of ${(compressedBytes / MIB).toFixed(1)} MiB; ${stats}`,
      );
      assert.ok(querier.sent >= 5, `Bootbench sent queries while it streamed (${querier.sent})\n${runnerLog()}`);
      assert.match(
        heard.find((f) => /IGMP/.test(f.message))?.message ?? '',
        new RegExp(`^IGMP querier ${HOST.replace(/\./g, '\\.')} heard on eth0`),
        'doctor on a PC hears Bootbench query',
      );
      assert.ok(
        lines.some((l) => /no IGMP querier heard on eth0: Bootbench sends IGMP queries every 1 s while it streams/.test(l.message ?? '')),
        'the log says what the querier does',
      );
      for (const r of runs) assert.ok(r.streamBytes > compressedBytes * 0.7, `${r.mac} got most of the image from the stream:\n${r.out}\n${runnerLog()}`);
      for (const row of rows) assert.ok((row.streamed ?? 0) > compressedBytes * 0.7, `${row.mac}'s row shows most bytes streamed: ${JSON.stringify(row)}`);
    });

    test('with its querier off the bridge cuts the stream after the membership interval: the PCs finish by HTTP repair', async (t) => {
      await startRunner('off');
      const { runs, rows, stats } = await deploy('2');
      const querier = await ask('querier', 'querier');
      t.diagnostic(
        runs.map((r) => `${r.mac}: ${(r.streamBytes / MIB).toFixed(1)} MiB streamed, ${(r.repairBytes / MIB).toFixed(1)} MiB repaired`).join('; ') +
          ` of ${(compressedBytes / MIB).toFixed(1)} MiB; ${stats}`,
      );
      assert.equal(querier.sent, 0);
      assert.match(querier.querier, /queries are turned off/);
      for (const r of runs) {
        assert.ok(r.streamBytes > 0, `${r.mac} got the start of the stream, while its membership was fresh:\n${r.out}`);
        assert.ok(r.streamBytes < compressedBytes * 0.5, `${r.mac} was cut off: ${r.streamBytes} of ${compressedBytes} bytes streamed\n${r.out}`);
        assert.ok(r.repairBytes > compressedBytes * 0.5, `${r.mac} finished by HTTP repair`);
      }
      for (const row of rows) assert.ok((row.repaired ?? 0) > compressedBytes * 0.5, `${row.mac}'s row shows the repair: ${JSON.stringify(row)}`);
    });
  });
