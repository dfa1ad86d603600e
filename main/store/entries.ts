// Boot entries: the library's items, each with its files per architecture.
import type Database from 'better-sqlite3';

export const ENTRY_KINDS = ['nbp', 'kernel', 'initrd', 'iso', 'wim', 'ipxe-script', 'local-disk', 'secure-boot-chain'] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

export interface EntryFile {
  /** Boot class the file is for (bios, uefi64, ...), or 'any'. */
  arch: string;
  /** What the file is in the chain: nbp, kernel, initrd, iso, wim, script, shim, grub ... */
  role: string;
  /** Path relative to the served root (or the library folder). */
  path: string;
  size: number;
  sha256: string;
}

export interface BootEntry {
  id: number;
  name: string;
  kind: EntryKind;
  arguments: string;
  notes: string;
  /** In fetch order per architecture: the last one of an architecture completes a boot. */
  files: EntryFile[];
  createdAt: number;
  updatedAt: number;
}

export interface NewBootEntry {
  name: string;
  kind: EntryKind;
  arguments?: string;
  notes?: string;
  files?: EntryFile[];
}

export class EntryInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EntryInputError';
  }
}

interface EntryRow {
  id: number;
  name: string;
  kind: EntryKind;
  arguments: string;
  notes: string;
  created_at: number;
  updated_at: number;
}

function checkFiles(files: EntryFile[]): void {
  for (const file of files) {
    if (!/^[0-9a-f]{64}$/.test(file.sha256)) {
      throw new EntryInputError(`file ${file.path}: sha256 "${file.sha256}" is not 64 lower-case hex digits; hash the file again`);
    }
    if (!Number.isSafeInteger(file.size) || file.size < 0) throw new EntryInputError(`file ${file.path}: size ${file.size} is not a byte count`);
    if (file.path === '') throw new EntryInputError('an entry file needs a path');
  }
}

export class EntryRepository {
  private readonly insertFile: Database.Statement;

  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {
    this.insertFile = db.prepare(`INSERT INTO entry_files (entry_id, arch, position, role, path, size, sha256)
      VALUES (@entryId, @arch, @position, @role, @path, @size, @sha256)`);
  }

  create(input: NewBootEntry): BootEntry {
    this.checkKind(input.kind);
    checkFiles(input.files ?? []);
    return this.db.transaction(() => {
      if (this.findByName(input.name)) throw new EntryInputError(`an entry named "${input.name}" exists already: choose another name`);
      const now = this.now();
      const id = Number(
        this.db
          .prepare(`INSERT INTO entries (name, kind, arguments, notes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`)
          .run(input.name, input.kind, input.arguments ?? '', input.notes ?? '', now, now).lastInsertRowid,
      );
      this.writeFiles(id, input.files ?? []);
      return this.get(id)!;
    })();
  }

  get(id: number): BootEntry | undefined {
    const row = this.db.prepare('SELECT * FROM entries WHERE id = ?').get(id) as EntryRow | undefined;
    return row && this.withFiles(row);
  }

  findByName(name: string): BootEntry | undefined {
    const row = this.db.prepare('SELECT * FROM entries WHERE name = ?').get(name) as EntryRow | undefined;
    return row && this.withFiles(row);
  }

  /** Whether any entry boots something other than the local disk (one indexed probe, per DHCP request). */
  hasBootableEntry(): boolean {
    return this.db.prepare("SELECT 1 FROM entries WHERE kind != 'local-disk' LIMIT 1").get() !== undefined;
  }

  list(): BootEntry[] {
    return (this.db.prepare('SELECT * FROM entries ORDER BY name').all() as EntryRow[]).map((row) => this.withFiles(row));
  }

  /** Changes what is given; `files` replaces all files of the entry. */
  update(id: number, patch: Partial<NewBootEntry>): BootEntry {
    if (patch.kind !== undefined) this.checkKind(patch.kind);
    if (patch.files) checkFiles(patch.files);
    return this.db.transaction(() => {
      const current = this.get(id);
      if (!current) throw new EntryInputError(`entry ${id} does not exist (deleted meanwhile?)`);
      if (patch.name !== undefined && patch.name.toLowerCase() !== current.name.toLowerCase() && this.findByName(patch.name)) {
        throw new EntryInputError(`an entry named "${patch.name}" exists already: choose another name`);
      }
      this.db
        .prepare('UPDATE entries SET name = ?, kind = ?, arguments = ?, notes = ?, updated_at = ? WHERE id = ?')
        .run(patch.name ?? current.name, patch.kind ?? current.kind, patch.arguments ?? current.arguments, patch.notes ?? current.notes, this.now(), id);
      if (patch.files) {
        this.db.prepare('DELETE FROM entry_files WHERE entry_id = ?').run(id);
        this.writeFiles(id, patch.files);
      }
      return this.get(id)!;
    })();
  }

  /** Machines and groups that pointed at it fall back (their assignment becomes empty). */
  remove(id: number): boolean {
    return this.db.prepare('DELETE FROM entries WHERE id = ?').run(id).changes > 0;
  }

  /**
   * The file whose complete download finishes a boot of this entry, one per architecture
   * (the last in fetch order). With `arch`, only that architecture's (or else the 'any' files').
   */
  lastFiles(id: number, arch?: string): EntryFile[] {
    const files = this.get(id)?.files ?? [];
    const lastByArch = new Map<string, EntryFile>();
    for (const file of files) lastByArch.set(file.arch, file);
    if (arch === undefined) return [...lastByArch.values()];
    const own = lastByArch.get(arch) ?? lastByArch.get('any');
    return own ? [own] : [];
  }

  private withFiles(row: EntryRow): BootEntry {
    const files = this.db
      .prepare('SELECT arch, role, path, size, sha256 FROM entry_files WHERE entry_id = ? ORDER BY arch, position')
      .all(row.id) as EntryFile[];
    return {
      id: row.id,
      name: row.name,
      kind: row.kind,
      arguments: row.arguments,
      notes: row.notes,
      files,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  private writeFiles(entryId: number, files: EntryFile[]): void {
    const positions = new Map<string, number>();
    for (const file of files) {
      const position = positions.get(file.arch) ?? 0;
      positions.set(file.arch, position + 1);
      this.insertFile.run({ entryId, arch: file.arch, position, role: file.role, path: file.path, size: file.size, sha256: file.sha256 });
    }
  }

  private checkKind(kind: string): void {
    if (!(ENTRY_KINDS as readonly string[]).includes(kind)) {
      throw new EntryInputError(`entry kind "${kind}" is unknown: use one of ${ENTRY_KINDS.join(', ')}`);
    }
  }
}
