// Loaded into `bootbench serve` with NODE_OPTIONS="--import .../host-diagnostics.mjs" by the
// storm diagnosis (storm-diagnose.ts): event-loop delay, GC pauses and RSS of the host, written
// as one JSON line to BOOTBENCH_DIAG_FILE on SIGUSR2 (and reset), so a run can be cut in phases.
// With BOOTBENCH_DIAG_PROFILE=FILE, the main thread's CPU profile from the 1st to the 3rd
// SIGUSR2 is written there (--cpu-prof is not allowed in NODE_OPTIONS).
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';

// V8 flags NODE_OPTIONS does not take (--single-threaded-gc ...), to try their effect.
if (process.env.BOOTBENCH_DIAG_V8_FLAGS) setFlagsFromString(process.env.BOOTBENCH_DIAG_V8_FLAGS);

const file = process.env.BOOTBENCH_DIAG_FILE;
if (file) {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  let gc = { count: 0, totalMs: 0, maxMs: 0, over5ms: 0, long: {} };
  // With BOOTBENCH_DIAG_TIMELINE=FILE: every GC pause and every gap over 2 ms between 1 ms
  // ticks of a timer (the main thread busy or off its CPU), as wall-clock times, written at
  // the 3rd SIGUSR2, to line them up with a capture's slow answers.
  const timelineFile = process.env.BOOTBENCH_DIAG_TIMELINE;
  const timeline = [];
  if (timelineFile) {
    let last = performance.now();
    setInterval(() => {
      const now = performance.now();
      if (now - last > 2) timeline.push({ kind: 'gap', at: performance.timeOrigin + last, ms: now - last });
      last = now;
    }, 1).unref();
  }
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (timelineFile) timeline.push({ kind: `gc${entry.detail?.kind}`, at: performance.timeOrigin + entry.startTime, ms: entry.duration });
      gc.count++;
      gc.totalMs += entry.duration;
      gc.maxMs = Math.max(gc.maxMs, entry.duration);
      if (entry.duration > 5) {
        gc.over5ms++;
        // 1 minor (scavenge), 2 major (mark-compact), 4 incremental marking, 8 weak callbacks
        const kind = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weak' }[entry.detail?.kind] ?? String(entry.detail?.kind);
        gc.long[kind] = (gc.long[kind] ?? 0) + 1;
      }
    }
  }).observe({ entryTypes: ['gc'] });
  // The main thread's scheduler figures (Linux): time on a CPU, and time runnable but waiting
  // for one (another process or thread had it), in ns; the second is contention, not work.
  const schedstat = () => {
    try {
      const [run, wait, slices] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
      return { run, wait, slices };
    } catch {
      return { run: 0, wait: 0, slices: 0 };
    }
  };
  // Every thread of the host (DHCP thread, TFTP workers, libuv and V8 helpers): on a CPU and
  // runnable but waiting for one, in ms, per phase. The DHCP thread waiting is contention.
  const threads = () => {
    const out = new Map();
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
        const [run, wait] = readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
        out.set(tid, { comm, nice, run, wait });
      } catch {
        // gone
      }
    }
    return out;
  };
  let threadStats = threads();
  let sched = schedstat();
  let cpu = process.cpuUsage();
  let since = Date.now();
  let marks = 0;
  const profileFile = process.env.BOOTBENCH_DIAG_PROFILE;
  // BOOTBENCH_DIAG_HEAP_PROFILE=FILE: V8's sampling heap profile (where the bytes are
  // allocated, every 4 KiB sampled) over the same stretch, to find what feeds the GC.
  const heapFile = process.env.BOOTBENCH_DIAG_HEAP_PROFILE;
  const session = profileFile || heapFile ? new Session() : undefined;
  session?.connect();
  process.on('SIGUSR2', () => {
    marks++;
    if (profileFile && marks === 1) session.post('Profiler.enable', () => session.post('Profiler.start'));
    if (heapFile && marks === 1) session.post('HeapProfiler.enable', () => session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env.BOOTBENCH_DIAG_HEAP_MINOR !== "0" }));
    if (heapFile && marks === 3) session.post('HeapProfiler.stopSampling', (err, result) => { if (!err) writeFileSync(heapFile, JSON.stringify(result.profile)); });
    // BOOTBENCH_DIAG_SNAPSHOT=FILE: a heap snapshot 2.5 s after the 2nd SIGUSR2 (mid-storm).
    if (process.env.BOOTBENCH_DIAG_SNAPSHOT && marks === 2) setTimeout(() => writeHeapSnapshot(process.env.BOOTBENCH_DIAG_SNAPSHOT), 2500);
    if (timelineFile && marks === 3) writeFileSync(timelineFile, JSON.stringify(timeline));
    if (profileFile && marks === 3) session.post('Profiler.stop', (err, result) => { if (!err) writeFileSync(profileFile, JSON.stringify(result.profile)); });
    const used = process.cpuUsage(cpu);
    const ms = (n) => Math.round((n / 1e6) * 100) / 100;
    appendFileSync(file, JSON.stringify({
      wallMs: Date.now() - since,
      cpuMs: Math.round((used.user + used.system) / 1000),
      loopDelay: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
      gc: { ...gc, totalMs: Math.round(gc.totalMs), maxMs: Math.round(gc.maxMs * 10) / 10 },
      mainThread: (() => {
        const now = schedstat();
        const d = { onCpuMs: Math.round((now.run - sched.run) / 1e6), waitingForCpuMs: Math.round((now.wait - sched.wait) / 1e6), slices: now.slices - sched.slices };
        sched = now;
        return d;
      })(),
      threads: (() => {
        const now = threads();
        const d = [...now]
          .map(([tid, t]) => ({ tid, comm: t.comm, nice: t.nice, onCpuMs: Math.round((t.run - (threadStats.get(tid)?.run ?? 0)) / 1e6), waitingForCpuMs: Math.round((t.wait - (threadStats.get(tid)?.wait ?? 0)) / 1e6) }))
          .filter((t) => t.onCpuMs + t.waitingForCpuMs > 20)
          .sort((a, b) => b.onCpuMs - a.onCpuMs);
        threadStats = now;
        return d;
      })(),
      rssMiB: Math.round(process.memoryUsage.rss() / 1048576),
      heapMiB: Math.round(process.memoryUsage().heapUsed / 1048576),
    }) + '\n');
    loop.reset();
    gc = { count: 0, totalMs: 0, maxMs: 0, over5ms: 0, long: {} };
    cpu = process.cpuUsage();
    since = Date.now();
  });
}
