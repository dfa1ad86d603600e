// `bootbench image ...` and `bootbench machines ...`: imaging jobs and the machine list from
// a script. They work on the data folder alone, beside a running `bootbench serve` on the
// same folder: the running host reads jobs from the store when a PC asks for its task.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultDataDir } from './serve-flags.js';
import { exportMachinesCsv, importMachinesCsv, normalizeMac, openStore, type Store } from '../store/index.js';
import {
  ANY_MACHINE,
  DEFAULT_START_AFTER_SECONDS,
  ImageCatalog,
  ImageError,
  checkImageName,
  ImagingJobs,
  startRule,
  type ImageJob,
  type StreamStartRequest,
  type ThenAction,
} from '../imaging/index.js';

export interface CommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: CommandIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

const IMAGE_USAGE = `Usage:
  bootbench image capture (--machine MAC | --next-machine) --name NAME [--disk SERIAL] [--then disk|poweroff]
  bootbench image deploy NAME (--machine MAC ... | --group GROUP) [--disk SERIAL] [--then disk|poweroff]
                        [--start manual | --start-when all|K --start-after SECONDS|off]
  bootbench image go JOB|NAME
  bootbench image list
  bootbench image status [--job ID]
  bootbench image verify NAME
  bootbench image delete NAME

The next network boot of the named PCs runs the task: capture reads the PC's disk into a
new image; deploy writes the image to each PC's disk, verifies it and names the PC from
the machine list. The disk is the PC's one internal disk, or the one whose serial or model
is --disk; USB and removable disks are never written. --next-machine captures whichever PC
network-boots next (a PC whose own entry is its local disk excepted).

A deploy to two PCs or more is sent once, as one multicast stream, by the running host in
full DHCP mode. It starts when every PC is ready or ${DEFAULT_START_AFTER_SECONDS} s after the first, whichever
comes first; --start-when K starts it once K PCs are ready, --start-after SECONDS sets the
timer (off: none), --start manual waits for \`bootbench image go\` (or Go on the Images
screen). Go starts it at once in any case; a PC that comes later joins the running stream.
\`image go\` works beside a running host on the same data folder: it picks the Go up within
a second. \`image status\` shows how many PCs of a waiting stream the running host has heard
ready, or that no running host holds it.

Options:
  --data DIR    data folder (default ~/.bootbench, or $BOOTBENCH_DATA)
  --json        machine-readable output
  -h, --help    show this help

A refused job exits 2 (bad arguments) or 1 (with the reason); \`image status\` exits 1 when a
PC of the jobs shown failed, and \`image verify\` when a chunk is damaged or missing.`;

const MACHINES_USAGE = `Usage:
  bootbench machines import FILE.csv [--dry-run]
  bootbench machines list

The CSV is the Machines screen's: columns mac, uuid, name, group, entry.

Options:
  --data DIR    data folder (default ~/.bootbench, or $BOOTBENCH_DATA)
  --json        machine-readable output
  -h, --help    show this help`;

class UsageError extends Error {}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      data: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      machine: { type: 'string', multiple: true },
      'next-machine': { type: 'boolean' },
      group: { type: 'string' },
      name: { type: 'string' },
      disk: { type: 'string' },
      then: { type: 'string' },
      job: { type: 'string' },
      'dry-run': { type: 'boolean' },
      start: { type: 'string' },
      'start-when': { type: 'string' },
      'start-after': { type: 'string' },
    },
  });
}

async function withFolder(
  args: string[],
  usage: string,
  io: CommandIo,
  body: (p: ReturnType<typeof parse>, dataDir: string) => Promise<number> | number,
): Promise<number> {
  let parsed;
  try {
    parsed = parse(args);
  } catch (err) {
    io.stderr(`${(err as Error).message}\n\n${usage}\n`);
    return 2;
  }
  if (parsed.values.help || parsed.positionals.length === 0) {
    (parsed.values.help ? io.stdout : io.stderr)(`${usage}\n`);
    return parsed.values.help ? 0 : 2;
  }
  try {
    return await body(parsed, resolve(parsed.values.data ?? defaultDataDir()));
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`${err.message}\n\n${usage}\n`);
      return 2;
    }
    io.stderr(`bootbench: ${(err as Error).message}\n`);
    return 1;
  }
}

