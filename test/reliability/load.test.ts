// Issue 9 item 8: a DISCOVER storm (our own sender, 5,000 PXE DISCOVERs a second, each
// from its own MAC) against `bootbench serve` while 20 TFTP transfers run: no transfer
// fails, every DISCOVER is answered within 10 ms at the 99th percentile, and the host's
// resident memory is stable. CI: 5 s of storm; BOOTBENCH_LONG=1: 30 s.
//
// How it is measured, and why:
// - The host is the compiled CLI (dist/, built here when older than main/), as installed:
//   run through tsx, modules are compiled on first use by an esbuild child process, and
//   that work would land inside the measurement.
// - The clients stand in for remote PCs, but here they share the host's two cores: a node
//   process sending 5,000 packets a second and one receiving 20 downloads (with SHA-256)
//   take as much CPU as the host. The PCs' own CPUs would not take the host's, so they run
//   under SCHED_IDLE (chrt -i 0): they get what the host leaves. With nice 19 instead,
//   Linux's scheduler still lets a running client finish its slice (up to ~3 ms) before a
//   woken host thread gets the CPU. The host and its TFTP workers (nice 10) are as deployed.
// - The answer time is the host's: a capture on its NIC (dumpcap in the host's namespace,
//   also under SCHED_IDLE: the kernel stamps each frame as it passes, whenever dumpcap
//   reads it) timestamps each DISCOVER as it arrives and its offer as it leaves, so queueing
//   in the host's socket buffer, its event loop and its GC pauses count, and the clients'
//   own scheduling does not. The sender's own figures are printed beside it.
// - Memory stable: first-use growth is not a leak. Under a storm's allocation rate V8 grows
//   its young generation to its limit (3 x 16 MiB semi-spaces in Node 20), and its old space
//   is a sawtooth between major GCs (about 25 MiB here); SQLite's page cache fills once (the
//   storm's new MACs get the shared default answer, so they add nothing to the read cache). So: the storm's peak RSS stays within 80 MiB of the RSS
//   with the 20 transfers already running (measured 36-56 MiB); RSS does not go on growing
//   once the storm is over (the idle host's 2 s after it stay within 4 MiB of the storm's peak:
//   a single sample 1 s after the end was once 4.1 MiB above the end's, within the sawtooth); and in the long run (30 s) the peak of the last 10 s is within
//   8 MiB of the peak between 5 s and 10 s, i.e. memory does not grow with the storm's length
//   (a leak of 100 bytes per DISCOVER would add 10 MiB there).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Lab, missingPrograms, netnsUnavailableReason } from '../helpers/netns.js';
import { PROJECT_ROOT, ServeProcess } from '../helpers/serve-process.js';
import { writeRandomFile } from '../integration/tftp-helpers.js';
import type { TransferOutcome } from './tftp-load-client.js';
import { captureDhcp, dhcpAnswerLatencies, percentile } from './dhcp-wire-latency.js';
import { ensureCompiled } from '../helpers/compiled-cli.js';
import { otherLoad } from './machine-load.js';

const LONG = process.env.BOOTBENCH_LONG === '1';
const STORM_SECONDS = Number(process.env.BOOTBENCH_STORM_SECONDS ?? (LONG ? 30 : 5));
const RATE = 5000;
const skip = netnsUnavailableReason() ?? missingPrograms('dumpcap', 'chrt');
const STORM = join(PROJECT_ROOT, 'test', 'reliability', 'discover-storm.ts');
const CLIENT = join(PROJECT_ROOT, 'test', 'reliability', 'tftp-load-client.ts');

/** Resident set of the node process serving in `ns` (the only node there), in MiB. */
function rssMiB(ns: string): number {
  const pids = execFileSync('ip', ['netns', 'pids', ns]).toString().trim().split(/\s+/);
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      if (!/^Name:\s+node/m.test(status)) continue;
      return Number(/^VmRSS:\s+(\d+)/m.exec(status)![1]) / 1024;
    } catch {
      // gone
    }
  }
  return NaN;
}

function collect(child: ReturnType<Lab['spawn']>): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', () => resolve(out));
  });
}

/** A load client in the client namespace, on the CPU time the host leaves (SCHED_IDLE). */
const clientArgs = (script: string, ...args: string[]) => ['-i', '0', process.execPath, '--import', 'tsx', script, ...args];

