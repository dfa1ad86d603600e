// `npm start`: the desktop app where Electron can run; otherwise the same UI in a browser,
// served by the headless host (web mode), with the reason printed first.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findElectron } from './find-electron.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);

function run(script) {
  const result = spawnSync('npm', ['run', script], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

/** Newest modification time of a .ts file under a folder. */
function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
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
  // The compiled host, as an installed Bootbench runs it (built first when a source is newer):
  // under tsx, the loader alone kept an idle host busy for about 25 ms of CPU a second.
  const cli = join(root, 'dist/main/cli.js');
  if (!existsSync(cli) || statSync(cli).mtimeMs < newestSource(join(root, 'main'))) run('build:main');
  forwardSignals(spawn(process.execPath, [cli, 'app', ...args], { cwd: root, stdio: 'inherit' }));
}
