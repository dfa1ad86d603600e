// Runs electron-builder itself with electron-builder.yml, `--dir` (the unpacked app, no
// installer tools needed):
//  - with a stand-in Electron binary (a shell script carrying Electron's fuse wire), which runs
//    anywhere: the real asar, unpacked natives, fuses and bootbench-host are checked, and the
//    asar is compared with what packaging-selection.ts computes, so both agree;
//  - with a real Electron where one is unpacked locally (ELECTRON_OVERRIDE_DIST_PATH or
//    node_modules/electron/dist), then runs the packaged CLI through bootbench-host.
// npmRebuild is off in both: rebuilding better-sqlite3 for Electron downloads Electron's
// headers, which only CI (.github/workflows/installers.yml) can do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadBuilderConfig, packagedSelection, relativeTo, type BuilderPlatform, type Target } from './packaging-selection.js';

const root = resolve(import.meta.dirname, '../..');
const requireFromApp = createRequire(join(root, 'package.json'));
const config = loadBuilderConfig(root);
const here: Target = { platform: process.platform as BuilderPlatform, arch: process.arch };
const builderCli = join(root, 'node_modules/electron-builder/cli.js');
const FUSE_SENTINEL = 'dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX';

function prerequisitesMissing(): string | undefined {
  if (process.platform !== 'linux') return 'the stand-in Electron is a Linux shell script';
  if (!existsSync(builderCli)) return 'electron-builder is not installed (npm ci)';
  if (!existsSync(join(root, 'dist/main/cli/bootbench.js')) || !existsSync(join(root, 'dist/renderer/index.html')))
    return 'run `npm run build` first (`npm test` does)';
  if (spawnSync(process.env.CC || 'cc', ['--version']).status !== 0) return 'no C compiler (cc) to build bootbench-host';
  if (!existsSync(join(root, 'dist/main/app/main.js')) || !existsSync(join(root, 'dist/preload/index.cjs'))) {
    const built = spawnSync('npm', ['run', 'build:app'], { cwd: root, stdio: 'inherit' });
    if (built.status !== 0) return `npm run build:app failed (${built.status})`;
  }
  return undefined;
}

/** Fuse names in wire order, from @electron/fuses (what electron-builder flips). */
function fuseNames(): string[] {
  const { FuseV1Options } = requireFromApp('@electron/fuses') as { FuseV1Options: Record<string, number | string> };
  return Object.entries(FuseV1Options)
    .filter(([, v]) => typeof v === 'number')
    .sort((a, b) => (a[1] as number) - (b[1] as number))
    .map(([name]) => name);
}

/** A fake unpacked Electron for Linux: a script whose bytes carry a fuse wire, all fuses '0'. */
function makeStandInElectron(dir: string, fuseCount: number): void {
  mkdirSync(join(dir, 'resources'), { recursive: true });
  const wire = Buffer.concat([
    Buffer.from(`#!/bin/sh\necho stand-in electron\n# `),
    Buffer.from(FUSE_SENTINEL),
    Buffer.from([1, fuseCount]),
    Buffer.alloc(fuseCount, '0'),
    Buffer.from('\n'),
  ]);
  writeFileSync(join(dir, 'electron'), wire);
  chmodSync(join(dir, 'electron'), 0o755);
  writeFileSync(join(dir, 'chrome-sandbox'), '');
}

function runBuilder(electronDist: string, output: string): { status: number | null; log: string } {
  const result = spawnSync(
    process.execPath,
    [builderCli, '--linux', 'dir', `--${here.arch}`, `-c.electronDist=${electronDist}`, '-c.npmRebuild=false', `-c.directories.output=${output}`],
    { cwd: root, encoding: 'utf8', env: { ...process.env, CI: 'true' }, timeout: 240_000 },
  );
  return { status: result.status, log: `${result.stdout}\n${result.stderr}` };
}

/** The asar header: UInt32 pickle sizes, then the JSON tree (the format @electron/asar writes). */
interface AsarEntry {
  files?: Record<string, AsarEntry>;
  unpacked?: boolean;
}
function listAsar(file: string): Map<string, AsarEntry> {
  const buffer = readFileSync(file);
  const jsonLength = buffer.readUInt32LE(12);
  const header = JSON.parse(buffer.subarray(16, 16 + jsonLength).toString('utf8')) as AsarEntry;
  const out = new Map<string, AsarEntry>();
  const walk = (entry: AsarEntry, prefix: string) => {
    for (const [name, child] of Object.entries(entry.files ?? {})) {
      const path = prefix ? `${prefix}/${name}` : name;
      if (child.files) walk(child, path);
      else out.set(path, child);
    }
  };
  walk(header, '');
  return out;
}

const standInSkip = prerequisitesMissing();

