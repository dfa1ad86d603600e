// The Library screen's `entries:import` (LibraryImporter in api.ts) on the library's import
// flow, the same one `bootbench entries import` runs (main/library/import-into-library.ts).
import { isAbsolute } from 'node:path';
import type { Store } from '../store/index.js';
import { importIntoLibrary } from '../library/import-into-library.js';
import type { StorageMode } from '../library/import.js';
import { toApiEntry } from './api-store.js';
import type { LibraryImporter } from './api.js';
import type { ImportFilesResult } from '../../preload/api.js';

export interface StoreLibraryImporterOptions {
  store: Store;
  /** The data folder copies go to; read at each import so it follows the host's settings. */
  dataDir: () => string;
  /** Default 'copy': the entry keeps working when the stick it came from is gone. */
  mode?: StorageMode;
  /** After entries were added, e.g. ServiceHost.mountLibrary so they boot without a restart. */
  afterImport?: () => Promise<unknown>;
}

export function storeLibraryImporter(options: StoreLibraryImporterOptions): LibraryImporter {
  // One import at a time: duplicate detection compares with the store, so two drops of the
  // same file must not both find it absent.
  let queue: Promise<unknown> = Promise.resolve();
  const importFiles = async (paths: string[]): Promise<ImportFilesResult> => {
    const problems: string[] = [];
    // The host's working directory means nothing to the technician typing a path.
    const absolute = paths.filter((p) => isAbsolute(p));
    for (const p of paths) if (!isAbsolute(p)) problems.push(`${p}: give the full path on the host computer (starting with /)`);
    if (absolute.length === 0) return { entries: [], problems };

    const result = await importIntoLibrary(options.store, options.dataDir(), absolute, { mode: options.mode ?? 'copy' });
    if (result.imported.length > 0 && options.afterImport) {
      try {
        await options.afterImport();
      } catch (err) {
        problems.push(`Added, but the running services could not take the new entries in (${(err as Error).message}): stop and start them.`);
      }
    }
    problems.push(
      ...result.refused.map((r) => `Not added: ${r.reason}`),
      ...result.duplicates.map((d) => `${d.name} is already in the library as "${d.existing.name}".`),
      ...result.warnings,
    );
    return { entries: result.imported.map(toApiEntry), problems };
  };
  return {
    importFiles(paths) {
      const run = queue.then(() => importFiles(paths));
      queue = run.catch(() => undefined);
      return run;
    },
  };
}
