// Turning a dropped file or folder into a boot entry: detect what it is, hash it (SHA-256,
// with progress), and either copy it into the data folder's library or reference it where
// it is. The source is only ever opened for reading. The result is the store's NewBootEntry
// (main/store/entries.ts) plus what detection found, so the caller can show it before saving.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { detectFile, LIBRARY_ARCHITECTURES, UnusableFileError, type Detection, type LibraryArchitecture } from './detect.js';
import type { EntryFile, EntryKind, NewBootEntry } from '../store/index.js';
import { BOOT_CLASS_FOR_ARCHITECTURE } from '../core/index.js';

/**
 * copy: into the library folder, the source left as it was; reference: used where it is;
 * move: renamed into the library folder (files the web UI uploaded there already).
 */
export type StorageMode = 'copy' | 'reference' | 'move';

export interface ImportProgress {
  /** Source file being read. */
  file: string;
  phase: 'hash' | 'copy';
  bytes: number;
  size: number;
  /** Over the whole import (all files of all paths given). */
  totalBytes: number;
  totalSize: number;
}

export interface ImportOptions {
  /** Data folder; copies go to `<dataDir>/library/<entry folder>/`. */
  dataDir: string;
  mode: StorageMode;
  /** Entry name; default: the file or folder name without extension. */
  name?: string;
  onProgress?: (progress: ImportProgress) => void;
  /** Called between chunks; throw to abort (a partial copy is removed). */
  signal?: AbortSignal;
}

/** One file of an imported entry, before it is stored: detection and where it came from. */
export interface ImportedFile extends EntryFile {
  source: string;
  detection?: Detection;
}

export interface ImportedEntry extends NewBootEntry {
  name: string;
  kind: EntryKind;
  files: ImportedFile[];
  /** Firmware families the entry boots on (empty: not tied to one). */
  architectures: LibraryArchitecture[];
  storage: StorageMode;
  /** The detection of the entry's main file. */
  detection?: Detection;
  source: string;
}

export interface ImportResult {
  entries: ImportedEntry[];
  /** Files that are not boot files, with the reason (the rest of the import goes on). */
  refused: { path: string; reason: string }[];
}

export { BOOT_CLASS_FOR_ARCHITECTURE, architectureForBootClass } from '../core/index.js';

/** The folder copies live in. */
export function libraryDir(dataDir: string): string {
  return join(resolve(dataDir), 'library');
}

/**
 * Where the web UI's uploads wait until they are imported: in the data folder, so a rename
 * away from the library, but outside it, since the library is the default served folder and
 * a half-uploaded file must not be served.
 */
export function uploadsDir(dataDir: string): string {
  return join(resolve(dataDir), 'uploads');
}

/** Where a stored entry file is on disk: references are absolute, copies relative to the library folder. */
export function resolveEntryFilePath(file: Pick<EntryFile, 'path'>, dataDir: string): string {
  return isAbsolute(file.path) ? file.path : join(libraryDir(dataDir), file.path);
}

const MAX_FOLDER_FILES = 500;

/**
 * Imports each path (file or folder). A kernel given together with initrds becomes one
 * kernel entry; a folder holding bootmgr + boot/BCD + boot/boot.sdi + sources/boot.wim becomes
 * one Windows PE entry; a folder with one kernel and its initrd(s) one kernel entry; any other
 * folder yields one entry per usable file. Unusable files are listed in `refused`.
 */
export async function importPaths(paths: string[], options: ImportOptions): Promise<ImportResult> {
  const refused: ImportResult['refused'] = [];
  const plans: Plan[] = [];
  const loose: { path: string; detection: Detection }[] = [];
  for (const path of paths) {
    const info = await stat(path);
    if (info.isDirectory()) {
      plans.push(...(await planFolder(path, refused, options.name)));
    } else {
      try {
        loose.push({ path: resolve(path), detection: await detectFile(path) });
      } catch (err) {
        if (!(err instanceof UnusableFileError)) throw err;
        refused.push({ path: resolve(path), reason: err.message });
      }
    }
  }
  plans.push(...groupKernelWithInitrds(loose, options.name));
  if (plans.length === 1 && options.name) plans[0].name = options.name;

  const totalSize = plans.reduce((sum, p) => sum + p.files.reduce((s, f) => s + f.detectionSize, 0), 0);
  const counter = { totalBytes: 0, totalSize };
  const entries: ImportedEntry[] = [];
  for (const plan of plans) entries.push(await storePlan(plan, options, counter));
  return { entries, refused };
}

