// What the two imaging labs of `npm run bench` (imaging-lab.ts, imaging-stream-lab.ts) set up
// alike: busybox's applets for the agent, loop devices over the bench's own files (never a disk
// of this machine), the reference disk both sides capture, and a script timed in a namespace.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MiB } from './lab.js';
import type { Lab } from './netns.js';

/** The reference disk's one partition starts at 1 MiB (sector 2048). */
export const PART_OFFSET = MiB;

export const sh = (script: string): string => execFileSync('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * MiB }).toString();

/** The MAC of the `n`th PC of a lab, `52:54:00:PREFIX:..:..`. */
export function labMac(prefix: string, n: number): string {
  return `52:54:00:${prefix}:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;
}

/** A new folder `dir` of busybox's applets, first on the agent's PATH as in the imaging environment (losetup: util-linux's, for --sizelimit). */
export function busyboxApplets(dir: string): string {
  mkdirSync(dir);
  for (const applet of execFileSync('busybox', ['--list']).toString().split('\n')) {
    if (applet && applet !== 'losetup') symlinkSync('/bin/busybox', join(dir, applet));
  }
  return dir;
}

/** The loop devices a lab attached, so its tear-down detaches every one. */
export class LoopDevices {
  readonly attached = new Set<string>();

  attach(file: string, extra: string[] = []): string {
    const dev = execFileSync('losetup', ['-f', '--show', ...extra, file])
      .toString()
      .trim();
    this.attached.add(dev);
    return dev;
  }

  detach(dev: string): void {
    try {
      execFileSync('losetup', ['-d', dev], { stdio: 'ignore' });
    } catch {
      /* gone */
    }
    this.attached.delete(dev);
  }

  /**
   * Detaches `devs` (all attached by default) and the partition loops an agent or a pipeline
   * made over them (one that was stopped never detached its own). A loop over a loop names its
   * backing device as `/loopN` when made inside a namespace, `/dev/loopN` otherwise.
   */
  release(devs: string[] = [...this.attached]): void {
    const all = JSON.parse(execFileSync('losetup', ['-J', '-l']).toString() || '{"loopdevices":[]}') as {
      loopdevices: { name: string; 'back-file': string }[];
    };
    const names = new Set(devs.map((d) => d.replace('/dev/', '')));
    for (const loop of all.loopdevices) {
      const back = (loop['back-file'] ?? '').replace(/ \(deleted\)$/, '');
      if (names.has(back.replace(/^\/(dev\/)?/, ''))) this.detach(loop.name);
    }
    for (const dev of devs) this.detach(dev);
  }
}

/**
 * Builds `dir`/reference.img, attached read-only, and `dir`/table (its sfdisk dump): GPT, one
 * ext4 partition; the used part is half real files (a stream of /usr: programs, libraries,
 * text, which zstd shrinks about 2.5x) and half random files (media, archives: incompressible).
 * Both sides of a case capture and deploy this same disk. mke2fs fills the file system from a
 * staging folder (-d), straight into the disk file: a mount could leave the superblock behind
 * the bitmaps while another mount namespace still holds it.
 */
export function buildReferenceDisk(dir: string, sizes: { diskMiB: number; usedMiB: number }, loops: LoopDevices): { dev: string; partSectors: number } {
  const file = join(dir, 'reference.img');
  sh(`truncate -s ${sizes.diskMiB}M ${file} && printf 'label: gpt\\nstart=2048, type=0FC63DAF-8483-4772-8E79-3D69C47D8E4D\\n' | sfdisk -q ${file}`);
  const sectors = Number(/start=\s*2048, size=\s*(\d+)/.exec(sh(`sfdisk --dump ${file}`))![1]);
  const stage = join(dir, 'stage');
  mkdirSync(join(stage, 'usr'), { recursive: true });
  mkdirSync(join(stage, 'media'));
  mkdirSync(join(stage, 'etc'));
  writeFileSync(join(stage, 'etc', 'hostname'), 'reference\n');
  const half = (sizes.usedMiB / 2) * MiB;
  const randomFiles = 16;
  try {
    // A truncated tar stream: tar complains about the cut end, the files before it are whole.
    sh(`(tar -C /usr -cf - lib share bin 2>/dev/null | head -c ${half} | tar -C ${stage}/usr -xf - 2>/dev/null) || true`);
    for (let i = 0; i < randomFiles; i++) sh(`head -c ${Math.floor(half / randomFiles)} /dev/urandom > ${stage}/media/file-${i}.bin`);
    sh(`mkfs.ext4 -q -F -b 4096 -E offset=${PART_OFFSET} -d ${stage} ${file} ${Math.floor(sectors / 8) * 4}k`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  writeFileSync(join(dir, 'table'), sh(`sfdisk --dump ${file} | grep -v -e '^device:' -e '^last-lba:'`));
  return { dev: loops.attach(file, ['-r']), partSectors: sectors };
}

/**
 * Runs `script` (bash, with `env` exported inside: `ip netns exec` itself must come from the
 * host's PATH) in namespace `ns`, its output to `logFile`; its start and end are taken inside,
 * so `ip netns exec` start-up is not counted. Rejects on a non-zero exit. `children` holds
 * the shell while it runs, for a lab that must stop it.
 */
export function timedIn(
  lab: Lab,
  ns: string,
  script: string,
  env: NodeJS.ProcessEnv,
  logFile: string,
  what: string,
  children?: Set<ChildProcess>,
): Promise<{ start: number; end: number }> {
  const exports = Object.entries(env)
    .map(([k, v]) => `export ${k}='${v}'; `)
    .join('');
  const wrapped = `s=$(date +%s%N); ( ${exports}${script} ) >"$BENCH_LOG" 2>&1; rc=$?; e=$(date +%s%N); echo "$s $e $rc"`;
  return new Promise((resolveTime, reject) => {
    const child = lab.spawn(ns, 'bash', ['-c', wrapped], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BENCH_LOG: logFile } });
    children?.add(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    // 'close', not 'exit': exit can come before the last of stdout has been read.
    child.on('close', () => {
      children?.delete(child);
      const [s, e, rc] = out.trim().split(' ').map(Number);
      if (rc !== 0 || !Number.isFinite(e))
        reject(new Error(`${what} failed (exit ${rc}): ${existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-600) : out}`));
      else resolveTime({ start: s / 1e9, end: e / 1e9 });
    });
  });
}
