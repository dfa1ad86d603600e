// Measuring: CPU and memory of a server process from /proc, samples taken alternately
// from a peer and Bootbench, their summaries, and the row that judges them against a target.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RESULTS, log, type Bench, type RunningServer } from './lab.js';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU time (ms) a process and its reaped children have used: utime+stime+cutime+cstime. */
export function cpuMs(pid: number): number {
  const { user, system } = cpuSplitMs(pid);
  return user + system;
}

/** User and kernel CPU time (ms) of a process and its reaped children. */
export function cpuSplitMs(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ms = (ticks: number) => (ticks * 1000) / CLK_TCK;
  return { user: ms(Number(fields[11]) + Number(fields[13])), system: ms(Number(fields[12]) + Number(fields[14])) };
}

export function rssKiB(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function summarize(xs: number[]): Summary {
  return xs.length ? { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length } : { median: NaN, min: NaN, max: NaN, n: 0 };
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

// ---------------------------------------------------------------------------------------
// Rows and cases

export interface Target {
  /** Bootbench median / peer median must be at least this (or at most, for `lower` metrics) */
  ratio?: number;
  /** and/or an absolute bound on Bootbench's median (with both, both must hold) */
  atMost?: number;
  atLeast?: number;
  text: string;
}

export interface Row {
  id: string;
  title: string;
  metric: string;
  /** higher is better unless false */
  higherIsBetter: boolean;
  peer?: { name: string; figure?: number; summary: Summary; samples: number[] };
  bootbench: { name: string; summary: Summary; samples: number[] };
  ratio?: number;
  target: Target;
  met?: boolean;
  note?: string;
}

export interface CaseContext {
  bench: Bench;
  runs: number;
  quick: boolean;
  raw: RunningServer;
  profileDir?: string;
}

export interface BenchCase {
  id: string;
  title: string;
  run(ctx: CaseContext): Promise<Row[]>;
}

export function judge(row: Row): Row {
  const b = row.bootbench.summary.median;
  if (row.peer) row.ratio = b / row.peer.summary.median;
  const t = row.target;
  const checks: boolean[] = [];
  if (t.ratio !== undefined && row.ratio !== undefined) checks.push(row.higherIsBetter ? row.ratio >= t.ratio : row.ratio <= t.ratio);
  if (t.atMost !== undefined) checks.push(b <= t.atMost);
  if (t.atLeast !== undefined) checks.push(b >= t.atLeast);
  if (checks.length) row.met = checks.every(Boolean);
  return row;
}

/**
 * Runs a peer and Bootbench alternately (peer, Bootbench, peer, ...), `runs` times each,
 * and returns the samples of each. `measure` returns one sample per call.
 */
export async function alternate<T>(runs: number, a: () => Promise<T>, b: () => Promise<T>): Promise<{ a: T[]; b: T[] }> {
  const out = { a: [] as T[], b: [] as T[] };
  for (let i = 0; i < runs; i++) {
    out.a.push(await a());
    out.b.push(await b());
  }
  return out;
}

/**
 * --trace: attaches strace -c (syscall counts) or perf record (where CPU goes, kernel and
 * native code included) to the server for one TFTP sample; the report goes to bench/results.
 * Tracing slows the server: traced samples' numbers are not comparable.
 */
export async function traced<T>(tool: string | undefined, server: RunningServer, label: string, work: () => Promise<T>): Promise<T> {
  if (!tool) return work();
  const base = join(RESULTS, `trace-${label}-${server.name.replace(/\W+/g, '-')}-${Date.now()}`);
  const child =
    tool === 'perf'
      ? spawn('perf', ['record', '-q', '-F', '2000', '-g', '-p', String(server.pid), '-o', `${base}.perf.data`], { stdio: 'ignore' })
      : spawn('strace', ['-c', '-f', '-q', '-p', String(server.pid), '-o', `${base}.strace.txt`], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  try {
    return await work();
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await exited;
    if (tool === 'perf') {
      const report = (sort: string) =>
        execFileSync('perf', ['report', '-i', `${base}.perf.data`, '--no-children', '--sort', sort, '--stdio', '--percent-limit', '0.2', '-g', 'none'], {
          maxBuffer: 64 << 20,
        }).toString();
      writeFileSync(`${base}.perf.txt`, `${report('dso')}\n${report('dso,sym')}`);
      rmSync(`${base}.perf.data`, { force: true });
    }
    log(`  trace: ${base}.${tool === 'perf' ? 'perf' : 'strace'}.txt`);
  }
}
