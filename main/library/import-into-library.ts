// Files in, boot entries out: detection and copying (import.ts), the optional Secure Boot
// chain, then the store. The one flow behind `bootbench entries import` (cli.ts) and the
// UI's Library screen (`entries:import`, main/api/api-library.ts).
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { BootEntry, Store } from '../store/index.js';
import { importPaths, libraryDir, toSecureBootChain, type ImportedEntry, type ImportProgress, type StorageMode } from './import.js';
import { locateBootBinary } from './boot-binaries.js';

export interface LibraryImportOptions {
  mode: StorageMode;
  /** Entry name (one entry only; default: the file or folder name). */
  name?: string;
  /** Make each kernel (+ initrds) a Secure Boot chain entry: signed shim -> signed GRUB -> kernel. */
  secureBoot?: boolean;
  onProgress?: (progress: ImportProgress) => void;
  signal?: AbortSignal;
}

export interface LibraryImportResult {
  /** Entries created in the store, in import order. */
  imported: BootEntry[];
  /** Entries whose files are already in the library (same kind, same content): not added again. */
  duplicates: { name: string; existing: BootEntry }[];
  /** Paths that gave no entry, with the reason (the rest of the import goes on). */
  refused: { path: string; reason: string }[];
  /** Entries added, but with something the technician should know (e.g. an unsigned kernel). */
  warnings: string[];
}

/** The import cannot run at all (nothing was read or written). */
export class LibraryImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LibraryImportError';
  }
}

/**
 * Imports `paths` into the store's library. Paths that do not exist and files that are not
 * boot files are refused with the reason; content already in the library is not stored twice
 * (its copy is removed again); names are made unique.
 */
export async function importIntoLibrary(store: Store, dataDir: string, paths: string[], options: LibraryImportOptions): Promise<LibraryImportResult> {
  const chain = options.secureBoot ? secureBootBinaries(dataDir) : undefined;
  const refused: LibraryImportResult['refused'] = [];
  const present: string[] = [];
  for (const path of paths) {
    if (existsSync(path)) present.push(path);
    else refused.push({ path: resolve(path), reason: `${path}: there is no such file or folder` });
  }
  const warnings: string[] = [];
  const result =
    present.length > 0
      ? await importPaths(present, { dataDir, mode: options.mode, name: options.name, onProgress: options.onProgress, signal: options.signal })
      : { entries: [], refused: [] };
  refused.push(...result.refused);

  const candidates: ImportedEntry[] = [];
  for (const entry of result.entries) {
    if (!chain) {
      candidates.push(entry);
      continue;
    }
    if (entry.kind !== 'kernel') {
      refused.push({ path: entry.source, reason: `--secure-boot: ${entry.name} is ${entry.kind}, not a Linux kernel` });
      await discardCopies(entry, dataDir);
      continue;
    }
    const converted = await toSecureBootChain(entry, chain, { onProgress: options.onProgress, signal: options.signal });
    warnings.push(...converted.warnings);
    candidates.push(converted.entry);
  }

  const imported: BootEntry[] = [];
  const duplicates: LibraryImportResult['duplicates'] = [];
  for (const entry of candidates) {
    const existing = findSameContent(store, entry);
    if (existing) {
      await discardCopies(entry, dataDir);
      duplicates.push({ name: entry.name, existing });
      continue;
    }
    const files = entry.files.map(({ arch, role, path, size, sha256 }) => ({ arch, role, path, size, sha256 }));
    imported.push(store.entries.create({ ...entry, name: uniqueEntryName(store, entry.name), files }));
  }
  return { imported, duplicates, refused, warnings };
}

function secureBootBinaries(dataDir: string): { shim: string; grub: string } {
  const shim = locateBootBinary('shim', { dataDir });
  const grub = locateBootBinary('grub', { dataDir });
  if (!shim.path || !grub.path) throw new LibraryImportError(`--secure-boot needs the signed shim and GRUB: ${(shim.hint ?? grub.hint)!}`);
  return { shim: shim.path, grub: grub.path };
}

/** Same kind and the same files (by content): importing twice does not make two entries. */
export function findSameContent(store: Store, entry: Pick<ImportedEntry, 'kind' | 'files'>): BootEntry | undefined {
  const key = (files: { arch: string; role: string; sha256: string }[]) =>
    files
      .map((f) => `${f.arch}:${f.role}:${f.sha256}`)
      .sort()
      .join(',');
  const wanted = key(entry.files);
  return store.entries.list().find((e) => e.kind === entry.kind && key(e.files) === wanted);
}

async function discardCopies(entry: ImportedEntry, dataDir: string): Promise<void> {
  if (entry.storage === 'reference') return;
  const folders = new Set(entry.files.map((f) => f.path.split('/')[0]));
  for (const folder of folders) if (folder) await rm(join(libraryDir(dataDir), folder), { recursive: true, force: true });
}

function uniqueEntryName(store: Store, name: string): string {
  if (!store.entries.findByName(name)) return name;
  for (let i = 2; ; i++) {
    const candidate = `${name} (${i})`;
    if (!store.entries.findByName(candidate)) return candidate;
  }
}
