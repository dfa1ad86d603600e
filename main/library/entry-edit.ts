// Managing entries after import: rename, kernel arguments, the Secure Boot chain on or off,
// pairing a loose initrd with its kernel, and removal (files the library copied go too).
// The Library screen reaches these through `entries:update`, `entries:pair` and
// `entries:remove` (main/api/api-library.ts); every refusal says what to do instead.
import { readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { defaultBootEntry, EntryInputError, type BootEntry, type EntryFile, type Store } from '../store/index.js';
import { detectFile } from './detect.js';
import { hashFile, libraryDir, resolveEntryFilePath } from './import.js';
import { locateBootBinary } from './boot-binaries.js';

/** Bytes on disk: a file listed for several boot classes is one file, counted once. */
export function entryDiskSize(files: readonly Pick<EntryFile, 'path' | 'size'>[]): number {
  const distinct = new Map(files.map((f) => [f.path, f.size]));
  return [...distinct.values()].reduce((sum, size) => sum + size, 0);
}

/** Who boots an entry: removing it changes what these machines get. */
export interface EntryUsers {
  /** Machines assigned to it themselves (name, else first MAC). */
  machines: string[];
  groups: string[];
  /** It is what machines without any assignment boot. */
  isDefault: boolean;
}

export function entryUsers(store: Store, entryId: number): EntryUsers {
  return {
    machines: store.machines
      .list()
      .filter((m) => m.entryId === entryId)
      .map((m) => m.name || m.macs[0] || `machine ${m.id}`),
    groups: store.machines
      .listGroups()
      .filter((g) => g.entryId === entryId)
      .map((g) => g.name),
    isDefault: defaultBootEntry(store)?.id === entryId,
  };
}

export function describeEntryUsers(users: EntryUsers): string {
  const parts = [
    users.machines.length ? `machine${users.machines.length > 1 ? 's' : ''} ${users.machines.join(', ')}` : '',
    users.groups.length ? `group${users.groups.length > 1 ? 's' : ''} ${users.groups.join(', ')}` : '',
    users.isDefault ? 'machines with no assignment (it is the default)' : '',
  ].filter(Boolean);
  return parts.join('; ');
}

const inUse = (users: EntryUsers) => users.machines.length > 0 || users.groups.length > 0 || users.isDefault;

/** The built-in "boot from the own disk" choice is not a file the technician added. */
export function isBuiltInEntry(entry: Pick<BootEntry, 'kind'>): boolean {
  return entry.kind === 'local-disk';
}

function existing(store: Store, id: number): BootEntry {
  const entry = store.entries.get(id);
  if (!entry) throw new EntryInputError(`There is no boot entry number ${id} (it may have been removed meanwhile): reload the list.`);
  return entry;
}

function refuseBuiltIn(entry: BootEntry, what: string): void {
  if (isBuiltInEntry(entry)) {
    throw new EntryInputError(
      `"${entry.name}" is built in and cannot be ${what}: it is the choice "boot from the machine's own disk", which boot once falls back to.`,
    );
  }
}

// One line inside an iPXE or GRUB script: a line break or a $ would be read as script, not as
// an argument.
const FORBIDDEN_ARGUMENT = /[\u0000-\u001f\u007f$]/;
export const ARGUMENT_KINDS: readonly string[] = ['kernel', 'secure-boot-chain', 'iso'];

export interface EntryEdit {
  name?: string;
  arguments?: string;
  /** Put the signed shim -> GRUB chain in front of a kernel entry (UEFI x64), or take it away. */
  secureBoot?: boolean;
}

export interface EntryEditResult {
  entry: BootEntry;
  /** Done, with something to know (e.g. an unsigned kernel under Secure Boot). */
  warnings: string[];
}

/** Applies the edits given; a refused edit changes nothing. */
export async function editEntry(store: Store, dataDir: string, id: number, edit: EntryEdit): Promise<EntryEditResult> {
  let entry = existing(store, id);
  const warnings: string[] = [];
  if (edit.name !== undefined && edit.name !== entry.name) {
    refuseBuiltIn(entry, 'renamed');
    if (edit.name === '') throw new EntryInputError('A boot entry needs a name: type one.');
    if (/[\u0000-\u001f\u007f]/.test(edit.name)) throw new EntryInputError('An entry name cannot contain line breaks or control characters.');
  }
  if (edit.arguments !== undefined && edit.arguments !== entry.arguments) {
    if (!ARGUMENT_KINDS.includes(entry.kind)) {
      throw new EntryInputError(`"${entry.name}" is ${entry.kind}: only kernel, Secure Boot chain and Linux ISO entries take a kernel command line.`);
    }
    if (FORBIDDEN_ARGUMENT.test(edit.arguments)) {
      throw new EntryInputError('Kernel arguments must be one line without "$" (iPXE and GRUB would read it as a variable): remove it.');
    }
  }
  let files: EntryFile[] | undefined;
  let kind = entry.kind;
  if (edit.secureBoot !== undefined && edit.secureBoot !== (entry.kind === 'secure-boot-chain')) {
    const changed = edit.secureBoot ? await withSecureBootChain(entry, dataDir) : withoutSecureBootChain(entry);
    files = changed.files;
    kind = changed.kind;
    warnings.push(...changed.warnings);
  }
  entry = store.entries.update(id, { name: edit.name, arguments: edit.arguments, kind, files });
  return { entry, warnings };
}

async function withSecureBootChain(entry: BootEntry, dataDir: string): Promise<{ kind: 'secure-boot-chain'; files: EntryFile[]; warnings: string[] }> {
  if (entry.kind !== 'kernel')
    throw new EntryInputError(`"${entry.name}" is ${entry.kind}: the Secure Boot chain (shim -> GRUB) starts a Linux kernel entry only.`);
  const kernel = entry.files.find((f) => f.arch === 'uefi64' && f.role === 'kernel');
  if (!kernel) throw new EntryInputError(`"${entry.name}" has no UEFI x64 kernel: the signed shim -> GRUB chain exists for UEFI x64 only.`);
  const shim = locateBootBinary('shim', { dataDir });
  const grub = locateBootBinary('grub', { dataDir });
  if (!shim.path || !grub.path)
    throw new EntryInputError(`The Secure Boot chain needs the signed shim and GRUB, which are missing: ${(shim.hint ?? grub.hint)!}`);
  const chain: EntryFile[] = [];
  for (const [role, path] of [
    ['shim', shim.path],
    ['grub', grub.path],
  ] as const) {
    const { sha256, size } = await hashFile(path, undefined);
    chain.push({ arch: 'uefi64', role, path, size, sha256 });
  }
  const warnings: string[] = [];
  try {
    const detection = await detectFile(resolveEntryFilePath(kernel, dataDir));
    if (detection.kind === 'kernel' && !detection.efiStub)
      warnings.push(`${entry.name}: the kernel has no EFI stub, so GRUB cannot verify or start it under Secure Boot.`);
    else if (detection.kind === 'kernel' && !detection.signed)
      warnings.push(
        `${entry.name}: the kernel carries no signature; GRUB in Secure Boot lockdown refuses it (use a distribution-signed kernel). With Secure Boot off it boots.`,
      );
  } catch (err) {
    warnings.push(`${entry.name}: the kernel file could not be read to check its signature (${(err as Error).message}).`);
  }
  // The other architectures keep their kernel: iPXE boots it directly on BIOS clients.
  const others = entry.files.filter((f) => f.arch !== 'uefi64');
  return { kind: 'secure-boot-chain', files: [...chain, ...entry.files.filter((f) => f.arch === 'uefi64'), ...others], warnings };
}

function withoutSecureBootChain(entry: BootEntry): { kind: 'kernel'; files: EntryFile[]; warnings: string[] } {
  if (entry.kind !== 'secure-boot-chain') throw new EntryInputError(`"${entry.name}" has no Secure Boot chain to take away.`);
  return { kind: 'kernel', files: entry.files.filter((f) => f.role !== 'shim' && f.role !== 'grub'), warnings: [] };
}

/**
 * Adds a loose initrd entry's file to a kernel entry (for every architecture the kernel has),
 * then removes the initrd entry: the pair an import of both files at once would have made.
 */
export function pairInitrd(store: Store, kernelId: number, initrdId: number): BootEntry {
  return store.transaction(() => {
    const kernel = existing(store, kernelId);
    const initrd = existing(store, initrdId);
    if (kernel.kind !== 'kernel' && kernel.kind !== 'secure-boot-chain')
      throw new EntryInputError(`"${kernel.name}" is ${kernel.kind}, not a kernel: choose the kernel entry the initrd belongs to.`);
    if (initrd.kind !== 'initrd') throw new EntryInputError(`"${initrd.name}" is ${initrd.kind}, not an initrd.`);
    const users = entryUsers(store, initrdId);
    if (inUse(users)) throw new EntryInputError(`"${initrd.name}" is assigned to ${describeEntryUsers(users)}: assign them something else first.`);
    const file = initrd.files[0];
    if (!file) throw new EntryInputError(`"${initrd.name}" has no file.`);
    const archs = [...new Set(kernel.files.map((f) => f.arch))];
    const added = archs.map((arch) => ({ arch, role: 'initrd', path: file.path, size: file.size, sha256: file.sha256 }));
    // Files stay in fetch order per architecture: the kernel's, then its initrds.
    const files = archs.flatMap((arch) => [...kernel.files.filter((f) => f.arch === arch), ...added.filter((f) => f.arch === arch)]);
    const notes = kernel.notes ? `${kernel.notes}; initrd: ${initrd.notes || initrd.name}` : initrd.notes;
    store.entries.remove(initrdId);
    return store.entries.update(kernelId, { files, notes });
  });
}

export interface EntryRemoval {
  removed: boolean;
  /** Who still boots it (when not removed: the reason; when removed with force: who fell back). */
  users: EntryUsers;
  /** Files the library had copied and deleted with it. */
  filesDeleted: number;
}

/**
 * Removes an entry. When machines, groups or the default still boot it, nothing happens unless
 * `force` (they fall back: machine -> group -> default). Files copied into the library folder
 * go with it unless another entry uses them; files referenced in place are never touched.
 */
export async function removeEntry(store: Store, dataDir: string, id: number, options: { force?: boolean } = {}): Promise<EntryRemoval> {
  const entry = existing(store, id);
  refuseBuiltIn(entry, 'removed');
  const users = entryUsers(store, id);
  if (inUse(users) && !options.force) return { removed: false, users, filesDeleted: 0 };
  store.entries.remove(id);
  const stillUsed = new Set(store.entries.list().flatMap((e) => e.files.map((f) => f.path)));
  const copies = [...new Set(entry.files.map((f) => f.path))].filter((p) => !isAbsolute(p) && !stillUsed.has(p));
  let filesDeleted = 0;
  const library = libraryDir(dataDir);
  for (const path of copies) {
    const full = join(library, path);
    if (!full.startsWith(library + '/') && !full.startsWith(library + '\\')) continue;
    try {
      await rm(full, { force: true });
      filesDeleted++;
      await removeIfEmpty(dirname(full), library);
    } catch {
      // The entry is gone already; a file that cannot be deleted only costs disk space.
    }
  }
  return { removed: true, users, filesDeleted };
}

async function removeIfEmpty(folder: string, library: string): Promise<void> {
  if (folder === library || !folder.startsWith(library)) return;
  try {
    if ((await readdir(folder)).length === 0) await rmdir(folder);
  } catch {
    // Already gone, or something else lives there: the folder stays.
  }
}
