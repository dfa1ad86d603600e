// The images in the data folder: one manifest per image (<data>/images/catalog/NAME.json)
// naming its chunks in the chunk store. The manifest is written last, by rename, so an image
// exists only once every chunk it names is stored; chunks that no manifest names are
// removed at start (an interrupted capture) and when an image is deleted.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChunkStore } from './chunk-store.js';

export const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface ImagePartition {
  number: number;
  /** first sector and length in 512-byte sectors, as in the partition table */
  start: number;
  sectors: number;
  /** what blkid called it ('ext4', 'ntfs', 'vfat' ... or '' for none) */
  fs: string;
  /**
   * how it was read: a partclone tool ('extfs', 'ntfs', 'fat', 'xfs', 'btrfs', 'dd'), or
   * 'boot' for partition 0, the boot area (MBR boot code, and on MBR disks the gap before
   * the first partition)
   */
  tool: string;
  /** the partclone stream: its length and SHA-256, what a re-read of the deployed partition must match */
  streamBytes: number;
  streamSha256: string;
  chunks: string[];
}

export interface ImageManifest {
  format: 1;
  name: string;
  createdAt: number;
  source: { mac: string; machine?: string; disk: string; model?: string; serial?: string };
  diskBytes: number;
  /** `sfdisk --dump` of the source disk */
  table: string;
  label: 'gpt' | 'dos';
  partitions: ImagePartition[];
}

export interface ImageSummary {
  name: string;
  createdAt: number;
  source: ImageManifest['source'];
  diskBytes: number;
  /** bytes of the partclone streams: the data that was in use */
  usedBytes: number;
  /** bytes this image's chunks take in the store (shared chunks counted in full) */
  storedBytes: number;
  partitions: number;
  chunks: number;
}

export class ImageError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export function checkImageName(name: string): void {
  if (!IMAGE_NAME.test(name)) {
    throw new ImageError(`image name "${name}" is not allowed: use letters, digits, '.', '_' and '-' (up to 64, starting with a letter or digit)`);
  }
}

/** Sectors the target disk must have: the end of the last partition, plus GPT's backup table. */
export function requiredDiskBytes(manifest: Pick<ImageManifest, 'partitions' | 'label'>): number {
  const end = Math.max(0, ...manifest.partitions.map((p) => p.start + p.sectors));
  return (end + (manifest.label === 'gpt' ? 33 : 0)) * 512;
}

export class ImageCatalog {
  readonly chunks: ChunkStore;
  private readonly dir: string;

  constructor(dataDir: string) {
    const imagesDir = join(dataDir, 'images');
    this.dir = join(imagesDir, 'catalog');
    mkdirSync(this.dir, { recursive: true });
    this.chunks = new ChunkStore(imagesDir);
  }

  private file(name: string): string {
    checkImageName(name);
    return join(this.dir, `${name}.json`);
  }

  has(name: string): boolean {
    return existsSync(this.file(name));
  }

  get(name: string): ImageManifest | undefined {
    const path = this.file(name);
    if (!existsSync(path)) return undefined;
    return JSON.parse(readFileSync(path, 'utf8')) as ImageManifest;
  }

  list(): ImageManifest[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as ImageManifest)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  summary(manifest: ImageManifest): ImageSummary {
    const unique = new Set(manifest.partitions.flatMap((p) => p.chunks));
    let storedBytes = 0;
    for (const sha of unique) storedBytes += this.chunks.has(sha) ? this.chunks.size(sha) : 0;
    return {
      name: manifest.name,
      createdAt: manifest.createdAt,
      source: manifest.source,
      diskBytes: manifest.diskBytes,
      usedBytes: manifest.partitions.reduce((sum, p) => sum + p.streamBytes, 0),
      storedBytes,
      partitions: manifest.partitions.length,
      chunks: unique.size,
    };
  }

  /** Adds an image once all its chunks are stored; refuses to replace an existing one. */
  add(manifest: ImageManifest): void {
    const path = this.file(manifest.name);
    if (existsSync(path)) throw new ImageError(`an image named "${manifest.name}" exists: delete it first or choose another name`, 409);
    const missing = manifest.partitions.flatMap((p) => p.chunks).filter((sha) => !this.chunks.has(sha));
    if (missing.length) throw new ImageError(`${missing.length} chunk(s) of "${manifest.name}" were never stored (first: ${missing[0]})`, 422);
    const temp = `${path}.part`;
    writeFileSync(temp, `${JSON.stringify(manifest, null, 1)}\n`);
    renameSync(temp, path);
  }

  /** Deletes an image and the chunks no other image uses. */
  remove(name: string, keepAlso: ReadonlySet<string> = new Set()): { chunks: number; bytes: number } {
    const path = this.file(name);
    if (!existsSync(path)) throw new ImageError(`no image named "${name}"`, 404);
    rmSync(path);
    return this.collect(keepAlso);
  }

  /** Removes chunks that no image names (and are not in `keepAlso`: captures under way). */
  collect(keepAlso: ReadonlySet<string> = new Set()): { chunks: number; bytes: number } {
    for (const f of readdirSync(this.dir)) if (f.endsWith('.part')) rmSync(join(this.dir, f), { force: true });
    const keep = new Set(keepAlso);
    for (const manifest of this.list()) for (const p of manifest.partitions) for (const sha of p.chunks) keep.add(sha);
    return this.chunks.collect(keep);
  }

  /** Re-hashes every chunk of an image. */
  async verify(name: string, onChunk?: (done: number, total: number) => void): Promise<{ chunks: number; bad: string[]; missing: string[] }> {
    const manifest = this.get(name);
    if (!manifest) throw new ImageError(`no image named "${name}"`, 404);
    const unique = [...new Set(manifest.partitions.flatMap((p) => p.chunks))];
    const bad: string[] = [];
    const missing: string[] = [];
    let done = 0;
    for (const sha of unique) {
      if (!this.chunks.has(sha)) missing.push(sha);
      else if ((await this.chunks.hashOf(sha)) !== sha) bad.push(sha);
      onChunk?.(++done, unique.length);
    }
    return { chunks: unique.length, bad, missing };
  }
}