/** One path; throws UnusableFileError when nothing in it can be booted. */
export async function importPath(path: string, options: ImportOptions): Promise<ImportedEntry> {
  const result = await importPaths([path], options);
  if (result.entries.length === 0) {
    const first = result.refused[0];
    throw new UnusableFileError(path, first ? first.reason : 'no boot files in this folder', { size: 0, firstBytes: '(folder)' });
  }
  return result.entries[0];
}

interface PlannedFile {
  source: string;
  role: string;
  /** File name in the entry (what wimboot / iPXE will be told). */
  name: string;
  detection?: Detection;
  detectionSize: number;
}

interface Plan {
  name: string;
  kind: EntryKind;
  architectures: LibraryArchitecture[];
  files: PlannedFile[];
  detection?: Detection;
  source: string;
}

function defaultName(path: string): string {
  const base = basename(path);
  const ext = extname(base);
  return ext && ext !== base ? base.slice(0, -ext.length) : base;
}

function roleFor(detection: Detection): string {
  return detection.kind === 'ipxe-script' ? 'script' : detection.kind;
}

function singlePlan(path: string, detection: Detection, name?: string): Plan {
  return {
    name: name ?? defaultName(path),
    kind: detection.kind,
    architectures: detection.architectures,
    files: [{ source: path, role: roleFor(detection), name: basename(path), detection, detectionSize: detection.size }],
    detection,
    source: path,
  };
}

function kernelPlan(source: string, kernel: { path: string; detection: Detection }, initrds: { path: string; detection: Detection }[], name: string): Plan {
  return {
    name,
    kind: 'kernel',
    architectures: kernel.detection.architectures,
    files: [
      { source: kernel.path, role: 'kernel', name: basename(kernel.path), detection: kernel.detection, detectionSize: kernel.detection.size },
      ...initrds.map((i) => ({ source: i.path, role: 'initrd', name: basename(i.path), detection: i.detection, detectionSize: i.detection.size })),
    ],
    detection: kernel.detection,
    source,
  };
}

function groupKernelWithInitrds(files: { path: string; detection: Detection }[], name?: string): Plan[] {
  const kernels = files.filter((f) => f.detection.kind === 'kernel');
  const initrds = files.filter((f) => f.detection.kind === 'initrd');
  if (kernels.length === 1 && initrds.length > 0) {
    const rest = files.filter((f) => f.detection.kind !== 'kernel' && f.detection.kind !== 'initrd');
    return [kernelPlan(kernels[0].path, kernels[0], initrds, name ?? defaultName(kernels[0].path)), ...rest.map((f) => singlePlan(f.path, f.detection))];
  }
  return files.map((f) => singlePlan(f.path, f.detection));
}

async function listFolder(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, depth: number) => {
    const names = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of names) {
      if (out.length >= MAX_FOLDER_FILES) return;
      const full = join(dir, entry.name);
      if (entry.isDirectory() && depth < 6) await walk(full, depth + 1);
      else if (entry.isFile()) out.push(full);
    }
  };
  await walk(root, 0);
  return out;
}

/** `relative` under `root`, matching each name regardless of case (Windows trees: Boot\\BCD). */
async function findCaseInsensitive(root: string, relative: string): Promise<string | undefined> {
  let current = root;
  for (const part of relative.split('/')) {
    let names: string[];
    try {
      names = await readdir(current);
    } catch {
      return undefined;
    }
    const match = names.find((n) => n.toLowerCase() === part.toLowerCase());
    if (!match) return undefined;
    current = join(current, match);
  }
  try {
    return (await stat(current)).isFile() ? current : undefined;
  } catch {
    return undefined;
  }
}

const WINDOWS_TREE: { role: string; path: string }[] = [
  { role: 'bootmgr', path: 'bootmgr' },
  { role: 'bcd', path: 'boot/bcd' },
  { role: 'boot-sdi', path: 'boot/boot.sdi' },
  { role: 'wim', path: 'sources/boot.wim' },
];

