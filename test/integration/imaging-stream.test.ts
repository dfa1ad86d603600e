// One stream for the room: the imaging service in a host namespace sends a deploy's image
// once as UDP multicast (TTL 1) through a bridge to agents in their own namespaces, each
// writing a loop device over a file this test makes (never a disk of this machine), with
// bb-stream-recv compiled here from build/imaging-env/bb-stream-recv.c.
//   - four agents deploy together: every disk verified (the agent's own pass and a byte
//     compare here), and the host's egress, read from its veth's counters, stays near one
//     copy of the compressed image instead of four;
//   - one agent loses 10% of the stream's datagrams (nftables) and one sits behind a port
//     limited to a quarter of the room's rate (tc tbf): the clean ones finish about as fast
//     as without them, and the two finish too, verified;
//   - a PC whose port drops multicast finishes by HTTP; a PC that starts late joins the
//     running stream and repairs what it missed;
//   - start triggers: a stream held for Go keeps its PCs waiting well past the receiver's
//     5 s fallback (none fetches by HTTP), and Go given by `bootbench image go` from another
//     process on the same data folder starts it; a stream set to start when 2 of 3 PCs are
//     ready starts with them, and the third joins it late;
//   - agents without the receiver deploy by HTTP as before; a damaged chunk fails the PCs
//     with the reason, and no process is left waiting.
//
//   host ns eth0 198.18.7.1 --- br0 (switch ns, snooping off: item-4 tests cover snooping) --- agents 198.18.7.1x
//   host ns eth0 198.18.8.1 --- br0 (a second room, the same)                                --- agents 198.18.8.1x
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageCatalog } from '../../main/imaging/index.js';
import { damageChunk } from '../helpers/damaged-chunk.js';
import { missingPrograms, netnsUnavailableReason, waitFor } from '../helpers/netns.js';
import { PROJECT_ROOT } from '../helpers/serve-process.js';
import { type AgentRun, differingMiB, halfRandomPartition, StreamRoom } from '../helpers/stream-harness.js';
import { storeRawImage } from '../helpers/stream-image.js';

const CLI = join(PROJECT_ROOT, 'main', 'cli', 'bootbench.ts');
const skip =
  (process.getuid?.() !== 0 ? 'loop devices and namespaces need root' : undefined) ??
  netnsUnavailableReason() ??
  missingPrograms('busybox', 'losetup', 'sfdisk', 'partclone.dd', 'partclone.restore', 'zstd', 'curl', 'gcc', 'nft', 'tc');

const MIB = 1024 * 1024;
/** The one data partition: sectors 2048.. of the disk. */
const PART_START = 2048;
const PART_MIB = 48;
const DISK_MIB = PART_MIB + 4;

