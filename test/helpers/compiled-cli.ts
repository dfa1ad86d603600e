// The compiled CLI (dist/main/cli.js), which is what an installed Bootbench runs
// (bin/bootbench.js), and whether it is current. Tests that measure the host's own timing
// run it rather than the sources through tsx: tsx compiles modules on first use through an
// esbuild child process, and that work (and the child's CPU) lands inside the measurement.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
export const COMPILED_CLI = join(ROOT, 'dist', 'main', 'cli.js');

/** Newest modification time of a .ts file under a folder. */
export function newestSource(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    newest = Math.max(newest, st.isDirectory() ? newestSource(path) : name.endsWith('.ts') ? st.mtimeMs : 0);
  }
  return newest;
}

/** True when dist/main/cli.js exists and is newer than every source under main/. */
export function compiledCliIsCurrent(): boolean {
  return existsSync(COMPILED_CLI) && statSync(COMPILED_CLI).mtimeMs >= newestSource(join(ROOT, 'main'));
}