function thenAction(value: string | undefined): ThenAction {
  if (value === undefined || value === 'disk' || value === 'poweroff') return value ?? 'disk';
  throw new UsageError(`--then ${value}: use disk (boot the PC's own disk afterwards) or poweroff`);
}

/** The deploy options --start, --start-when and --start-after as the job's start request. */
function startRequest(values: { start?: string; 'start-when'?: string; 'start-after'?: string }): StreamStartRequest | undefined {
  const { start, 'start-when': when, 'start-after': after } = values;
  if (start === undefined && when === undefined && after === undefined) return undefined;
  if (start !== undefined && start !== 'manual' && start !== 'auto')
    throw new UsageError(`--start ${start}: use manual (the stream starts on Go) or auto (by --start-when and --start-after)`);
  if (start === 'manual') {
    if (when !== undefined || after !== undefined) throw new UsageError('--start manual waits for Go alone: leave out --start-when and --start-after');
    return { manual: true };
  }
  let count: number | undefined;
  if (when !== undefined && when !== 'all') {
    if (!/^\d+$/.test(when) || Number(when) < 1) throw new UsageError(`--start-when ${when}: use all, or a number of PCs (1 or more)`);
    count = Number(when);
  }
  let afterSeconds: number | null | undefined;
  if (after !== undefined) {
    if (after === 'off') afterSeconds = null;
    else if (/^\d+$/.test(after)) afterSeconds = Number(after);
    else throw new UsageError(`--start-after ${after}: use whole seconds after the first PC is ready, or off`);
  }
  return { count, afterSeconds };
}

const clock = (ms: number) => new Date(ms).toLocaleTimeString();

/** Whether process `pid` runs (EPERM: it does, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What `image status` knows of the host: the other Bootbench process with the data folder open, and whether a process lives. */
export interface StatusContext {
  hostPid?: number;
  alive?: (pid: number) => boolean;
}

/** The word on the job's waiting stream of the host that holds it, while that host runs: PCs ready and the timer's deadline. */
export function liveStreamWait(job: ImageJob, alive: (pid: number) => boolean = processAlive): { ready: number; of: number; deadline?: number } | undefined {
  if (job.streamStartedAt !== undefined || job.streamHeardAt === undefined || job.streamHostPid === undefined || !alive(job.streamHostPid)) return undefined;
  return { ready: job.machines.filter((m) => m.readyAt !== undefined).length, of: job.machines.length, deadline: job.streamDeadline };
}

/**
 * When the deploy's stream starts, in words. With `context` (image status) also where it
 * stands: how many PCs the running host has heard ready and when its timer runs out, or
 * that no running host holds the stream (never a readiness a stopped host left behind).
 */
export function describeStart(job: ImageJob, context?: StatusContext): string | undefined {
  if (job.kind !== 'deploy' || job.machines.length < 2) return undefined;
  if (job.streamStartedAt !== undefined) return `stream started at ${clock(job.streamStartedAt)}${job.goAt !== undefined ? ' (Go)' : ''}`;
  const live = context && liveStreamWait(job, context.alive);
  const ready = live ? `${live.ready} of ${live.of} PCs ready` : undefined;
  let rule: string;
  if (job.goAt !== undefined) rule = `Go given at ${clock(job.goAt)}: the stream starts as soon as the host has ready PCs`;
  else if (job.start.manual) rule = `stream starts on Go (bootbench image go ${job.id})`;
  else {
    const { count, afterSeconds } = job.start;
    const when = count === undefined ? 'every PC is ready' : `${count} PCs are ready`;
    const timer = live?.deadline !== undefined ? ` or at ${clock(live.deadline)}` : afterSeconds !== undefined ? ` or ${afterSeconds} s after the first` : '';
    rule = `stream starts when ${when}${timer}, or on Go`;
  }
  if (!context || job.machines.every((m) => m.result)) return rule;
  if (ready) return `${ready}; ${rule}`;
  // A word left by a host that is gone (a crash) says nothing of now.
  const gone = job.streamHeardAt !== undefined ? ` (the host that held it, process ${job.streamHostPid}, stopped after ${clock(job.streamHeardAt)})` : '';
  if (context.hostPid === undefined)
    return `${rule}; no Bootbench host is running on this data folder${gone}, so no PC is ready: start bootbench serve (or the app) on it`;
  return `${rule}; the running Bootbench (process ${context.hostPid}) holds no stream for it${gone}: no PC of it is ready (none has asked for its task yet, or that host sends deploys by HTTP)`;
}

