// Boot entries, adding files to them (the host detects what each file is, hashes it and says
// why a file was not added) and managing them: rename, kernel arguments, Secure Boot chain,
// pairing an initrd with its kernel, removal.
import type { ApiClient } from '../transport.js';
import type { BootEntry, EntryRemoveResult, EntryUpdate, ImportFilesResult } from '../../../../preload/api.js';
import type { UploadProgress } from '../upload.js';
import { AnswerFilesState } from './answers.svelte.js';

/** Sends one file to the host, resolving with its upload id (lib/upload.ts in the browser). */
export type FileUploader = (file: File, onProgress: (p: UploadProgress) => void) => Promise<string>;

export class LibraryState {
  entries = $state.raw<BootEntry[]>([]);
  /** Files the technician added, not the built-in "Local disk" choice. */
  added = $derived(this.entries.filter((e) => !e.builtIn));
  builtIn = $derived(this.entries.filter((e) => e.builtIn));
  importing = $state(false);
  /** While files go to the host (web mode): the file being sent and the whole batch. */
  upload = $state.raw<{ file: string; sent: number; size: number; totalSent: number; totalSize: number } | undefined>(undefined);
  lastResult = $state.raw<ImportFilesResult | undefined>(undefined);
  error = $state<string | undefined>(undefined);
  /** The answer to the last edit: warnings to read, or who still boots an entry to remove. */
  notice = $state.raw<{ kind: 'ok' | 'warn' | 'bad'; text: string } | undefined>(undefined);
  /** An entry whose removal waits for a confirmation, with who boots it. */
  pendingRemoval = $state.raw<{ entry: BootEntry; users: EntryRemoveResult } | undefined>(undefined);
  /** Entries' answer-file templates (unattended installs). */
  readonly answers: AnswerFilesState;

  constructor(
    private readonly api: ApiClient,
    /** Entries changed (names, removals): other screens that list them reload. */
    private readonly onChange: () => void = () => {},
  ) {
    this.answers = new AnswerFilesState(api);
  }

  async load(): Promise<void> {
    try {
      this.entries = await this.api.call('entries:list');
      await this.answers.load();
    } catch (err) {
      this.error = (err as Error).message;
    }
  }

  private async runImport(work: () => Promise<ImportFilesResult>): Promise<void> {
    this.importing = true;
    this.error = undefined;
    this.notice = undefined;
    try {
      this.lastResult = await work();
      await this.load();
      this.onChange();
    } catch (err) {
      this.error = (err as Error).message;
    } finally {
      this.importing = false;
      this.upload = undefined;
    }
  }

  async importPaths(paths: string[]): Promise<void> {
    if (paths.length === 0) return;
    await this.runImport(() => this.api.call('entries:import', { paths }));
  }

  /** Web mode: sends the files to the host one after the other, then imports them together. */
  async uploadFiles(files: File[], send: FileUploader): Promise<void> {
    if (files.length === 0) return;
    const totalSize = files.reduce((sum, f) => sum + f.size, 0);
    await this.runImport(async () => {
      const uploads: string[] = [];
      let done = 0;
      for (const file of files) {
        this.upload = { file: file.name, sent: 0, size: file.size, totalSent: done, totalSize };
        uploads.push(await send(file, (p) => (this.upload = { ...p, totalSent: done + p.sent, totalSize })));
        done += file.size;
      }
      // Sent: what follows is the host hashing and filing them ("Adding…").
      this.upload = undefined;
      return this.api.call('entries:import-uploads', { uploads });
    });
  }

  private replace(entry: BootEntry): void {
    this.entries = this.entries.map((e) => (e.id === entry.id ? entry : e));
  }

  /** Rename, arguments or Secure Boot; true when saved. */
  async update(update: EntryUpdate): Promise<boolean> {
    try {
      const { entry, warnings } = await this.api.call('entries:update', update);
      this.replace(entry);
      this.notice = warnings.length ? { kind: 'warn', text: warnings.join(' ') } : { kind: 'ok', text: `Saved "${entry.name}".` };
      this.onChange();
      return true;
    } catch (err) {
      this.notice = { kind: 'bad', text: (err as Error).message };
      return false;
    }
  }

  async pair(kernelId: number, initrdId: number): Promise<void> {
    try {
      const entry = await this.api.call('entries:pair', { kernelId, initrdId });
      await this.load();
      this.notice = { kind: 'ok', text: `The initrd now boots with "${entry.name}".` };
      this.onChange();
    } catch (err) {
      this.notice = { kind: 'bad', text: (err as Error).message };
    }
  }

  /** First asks without force: when machines or groups boot it, the screen asks for confirmation. */
  async remove(entry: BootEntry, force = false): Promise<void> {
    try {
      const result = await this.api.call('entries:remove', { id: entry.id, force });
      if (!result.removed) {
        this.pendingRemoval = { entry, users: result };
        return;
      }
      this.pendingRemoval = undefined;
      this.entries = this.entries.filter((e) => e.id !== entry.id);
      const fellBack = result.who;
      this.notice = {
        kind: 'ok',
        text: `Removed "${entry.name}"${result.filesDeleted ? ` and its ${result.filesDeleted} file${result.filesDeleted > 1 ? 's' : ''} in the library` : ''}.${fellBack ? ` Now falling back to their group or the default: ${fellBack}.` : ''}`,
      };
      this.onChange();
    } catch (err) {
      this.pendingRemoval = undefined;
      this.notice = { kind: 'bad', text: (err as Error).message };
    }
  }
}
