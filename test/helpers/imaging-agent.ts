// The imaging agent (build/imaging-env/agent.sh) on this Linux host, as the imaging
// environment runs it: under busybox with its applets first on PATH, allowed to see only the
// loop devices a test made (BOOTBENCH_AGENT_DISKS), never a disk of this machine.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

export const AGENT = join(import.meta.dirname, '..', '..', 'build', 'imaging-env', 'agent.sh');
const IMGIO_SOURCE = join(import.meta.dirname, '..', '..', 'build', 'imaging-env', 'bb-imgio.c');

/**
 * A folder holding bb-imgio compiled from build/imaging-env/bb-imgio.c (static as the imaging
 * environment links it, else dynamic), for the agent's PATH; undefined when this host cannot
 * build it (no libzstd-dev or libssl-dev), and the agent then moves chunks by its shell path.
 */
export function imgioBin(work: string): string | undefined {
  const dir = join(work, 'imgio-bin');
  const binary = join(dir, 'bb-imgio');
  if (existsSync(binary)) return dir;
  mkdirSync(dir, { recursive: true });
  for (const extra of [['-static'], []]) {
    try {
      execFileSync('gcc', [...extra, '-O2', '-pthread', '-o', binary, IMGIO_SOURCE, '-lzstd', '-lcrypto'], { stdio: 'ignore' });
      return dir;
    } catch {
      /* next way, or none */
    }
  }
  return undefined;
}
const NEEDED = ['busybox', 'losetup', 'sfdisk', 'partclone.extfs', 'partclone.restore', 'zstd', 'mkfs.ext4', 'blkid', 'mount', 'curl'];

/** Why the agent cannot run here on loop devices, or undefined. */
export function agentSkipReason(needed: string[] = NEEDED): string | undefined {
  if (process.getuid?.() !== 0) return 'loop devices need root';
  const missing = needed.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
      return false;
    } catch {
      return true;
    }
  });
  return missing.length ? `missing: ${missing.join(', ')} (apt-get install busybox-static partclone zstd fdisk e2fsprogs curl)` : undefined;
}

/**
 * Runs the agent as the PC with `mac` against the host at `url`; `work` holds its temporary
 * files. With bb-imgio on its PATH unless `imgio` is false (the shell path, as on a system without it).
 */
export function runAgent(url: string, mac: string, disks: string[], work: string, imgio = true): Promise<{ code: number | null; out: string }> {
  const bin = join(work, 'busybox-bin');
  if (!existsSync(bin)) {
    mkdirSync(bin);
    // util-linux's losetup, not busybox's: the agent needs --sizelimit.
    const applets = execFileSync('busybox', ['--list'])
      .toString()
      .split('\n')
      .filter((a) => a && a !== 'losetup');
    for (const applet of applets) symlinkSync('/bin/busybox', join(bin, applet));
  }
  const imgioDir = imgio ? imgioBin(work) : undefined;
  return new Promise((resolve) => {
    const child = spawn('/bin/busybox', ['sh', AGENT, 'run', url, mac], {
      env: { PATH: `${bin}:${imgioDir ? `${imgioDir}:` : ''}/usr/sbin:/usr/bin:/sbin:/bin`, BOOTBENCH_AGENT_DISKS: disks.join(' '), BOOTBENCH_AGENT_TMP: work },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => resolve({ code, out }));
  });
}
