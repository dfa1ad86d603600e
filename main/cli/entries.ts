// `bootbench entries ...`: the library from the command line.
//   bootbench entries import PATH... [--data DIR] [--json] [--reference] [--name NAME]
//   bootbench entries list [--data DIR] [--json]
// main/cli/bootbench.ts dispatches `entries` here: `process.exitCode = await entriesCommand(argv.slice(1))`.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { openStore, type BootEntry, type Store } from '../store/index.js';
import {
  architectureForBootClass,
  resolveEntryFilePath,
  type ImportProgress,
  LIBRARY_ARCHITECTURES,
  type LibraryArchitecture,
  importIntoLibrary,
  entryDiskSize,
} from '../library/index.js';
import { defaultDataDir } from './serve-flags.js';

const USAGE = `Usage: bootbench entries <command> [options]

Commands:
  import PATH...   Make boot entries from files or folders (detected by content: EFI/BIOS
                   boot programs, Linux kernels + initrds, ISO images, WIM files, iPXE scripts)
  list             List the library

Options:
  --data DIR       data folder (default ~/.bootbench, or $BOOTBENCH_DATA)
  --json           machine-readable output: per entry kind (nbp, kernel, initrd, iso, wim,
                   ipxe-script, local-disk, secure-boot-chain), architectures (bios, ia32, x64,
                   arm64; empty = not tied to one) and sha256
  --reference      import: leave the files where they are instead of copying them into the data folder
  --name NAME      import: entry name (one entry only; default: the file or folder name)
  --secure-boot    import: make a kernel (+ initrds) a Secure Boot chain entry: signed shim ->
                   signed netboot GRUB -> the kernel (UEFI x64; the kernel must be signed)
  -h, --help       show this help

A file that is not a usable boot file is reported with the reason, and the command exits 1.`;

const OPTIONS = {
  data: { type: 'string' },
  json: { type: 'boolean' },
  reference: { type: 'boolean' },
  name: { type: 'string' },
  'secure-boot': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface EntriesCommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: EntriesCommandIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** The JSON shape of one entry in `entries list --json` / `entries import --json`. */
export interface EntryListing {
  id: number;
  name: string;
  kind: BootEntry['kind'];
  architectures: LibraryArchitecture[];
  /** SHA-256 of the entry's main file (the first file), or null for entries without files. */
  sha256: string | null;
  size: number;
  arguments: string;
  storage: 'copy' | 'reference' | 'none';
  files: { arch: string; role: string; path: string; size: number; sha256: string; missing: boolean }[];
  notes: string;
}

export function entryArchitectures(entry: Pick<BootEntry, 'files'>): LibraryArchitecture[] {
  const found = new Set(entry.files.map((f) => architectureForBootClass(f.arch)).filter((a): a is LibraryArchitecture => a !== undefined));
  return LIBRARY_ARCHITECTURES.filter((a) => found.has(a));
}

export function describeEntry(entry: BootEntry, dataDir: string): EntryListing {
  const files = entry.files.map((f) => ({ ...f, missing: !existsSync(resolveEntryFilePath(f, dataDir)) }));
  const first = entry.files[0];
  return {
    id: entry.id,
    name: entry.name,
    kind: entry.kind,
    architectures: entryArchitectures(entry),
    sha256: first?.sha256 ?? null,
    size: entryDiskSize(entry.files),
    arguments: entry.arguments,
    storage: first ? (first.path.startsWith('/') ? 'reference' : 'copy') : 'none',
    files,
    notes: entry.notes,
  };
}

class UsageError extends Error {}

export async function entriesCommand(args: string[], io: EntriesCommandIo = processIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    io.stderr(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...paths] = positionals;
  if (values.help || command === undefined || command === 'help') {
    (values.help ? io.stdout : io.stderr)(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const dataDir = resolve(values.data ?? defaultDataDir());
  let store: Store | undefined;
  try {
    if (command === 'list') {
      if (paths.length > 0) throw new UsageError(`entries list takes no paths (got ${paths.join(' ')})`);
      store = openStore(dataDir);
      return listEntries(store, dataDir, values.json ?? false, io);
    }
    if (command === 'import') {
      if (paths.length === 0) throw new UsageError('entries import needs at least one PATH (a file or a folder)');
      for (const p of paths) if (!existsSync(p)) throw new UsageError(`${p} does not exist`);
      store = openStore(dataDir);
      return await importEntries(
        store,
        dataDir,
        paths,
        { json: values.json ?? false, reference: values.reference ?? false, name: values.name, secureBoot: values['secure-boot'] ?? false },
        io,
      );
    }
    throw new UsageError(`unknown command "entries ${command}": use import or list`);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    io.stderr(`bootbench entries: ${(err as Error).message}\n`);
    return 1;
  } finally {
    store?.close();
  }
}

function listEntries(store: Store, dataDir: string, json: boolean, io: EntriesCommandIo): number {
  const listings = store.entries.list().map((e) => describeEntry(e, dataDir));
  if (json) {
    io.stdout(`${JSON.stringify(listings, null, 2)}\n`);
    return 0;
  }
  if (listings.length === 0) {
    io.stdout(`The library in ${dataDir} is empty. Add files with: bootbench entries import PATH...\n`);
    return 0;
  }
  for (const e of listings) {
    const missing = e.files.some((f) => f.missing) ? '  MISSING FILES' : '';
    io.stdout(`${String(e.id).padStart(4)}  ${e.name}  [${e.kind}; ${e.architectures.join(', ') || 'any'}; ${formatSize(e.size)}; ${e.storage}]${missing}\n`);
    if (e.sha256) io.stdout(`      sha256 ${e.sha256}\n`);
  }
  return 0;
}

async function importEntries(
  store: Store,
  dataDir: string,
  paths: string[],
  options: { json: boolean; reference: boolean; name?: string; secureBoot: boolean },
  io: EntriesCommandIo,
): Promise<number> {
  let lastShown = 0;
  const onProgress = (p: ImportProgress) => {
    if (options.json) return;
    const now = Date.now();
    if (now - lastShown < 500 && p.bytes < p.size) return;
    lastShown = now;
    const percent = p.totalSize > 0 ? Math.floor((p.totalBytes / p.totalSize) * 100) : 100;
    io.stderr(`${p.phase === 'copy' ? 'copying' : 'hashing'} ${p.file}: ${formatSize(p.bytes)} of ${formatSize(p.size)} (${percent}% overall)\n`);
  };
  const result = await importIntoLibrary(store, dataDir, paths, {
    mode: options.reference ? 'reference' : 'copy',
    name: options.name,
    secureBoot: options.secureBoot,
    onProgress,
  });
  for (const w of result.warnings) io.stderr(`warning: ${w}\n`);
  const imported = result.imported.map((e) => describeEntry(e, dataDir));
  const duplicates = result.duplicates.map((d) => ({ name: d.name, existing: d.existing.name }));
  if (options.json) {
    io.stdout(`${JSON.stringify({ imported, duplicates, refused: result.refused }, null, 2)}\n`);
  } else {
    for (const e of imported) io.stdout(`imported ${e.id}  ${e.name}  [${e.kind}; ${e.architectures.join(', ') || 'any'}]  sha256 ${e.sha256}\n`);
    for (const d of duplicates) io.stdout(`already in the library: ${d.name} (as "${d.existing}")\n`);
  }
  for (const r of result.refused) io.stderr(`cannot use ${r.path}: ${r.reason}\n`);
  return result.refused.length > 0 ? 1 : 0;
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
