// `npm run bench`: Bootbench's TFTP, HTTP, Proxy DHCP and imaging side by side with the
// servers and pipelines people run today (dnsmasq, atftpd, nginx, partclone), inside network
// namespaces the bench creates and removes. Prints a table of medians and ratios and writes
// bench/results/bench-<time>.{json,md}. A benchmark, not a test: it asserts nothing. See
// bench/README.md. This file picks the cases and runs them; lab.ts sets up the namespaces
// and servers, measure.ts takes and judges the samples, cases.ts and imaging-cases.ts are
// the cases, report.ts writes the results.
//
// Usage: node --import tsx bench/run.ts [--quick] [--runs N] [--only id,id] [--profile] [--trace strace|perf] [--long] [--help]
//        BOOTBENCH_BENCH_MAIN=/other/checkout/main ... measures another tree's servers
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NETWORK_CASES } from './cases.js';
import { IMAGING_PROGRAMS, imagingCases } from './imaging-cases.js';
import { imagingSizes } from './imaging-lab.js';
import { STREAM_PROGRAMS, imagingStreamCases } from './imaging-stream-cases.js';
import { streamSizes } from './imaging-stream-lab.js';
import { Bench, RESULTS, log, peerProgram, servedMain } from './lab.js';
import type { BenchCase, CaseContext, Row } from './measure.js';
import { missingPrograms, netnsUnavailableReason } from './netns.js';
import { codeVersion, machineNote, rowSummary, writeReport } from './report.js';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    trace: { type: 'string' },
    long: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

// Imaging: a 1 GiB disk with 512 MiB used, or with --long (or BOOTBENCH_LONG=1) the target's
// 4 GiB with 2 GiB used.
// The stream cases: a 1 GiB disk, or the target's 2 GiB with --long (see imaging-stream-lab.ts).
const LONG = flags.long! || process.env.BOOTBENCH_LONG === '1';
const CASES: BenchCase[] = [...NETWORK_CASES, ...imagingCases(imagingSizes(LONG)), ...imagingStreamCases(streamSizes(LONG))];

async function main(): Promise<void> {
  if (flags.help) {
    console.log(
      readFileSync(fileURLToPath(import.meta.url), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('// Usage') || l.startsWith('//        '))
        .join('\n'),
    );
    console.log(`\ncases (--only):\n${CASES.map((c) => `  ${c.id.padEnd(14)} ${c.title}`).join('\n')}`);
    return;
  }
  const runs = flags.runs ? Number(flags.runs) : flags.quick ? 1 : 5;
  const only = flags.only?.split(',').filter(Boolean);
  const selected = CASES.filter((c) => !only || only.includes(c.id));
  if (only && selected.length !== only.length) {
    console.error(`unknown case in --only; cases: ${CASES.map((c) => c.id).join(', ')}`);
    process.exit(2);
  }
  // perfdhcp only drives the dhcp case: a run of other cases does not need it.
  const programs = [
    'dnsmasq',
    'atftp',
    'nginx',
    'curl',
    'cc',
    'ss',
    ...(selected.some((c) => c.id === 'dhcp') ? ['perfdhcp'] : []),
    ...(selected.some((c) => c.id.startsWith('img-')) ? IMAGING_PROGRAMS : []),
    ...(selected.some((c) => c.id.startsWith('img-stream')) ? STREAM_PROGRAMS : []),
  ];
  const unavailable =
    netnsUnavailableReason() ??
    missingPrograms(...programs) ??
    (peerProgram('atftpd', 'atftpd') ? undefined : 'atftpd is neither installed nor unpacked (run: sh bench/fetch-peers.sh)');
  if (unavailable) {
    console.error(`bench cannot run: ${unavailable}. See bench/README.md for the package list.`);
    process.exit(1);
  }
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:]/g, '').replace(/\..*/, '');
  const profileDir = flags.profile ? join(RESULTS, `profile-${stamp}`) : undefined;
  const before = machineNote();
  servedMain(); // compiled first (a build error stops the bench before any case), and named in the results
  const code = codeVersion();
  log(`runs per case ${runs}${flags.quick ? ' (quick)' : ''}; load average ${before.loadavg.join(' ')}, ${before.qemuProcesses} QEMU process(es) running`);

  const bench = new Bench({ stamp, trace: flags.trace });
  process.once('SIGINT', () => void bench.destroy().then(() => process.exit(130)));
  const rows: Row[] = [];
  const failures: { id: string; error: string }[] = [];
  try {
    await bench.setUp();
    const raw = await bench.startBootbenchRaw(profileDir);
    const ctx: CaseContext = { bench, runs, quick: flags.quick!, raw, profileDir };
    // Warm up the JIT once, so run 1 is not a cold-start measurement.
    await bench.tftpGet(bench.cli, raw.veth, 'file-16m.bin', ['blksize 1468', 'windowsize 16'], 1, 60);
    for (const c of selected) {
      const t0 = Date.now();
      log(`case ${c.id}: ${c.title}`);
      try {
        const got = await c.run(ctx);
        rows.push(...got);
        for (const r of got) log(`  ${rowSummary(r)}`);
      } catch (err) {
        failures.push({ id: c.id, error: (err as Error).message });
        log(`  case ${c.id} FAILED: ${(err as Error).message}`);
      }
      log(`  (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
    await raw.stop();
  } finally {
    await bench.destroy();
  }
  writeReport({ startedAt, stamp, runs, quick: flags.quick!, machine: { before, after: machineNote() }, code, rows, failures, profileDir });
}

await main();