function describeJob(job: ImageJob, context?: StatusContext): string {
  const lines = [`job ${job.id}: ${job.kind} ${job.image}${job.disk ? ` (disk ${job.disk})` : ''}, then ${job.then}, ${new Date(job.createdAt).toISOString()}`];
  const start = describeStart(job, context);
  if (start) lines.push(`  ${start}`);
  const live = context && liveStreamWait(job, context.alive);
  for (const m of job.machines) {
    const progress = m.total > 0 ? ` ${mib(m.bytes)} of ${mib(m.total)}` : '';
    const phase = live && !m.result && m.readyAt !== undefined ? `ready since ${clock(m.readyAt)}, waiting for the stream` : m.phase;
    const shares =
      m.streamed !== undefined || m.repaired !== undefined ? `, written ${mib(m.streamed ?? 0)} from the stream, ${mib(m.repaired ?? 0)} by repair` : '';
    lines.push(`  ${m.mac === ANY_MACHINE ? 'the next machine that boots' : m.mac}  ${phase}${progress}${shares}${m.reason ? `: ${m.reason}` : ''}`);
  }
  return lines.join('\n');
}

/** A job as `image status --json` gives it: readiness only from a live host, and the start in words. */
function statusJson(job: ImageJob, context: StatusContext) {
  const live = liveStreamWait(job, context.alive);
  const { streamHostPid: _pid, streamHeardAt: _at, streamDeadline: _deadline, ...rest } = job;
  const words = describeStart(job, context);
  return {
    ...rest,
    machines: job.machines.map(({ readyAt, ...m }) => (live && readyAt !== undefined ? { ...m, readyAt } : m)),
    ...(live ? { streamWait: live } : {}),
    ...(words ? { startWords: words } : {}),
  };
}

