// The installers carry what the app loads at run time: computed from electron-builder.yml
// (files, asarUnpack, extraResources, extraFiles) applied to the built tree, against what the
// built app itself reaches (its entry points' import graph, the preload and renderer it loads
// by path, the native addons Node really loads, the boot binaries' manifest). No Electron needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, copyFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  configuredTargets,
  loadBuilderConfig,
  packagedSelection,
  productionPackages,
  relativeTo,
  runtimeNeeds,
  nativeFilesOf,
  type Target,
  type BuilderPlatform,
} from './packaging-selection.js';

const root = resolve(import.meta.dirname, '../..');
const requireFromApp = createRequire(join(root, 'package.json'));
const hooks = requireFromApp('./build/hooks/before-pack.cjs') as {
  koffiPackageFor(platform: string, arch: string): string;
  missingKoffiNative(root: string, platform: string, arch: string): string | undefined;
  launcherCompiler(arch: string): { command?: string; reason?: string };
  compileLauncher(root: string, arch: string): string;
};

const config = loadBuilderConfig(root);
const here: Target = { platform: process.platform as BuilderPlatform, arch: process.arch };
const hereIsTarget = configuredTargets(config).some((t) => t.platform === here.platform && t.arch === here.arch);

/** Why the built tree is not there; builds the Electron shell when only it is missing. */
function builtTreeProblem(): string | undefined {
  if (!existsSync(join(root, 'dist/main/cli/bootbench.js')) || !existsSync(join(root, 'dist/renderer/index.html'))) {
    return 'the app is not built: run `npm run build` first (`npm test` does)';
  }
  if (
    !existsSync(join(root, 'dist/main/app/main.js')) ||
    !existsSync(join(root, 'dist/main/app/host-process.js')) ||
    !existsSync(join(root, 'dist/preload/index.cjs'))
  ) {
    // `npm run dist` runs build:app; `npm test` does not, so do it here.
    const built = spawnSync('npm', ['run', 'build:app'], { cwd: root, stdio: 'inherit' });
    if (built.status !== 0) return `npm run build:app failed (${built.status})`;
  }
  return undefined;
}
const notBuilt = builtTreeProblem();

