// Launches the real Electron app with Playwright where an Electron binary exists (and a
// display): window opens from app://bootbench, the preload bridge is there, Node is not,
// and a call reaches the in-process host. Elsewhere it is reported skipped, with why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { _electron } from 'playwright-core';
// @ts-expect-error plain ESM helper shared with scripts/start.mjs
import { findElectron } from '../../scripts/find-electron.mjs';

const root = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../..');
const electron = findElectron(root) as { binary?: string; reason?: string };

test(
  'Electron app: secure window, bridge, a call to the host',
  { skip: electron.reason ? `Electron cannot run here: ${electron.reason}` : false, timeout: 120_000 },
  async () => {
    for (const script of ['build:renderer', 'build:app']) {
      const built = spawnSync('npm', ['run', script], { cwd: root, stdio: 'inherit' });
      assert.equal(built.status, 0, `npm run ${script}`);
    }
    const dataDir = mkdtempSync(join(tmpdir(), 'bb-electron-'));
    const app = await _electron.launch({
      executablePath: electron.binary!,
      args: [root],
      cwd: root,
      env: { ...process.env, BOOTBENCH_DATA: dataDir } as Record<string, string>,
    });
    try {
      const window = await app.firstWindow();
      await window.waitForSelector('[data-screen=start]');
      assert.equal(await window.title(), 'Bootbench');
      assert.match(window.url(), /^app:\/\/bootbench\//);
      const facts = await window.evaluate(async () => ({
        bridge: typeof (window as any).bootbench?.calls?.['services:status'],
        require: typeof (globalThis as any).require,
        process: typeof (globalThis as any).process,
        status: await (window as any).bootbench.calls['services:status'](),
      }));
      assert.deepEqual(
        { ...facts, status: typeof facts.status.running },
        { bridge: 'function', require: 'undefined', process: 'undefined', status: 'boolean' },
      );
      // New windows and navigation are refused.
      await window.evaluate(() => window.open('https://example.com/'));
      assert.equal(app.windows().length, 1);
    } finally {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
);
