// What electron-builder would put into an installer, computed from electron-builder.yml and the
// built tree without Electron: the `files` patterns (app.asar), production dependencies filtered
// by the "!" patterns, `asarUnpack`, `extraResources` and `extraFiles`. The matching follows
// app-builder-lib 26 (out/fileMatcher.js, out/util/filter.js): patterns are tried in order,
// a directory is entered when a pattern could match below it, "!" patterns only exclude.
// And what the app loads at run time, read from the built files themselves (entry points,
// their import graph, the renderer's index.html, native modules), so neither side is a list
// written here by hand.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { Minimatch } from 'minimatch';
import yaml from 'js-yaml';

export interface FileSetConfig {
  from?: string;
  to?: string;
  filter?: string | string[];
}
export type FilesConfig = (string | FileSetConfig)[];

export interface BuilderConfig {
  files?: FilesConfig;
  asarUnpack?: string | string[];
  extraResources?: FilesConfig;
  extraFiles?: FilesConfig;
  beforePack?: string;
  directories?: { output?: string; buildResources?: string };
  electronFuses?: Record<string, boolean>;
  win?: PlatformConfig;
  mac?: PlatformConfig;
  linux?: PlatformConfig;
  [key: string]: unknown;
}
interface PlatformConfig {
  target?: { target: string; arch?: string[] }[];
  extraFiles?: FilesConfig;
  extraResources?: FilesConfig;
  executableName?: string;
  [key: string]: unknown;
}

export type BuilderPlatform = 'win32' | 'darwin' | 'linux';
export interface Target {
  platform: BuilderPlatform;
  arch: string;
}

const PLATFORM_KEYS: Record<BuilderPlatform, 'win' | 'mac' | 'linux'> = { win32: 'win', darwin: 'mac', linux: 'linux' };

export function loadBuilderConfig(root: string): BuilderConfig {
  return yaml.load(readFileSync(join(root, 'electron-builder.yml'), 'utf8')) as BuilderConfig;
}

/** Every platform/arch pair some target of the config builds. */
export function configuredTargets(config: BuilderConfig): Target[] {
  const targets: Target[] = [];
  for (const platform of Object.keys(PLATFORM_KEYS) as BuilderPlatform[]) {
    for (const t of config[PLATFORM_KEYS[platform]]?.target ?? []) {
      for (const arch of t.arch ?? ['x64']) {
        if (!targets.some((x) => x.platform === platform && x.arch === arch)) targets.push({ platform, arch });
      }
    }
  }
  return targets;
}

/** electron-builder's file macros: ${arch}, ${os} (mac/win/linux), ${platform} (darwin/win32/linux). */
export function expandMacros(text: string, target: Target): string {
  return text.replaceAll('${arch}', target.arch).replaceAll('${os}', PLATFORM_KEYS[target.platform]).replaceAll('${platform}', target.platform);
}

/** An ordered pattern list with app-builder-lib's "minimatchAll" semantics. */
export class PatternList {
  private readonly parsed: Minimatch[] = [];

  constructor(patterns: string[]) {
    for (let pattern of patterns) {
      if (pattern.startsWith('./')) pattern = pattern.slice(2);
      pattern = posix.normalize(pattern);
      const parsed = new Minimatch(pattern, { dot: true });
      this.parsed.push(parsed);
      // A plain folder name selects everything in it (fileMatcher.js computeParsedPatterns).
      if (!pattern.includes('.') && !hasMagic(parsed)) this.parsed.push(new Minimatch(`${pattern}/**/*`, { dot: true }));
    }
  }

  get empty(): boolean {
    return this.parsed.length === 0;
  }

  matches(path: string, isDirectory = false): boolean {
    let match = false;
    for (const pattern of this.parsed) {
      if (match !== pattern.negate) continue;
      match = pattern.match(path, isDirectory && !pattern.negate);
    }
    return match;
  }
}

function hasMagic(pattern: Minimatch): boolean {
  return pattern.set.length > 1 || pattern.set[0].some((part) => typeof part !== 'string');
}