/** Entry points of the packaged app: package.json "main" and what bootbench-host runs. */
function entryPoints(): string[] {
  const main = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { main: string }).main;
  const launcher = readFileSync(join(root, 'build/linux/bootbench-host.c'), 'utf8');
  const scripts = [...launcher.matchAll(/#define \w+_SCRIPT "resources\/app\.asar\/([^"]+)"/g)].map((m) => m[1]);
  assert.ok(scripts.length >= 2, 'bootbench-host.c names its cli and web scripts');
  return [main.replace(/^\.\//, ''), ...scripts];
}

/** The .node files Node really loads for better-sqlite3 and koffi on this machine. */
function loadedNativeAddons(): string[] {
  const BetterSqlite = requireFromApp('better-sqlite3') as new (file: string) => { close(): void };
  new BetterSqlite(':memory:').close();
  requireFromApp('koffi');
  return Object.keys(requireFromApp.cache)
    .filter((file) => file.endsWith('.node'))
    .map((file) => relativeTo(root, file));
}

const skip = notBuilt ?? (hereIsTarget ? false : `${here.platform}/${here.arch} is not a target in electron-builder.yml`);

test('app.asar holds every file the entry points, the preload and the renderer reach', { skip }, () => {
  const selection = packagedSelection(root, config, here);
  const needs = runtimeNeeds(root, entryPoints());
  // The walk must have found the files main.ts loads by path, or it proves nothing.
  assert.ok(needs.appFiles.has('dist/preload/index.cjs'), 'the preload is reached from main.js');
  assert.ok(needs.appFiles.has('dist/renderer/index.html'), 'the renderer is reached from main.js');
  assert.ok(
    [...needs.appFiles].some((f) => f.startsWith('dist/renderer/assets/')),
    "index.html's assets are followed",
  );
  const missing = [...needs.appFiles].filter((file) => !selection.app.has(file));
  assert.deepEqual(missing, [], 'files the app loads but the installer would leave out');
  assert.ok(selection.app.has('package.json'), 'package.json ("type": "module", "main") is in the asar');
});

test('every package the app imports is packaged, with its entry file and its own dependencies', { skip }, () => {
  const selection = packagedSelection(root, config, here);
  const needs = runtimeNeeds(root, entryPoints());
  assert.ok(needs.packages.size > 0);
  for (const name of needs.packages) {
    const entry = relativeTo(root, requireFromApp.resolve(name));
    assert.ok(selection.app.has(entry), `${name}: ${entry} is packaged`);
  }
  for (const pkg of productionPackages(root)) {
    assert.ok(selection.app.has(`${pkg.destination}/package.json`), `${pkg.destination} is packaged`);
  }
});

test('the native addons Node loads (better-sqlite3, koffi) are packaged outside the asar', { skip }, () => {
  const selection = packagedSelection(root, config, here);
  const loaded = loadedNativeAddons();
  assert.ok(
    loaded.some((f) => f.includes('better-sqlite3')),
    `better-sqlite3's addon was loaded: ${loaded.join(', ')}`,
  );
  const koffiPackage = hooks.koffiPackageFor(here.platform, here.arch);
  assert.ok(
    loaded.some((f) => f.startsWith(`node_modules/${koffiPackage}/`)),
    `koffi loaded its binary from ${koffiPackage}, the package before-pack.cjs checks (${loaded.join(', ')})`,
  );
  for (const file of loaded) {
    assert.ok(selection.app.has(file), `${file} is packaged`);
    assert.ok(selection.unpacked.has(file), `${file} is in app.asar.unpacked (dlopen cannot read inside an asar)`);
  }
  const packedNative = [...selection.app.keys()].filter((f) => f.endsWith('.node') && !selection.unpacked.has(f));
  assert.deepEqual(packedNative, [], 'no .node file stays inside the asar');
});

for (const target of configuredTargets(config)) {
  test(`koffi's binary for ${target.platform}/${target.arch} is packaged and unpacked, or the build stops`, { skip: notBuilt ?? false }, (t) => {
    const koffiPackage = hooks.koffiPackageFor(target.platform, target.arch);
    const dir = join(root, 'node_modules', koffiPackage);
    const problem = hooks.missingKoffiNative(root, target.platform, target.arch);
    if (!existsSync(dir)) {
      assert.match(problem ?? '', new RegExp(koffiPackage.replace('/', '\\/')), 'beforePack refuses to package without it');
      t.skip(`${koffiPackage} is not installed here (npm installs only this machine's); beforePack stops that build, checked`);
      return;
    }
    assert.equal(problem, undefined);
    const selection = packagedSelection(root, config, target);
    const natives = nativeFilesOf(dir).map((f) => `node_modules/${koffiPackage}/${f}`);
    assert.ok(natives.length > 0, `${koffiPackage} has a .node file`);
    for (const file of natives) {
      assert.ok(selection.app.has(file) && selection.unpacked.has(file), `${file} packaged and unpacked`);
    }
  });
}

test('boot binaries are shipped as real files where the packaged app looks for them', { skip: notBuilt ?? false }, async (t) => {
  const manifestPath = join(root, 'resources/boot/manifest.json');
  if (!existsSync(manifestPath)) {
    t.skip('resources/boot is empty: `npm run build:resources` found none of the Debian packages');
    return;
  }
  const selection = packagedSelection(root, config, here);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { files: { name: string }[] };
  assert.ok(manifest.files.length > 0);

  // Where each file lands, relative to the resources folder (process.resourcesPath): inside
  // app.asar only when asarUnpack makes it a real file, or as an extra resource.
  const landing = new Map<string, string>();
  for (const [dest, src] of selection.app) {
    if (!src.startsWith(join(root, 'resources/boot') + '/')) continue;
    assert.ok(selection.unpacked.has(dest), `${dest} is unpacked: TFTP reads it by descriptor`);
    landing.set(relativeTo(root, src), `app.asar/${dest}`);
  }
  for (const [dest, src] of selection.resources) landing.set(relativeTo(root, src), dest);
  for (const file of [...manifest.files.map((f) => `resources/boot/${f.name}`), 'resources/boot/manifest.json']) {
    assert.ok(landing.has(file), `${file} is packaged`);
  }

  // Lay out the packaged folders (app.asar as a plain folder) and ask the app's own lookup.
  const fake = mkdtempSync(join(tmpdir(), 'bb-packaged-'));
  const previous = (process as { resourcesPath?: string }).resourcesPath;
  try {
    const resourcesDir = join(fake, 'resources');
    const library = join(resourcesDir, 'app.asar/dist/main/library');
    mkdirSync(library, { recursive: true });
    copyFileSync(join(root, 'package.json'), join(resourcesDir, 'app.asar/package.json'));
    copyFileSync(join(root, 'dist/main/library/boot-binaries.js'), join(library, 'boot-binaries.js'));
    for (const [src, dest] of landing) {
      mkdirSync(dirname(join(resourcesDir, dest)), { recursive: true });
      copyFileSync(join(root, src), join(resourcesDir, dest));
    }
    (process as { resourcesPath?: string }).resourcesPath = resourcesDir;
    const lookup = (await import(pathToFileURL(join(library, 'boot-binaries.js')).href)) as { defaultResourcesBootDir(): string };
    const bootDir = lookup.defaultResourcesBootDir();
    for (const f of manifest.files) {
      assert.ok(existsSync(join(bootDir, f.name)), `the packaged app finds ${f.name} in ${bootDir}`);
    }
  } finally {
    (process as { resourcesPath?: string }).resourcesPath = previous;
    rmSync(fake, { recursive: true, force: true });
  }
});

for (const target of configuredTargets(config).filter((t) => t.platform === 'linux')) {
  test(`bootbench-host for linux/${target.arch} is placed beside the executable`, { skip: notBuilt ?? false }, (t) => {
    const compiler = hooks.launcherCompiler(target.arch);
    if (!compiler.command || spawnSync(compiler.command, ['--version']).status !== 0) {
      t.skip(compiler.reason ?? `no working C compiler (${compiler.command})`);
      return;
    }
    const output = hooks.compileLauncher(root, target.arch);
    const selection = packagedSelection(root, config, target);
    assert.equal(selection.besideExecutable.get('bootbench-host'), output);
  });
}

test('app.asar carries no sources, tests, source maps or build inputs', { skip }, () => {
  const selection = packagedSelection(root, config, here);
  const ownFiles = [...selection.app.keys()].filter((f) => !f.startsWith('node_modules/'));
  assert.ok(ownFiles.length > 10);
  const stray = ownFiles.filter((f) => !f.startsWith('dist/') && !f.startsWith('resources/boot/') && f !== 'package.json');
  assert.deepEqual(stray, []);
  assert.deepEqual(
    ownFiles.filter((f) => f.endsWith('.map') || f.endsWith('.ts')),
    [],
  );
  const buildLeftovers = [...selection.app.keys()].filter((f) =>
    /node_modules\/better-sqlite3\/(deps|src)\/|obj\.target|node_modules\/koffi\/(src|vendor)\//.test(f),
  );
  assert.deepEqual(buildLeftovers, []);
});

test('native modules are compiled for Electron only when packaging, and the Node build is put back', () => {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) {
    assert.doesNotMatch(
      manifest.scripts[hook] ?? '',
      /electron-rebuild|@electron\/rebuild|install-app-deps|electron-builder/,
      `${hook} must not rebuild for Electron`,
    );
  }
  assert.notEqual((config as { npmRebuild?: boolean }).npmRebuild, false, 'electron-builder rebuilds better-sqlite3 for Electron');
  const runner = /node (build\/[\w-]+\.mjs)/.exec(manifest.scripts.dist)?.[1];
  assert.ok(runner, `npm run dist goes through a script that restores the Node build: ${manifest.scripts.dist}`);
  const source = readFileSync(join(root, runner), 'utf8');
  assert.match(source, /electron-builder/);
  assert.match(source, /rebuild', 'better-sqlite3'/);
});
