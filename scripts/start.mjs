// `npm start`: the desktop app where Electron can run; otherwise the same UI in a browser,
// served by the headless host (web mode), with the reason printed first.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findElectron } from './find-electron.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);

function run(script) {
  const result = spawnSync('npm', ['run', script], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

function forwardSignals(child) {
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(signal ? 1 : code ?? 0));
}

const electron = findElectron(root);
if (!existsSync(join(root, 'dist/renderer/index.html'))) run('build:renderer');

if (electron.binary && !electron.reason) {
  run('build:app');
  console.log('Starting the Bootbench desktop app…');
  forwardSignals(spawn(electron.binary, [root, ...args], { cwd: root, stdio: 'inherit' }));
} else {
  console.log(`Not starting the desktop app: ${electron.reason}`);
  console.log('Starting the headless host with the web UI instead; open the address printed below in a browser.');
  const entry = join(root, 'main/cli.ts');
  forwardSignals(spawn(process.execPath, ['--import', 'tsx', entry, 'app', ...args], { cwd: root, stdio: 'inherit' }));
}