export async function imageCommand(args: string[], io: CommandIo = processIo): Promise<number> {
  return withFolder(args, IMAGE_USAGE, io, async ({ values, positionals }, dataDir) => {
    const [command, ...rest] = positionals;
    const json = values.json ?? false;
    const catalog = new ImageCatalog(dataDir);
    const out = (value: unknown, text: string) => io.stdout(json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);
    if (command === 'list') {
      const summaries = catalog.list().map((m) => catalog.summary(m));
      out(
        summaries,
        summaries.length === 0
          ? 'no images'
          : summaries
              .map(
                (s) =>
                  `${s.name}  from ${s.source.machine ?? s.source.mac} (${s.source.disk})  disk ${mib(s.diskBytes)}, used ${mib(s.usedBytes)}, stored ${mib(s.storedBytes)}  ${new Date(s.createdAt).toISOString()}`,
              )
              .join('\n'),
      );
      return 0;
    }
    if (command === 'verify' || command === 'delete') {
      const [name] = rest;
      if (!name) throw new UsageError(`image ${command} needs the image's NAME`);
      checkImageName(name);
      if (command === 'verify') {
        const result = await catalog.verify(name);
        const ok = result.bad.length === 0 && result.missing.length === 0;
        out(
          { name, ...result, ok },
          ok
            ? `${name}: all ${result.chunks} chunks check out`
            : `${name}: ${result.bad.length} damaged and ${result.missing.length} missing of ${result.chunks} chunks (first: ${[...result.bad, ...result.missing][0]}); capture the image again`,
        );
        return ok ? 0 : 1;
      }
      const store = openStore(dataDir);
      try {
        const users = new ImagingJobs(store.db).list().filter((j) => j.kind === 'deploy' && j.image === name && j.machines.some((m) => !m.result));
        if (users.length) throw new ImageError(`image "${name}" is being deployed by job ${users.map((j) => j.id).join(', ')}: wait for it to finish`);
      } finally {
        store.close();
      }
      const freed = catalog.remove(name);
      out({ name, deleted: true, ...freed }, `deleted ${name}: ${freed.chunks} chunks (${mib(freed.bytes)}) no other image uses were removed`);
      return 0;
    }
    const store = openStore(dataDir);
    try {
      const jobs = new ImagingJobs(store.db);
      if (command === 'status') {
        const shown = values.job ? [jobs.get(Number(values.job))].filter((j): j is ImageJob => !!j) : jobs.list();
        if (values.job && shown.length === 0) throw new ImageError(`no job ${values.job}`);
        const context: StatusContext = { hostPid: store.sharedWithPid };
        out(
          shown.map((j) => statusJson(j, context)),
          shown.length === 0 ? 'no imaging jobs' : shown.map((j) => describeJob(j, context)).join('\n'),
        );
        return shown.some((j) => j.machines.some((m) => m.result === 'failed')) ? 1 : 0;
      }
      if (command === 'capture') {
        if (rest.length) throw new UsageError(`image capture takes no positional arguments (got ${rest.join(' ')})`);
        const macs = values['next-machine'] ? [ANY_MACHINE, ...(values.machine ?? [])] : (values.machine ?? []);
        if (macs.length !== 1) throw new UsageError('image capture needs exactly one --machine MAC, or --next-machine');
        if (!values.name) throw new UsageError('image capture needs --name NAME for the new image');
        checkImageName(values.name);
        if (catalog.has(values.name)) throw new ImageError(`an image named "${values.name}" exists: delete it first or choose another name`);
        const job = jobs.create({ kind: 'capture', image: values.name, macs, disk: values.disk, then: thenAction(values.then) });
        const who = job.machines[0].mac === ANY_MACHINE ? 'the next PC that network-boots' : job.machines[0].mac;
        out(job, `${describeJob(job)}\nThe next network boot of ${who} captures its disk.`);
        return 0;
      }
      if (command === 'deploy') {
        const [name, ...extra] = rest;
        if (!name || extra.length) throw new UsageError('image deploy needs one image NAME');
        checkImageName(name);
        if (!catalog.has(name)) throw new ImageError(`no image named "${name}": see bootbench image list`);
        const macs = deployTargets(store, values.machine ?? [], values.group);
        const start = startRequest(values);
        try {
          startRule(start, macs.length);
        } catch (err) {
          throw new UsageError(`${(err as Error).message}`);
        }
        const job = jobs.create({ kind: 'deploy', image: name, macs, disk: values.disk, then: thenAction(values.then), start });
        out(job, `${describeJob(job)}\nThe next network boot of each PC deploys ${name}.`);
        return 0;
      }
      if (command === 'go') {
        const [which, ...extra] = rest;
        if (!which || extra.length) throw new UsageError('image go needs one JOB number or image NAME');
        const job = goTarget(jobs, which);
        const given = job.goAt === undefined ? jobs.go(job.id) : job;
        const text =
          given.streamStartedAt !== undefined
            ? `job ${job.id}: its stream started at ${clock(given.streamStartedAt)} already`
            : `job ${job.id}: Go${job.goAt !== undefined ? ' was given' : ''} at ${clock(given.goAt!)}; the running host starts the stream within a second, and PCs not ready yet join it when they are`;
        out(given, text);
        return 0;
      }
      throw new UsageError(`unknown command "image ${command ?? ''}"`);
    } finally {
      store.close();
    }
  });
}

