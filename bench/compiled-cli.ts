// The compiled CLI (dist/main/cli/bootbench.js), which is what an installed Bootbench runs
// (bin/bootbench.js), and whether it is current. Tests and benchmarks that measure the
// host's own timing or CPU run it rather than the sources through tsx: tsx compiles modules
// on first use through an esbuild child process, and that work (and the child's CPU) lands
// inside the measurement; an idle process with tsx's loader also uses CPU every second where
// plain node uses none (bench/README.md). Here, not in test/: the bench must not import tests.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
// @ts-expect-error plain ESM helper shared with scripts/start.mjs
import { compiledCli, compiledHostIsCurrent } from '../scripts/compiled-host.mjs';

const ROOT = join(import.meta.dirname, '..');
export const COMPILED_CLI: string = compiledCli(ROOT);

/** True when `root`/dist/main/cli/bootbench.js exists and is newer than every source it is built from (main/ but main/app/, preload/api.ts). */
export function compiledCliIsCurrent(root = ROOT): boolean {
  return compiledHostIsCurrent(root);
}

/**
 * The compiled main/ of the checkout at `root` (its dist/main folder), compiled first with the
 * checkout's own tsconfig.json when a source is newer than the build.
 */
export function ensureCompiled(root = ROOT): string {
  if (!compiledCliIsCurrent(root)) {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], {
      cwd: root,
      stdio: 'inherit',
    });
  }
  return join(root, 'dist', 'main');
}
