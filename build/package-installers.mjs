// `npm run dist` after the build: runs electron-builder with the given arguments, then makes
// sure better-sqlite3 still loads under Node. electron-builder compiles native modules for
// Electron's ABI in place, in this project's node_modules (app-builder-lib's rebuild uses the
// app folder as build path); left so, `npm test` and `bootbench serve` would fail with
// NODE_MODULE_VERSION errors until someone ran `npm rebuild better-sqlite3`.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const builderCli = join(root, 'node_modules', 'electron-builder', 'cli.js');

const builder = spawnSync(process.execPath, [builderCli, ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });

function sqliteLoadsInNode() {
  const probe = "const D = require('better-sqlite3'); new D(':memory:').close();";
  return spawnSync(process.execPath, ['-e', probe], { cwd: root, stdio: 'ignore' }).status === 0;
}

let restored = true;
if (!sqliteLoadsInNode()) {
  console.log('Putting back the Node build of better-sqlite3 (electron-builder compiled it for Electron in place)...');
  const rebuild = spawnSync('npm', ['rebuild', 'better-sqlite3'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  restored = rebuild.status === 0 && sqliteLoadsInNode();
  if (!restored) console.error('better-sqlite3 does not load under Node any more: run `npm rebuild better-sqlite3` before `npm test`.');
}
process.exitCode = builder.status !== 0 ? (builder.status ?? 1) : restored ? 0 : 1;
