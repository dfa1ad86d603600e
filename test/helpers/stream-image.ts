// What the deploy-stream tests share: the agent's tools for a namespace (busybox applets and
// bb-stream-recv compiled from build/imaging-env) and a small raw image stored in a data
// folder's catalog, made here without a capture so a test controls every byte.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ImageCatalog, type ImageManifest } from '../../main/imaging/index.js';

const MIB = 1024 * 1024;
const RECEIVER_SOURCE = join(import.meta.dirname, '..', '..', 'build', 'imaging-env', 'bb-stream-recv.c');
const LINUX_FS_TYPE = '0FC63DAF-8483-4772-8E79-3D69C47D8E4D';

const run = (cmd: string, args: string[], input?: string | Buffer) => execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 256 * MIB });
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * A folder of busybox applets for the agent's PATH, as in the imaging environment; util-linux's
 * losetup stays in use (busybox's has no --sizelimit).
 */
export function busyboxBin(dir: string): string {
  if (existsSync(dir)) return dir;
  mkdirSync(dir, { recursive: true });
  for (const applet of run('busybox', ['--list']).toString().split('\n')) if (applet && applet !== 'losetup') symlinkSync('/bin/busybox', join(dir, applet));
  return dir;
}

/**
 * bb-stream-recv compiled into `dir` as the imaging environment's build does it: static with
 * libcrypto's SHA-256 where this host has them, else dynamic, else with its portable hash.
 */
export function streamReceiverBin(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const plain = ['-O2', '-pthread', '-o', join(dir, 'bb-stream-recv'), RECEIVER_SOURCE];
  const crypto = ['-DBB_LIBCRYPTO', ...plain, '-lcrypto'];
  const built = [['-static', ...crypto], crypto, ['-static', ...plain]].some((flags) => {
    try {
      run('gcc', flags);
      return true;
    } catch {
      return false;
    }
  });
  if (!built) run('gcc', plain);
  return dir;
}

export interface RawImageOptions {
  data: string;
  /** scratch folder for the reference disk's table */
  work: string;
  name?: string;
  sourceMac: string;
  sourceMachine?: string;
  /** the partition's bytes: one raw (dd) partition after 1 MiB */
  partition: Buffer;
  /** the boot area (440 bytes of boot code), stored as partition 0 when given */
  bootCode?: Buffer;
  zstdLevel?: number;
}

/** Stores a GPT image with one raw partition in the data folder's catalog; returns its compressed size. */
export async function storeRawImage(o: RawImageOptions): Promise<{ manifest: ImageManifest; compressedBytes: number }> {
  const partStart = 2048;
  const partMib = Math.ceil(o.partition.length / MIB);
  const diskMib = partMib + 4;
  const refFile = join(o.work, `reference-${process.pid}.img`);
  run('truncate', ['-s', `${diskMib}M`, refFile]);
  run('sfdisk', ['-q', refFile], `label: gpt\nstart=${partStart}, size=${partMib * 2048}, type=${LINUX_FS_TYPE}\n`);
  const table = run('sfdisk', ['--dump', refFile]).toString();
  rmSync(refFile, { force: true });

  const catalog = new ImageCatalog(o.data);
  let compressedBytes = 0;
  const chunksOf = async (bytes: Buffer): Promise<string[]> => {
    const names: string[] = [];
    for (let at = 0; at < bytes.length; at += 4 * MIB) {
      const packed = run('zstd', ['-q', `-${o.zstdLevel ?? 3}`, '-c'], bytes.subarray(at, at + 4 * MIB));
      const sha = sha256(packed);
      await catalog.chunks.put(sha, [packed]);
      compressedBytes += packed.length;
      names.push(sha);
    }
    return names;
  };
  const partitions: ImageManifest['partitions'] = [];
  if (o.bootCode)
    partitions.push({
      number: 0,
      start: 0,
      sectors: 1,
      fs: '',
      tool: 'boot',
      streamBytes: o.bootCode.length,
      streamSha256: sha256(o.bootCode),
      chunks: await chunksOf(o.bootCode),
    });
  partitions.push({
    number: 1,
    start: partStart,
    sectors: partMib * 2048,
    fs: '',
    tool: 'dd',
    streamBytes: o.partition.length,
    streamSha256: sha256(o.partition),
    chunks: await chunksOf(o.partition),
  });
  const manifest: ImageManifest = {
    format: 1,
    name: o.name ?? 'room',
    createdAt: Date.now(),
    source: { mac: o.sourceMac, ...(o.sourceMachine ? { machine: o.sourceMachine } : {}), disk: 'loop0' },
    diskBytes: diskMib * MIB,
    table,
    label: 'gpt',
    partitions,
  };
  catalog.add(manifest);
  return { manifest, compressedBytes };
}