async function planFolder(folder: string, refused: ImportResult['refused'], name?: string): Promise<Plan[]> {
  const root = resolve(folder);

  // Windows PE / install media tree (looked up directly: an install tree has thousands of
  // files): what wimboot needs, in the order it is handed over.
  const windows = await Promise.all(WINDOWS_TREE.map(async (w) => ({ role: w.role, path: await findCaseInsensitive(root, w.path) })));
  const wim = windows.find((w) => w.role === 'wim')?.path;
  if (wim && windows.filter((w) => w.path).length >= 3) {
    const wimDetection = await detectFile(wim);
    const files: PlannedFile[] = [];
    for (const w of windows) {
      if (!w.path) continue;
      const size = (await stat(w.path)).size;
      files.push({ source: w.path, role: w.role, name: basename(w.path), detection: w.role === 'wim' ? wimDetection : undefined, detectionSize: size });
    }
    return [{ name: name ?? basename(root), kind: 'wim', architectures: wimDetection.architectures, files, detection: wimDetection, source: root }];
  }

  const all = await listFolder(root);
  const detected: { path: string; detection: Detection }[] = [];
  for (const path of all) {
    try {
      detected.push({ path, detection: await detectFile(path) });
    } catch (err) {
      if (!(err instanceof UnusableFileError)) throw err;
      refused.push({ path, reason: err.message });
    }
  }
  const kernels = detected.filter((d) => d.detection.kind === 'kernel');
  const initrds = detected.filter((d) => d.detection.kind === 'initrd');
  if (kernels.length === 1 && initrds.length > 0) {
    const rest = detected.filter((d) => d.detection.kind !== 'kernel' && d.detection.kind !== 'initrd');
    return [kernelPlan(root, kernels[0], initrds, name ?? basename(root)), ...rest.map((d) => singlePlan(d.path, d.detection))];
  }
  return detected.map((d) => singlePlan(d.path, d.detection));
}

/** File rows for the store: one set per boot class when the entry is tied to architectures, else 'any'. */
function entryFileRows(plan: Plan, stored: { file: PlannedFile; path: string; size: number; sha256: string }[]): ImportedFile[] {
  const classes = plan.architectures.length > 0 ? plan.architectures.map((a) => BOOT_CLASS_FOR_ARCHITECTURE[a]) : ['any'];
  const rows: ImportedFile[] = [];
  for (const arch of classes) {
    for (const s of stored)
      rows.push({ arch, role: s.file.role, path: s.path, size: s.size, sha256: s.sha256, source: s.file.source, detection: s.file.detection });
  }
  return rows;
}

async function storePlan(plan: Plan, options: ImportOptions, counter: { totalBytes: number; totalSize: number }): Promise<ImportedEntry> {
  const stored: { file: PlannedFile; path: string; size: number; sha256: string }[] = [];
  let folder: string | undefined;
  const temporary: string[] = [];
  try {
    for (const file of plan.files) {
      if (options.mode === 'reference') {
        const { sha256, size } = await hashFile(file.source, undefined, options, counter);
        stored.push({ file, path: file.source, size, sha256 });
        continue;
      }
      folder ??= await createEntryFolder(options.dataDir, plan.name);
      const target = join(
        libraryDir(options.dataDir),
        folder,
        uniqueName(
          file.name,
          stored.map((s) => basename(s.path)),
        ),
      );
      let hashed: { sha256: string; size: number };
      if (options.mode === 'move') {
        hashed = await hashFile(file.source, undefined, options, counter);
        await rename(file.source, target);
      } else {
        const partial = `${target}.partial`;
        temporary.push(partial);
        hashed = await hashFile(file.source, partial, options, counter);
        await rename(partial, target);
      }
      const { sha256, size } = hashed;
      stored.push({ file, path: relative(libraryDir(options.dataDir), target).split('\\').join('/'), size, sha256 });
    }
  } catch (err) {
    for (const t of temporary) await rm(t, { force: true });
    if (folder) await rm(join(libraryDir(options.dataDir), folder), { recursive: true, force: true });
    throw err;
  }
  return {
    name: plan.name,
    kind: plan.kind,
    arguments: '',
    notes: plan.detection?.summary ?? '',
    files: entryFileRows(plan, stored),
    architectures: LIBRARY_ARCHITECTURES.filter((a) => plan.architectures.includes(a)),
    storage: options.mode,
    detection: plan.detection,
    source: plan.source,
  };
}

function uniqueName(name: string, taken: string[]): string {
  if (!taken.includes(name)) return name;
  for (let i = 2; ; i++) {
    const candidate = `${defaultName(name)}-${i}${extname(name)}`;
    if (!taken.includes(candidate)) return candidate;
  }
}

