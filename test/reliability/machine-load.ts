// What the rest of the machine did while a timing test ran: the DISCOVER storm's answer time
// depends on CPU the host can get, and other processes on the same cores (another build, a
// second test run) take it. Linux /proc figures, in ms of CPU time.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Busy CPU time of the whole machine (all cores), in ms (USER_HZ = 100). */
export function machineBusyMs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return (user! + nice! + system! + irq! + softirq! + steal!) * 10;
}

/** CPU time of every process now in the given namespaces (their threads included), in ms. */
export function namespaceCpuMs(...namespaces: string[]): number {
  let ticks = 0;
  for (const ns of namespaces) {
    for (const pid of execFileSync('ip', ['netns', 'pids', ns]).toString().trim().split(/\s+/).filter(Boolean)) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        ticks += Number(fields[11]) + Number(fields[12]);
      } catch {
        // gone
      }
    }
  }
  return ticks * 10;
}

/**
 * Starts counting; `stop(exitedCpuMs)` returns the CPU the rest of the machine used meanwhile
 * (busy time minus the namespaces' processes; `exitedCpuMs` adds those that exited in between),
 * and the capacity (cores x wall time) to compare it with.
 */
export function otherLoad(...namespaces: string[]): { stop(exitedCpuMs?: number): { othersMs: number; capacityMs: number; ownMs: number } } {
  const busy = machineBusyMs();
  const own = namespaceCpuMs(...namespaces);
  const started = Date.now();
  return {
    stop(exitedCpuMs = 0) {
      const ownMs = namespaceCpuMs(...namespaces) - own + exitedCpuMs;
      return { othersMs: Math.max(0, machineBusyMs() - busy - ownMs), capacityMs: (Date.now() - started) * cpuCount(), ownMs };
    },
  };
}

function cpuCount(): number {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => /^cpu\d+ /.test(l)).length;
}