/** Files under dir (relative, "/"-separated) that the patterns select; folders pruned early. */
function walkSelected(dir: string, patterns: PatternList, prefix = '', skipNodeModules = false): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    const full = join(dir, entry.name);
    const isDir = entry.isDirectory() || (entry.isSymbolicLink() && statSync(full).isDirectory());
    if (isDir) {
      if (skipNodeModules && entry.name === 'node_modules') continue;
      if (patterns.matches(rel, true)) out.push(...walkSelected(full, patterns, rel, skipNodeModules));
    } else if (patterns.matches(rel)) {
      out.push(rel);
    }
  }
  return out;
}

function asList<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** The `files` patterns as electron-builder completes them for the app folder. */
export function appPatterns(config: BuilderConfig, target: Target): PatternList {
  const own = asList(config.files)
    .filter((p): p is string => typeof p === 'string')
    .map((p) => expandMacros(p, target));
  if (!own.includes('package.json')) own.push('package.json');
  const output = config.directories?.output ?? 'dist';
  const buildResources = config.directories?.buildResources ?? 'build';
  const first = ['!**/node_modules/**', `!${buildResources}{,/**/*}`, `!${output}{,/**/*}`];
  return new PatternList([...first, ...own, '!**/electron-builder.{yaml,yml,json,json5,toml,ts}', '!**/*.{d.ts,o,obj,a,orig}']);
}

/** node_modules are filtered by `**\/*` and the "!" patterns of `files` only. */
export function nodeModulePatterns(config: BuilderConfig, target: Target): PatternList {
  const negated = asList(config.files)
    .filter((p): p is string => typeof p === 'string' && p.startsWith('!'))
    .map((p) => expandMacros(p, target));
  return new PatternList(['**/*', ...negated]);
}

export interface InstalledPackage {
  name: string;
  dir: string;
  /** Where electron-builder puts it: its path under the project, node_modules/<name> or nested. */
  destination: string;
}

/**
 * Production dependencies as installed: `dependencies` and the installed `optionalDependencies`
 * of package.json, then theirs, resolved the way Node does (nested node_modules, then up).
 */
export function productionPackages(root: string): InstalledPackage[] {
  const seen = new Map<string, InstalledPackage>();
  const visit = (fromDir: string, name: string) => {
    const dir = resolvePackageDir(fromDir, name, root);
    if (!dir || seen.has(dir)) return;
    const destination = relativeTo(root, dir);
    const pkg = { name, dir, destination };
    seen.set(dir, pkg);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const dep of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) visit(dir, dep);
  };
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
    optionalDependencies?: Record<string, string>;
  };
  for (const dep of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) visit(root, dep);
  return [...seen.values()];
}

function resolvePackageDir(fromDir: string, name: string, root: string): string | undefined {
  let dir = fromDir;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root || dirname(dir) === dir) return undefined;
    dir = dirname(dir);
  }
}

export interface PackagedSelection {
  target: Target;
  /** Paths inside app.asar (or app.asar.unpacked), "/"-separated, to the source file. */
  app: Map<string, string>;
  /** Subset of `app` that asarUnpack sends to app.asar.unpacked. */
  unpacked: Set<string>;
  /** Paths under the resources folder (process.resourcesPath), to the source file. */
  resources: Map<string, string>;
  /** Paths next to the executable, to the source file. */
  besideExecutable: Map<string, string>;
}

export function packagedSelection(root: string, config: BuilderConfig, target: Target): PackagedSelection {
  const app = new Map<string, string>();
  for (const rel of walkSelected(root, appPatterns(config, target), '', true)) app.set(rel, join(root, rel));
  const moduleFilter = nodeModulePatterns(config, target);
  for (const pkg of productionPackages(root)) {
    for (const rel of walkSelected(pkg.dir, new PatternList(['**/*']), '', true)) {
      const destination = `${pkg.destination}/${rel}`;
      if (moduleFilter.matches(destination)) app.set(destination, join(pkg.dir, rel));
    }
  }
  const unpackPatterns = new PatternList(asList(config.asarUnpack).map((p) => expandMacros(p, target)));
  const unpacked = new Set([...app.keys()].filter((rel) => !unpackPatterns.empty && unpackPatterns.matches(rel)));
  const platformConfig = config[PLATFORM_KEYS[target.platform]];
  return {
    target,
    app,
    unpacked,
    resources: copyFileSets(root, [...asList(config.extraResources), ...asList(platformConfig?.extraResources)], target),
    besideExecutable: copyFileSets(root, [...asList(config.extraFiles), ...asList(platformConfig?.extraFiles)], target),
  };
}

