// Builds the Electron shell: main/app (and what it imports) with tsconfig.app.json into
// dist/, and the preload bundled into one CommonJS file, because a sandboxed preload can
// require nothing but `electron` and a few built-ins.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.app.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

await build({
  entryPoints: [join(root, 'preload/index.ts')],
  outfile: join(root, 'dist/preload/index.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'es2022',
  external: ['electron'],
  sourcemap: 'inline',
  logLevel: 'warning',
});
console.log('built dist/main/app/main.js and dist/preload/index.cjs');
