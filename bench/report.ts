// The report: the table on stdout, bench/results/bench-<time>.json (every sample) and
// bench-<time>.md (medians, min-max, ratios, targets), with the code and the machine's
// load named, since a shared machine moves every figure.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { PROJECT, RESULTS, servedMain } from './lab.js';
import type { Row } from './measure.js';

export function fmt(x: number | undefined, metric = ''): string {
  if (x === undefined || Number.isNaN(x)) return '-';
  const digits = metric === '%' ? 2 : Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2;
  return x.toFixed(digits);
}

export function markdownTable(rows: Row[]): string {
  const lines = ['| case | metric | peer | peer median (min-max) | Bootbench median (min-max) | ratio | target | met |', '|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const p = r.peer;
    const b = r.bootbench.summary;
    // A peer named by its pipeline (curl|zstd) would split the cell.
    const cell = (text: string) => text.replaceAll('|', '\\|');
    lines.push(
      `| ${cell(r.title)}${r.note ? ` (${cell(r.note)})` : ''} | ${r.metric} | ${p ? `${cell(p.name)}${p.figure !== undefined ? ` [issue: ${p.figure}]` : ''}` : '-'} | ${p ? `${fmt(p.summary.median, r.metric)} (${fmt(p.summary.min, r.metric)}-${fmt(p.summary.max, r.metric)})` : '-'} | ${fmt(b.median, r.metric)} (${fmt(b.min, r.metric)}-${fmt(b.max, r.metric)}) | ${r.ratio !== undefined && Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}x` : '-'} | ${r.target.text} | ${r.met === undefined ? '-' : r.met ? 'yes' : '**no**'} |`,
    );
  }
  return lines.join('\n');
}

export function consoleTable(rows: Row[]): string {
  const header = ['case', 'metric', 'peer', 'peer med', 'bootbench med', 'ratio', 'target', 'met'];
  const body = rows.map((r) => [
    r.title.slice(0, 58),
    r.metric,
    r.peer?.name ?? '-',
    r.peer ? fmt(r.peer.summary.median, r.metric) : '-',
    fmt(r.bootbench.summary.median, r.metric),
    r.ratio !== undefined && Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}x` : '-',
    r.target.text,
    r.met === undefined ? '-' : r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  return [header, ...body].map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ')).join('\n');
}

/** Which code was measured: HEAD, and whether the server folders had uncommitted changes. */
export interface CodeVersion {
  commit: string;
  dirty: string[];
  main: string;
}

export function codeVersion(): CodeVersion {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', ['-C', PROJECT, ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim();
    } catch {
      return '';
    }
  };
  const dirty = git([
    'status',
    '--porcelain',
    '--',
    'main/tftp',
    'main/http',
    'main/files',
    'main/dhcp',
    'main/store',
    'main/host',
    'main/core',
    'main/imaging',
    'build/imaging-env',
  ])
    .split('\n')
    .filter(Boolean);
  return { commit: git(['rev-parse', '--short', 'HEAD']), dirty, main: servedMain() };
}

export interface MachineNote {
  loadavg: number[];
  qemuProcesses: number;
  cpus: number;
}

export function machineNote(): MachineNote {
  let qemu = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('qemu')) qemu++;
    } catch {
      /* gone */
    }
  }
  return { loadavg: loadavg().map((x) => Math.round(x * 100) / 100), qemuProcesses: qemu, cpus: Number(execFileSync('nproc').toString()) };
}

/** One row in a line, for the progress log. */
export function rowSummary(r: Row): string {
  return `${r.title}: ${r.peer ? `${r.peer.name} ${fmt(r.peer.summary.median, r.metric)} ` : ''}bootbench ${fmt(r.bootbench.summary.median, r.metric)} ${r.metric}${r.met === undefined ? '' : r.met ? ' (target met)' : ' (target MISSED)'}`;
}

export interface BenchResult {
  startedAt: Date;
  /** names the files: bench-<stamp>.json and .md */
  stamp: string;
  runs: number;
  quick: boolean;
  machine: { before: MachineNote; after: MachineNote };
  code: CodeVersion;
  rows: Row[];
  failures: { id: string; error: string }[];
  profileDir?: string;
}

/** Writes the JSON and Markdown results and prints the table. */
export function writeReport(result: BenchResult): void {
  const { startedAt, stamp, runs, code, rows, failures, profileDir } = result;
  const { before, after } = result.machine;
  const seconds = (Date.now() - startedAt.getTime()) / 1000;
  mkdirSync(RESULTS, { recursive: true });
  const jsonPath = join(RESULTS, `bench-${stamp}.json`);
  const mdPath = join(RESULTS, `bench-${stamp}.md`);
  writeFileSync(
    jsonPath,
    JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        seconds,
        runs,
        quick: result.quick,
        machine: { before, after, node: process.version },
        code,
        rows,
        failures,
        profileDir,
      },
      null,
      2,
    ),
  );
  const md = [
    `# Bootbench bench ${startedAt.toISOString()}`,
    '',
    `${runs} run(s) per server per case, alternating peer and Bootbench; ${seconds.toFixed(0)} s in all. Node ${process.version}.`,
    `Code: commit ${code.commit}${code.dirty.length ? ` with uncommitted changes in ${code.dirty.length} server file(s)` : ''}; servers from ${code.main}.`,
    `Load average before ${before.loadavg.join(' ')}, after ${after.loadavg.join(' ')}; QEMU processes before ${before.qemuProcesses}, after ${after.qemuProcesses} (${before.cpus} CPUs, shared: numbers are noisy when others run).`,
    '"issue" figures are the peer numbers from issue 8, measured earlier on this machine.',
    '',
    markdownTable(rows),
    '',
    failures.length ? `## Cases that failed\n\n${failures.map((f) => `- ${f.id}: ${f.error}`).join('\n')}\n` : '',
    profileDir ? `CPU profiles: ${profileDir}\n` : '',
  ].join('\n');
  writeFileSync(mdPath, md);
  console.log(`\n${consoleTable(rows)}\n`);
  if (failures.length) console.log(`failed cases: ${failures.map((f) => `${f.id} (${f.error.slice(0, 200)})`).join('; ')}`);
  console.log(`${seconds.toFixed(0)} s; load average ${after.loadavg.join(' ')}; results: ${jsonPath}, ${mdPath}`);
}
