// Temporary data folders for store tests, removed when the test file ends.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function makeTempDir(prefix = 'bootbench-store-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** 64 hex digits that look like a SHA-256, distinct per seed. */
export function fakeSha256(seed: number): string {
  return seed.toString(16).padStart(64, '0');
}
