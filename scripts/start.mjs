// `npm start`: the desktop app where Electron can run; otherwise the same UI in a browser,
// served by the headless host (web mode), with the reason printed first.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compiledCli, compiledHostIsCurrent } from './compiled-host.mjs';
import { findElectron } from './find-electron.mjs';
import { ensureBootBinaries } from './boot-resources.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);

function run(script) {
  const result = spawnSync('npm', ['run', script], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

function forwardSignals(child) {
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 0)));
}

const electron = findElectron(root);
if (!existsSync(join(root, 'dist/renderer/index.html'))) run('build:renderer');
// Without them PCs are handed a boot file that is not there: BIOS and UEFI PCs alike.
const boot = ensureBootBinaries({ out: join(root, 'resources', 'boot') });
if (boot.missing.length > 0) {
  console.log(
    `Boot programs still missing: ${boot.missing.join(', ')}. The Start screen and \`bootbench doctor\` say which PCs cannot boot and how to fix it.`,
  );
}

if (electron.binary && !electron.reason) {
  run('build:app');
  console.log('Starting the Bootbench desktop app…');
  forwardSignals(spawn(electron.binary, [root, ...args], { cwd: root, stdio: 'inherit' }));
} else {
  console.log(`Not starting the desktop app: ${electron.reason}`);
  console.log('Starting the headless host with the web UI instead; open the address printed below in a browser.');
  // The compiled host, as an installed Bootbench runs it (built first when a source is newer):
  // under tsx, the loader alone kept an idle host busy for about 25 ms of CPU a second.
  // A type error fails the build but tsc still writes the JavaScript, as tsx would have run
  // it: say so and start.
  const cli = compiledCli(root);
  if (!compiledHostIsCurrent(root)) {
    const build = spawnSync('npm', ['run', 'build:main'], { cwd: root, stdio: 'inherit' });
    if (build.status !== 0) {
      if (!existsSync(cli)) process.exit(build.status ?? 1);
      console.log('The TypeScript build reported the errors above; starting the compiled host anyway.');
    }
  }
  forwardSignals(spawn(process.execPath, [cli, 'app', ...args], { cwd: root, stdio: 'inherit' }));
}
