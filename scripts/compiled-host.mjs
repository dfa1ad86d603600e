// Whether the compiled host (dist/, from `npm run build:main`) is current: newer than every
// source tsconfig.json compiles, which is main/ except main/app/ (the Electron shell, built by
// build:app) plus preload/api.ts. Shared by `npm start`, the tests and the bench.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Newest modification time of the .ts files under `dir`, the folder `skip` left out. */
function newestSource(dir, skip) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path !== skip) newest = Math.max(newest, newestSource(path, skip));
    } else if (entry.name.endsWith('.ts')) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/** The compiled CLI of the checkout at `root`. */
export function compiledCli(root) {
  return join(root, 'dist', 'main', 'cli', 'bootbench.js');
}

/** True when `root`/dist/main/cli/bootbench.js exists and is newer than every source it is built from. */
export function compiledHostIsCurrent(root) {
  const cli = compiledCli(root);
  if (!existsSync(cli)) return false;
  const preload = join(root, 'preload', 'api.ts');
  const newest = Math.max(newestSource(join(root, 'main'), join(root, 'main', 'app')), existsSync(preload) ? statSync(preload).mtimeMs : 0);
  return statSync(cli).mtimeMs >= newest;
}
