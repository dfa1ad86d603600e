// Boot entries, and adding files to them (the host detects what each file is, hashes it
// and says why a file was not added).
import type { ApiClient } from '../transport.js';
import type { BootEntry, ImportFilesResult } from '../../../../preload/api.js';

export class LibraryState {
  entries = $state.raw<BootEntry[]>([]);
  importing = $state(false);
  lastResult = $state.raw<ImportFilesResult | undefined>(undefined);
  error = $state<string | undefined>(undefined);

  constructor(private readonly api: ApiClient) {}

  async load(): Promise<void> {
    try {
      this.entries = await this.api.call('entries:list');
    } catch (err) {
      this.error = (err as Error).message;
    }
  }

  async importPaths(paths: string[]): Promise<void> {
    if (paths.length === 0) return;
    this.importing = true;
    this.error = undefined;
    try {
      this.lastResult = await this.api.call('entries:import', { paths });
      await this.load();
    } catch (err) {
      this.error = (err as Error).message;
    } finally {
      this.importing = false;
    }
  }
}
