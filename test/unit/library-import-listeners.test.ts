// Copying a file into the library waits for the copy's write buffer to drain once per chunk;
// each wait must leave no listener behind, or a file of some megabytes piles them up on the
// copy's WriteStream (MaxListenersExceededWarning: 11 error listeners added to [WriteStream]).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashFile } from '../../main/library/import.js';

const dir = mkdtempSync(join(tmpdir(), 'bootbench-import-listeners-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a 24 MiB copy into the library raises no listener warning and copies every byte', async () => {
  const content = randomBytes(24 * 1024 * 1024);
  writeFileSync(join(dir, 'kernel'), content);
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  try {
    const result = await hashFile(join(dir, 'kernel'), join(dir, 'copy'));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings, []);
    assert.equal(result.size, content.length);
    assert.equal(result.sha256, createHash('sha256').update(content).digest('hex'));
    assert.ok(readFileSync(join(dir, 'copy')).equals(content));
  } finally {
    process.off('warning', onWarning);
  }
});
