// Content-addressed chunk store: <data>/images/chunks/<first two hex>/<sha256>.zst. A chunk
// is named by the SHA-256 of its stored (compressed) bytes, so the name is the check: a
// chunk is accepted only when the bytes hash to it, and two images that share a chunk
// store it once. Writes go to a temporary name first and are renamed into place, so a
// crash leaves a stray temporary file (removed at the next start), never a wrong chunk.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

export const CHUNK_NAME = /^[0-9a-f]{64}$/;
/** Upper bound for one stored chunk: 4 MiB of disk data that zstd could not shrink, plus its frame. */
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024 + 64 * 1024;

export class ChunkError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export class ChunkStore {
  readonly dir: string;

  constructor(imagesDir: string) {
    this.dir = join(imagesDir, 'chunks');
    mkdirSync(this.dir, { recursive: true });
  }

  path(sha: string): string {
    if (!CHUNK_NAME.test(sha)) throw new ChunkError(`not a chunk name: ${sha}`, 400);
    return join(this.dir, sha.slice(0, 2), `${sha}.zst`);
  }

  has(sha: string): boolean {
    return existsSync(this.path(sha));
  }

  size(sha: string): number {
    return statSync(this.path(sha)).size;
  }

  open(sha: string): Readable {
    // A chunk is a few MiB: 1 MiB reads take a sixteenth of the calls the 64 KiB default does.
    return createReadStream(this.path(sha), { highWaterMark: 1024 * 1024 });
  }

  /** Receive buffers of finished uploads, reused by the next (see put). */
  private readonly spare: Buffer[] = [];

  /**
   * Stores the bytes from `body` as chunk `sha`, after checking that they hash to it.
   * Resolves to false when the chunk was already stored (the body is drained, not kept).
   */
  async put(sha: string, body: AsyncIterable<Buffer>): Promise<boolean> {
    // Each network read is copied into one reused buffer and hashed as it comes, then the
    // chunk is written in one call. The reads die young that way: held until the chunk is
    // complete, they outlived the young generation and every chunk cost a full GC's share.
    const buffer = this.spare.pop() ?? Buffer.allocUnsafeSlow(MAX_CHUNK_BYTES);
    try {
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const piece of body) {
        if (bytes + piece.length > MAX_CHUNK_BYTES) throw new ChunkError(`chunk ${sha} is larger than ${MAX_CHUNK_BYTES} bytes`, 413);
        hash.update(piece);
        piece.copy(buffer, bytes);
        bytes += piece.length;
      }
      const actual = hash.digest('hex');
      if (actual !== sha) throw new ChunkError(`chunk ${sha} arrived with SHA-256 ${actual}: damaged in transit, send it again`, 422);
      const target = this.path(sha);
      if (existsSync(target)) return false;
      mkdirSync(join(this.dir, sha.slice(0, 2)), { recursive: true });
      const temp = `${target}.${randomBytes(6).toString('hex')}.part`;
      try {
        await writeFile(temp, buffer.subarray(0, bytes));
        renameSync(temp, target);
      } catch (error) {
        rmSync(temp, { force: true });
        throw error;
      }
      return true;
    } finally {
      // A few spares cover the uploads one capture keeps in flight; more would only hold memory.
      if (this.spare.length < 4) this.spare.push(buffer);
    }
  }

  /** Every stored chunk name. */
  list(): string[] {
    const names: string[] = [];
    for (const prefix of readdirSync(this.dir)) {
      const dir = join(this.dir, prefix);
      if (!statSync(dir).isDirectory()) continue;
      for (const file of readdirSync(dir)) {
        const name = file.replace(/\.zst$/, '');
        if (file.endsWith('.zst') && CHUNK_NAME.test(name)) names.push(name);
      }
    }
    return names;
  }

  /**
   * Removes every chunk not in `keep` and every temporary file. Returns what was removed.
   * The caller decides what to keep: chunks of finished images and of captures under way.
   */
  collect(keep: ReadonlySet<string>): { chunks: number; bytes: number } {
    let chunks = 0;
    let bytes = 0;
    for (const prefix of readdirSync(this.dir)) {
      const dir = join(this.dir, prefix);
      if (!statSync(dir).isDirectory()) continue;
      for (const file of readdirSync(dir)) {
        const name = file.replace(/\.zst$/, '');
        const temporary = file.endsWith('.part');
        if (!temporary && keep.has(name)) continue;
        const path = join(dir, file);
        bytes += statSync(path).size;
        rmSync(path, { force: true });
        if (!temporary) chunks += 1;
      }
    }
    return { chunks, bytes };
  }

  /** Re-hashes one stored chunk. */
  async hashOf(sha: string): Promise<string> {
    const hash = createHash('sha256');
    for await (const piece of this.open(sha)) hash.update(piece as Buffer);
    return hash.digest('hex');
  }
}
