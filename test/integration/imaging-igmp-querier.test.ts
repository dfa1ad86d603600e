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
import { join } from 'node:path';
import { missingPrograms, netnsUnavailableReason } from '../helpers/netns.js';
import { PROJECT_ROOT } from '../helpers/serve-process.js';
import { type AgentRun, differingMiB, halfRandomPartition, StreamRoom } from '../helpers/stream-harness.js';
import { storeRawImage } from '../helpers/stream-image.js';

const CLI = join(PROJECT_ROOT, 'main', 'cli', 'bootbench.ts');
const skip =
  (process.getuid?.() !== 0 ? 'loop devices and namespaces need root' : undefined) ??
  netnsUnavailableReason() ??
  missingPrograms('busybox', 'losetup', 'sfdisk', 'partclone.dd', 'partclone.restore', 'zstd', 'curl', 'gcc', 'tc');

const MIB = 1024 * 1024;
const PART_START = 2048;
const PART_MIB = 32;
const DISK_MIB = PART_MIB + 4;
/** The stream's rate, bytes per second: the deploy lasts well beyond the membership interval. */
const STREAM_RATE = 1_500_000;
const MEMBERSHIP_CS = 300;

if (skip) test('imaging stream across a snooping switch with no querier', { skip }, () => {});
else
  describe('imaging stream across a snooping switch with no querier', () => {
    const room = new StreamRoom('bbig', '198.18.9', 3);
    const { lab, data, agentNs, host: HOST } = room;
    let reference: Buffer;
    let compressedBytes = 0;
    let runnerStarted: Promise<void>;
    const ask = (command: string, key: string) => room.ask(command, key);
    const runnerLog = () => room.runnerLog();

    /** The runner with Bootbench's querier on eth0 `auto` or `off`, the stream at a fixed rate. */
    function startRunner(querier: 'auto' | 'off'): Promise<void> {
      return room.startRunner(['--interface', 'eth0', '--querier', querier, '--max-rate', String(STREAM_RATE), '--start-rate', String(STREAM_RATE)]);
    }
    /**
     * Each PC's switch port passes its unicast (HTTP repair) at twice the stream's rate, the stream at
     * full speed. A receiver repairs a chunk by HTTP after a second without its datagrams; were repair
     * much faster than the stream, one such second (a busy machine) would carry it past the stream for
     * good, and it would get the rest by repair with its membership intact. Returns what lifts the cap.
     */
    function capRepair(): () => void {
      const tc = (ns: string, ...args: string[]) => lab.exec(room.switchNs, 'tc', [...args.slice(0, 2), 'dev', room.portOf(ns), ...args.slice(2)]);
      for (const ns of agentNs) {
        tc(ns, 'qdisc', 'add', 'root', 'handle', '1:', 'htb', 'default', '10');
        tc(ns, 'class', 'add', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', `${(2 * STREAM_RATE * 8) / 1e6}mbit`);
        tc(ns, 'class', 'add', 'parent', '1:', 'classid', '1:20', 'htb', 'rate', '10gbit');
        tc(ns, 'filter', 'add', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'dst', '239.255.0.0/16', 'flowid', '1:20');
      }
      return () => agentNs.forEach((ns) => tc(ns, 'qdisc', 'del', 'root'));
    }
    /** A deploy to every agent: each disk checked against the image; returns the runs and the PCs' rows. */
    async function deploy(tag: string): Promise<{ runs: AgentRun[]; rows: { mac: string; streamed?: number; repaired?: number }[]; stats: string }> {
      const macs = agentNs.map((_, i) => `52:54:00:aa:4${tag}:0${i}`);
      const disks = room.disks('disk', macs, DISK_MIB);
      const job = (await ask(`deploy room ${macs.join(' ')}`, 'job')) as number;
      const runs = await Promise.all(macs.map((mac, i) => room.agent(agentNs[i], mac, disks[i].dev)));
      const stats = await room.streamEnded(job);
      const status = await ask(`status ${job}`, 'status');
      for (const [i, r] of runs.entries()) {
        assert.equal(r.code, 0, `agent ${r.mac} failed:\n${r.out}\nhost:\n${runnerLog()}`);
        assert.deepEqual(differingMiB(disks[i].file, PART_START * 512, reference), [], `${r.mac}: MiB of partition 1 that differ from the image`);
      }
      return { runs, rows: status.machines, stats };
    }
    /** `bootbench doctor --json` on a PC of the segment (it exits 1 on its other findings; the JSON is there anyway). */
    function doctorFrom(ns: string): Promise<{ level: string; message: string }[]> {
      // A data folder of its own: a PC of the segment has no host's record to read, so doctor listens itself.
      const doctorData = join(room.work, `doctor-${ns}`);
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
      // The image: one raw partition, half random, half repetitive.
      reference = halfRandomPartition(PART_MIB, 'igmp test');
      ({ compressedBytes } = await storeRawImage({ data, work: room.work, sourceMac: '52:54:00:aa:40:01', partition: reference }));
      room.setUp();
      const sysfs = (name: string, value: number) => lab.exec(room.switchNs, 'sh', ['-c', `echo ${value} > /sys/class/net/br0/bridge/${name}`]);
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
      // The runner starts while doctor listens: until a stream holds its querier it sends nothing.
      runnerStarted = startRunner('auto');
      runnerStarted.catch(() => {});
      await new Promise((r) => setTimeout(r, 1000));
    });

    after(() => room.destroy());

    test('doctor on the segment hears no querier before anything streams', async () => {
      const finding = (await doctorFrom(agentNs[0])).find((f) => /IGMP/.test(f.message));
      assert.match(
        finding?.message ?? '',
        /^no IGMP querier heard on eth0 in doctor's own 5 s listen \(no running Bootbench host listens there\): Bootbench will send queries while it streams/,
      );
    });

    test('Bootbench queries while it streams: the bridge keeps forwarding, every PC gets most of the image from the stream', async (t) => {
      await runnerStarted;
      const uncap = capRepair();
      const deploying = deploy('1');
      // Meanwhile a PC of the segment running doctor hears Bootbench as the querier.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const [heard, { runs, rows, stats }] = await Promise.all([doctorFrom(agentNs[0]), deploying]).finally(uncap);
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
        room.lines.some((l) => /no IGMP querier heard on eth0: Bootbench sends IGMP queries every 1 s while it streams/.test(l.message ?? '')),
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
      assert.match(querier.status, /queries are turned off/);
      for (const r of runs) {
        assert.ok(r.streamBytes > 0, `${r.mac} got the start of the stream, while its membership was fresh:\n${r.out}`);
        assert.ok(r.streamBytes < compressedBytes * 0.5, `${r.mac} was cut off: ${r.streamBytes} of ${compressedBytes} bytes streamed\n${r.out}`);
        assert.ok(r.repairBytes > compressedBytes * 0.5, `${r.mac} finished by HTTP repair`);
      }
      for (const row of rows) assert.ok((row.repaired ?? 0) > compressedBytes * 0.5, `${row.mac}'s row shows the repair: ${JSON.stringify(row)}`);
    });
  });