/** The deploy `image go` means: a job number, or the one unfinished deploy of an image to several PCs. */
function goTarget(jobs: ImagingJobs, which: string): ImageJob {
  const streamed = (j: ImageJob) => j.kind === 'deploy' && j.machines.length > 1;
  if (/^\d+$/.test(which)) {
    const job = jobs.get(Number(which));
    if (!job) throw new ImageError(`no job ${which}: see bootbench image status`);
    if (!streamed(job)) throw new ImageError(`job ${which} has no stream to start: only a deploy to two PCs or more is sent as one stream`);
    if (job.machines.every((m) => m.result)) throw new ImageError(`job ${which} has ended: every PC of it is done or failed`);
    return job;
  }
  checkImageName(which);
  const open = jobs.list().filter((j) => streamed(j) && j.image === which && j.machines.some((m) => !m.result));
  if (open.length === 0) throw new ImageError(`no unfinished deploy of "${which}" to several PCs: see bootbench image status`);
  if (open.length > 1) throw new ImageError(`"${which}" is being deployed by jobs ${open.map((j) => j.id).join(', ')}: give the job number`);
  return open[0];
}

function deployTargets(store: Store, machines: string[], group: string | undefined): string[] {
  if (machines.length && group) throw new UsageError('give --machine or --group, not both');
  if (group) {
    const members = store.machines.list({ group });
    if (members.length === 0) throw new ImageError(`group "${group}" has no machines: see bootbench machines list`);
    const noMac = members.filter((m) => m.macs.length === 0).map((m) => m.name);
    if (noMac.length) throw new ImageError(`machines of group "${group}" without a MAC cannot be told their task: ${noMac.join(', ')}`);
    return members.map((m) => m.macs[0]);
  }
  if (machines.length === 0) throw new UsageError('image deploy needs --machine MAC (repeatable) or --group GROUP');
  return machines.map((value) => {
    const mac = normalizeMac(value);
    if (mac) return mac;
    const byName = store.machines.list().find((m) => m.name === value);
    if (byName?.macs[0]) return byName.macs[0];
    throw new UsageError(`--machine ${value}: not a MAC address nor the name of a machine with a MAC`);
  });
}

export async function machinesCommand(args: string[], io: CommandIo = processIo): Promise<number> {
  return withFolder(args, MACHINES_USAGE, io, ({ values, positionals }, dataDir) => {
    const [command, ...rest] = positionals;
    const json = values.json ?? false;
    if (command === 'import') {
      const [file] = rest;
      if (!file || rest.length > 1) throw new UsageError('machines import needs one FILE.csv');
      if (!existsSync(file)) throw new UsageError(`${file} does not exist`);
      const store = openStore(dataDir);
      try {
        const result = importMachinesCsv(store, readFileSync(file, 'utf8'), { dryRun: values['dry-run'] ?? false });
        const problems = result.problems.map((p) => `line ${p.line}: ${p.problem}${p.fix ? ` (${p.fix})` : ''}`);
        io.stdout(
          json
            ? `${JSON.stringify(result, null, 2)}\n`
            : `${values['dry-run'] ? 'would create' : 'created'} ${result.created}, ${values['dry-run'] ? 'would update' : 'updated'} ${result.updated}${problems.length ? `\n${problems.join('\n')}` : ''}\n`,
        );
        return result.problems.length ? 1 : 0;
      } finally {
        store.close();
      }
    }
    if (command === 'list') {
      if (rest.length) throw new UsageError('machines list takes no arguments');
      const store = openStore(dataDir);
      try {
        io.stdout(json ? `${JSON.stringify(store.machines.list(), null, 2)}\n` : exportMachinesCsv(store));
        return 0;
      } finally {
        store.close();
      }
    }
    throw new UsageError(`unknown command "machines ${command ?? ''}": use import or list`);
  });
}
