// A chunk damaged in a data folder's store, as bit rot on the host's disk leaves it: the same
// name (its SHA-256) and size, one byte flipped, so only a reader that hashes it can tell.
import { readFileSync, writeFileSync } from 'node:fs';
import type { ImageCatalog } from '../../main/imaging/index.js';

/** Flips the middle byte of chunk `sha` in `catalog`'s store; returns what puts the good bytes back. */
export function damageChunk(catalog: ImageCatalog, sha: string): () => void {
  const path = catalog.chunks.path(sha);
  const good = readFileSync(path);
  const bad = Buffer.from(good);
  bad[bad.length >> 1] ^= 0xff;
  writeFileSync(path, bad);
  return () => writeFileSync(path, good);
}