describe(`DISCOVER storm (${RATE}/s for ${STORM_SECONDS} s) during 20 TFTP transfers`, { skip }, () => {
  const lab = new Lab('bbload');
  const dir = mkdtempSync(join(tmpdir(), 'bb-load-'));
  const root = join(dir, 'root');
  let host = '';
  let client = '';
  let sha = '';
  let serve: ServeProcess;

  before(async () => {
    ensureCompiled();
    mkdirSync(root);
    sha = writeRandomFile(join(root, 'nbp.efi'), 4 * 1024 * 1024);
    host = lab.namespace('h');
    client = lab.namespace('c');
    lab.veth(host, 'bench0', '192.0.2.1/24', client, 'eth0', '192.0.2.10/24');
    serve = new ServeProcess(lab, host, ['--interface', 'bench0', '--root', root, '--boot', 'uefi64=nbp.efi', '--data', join(dir, 'data')], { compiled: true });
    await serve.ready();
  });
  after(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  let measured:
    | {
        p99: number;
        withTransfersRss: number;
        rss: { atMs: number; mib: number }[];
        endRss: number;
        afterRss: number;
        others: { othersMs: number; capacityMs: number };
      }
    | undefined;

  test('every DISCOVER is answered and no transfer fails', async () => {
    // Warm-up storm: JIT, SQLite statements, socket buffers.
    const warm = lab.exec(client, 'chrt', clientArgs(STORM, 'eth0', String(RATE), '1'), { timeoutMs: 60_000 });
    assert.ok(JSON.parse(warm.trim().split('\n').at(-1)!).answered > 0, 'warm-up storm got no answers');

    const capture = await captureDhcp(lab, host, 'bench0', join(dir, 'storm.pcap'), { idle: true });
    const transfers = collect(
      lab.spawn(
        client,
        'chrt',
        clientArgs(
          CLIENT,
          JSON.stringify({
            server: '192.0.2.1',
            names: ['nbp.efi'],
            count: 20,
            blksize: 1468,
            windowsize: 16,
            repeatForMs: STORM_SECONDS * 1000 + 3000,
            deadlineMs: STORM_SECONDS * 1000 + 60_000,
          }),
        ),
        { cwd: PROJECT_ROOT },
      ),
    );
    await new Promise((r) => setTimeout(r, 1500)); // the 20 downloads (and the TFTP workers) are under way
    const withTransfersRss = rssMiB(host);
    const stormStarted = Date.now();
    const load = otherLoad(host, client);
    const storm = collect(lab.spawn(client, 'chrt', clientArgs(STORM, 'eth0', String(RATE), String(STORM_SECONDS)), { cwd: PROJECT_ROOT }));
    const rss: { atMs: number; mib: number }[] = [];
    const sampler = setInterval(() => rss.push({ atMs: Date.now() - stormStarted, mib: rssMiB(host) }), 500);
    const stormOut = await storm; // includes the sender's wait for late answers
    const others = load.stop(JSON.parse(stormOut.trim().split('\n').at(-1)!).cpuMs);
    const endRss = rssMiB(host);
    const transferOut = await transfers;
    clearInterval(sampler);
    const pcap = await capture.stop();
    // After the storm and the transfers: 2 s of the idle host, sampled. Its RSS is a sawtooth
    // (old-space GCs, young-generation resizes), so one sample against one other says little;
    // growth is the idle host going above what the storm itself took it to.
    const after: number[] = [];
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 250));
      after.push(rssMiB(host));
    }
    const afterRss = Math.max(...after);

    const s = JSON.parse(stormOut.trim().split('\n').at(-1)!);
    const wire = dhcpAnswerLatencies(pcap);
    const { outcomes } = JSON.parse(transferOut.trim().split('\n').at(-1)!) as { outcomes: TransferOutcome[] };
    const failed = outcomes.filter((o) => !o.ok || o.sha256 !== sha);
    const ms = (n: number) => n.toFixed(2);
    console.log(
      `storm: ${s.sent} DISCOVERs in ${s.sendMs} ms, ${s.answered} offers received by the sender (SCHED_IDLE): p50 ${ms(s.p50)}, p99 ${ms(s.p99)}, max ${ms(s.max)} ms`,
    );
    console.log(
      `host answer time on its NIC: ${wire.length} answered, p50 ${ms(percentile(wire, 50))}, p90 ${ms(percentile(wire, 90))}, p99 ${ms(percentile(wire, 99))}, max ${ms(wire.at(-1) ?? NaN)} ms`,
    );
    console.log(`transfers: ${outcomes.length} of 4 MiB during the storm, ${failed.length} failed`);
    console.log(`CPU during the storm: the test's namespaces ${others.ownMs} ms, the rest of the machine ${others.othersMs} ms, of ${others.capacityMs} ms`);
    console.log(
      `host RSS (MiB): ${withTransfersRss.toFixed(0)} with the transfers running; from the storm's start ${rss.map((r) => `${(r.atMs / 1000).toFixed(1)}s ${r.mib.toFixed(0)}`).join(', ')}; end ${endRss.toFixed(0)}; idle after ${after.map((m) => m.toFixed(0)).join(', ')}`,
    );
    assert.deepEqual(
      failed.map((o) => o.error ?? 'sha256 mismatch'),
      [],
    );
    assert.ok(outcomes.length >= 20);
    assert.ok(s.sent >= RATE * STORM_SECONDS * 0.95, `the sender managed only ${s.sent} DISCOVERs`);
    assert.ok(s.answered >= s.sent * 0.99, `${s.sent - s.answered} DISCOVERs went unanswered`);
    assert.ok(wire.length >= s.sent * 0.99, `the capture saw only ${wire.length} answers to ${s.sent} DISCOVERs`);
    assert.equal(serve.exitCode, undefined, 'the host is still running');
    measured = { p99: percentile(wire, 99), withTransfersRss, rss, endRss, afterRss, others };
  });

  test('host memory is stable during the storm', () => {
    assert.ok(measured, 'the storm run above did not finish');
    const { withTransfersRss, rss, endRss, afterRss } = measured;
    const peak = Math.max(...rss.map((r) => r.mib), endRss);
    assert.ok(peak - withTransfersRss <= 80, `the storm took the host from ${withTransfersRss.toFixed(1)} to ${peak.toFixed(1)} MiB`);
    assert.ok(
      afterRss - peak <= 4,
      `host RSS went on growing after the storm: its peak during the storm ${peak.toFixed(1)} MiB, idle afterwards up to ${afterRss.toFixed(1)} MiB`,
    );
    if (STORM_SECONDS >= 20) {
      const peakBetween = (from: number, to: number) => Math.max(...rss.filter((r) => r.atMs >= from && r.atMs < to).map((r) => r.mib));
      const early = peakBetween(5000, 10_000);
      const late = peakBetween((STORM_SECONDS - 10) * 1000, STORM_SECONDS * 1000);
      assert.ok(late - early <= 8, `host RSS grows with the storm's length: peak ${early.toFixed(1)} MiB at 5-10 s, ${late.toFixed(1)} MiB in the last 10 s`);
    }
  });

  // Issue 9's figure, on the host's NIC. History: p99 5.4-6.2 ms on an idle machine with DHCP
  // on the main thread (and 12.45 ms once in CI), where most slow answers waited out a
  // main-thread GC pause (3-4 ms, ~30 in the storm) or a busy turn of its loop
  // (storm-diagnose.ts --timeline lines them up with the capture). DHCP now runs on a thread
  // of its own with a 2 MiB young generation (main/dhcp/dhcp-thread.ts), and the clients and
  // the capture under SCHED_IDLE: p99 2.1-4.1 ms (median 2.4) in 8 runs on an idle machine.
  // Other work on the same 2 cores still shows here (it takes the CPU the DHCP thread waits
  // for), so the suite runs its tests one at a time.
  test('offers leave within 10 ms at the 99th percentile', () => {
    assert.ok(measured, 'the storm run above did not finish');
    // The share of CPU other processes took meanwhile goes with a failure: above a few percent
    // the figure says more about the machine than about the host.
    const { othersMs, capacityMs } = measured.others;
    assert.ok(
      measured.p99 < 10,
      `p99 ${measured.p99.toFixed(2)} ms on the host's NIC, while processes outside the test's namespaces used ${((100 * othersMs) / capacityMs).toFixed(0)}% of the machine's CPU`,
    );
  });
});