function copyFileSets(root: string, sets: FilesConfig, target: Target): Map<string, string> {
  const out = new Map<string, string>();
  for (const set of sets) {
    const spec = typeof set === 'string' ? { from: set, to: set } : set;
    const from = resolve(root, expandMacros(spec.from ?? '.', target));
    const to = expandMacros(spec.to ?? spec.from ?? '.', target);
    if (!existsSync(from)) continue;
    if (statSync(from).isFile()) {
      out.set(posix.normalize(to), from);
      continue;
    }
    const filter = new PatternList(asList(spec.filter ?? '**/*').map((p) => expandMacros(p, target)));
    for (const rel of walkSelected(from, filter)) out.set(posix.normalize(posix.join(to, rel)), join(from, rel));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// What the app needs at run time, read from the built output.

export interface RuntimeNeeds {
  /** Files inside the app that some entry point reaches by a relative import or a path join. */
  appFiles: Set<string>;
  /** Packages imported by name (node_modules/<name>). */
  packages: Set<string>;
}

const BUILTIN = new Set(createRequire(import.meta.url)('node:module').builtinModules as string[]);

/** Follows relative imports/requires from each entry (paths relative to the app root). */
export function runtimeNeeds(root: string, entries: string[]): RuntimeNeeds {
  const appFiles = new Set<string>();
  const packages = new Set<string>();
  const queue = [...entries];
  while (queue.length) {
    const rel = queue.pop()!;
    if (appFiles.has(rel)) continue;
    appFiles.add(rel);
    const full = join(root, rel);
    if (!existsSync(full) || !/\.(c|m)?js$/.test(rel)) continue;
    // A line marked @source-mode-only runs only when the code is TypeScript under tsx (tests,
    // npm start from a checkout); the packaged app runs the built .js and never reaches it.
    const source = readFileSync(full, 'utf8').replace(/^.*@source-mode-only.*$/gm, '');
    const specifiers = [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)['"]([^'"]+)['"]/g)].map((m) => m[1]);
    for (const spec of specifiers) {
      if (spec.startsWith('.')) {
        queue.push(posix.normalize(posix.join(posix.dirname(rel), spec)));
      } else if (!spec.startsWith('node:') && !BUILTIN.has(spec) && spec !== 'electron') {
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
      }
    }
    // Worker scripts: new Worker(new URL('./data-path-worker.js', import.meta.url)).
    for (const m of source.matchAll(/new URL\(\s*['"](\.[^'"]+\.(?:c|m)?js)['"]\s*,\s*import\.meta\.url\s*\)/g)) {
      queue.push(posix.normalize(posix.join(posix.dirname(rel), m[1])));
    }
    // Files the code reaches by path rather than import: join(here, '../../preload/index.cjs').
    for (const m of source.matchAll(/join\(\s*here\s*,\s*['"]([^'"]+)['"]\s*\)/g)) {
      const target = posix.normalize(posix.join(posix.dirname(rel), m[1]));
      if (/\.[a-z]+$/.test(target)) queue.push(target);
      else for (const file of rendererFiles(root, target)) queue.push(file);
    }
  }
  return { appFiles, packages };
}

/** A renderer folder's index.html and the files it references. */
export function rendererFiles(root: string, folder: string): string[] {
  const index = posix.join(folder, 'index.html');
  const files = [index];
  if (!existsSync(join(root, index))) return files;
  const html = readFileSync(join(root, index), 'utf8');
  for (const m of html.matchAll(/\b(?:src|href)=["']([^"':]+)["']/g)) files.push(posix.normalize(posix.join(folder, m[1])));
  return files;
}

/** Native addons installed in a package (paths relative to the package). */
export function nativeFilesOf(dir: string): string[] {
  return walkSelected(dir, new PatternList(['**/*.node']), '', true);
}

export function relativeTo(root: string, file: string): string {
  return relative(root, file).split('\\').join('/');
}