if (skip) test('imaging stream: one multicast stream for the room', { skip }, () => {});
else
  // Two rooms, each with its own host, switch, agents and copy of the data folder, run their
  // cases side by side: the second's fallback and Go cases mostly wait (for Go, for the
  // receivers' fallback) while the first's slow PC trickles through its port. The first room's
  // timing cases (the baseline, and the clean PCs beside the lossy and the slow one) run before
  // the second starts, so its load does not skew them.
  describe('imaging stream: one multicast stream for the room', { concurrency: 2 }, () => {
    const first = new StreamRoom('bbst', '198.18.7', 4);
    const second = new StreamRoom('bbsu', '198.18.8', 3);
    let reference: Buffer;
    let bootCode: Buffer;
    let compressedBytes = 0;
    let baselineSeconds = 0;
    let firstRoomTimed = () => {};
    const firstRoomTimedGate = new Promise<void>((resolve) => (firstRoomTimed = resolve));

    /** Partition 1 and the boot code of a deployed disk file equal the reference's. */
    function checkDisk(file: string, mac: string): void {
      // differingMiB syncs first: the boot code is read after it.
      assert.deepEqual(differingMiB(file, PART_START * 512, reference), [], `${mac}: MiB of partition 1 that differ from the image`);
      assert.ok(readFileSync(file).subarray(0, 440).equals(bootCode), `${mac}: the boot code differs`);
    }
    /** A deploy in `room`; `started` sees the agents' runs as they start. */
    async function deploy(
      room: StreamRoom,
      macs: string[],
      namespaces: string[],
      withReceiver = true,
      started?: (runs: Promise<AgentRun>[]) => void,
    ): Promise<{ runs: AgentRun[]; job: number; egress: number; stats: string }> {
      const disks = room.disks(`target-${Date.now()}`, macs, DISK_MIB);
      const job = (await room.ask(`deploy room ${macs.join(' ')}`, 'job')) as number;
      const before = room.txBytes();
      const agents = macs.map((mac, i) => room.agent(namespaces[i], mac, disks[i].dev, withReceiver));
      started?.(agents);
      const runs = await Promise.all(agents);
      const egress = room.txBytes() - before;
      // The stream ends by itself once every PC is through with it.
      const stats = await room.streamEnded(job);
      const status = await room.ask(`status ${job}`, 'status');
      for (const [i, r] of runs.entries()) {
        assert.equal(r.code, 0, `agent ${r.mac} failed:\n${r.out}\n${JSON.stringify(status.machines[i])}\nhost:\n${room.runnerLog()}`);
        assert.match(r.out, /deployed image room to loop\d+, verified/);
        checkDisk(disks[i].file, r.mac);
        // What a receiver says it wrote from the stream and by repair is the image, no byte twice.
        if (withReceiver) assert.equal(r.streamBytes + r.repairBytes, compressedBytes, `${r.mac}: stream + repair bytes are the image's:\n${r.out}`);
      }
      if (withReceiver) {
        for (const m of status.machines as { mac: string; streamed?: number; repaired?: number }[]) {
          assert.equal((m.streamed ?? 0) + (m.repaired ?? 0), Math.floor(compressedBytes / 1024) * 1024, `${m.mac}'s row: its shares add up to the image`);
        }
      }
      assert.deepEqual(
        status.machines.map((m: { result: string }) => m.result),
        macs.map(() => 'done'),
      );
      return { runs, job, egress, stats };
    }

    before(async () => {
      // The image: the boot code, and one raw partition of half random, half repetitive data.
      bootCode = Buffer.from('BOOTBENCH STREAM BOOT CODE '.repeat(20)).subarray(0, 440);
      reference = halfRandomPartition(PART_MIB, 'stream test');
      ({ compressedBytes } = await storeRawImage({ data: first.data, work: first.work, sourceMac: '52:54:00:aa:30:01', partition: reference, bootCode }));
      cpSync(first.data, second.data, { recursive: true });
      first.setUp();
      second.setUp(first);
      for (const room of [first, second]) room.lab.exec(room.switchNs, 'ip', ['link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
      await Promise.all([first.startRunner(), second.startRunner()]);
    });

    after(async () => {
      await second.destroy();
      await first.destroy();
    });

    describe('first room', { concurrency: 1 }, () => {
      const room = first;
      const { lab, data, agentNs } = room;
      const ask = (command: string, key: string) => room.ask(command, key);
      const runnerLog = () => room.runnerLog();
      after(firstRoomTimed);

      test('four PCs deploy one image together: every disk verified, the host sends it about once', async (t) => {
        const macs = agentNs.map((_, i) => `52:54:00:aa:31:0${i}`);
        const { runs, job, egress, stats } = await deploy(room, macs, agentNs);
        baselineSeconds = Math.max(...runs.map((r) => r.seconds));
        const ratio = egress / compressedBytes;
        t.diagnostic(
          `image ${(compressedBytes / MIB).toFixed(1)} MiB compressed; host egress ${(egress / MIB).toFixed(1)} MiB = ${ratio.toFixed(2)}x (unicast would be ~4x); ` +
            `${baselineSeconds.toFixed(1)} s; ${stats}`,
        );
        for (const r of runs) assert.ok(r.streamBytes > compressedBytes / 2, `${r.mac} got most of the image from the stream:\n${r.out}`);
        // Each PC's row keeps what the stream saw it get, for the Images screen after the stream ended.
        const rows = (await ask(`status ${job}`, 'status')).machines as { mac: string; streamed?: number; repaired?: number }[];
        for (const row of rows) {
          assert.ok((row.streamed ?? 0) > compressedBytes / 2, `${row.mac}'s row records what it got from the stream: ${JSON.stringify(row)}\n${runnerLog()}`);
          assert.equal(typeof row.repaired, 'number');
        }
        assert.ok(ratio <= 1.3, `the host sent ${ratio.toFixed(2)}x the compressed image for 4 PCs (at most 1.3x)\n${runnerLog()}`);
      });

      test('a lossy PC and a slow PC: the others finish about as fast as without them, and both finish verified', async (t) => {
        assert.ok(baselineSeconds > 0, 'the clean deploy ran first');
        const [clean1, clean2, lossyNs, slowNs] = agentNs;
        // 10% of the stream's datagrams never reach the lossy PC.
        const lossGone = room.dropStream(lossyNs, 10);
        // The slow PC's switch port passes a quarter of the rate the clean room reached.
        const roomRate = compressedBytes / baselineSeconds;
        const slowRate = Math.max(100_000, Math.round((roomRate * 8) / 4));
        const slowPort = room.portOf(slowNs);
        lab.exec(room.switchNs, 'tc', ['qdisc', 'add', 'dev', slowPort, 'root', 'tbf', 'rate', `${slowRate}bit`, 'burst', '64kb', 'latency', '100ms']);
        try {
          const macs = agentNs.map((_, i) => `52:54:00:aa:32:0${i}`);
          // The second room starts once the clean PCs are through: their times are what this case compares.
          const { runs, stats } = await deploy(room, macs, [clean1, clean2, lossyNs, slowNs], true, (agents) => {
            void Promise.allSettled(agents.slice(0, 2)).then(firstRoomTimed);
          });
          const cleanSeconds = Math.max(runs[0].seconds, runs[1].seconds);
          t.diagnostic(
            `clean PCs ${cleanSeconds.toFixed(1)} s (${baselineSeconds.toFixed(1)} s without the lossy and the slow one); lossy ${runs[2].seconds.toFixed(1)} s, ` +
              `slow ${runs[3].seconds.toFixed(1)} s (port at ${(slowRate / 8 / MIB).toFixed(1)} MiB/s); ${stats}`,
          );
          assert.ok(runs[2].repairBytes > 0 && runs[2].streamBytes > 0, 'the lossy PC got part of the image from the stream and repaired the rest');
          // The slow PC alone would hold the room to a quarter of its rate: four times as long.
          assert.ok(
            cleanSeconds <= baselineSeconds * 1.5 + 3,
            `the clean PCs took ${cleanSeconds.toFixed(1)} s, ${baselineSeconds.toFixed(1)} s without the other two`,
          );
          assert.ok(runs[3].seconds > cleanSeconds, 'the slow PC finished after the clean ones (its port really was slow)');
        } finally {
          lab.exec(room.switchNs, 'tc', ['qdisc', 'del', 'dev', slowPort, 'root']);
          lossGone();
        }
      });

      test('agents without the receiver (an older environment) ignore stream= and deploy by HTTP; the idle stream ends with them', async (t) => {
        const macs = agentNs.slice(0, 2).map((_, i) => `52:54:00:aa:33:0${i}`);
        const before = room.txBytes();
        const { runs, stats } = await deploy(room, macs, agentNs.slice(0, 2), false);
        const egress = room.txBytes() - before;
        t.diagnostic(`egress ${(egress / compressedBytes).toFixed(2)}x; ${stats}`);
        for (const r of runs) assert.doesNotMatch(r.out, /bb-stream-recv/);
        assert.match(stats, / 0 chunks /, 'nobody joined: the stream sent nothing');
        assert.ok(egress >= 2 * compressedBytes, 'both PCs fetched the whole image by HTTP');
      });

      // Last in this room: it restarts the room's runner with the stream's rate capped.
      test('start when 2 of 3 PCs are ready: the stream starts with them; the third, started after it has sent half, joins it and repairs what it missed', async (t) => {
        // The stream capped at 3 MB/s (from its start, so it loses nothing to a rate it would
        // first overshoot) lasts long enough to be joined midway; the late PC's HTTP repair runs at full speed.
        await room.startRunner(['--max-rate', '3000000', '--start-rate', '3000000']);
        const macs = agentNs.slice(0, 3).map((_, i) => `52:54:00:aa:36:0${i}`);
        const disks = room.disks('late', macs, DISK_MIB);
        const job = (await ask(`deploy room --count 2 ${macs.join(' ')}`, 'job')) as number;
        const early = macs.slice(0, 2).map((mac, i) => room.agent(agentNs[i], mac, disks[i].dev));
        const total = new ImageCatalog(data).get('room')!.partitions.reduce((n, p) => n + p.chunks.length, 0);
        await waitFor(async () => ((await ask(`stream ${job}`, 'stream'))?.chunksSent ?? 0) >= total / 2, 60_000, 'the stream to send half the image');
        const late = await room.agent(agentNs[2], macs[2], disks[2].dev);
        const runs = [...(await Promise.all(early)), late];
        const status = await ask(`status ${job}`, 'status');
        for (const [i, r] of runs.entries()) {
          assert.equal(r.code, 0, `agent ${r.mac} failed:\n${r.out}\n${runnerLog()}`);
          assert.equal(status.machines[i].result, 'done');
          checkDisk(disks[i].file, r.mac);
        }
        t.diagnostic(
          runs
            .map(
              (r) => `${r.mac}: ${r.seconds.toFixed(1)} s, ${(r.streamBytes / MIB).toFixed(1)} MiB streamed, ${(r.repairBytes / MIB).toFixed(1)} MiB repaired`,
            )
            .join('; '),
        );
        assert.ok(late.streamBytes > 0, 'the late PC got part of the image from the running stream');
        assert.ok(late.repairBytes > 0, 'and repaired what was sent before it came');
      });
    });

    describe('second room', { concurrency: 1 }, () => {
      const room = second;
      const { data, agentNs } = room;
      const ask = (command: string, key: string) => room.ask(command, key);
      const runnerLog = () => room.runnerLog();
      before(() => firstRoomTimedGate);

      test('a PC whose port drops all multicast finishes by HTTP; the others still get the stream', async (t) => {
        const blockedNs = agentNs[2];
        const unblock = room.dropStream(blockedNs);
        try {
          const macs = agentNs.slice(0, 3).map((_, i) => `52:54:00:aa:35:0${i}`);
          const { runs, stats } = await deploy(room, macs, agentNs.slice(0, 3));
          t.diagnostic(`${runs.map((r) => `${r.seconds.toFixed(1)} s`).join(', ')}; ${stats}`);
          assert.equal(runs[2].streamBytes, 0);
          assert.ok(runs[2].repairBytes >= compressedBytes, 'the blocked PC fetched the whole image by HTTP');
          for (const r of runs.slice(0, 2)) assert.ok(r.streamBytes > compressedBytes / 2, `${r.mac} got most of the image from the stream`);
        } finally {
          unblock();
        }
      });

      test('a stream held for Go: the PCs wait past the 5 s fallback, the multicast-blocked one too; Go from the CLI starts it; all verified', async (t) => {
        const blockedNs = agentNs[2];
        const unblock = room.dropStream(blockedNs);
        try {
          const macs = agentNs.slice(0, 3).map((_, i) => `52:54:00:aa:37:0${i}`);
          const disks = room.disks('held', macs, DISK_MIB);
          const job = (await ask(`deploy room --manual ${macs.join(' ')}`, 'job')) as number;
          const agents = macs.map((mac, i) => room.agent(agentNs[i], mac, disks[i].dev));
          let exited: AgentRun | undefined;
          void Promise.race(agents).then((r) => (exited = r));
          const ready = await waitFor(
            async () => {
              const stream = await ask(`stream ${job}`, 'stream');
              return stream?.start.ready.length === 3 ? stream : undefined;
            },
            60_000,
            'the three receivers to be ready',
          );
          assert.equal(ready.start.started, false);
          // Well past the receivers' 5 s: nobody falls back to HTTP while the host says the stream waits.
          await new Promise((r) => setTimeout(r, 7000));
          const held = await ask(`stream ${job}`, 'stream');
          assert.equal(exited, undefined, `no agent ended while the stream waited:\n${exited?.out}\n${runnerLog()}`);
          assert.equal(held.start.started, false);
          assert.equal(held.chunksSent, 0);
          for (const r of held.receivers) assert.equal(r.repairKiB, 0, `${r.mac} fetched nothing by HTTP while waiting: ${JSON.stringify(r)}`);
          const waiting = await ask(`status ${job}`, 'status');
          assert.deepEqual(
            waiting.machines.map((m: { phase: string }) => m.phase),
            ['writing', 'writing', 'writing'],
          );

          // Go, from another process on the same data folder, as a technician's `bootbench image go`.
          const said = execFileSync(process.execPath, ['--import', 'tsx', CLI, 'image', 'go', String(job), '--data', data], { cwd: PROJECT_ROOT }).toString();
          assert.match(said, new RegExp(`job ${job}: Go at`));
          const runs = await Promise.all(agents);
          const status = await ask(`status ${job}`, 'status');
          for (const [i, r] of runs.entries()) {
            assert.equal(r.code, 0, `agent ${r.mac} failed:\n${r.out}\n${runnerLog()}`);
            assert.equal(status.machines[i].result, 'done');
            checkDisk(disks[i].file, r.mac);
          }
          assert.ok(status.goAt > 0 && status.streamStartedAt >= status.goAt, `the job records Go and the start: ${JSON.stringify(status)}`);
          t.diagnostic(
            runs
              .map(
                (r) =>
                  `${r.mac}: ${r.seconds.toFixed(1)} s, ${/(\d+) ms waiting/.exec(r.out)?.[1]} ms waiting, ${(r.streamBytes / MIB).toFixed(1)} MiB streamed, ${(r.repairBytes / MIB).toFixed(1)} MiB repaired`,
              )
              .join('; '),
          );
          for (const r of runs.slice(0, 2)) assert.ok(r.streamBytes > compressedBytes / 2, `${r.mac} got most of the image from the stream:\n${r.out}`);
          assert.equal(runs[2].streamBytes, 0);
          assert.ok(runs[2].repairBytes >= compressedBytes, 'the blocked PC learned the stream started and fetched the image by HTTP');
        } finally {
          unblock();
        }
      });

      test('a chunk damaged in the store fails every PC with the reason, and nothing hangs', async () => {
        const catalog = new ImageCatalog(data);
        const sha = catalog.get('room')!.partitions[1].chunks[3];
        const repair = damageChunk(catalog, sha);
        try {
          const macs = agentNs.slice(0, 2).map((_, i) => `52:54:00:aa:34:0${i}`);
          const disks = room.disks('damaged', macs, DISK_MIB);
          const job = (await ask(`deploy room ${macs.join(' ')}`, 'job')) as number;
          const runs = await Promise.all(macs.map((mac, i) => room.agent(agentNs[i], mac, disks[i].dev)));
          const status = await ask(`status ${job}`, 'status');
          for (const [i, r] of runs.entries()) {
            assert.equal(r.code, 1, r.out);
            assert.equal(status.machines[i].result, 'failed');
            assert.match(status.machines[i].reason, new RegExp(`writing partition 1 failed: partition 1 from the stream: chunk ${sha} arrived damaged`));
          }
        } finally {
          repair();
        }
      });
    });
  });
