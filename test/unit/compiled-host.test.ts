// scripts/compiled-host.mjs: when npm start, the tests and the bench rebuild dist/ first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
// @ts-expect-error plain ESM helper shared with scripts/start.mjs
import { compiledHostIsCurrent } from '../../scripts/compiled-host.mjs';

const isCurrent = compiledHostIsCurrent as (root: string) => boolean;

test('dist/main/cli/bootbench.js is current until a source tsconfig.json compiles is newer (main/, not main/app/; preload/api.ts)', () => {
  const root = mkdtempSync(join(tmpdir(), 'bb-compiled-host-'));
  try {
    const at = (rel: string, seconds: number) => {
      const path = join(root, rel);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, '');
      utimesSync(path, seconds, seconds);
    };
    at('main/cli/bootbench.ts', 1000);
    at('main/tftp/server.ts', 1000);
    at('preload/api.ts', 1000);
    assert.equal(isCurrent(root), false, 'no build yet');
    at('dist/main/cli/bootbench.js', 2000);
    assert.equal(isCurrent(root), true);
    at('main/app/main.ts', 3000);
    assert.equal(isCurrent(root), true, 'main/app/ is the Electron shell, built by build:app');
    at('main/tftp/server.ts', 3000);
    assert.equal(isCurrent(root), false, 'a source in a subfolder of main/ is newer');
    at('dist/main/cli/bootbench.js', 4000);
    at('preload/api.ts', 5000);
    assert.equal(isCurrent(root), false, 'preload/api.ts is newer');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