test('electron-builder --dir with a stand-in Electron: asar, unpacked natives, fuses, bootbench-host', { skip: standInSkip ?? false, timeout: 300_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'bb-builder-'));
  try {
    const names = fuseNames();
    makeStandInElectron(join(work, 'electron'), names.length);
    const { status, log } = runBuilder(join(work, 'electron'), join(work, 'out'));
    assert.equal(status, 0, log);
    const appDir = join(work, 'out', here.arch === 'x64' ? 'linux-unpacked' : `linux-${here.arch}-unpacked`);
    const resources = join(appDir, 'resources');
    const asar = listAsar(join(resources, 'app.asar'));

    // The asar's own files are exactly what the glob computation selects.
    const expected = packagedSelection(root, config, here);
    const ownExpected = [...expected.app.keys()].filter((f) => !f.startsWith('node_modules/')).sort();
    const ownActual = [...asar.keys()].filter((f) => !f.startsWith('node_modules/')).sort();
    assert.deepEqual(ownActual, ownExpected);
    // The same packages, too (electron-builder drops READMEs and the like inside them).
    const packagesOf = (files: Iterable<string>) => new Set([...files].map((f) => /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f)?.[1]).filter(Boolean));
    assert.deepEqual([...packagesOf(asar.keys())].sort(), [...packagesOf(expected.app.keys())].sort());

    // Every selected .node is a real file in app.asar.unpacked and marked so in the header.
    const natives = [...expected.app.keys()].filter((f) => f.endsWith('.node'));
    assert.ok(natives.length >= 2);
    for (const file of natives) {
      assert.equal(asar.get(file)?.unpacked, true, `${file} marked unpacked`);
      assert.ok(statSync(join(resources, 'app.asar.unpacked', file)).size > 0, `${file} in app.asar.unpacked`);
    }
    for (const [file, entry] of asar) {
      if (file.startsWith('resources/boot/')) assert.ok(entry.unpacked && existsSync(join(resources, 'app.asar.unpacked', file)), `${file} unpacked`);
    }

    // Fuses flipped as electron-builder.yml says, in the binary renamed to executableName.
    const executable = join(appDir, config.linux?.executableName ?? 'bootbench');
    const binary = readFileSync(executable);
    const at = binary.indexOf(FUSE_SENTINEL) + FUSE_SENTINEL.length;
    const wire = binary.subarray(at + 2, at + 2 + names.length).toString('latin1');
    names.forEach((name, i) => {
      const configured = config.electronFuses?.[name[0].toLowerCase() + name.slice(1)];
      if (configured !== undefined) assert.equal(wire[i], configured ? '1' : '0', `fuse ${name}`);
    });

    // The capability launcher sits beside the executable, built for this machine.
    const launcher = join(appDir, 'bootbench-host');
    assert.ok(statSync(launcher).mode & 0o111, 'bootbench-host is executable');
    const help = spawnSync(launcher, ['--help'], { encoding: 'utf8' });
    // It execs the (stand-in) Electron binary next to it: proof it finds its installation.
    assert.match(help.stdout, /stand-in electron/, help.stderr);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

function localElectronDist(): { dir?: string; reason?: string } {
  const override = process.env.ELECTRON_OVERRIDE_DIST_PATH;
  if (override) return existsSync(override) ? { dir: override } : { reason: `ELECTRON_OVERRIDE_DIST_PATH=${override} does not exist` };
  const installed = join(root, 'node_modules/electron/dist');
  if (existsSync(join(installed, process.platform === 'win32' ? 'electron.exe' : process.platform === 'darwin' ? 'Electron.app' : 'electron')))
    return { dir: installed };
  return {
    reason:
      "no unpacked Electron here: node_modules/electron/dist is missing because Electron's download script is not approved " +
      '(and cannot download on this machine); set ELECTRON_OVERRIDE_DIST_PATH to an unpacked Electron to run this',
  };
}

const real = localElectronDist();
test(
  'electron-builder --dir with the local Electron, then the packaged CLI through bootbench-host',
  { skip: real.reason ?? standInSkip ?? false, timeout: 300_000 },
  () => {
    const work = mkdtempSync(join(tmpdir(), 'bb-builder-real-'));
    try {
      const { status, log } = runBuilder(real.dir!, join(work, 'out'));
      assert.equal(status, 0, log);
      const appDir = join(work, 'out', here.arch === 'x64' ? 'linux-unpacked' : `linux-${here.arch}-unpacked`);
      // Electron in Node mode loads dist/main/cli/bootbench.js from inside app.asar (ESM), fuses allowing it.
      const help = spawnSync(join(appDir, 'bootbench-host'), ['help'], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(help.status, 0, `${help.stdout}\n${help.stderr}`);
      assert.match(help.stdout, /serve/);
      const interfaces = spawnSync(join(appDir, 'bootbench-host'), ['interfaces'], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(interfaces.status, 0, `koffi and the NIC listing load under Electron: ${interfaces.stderr}`);
      assert.ok(relativeTo(root, appDir));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  },
);

test('the RunAsNode fuse stays on for Linux (bootbench-host) and is turned off for macOS and Windows', () => {
  const { fusesFor } = requireFromApp('./build/hooks/before-pack.cjs') as {
    fusesFor(platform: string, fuses: Record<string, boolean>): Record<string, boolean>;
  };
  const configured = config.electronFuses ?? {};
  assert.equal(configured.runAsNode, true, 'electron-builder.yml enables it for bootbench-host');
  assert.equal(fusesFor('linux', configured).runAsNode, true);
  for (const platform of ['darwin', 'win32']) {
    const fuses = fusesFor(platform, configured);
    assert.equal(fuses.runAsNode, false, platform);
    assert.deepEqual({ ...fuses, runAsNode: configured.runAsNode }, configured, `${platform}: only RunAsNode changes`);
  }
});