async function createEntryFolder(dataDir: string, name: string): Promise<string> {
  const slug =
    name
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 60) || 'entry';
  const base = libraryDir(dataDir);
  await mkdir(base, { recursive: true });
  for (let i = 1; ; i++) {
    const folder = i === 1 ? slug : `${slug}-${i}`;
    try {
      await mkdir(join(base, folder));
      return folder;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

const PROGRESS_STEP = 4 * 1024 * 1024;

/**
 * Reads the source once: SHA-256 and, when `target` is given, a copy. Progress every 4 MiB and
 * at the end. Refuses a source that changed size or time while it was read.
 */
export async function hashFile(
  source: string,
  target: string | undefined,
  options: Pick<ImportOptions, 'onProgress' | 'signal'> = {},
  counter = { totalBytes: 0, totalSize: 0 },
): Promise<{ sha256: string; size: number }> {
  const before = await stat(source);
  const hash = createHash('sha256');
  const input = createReadStream(source, { highWaterMark: 1024 * 1024 });
  const output = target ? createWriteStream(target, { flags: 'wx' }) : undefined;
  let bytes = 0;
  let reported = 0;
  const report = () =>
    options.onProgress?.({
      file: source,
      phase: target ? 'copy' : 'hash',
      bytes,
      size: before.size,
      totalBytes: counter.totalBytes,
      totalSize: counter.totalSize,
    });
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      options.signal?.throwIfAborted();
      hash.update(chunk);
      // events.once drops its listeners when either event fires: a listener per drain would pile up.
      if (output && !output.write(chunk)) await once(output, 'drain');
      bytes += chunk.length;
      counter.totalBytes += chunk.length;
      if (bytes - reported >= PROGRESS_STEP) {
        reported = bytes;
        report();
      }
    }
    if (output) {
      output.end();
      await once(output, 'finish');
    }
  } catch (err) {
    input.destroy();
    output?.destroy();
    throw err;
  }
  const after = await stat(source);
  if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || bytes !== before.size) {
    throw new Error(`${source} changed while it was being imported; import it again once it is complete`);
  }
  report();
  return { sha256: hash.digest('hex'), size: bytes };
}

/**
 * Turns an imported kernel entry into a "Secure Boot chain": the signed shim and the signed
 * netboot GRUB (resources/boot/secure-boot, or the user's copies) come first, then the
 * kernel and initrds GRUB loads through the per-machine grub.cfg. Only UEFI x64 (Debian
 * ships no signed chain for the others). `warnings` says when the kernel carries no
 * signature: GRUB in lockdown refuses such a kernel.
 */
export async function toSecureBootChain(
  entry: ImportedEntry,
  chain: { shim: string; grub: string },
  options: Pick<ImportOptions, 'onProgress' | 'signal'> = {},
): Promise<{ entry: ImportedEntry; warnings: string[] }> {
  if (entry.kind !== 'kernel') throw new Error(`a Secure Boot chain boots a Linux kernel; ${entry.name} is ${entry.kind}`);
  const warnings: string[] = [];
  if (!entry.architectures.includes('x64')) throw new Error(`${entry.name} is not an x64 kernel; the signed chain is for UEFI x64 only`);
  const kernel = entry.files.find((f) => f.role === 'kernel');
  const pe = kernel?.detection?.kind === 'kernel' ? kernel.detection : undefined;
  if (!pe?.efiStub) warnings.push(`${entry.name}: the kernel has no EFI stub, so GRUB cannot verify or start it under Secure Boot`);
  else if (!pe.signed)
    warnings.push(`${entry.name}: the kernel carries no signature; GRUB in Secure Boot lockdown will refuse it (use a distribution-signed kernel)`);
  const files: ImportedFile[] = [];
  for (const [role, path] of [
    ['shim', chain.shim],
    ['grub', chain.grub],
  ] as const) {
    const { sha256, size } = await hashFile(path, undefined, options);
    files.push({ arch: 'uefi64', role, path, size, sha256, source: path });
  }
  files.push(...entry.files.filter((f) => f.arch === 'uefi64'));
  return {
    entry: { ...entry, kind: 'secure-boot-chain', architectures: ['x64'], files, notes: `Secure Boot chain: shim -> GRUB -> ${entry.notes}` },
    warnings,
  };
}
