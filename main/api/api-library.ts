// The Library screen's calls (LibraryImporter in api.ts) on the library's own flows: import
// (the same one `bootbench entries import` runs, main/library/import-into-library.ts), files
// the web UI uploaded, and managing entries (main/library/entry-edit.ts).
import { readdir, rm } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { Store } from '../store/index.js';
import { importIntoLibrary, describeEntryUsers, editEntry, pairInitrd, removeEntry, uploadsDir, type StorageMode } from '../library/index.js';
import { toApiEntry } from './api-store.js';
import { UPLOAD_ID, type LibraryImporter } from './api.js';
import type { ImportFilesResult } from '../../preload/api.js';

export interface StoreLibraryImporterOptions {
  store: Store;
  /** The data folder copies go to; read at each import so it follows the host's settings. */
  dataDir: () => string;
  /** Default 'copy': the entry keeps working when the stick it came from is gone. */
  mode?: StorageMode;
  /**
   * After entries were added or changed, e.g. ServiceHost.mountLibrary so they boot without
   * a restart.
   */
  afterChange?: () => Promise<unknown>;
}

export function storeLibraryImporter(options: StoreLibraryImporterOptions): LibraryImporter {
  const { store } = options;
  // One change at a time: duplicate detection compares with the store, so two drops of the
  // same file must not both find it absent, and a removal must not race an import.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work);
    queue = run.catch(() => undefined);
    return run;
  };
  const tellServices = async (problems: string[]) => {
    if (!options.afterChange) return;
    try {
      await options.afterChange();
    } catch (err) {
      problems.push(`Saved, but the running services could not take the change in (${(err as Error).message}): stop and start them.`);
    }
  };

  const importPaths = async (paths: string[], mode: StorageMode, problems: string[]): Promise<ImportFilesResult> => {
    const result = await importIntoLibrary(store, options.dataDir(), paths, { mode });
    if (result.imported.length > 0) await tellServices(problems);
    problems.push(
      ...result.refused.map((r) => `Not added: ${r.reason}`),
      ...result.duplicates.map((d) => `${d.name} is already in the library as "${d.existing.name}".`),
      ...result.warnings,
    );
    return { entries: result.imported.map(toApiEntry), problems };
  };

  return {
    importFiles: (paths) =>
      serial(async () => {
        const problems: string[] = [];
        // The host's working directory means nothing to the technician typing a path.
        const absolute = paths.filter((p) => isAbsolute(p));
        for (const p of paths) if (!isAbsolute(p)) problems.push(`${p}: give the full path on the host computer (starting with /)`);
        if (absolute.length === 0) return { entries: [], problems };
        return importPaths(absolute, options.mode ?? 'copy', problems);
      }),

    importUploads: (ids) =>
      serial(async () => {
        const problems: string[] = [];
        const folders = ids.filter((id) => UPLOAD_ID.test(id)).map((id) => join(uploadsDir(options.dataDir()), id));
        const paths: string[] = [];
        for (const folder of folders) {
          // Each upload folder holds the one finished file (a partial one never gets its name).
          const names = await readdir(folder).catch(() => [] as string[]);
          const done = names.filter((n) => !n.endsWith('.partial'));
          if (done.length === 0) problems.push('An uploaded file is no longer on the host (it restarted, or the upload failed): drop the file again.');
          paths.push(...done.map((n) => join(folder, n)));
        }
        try {
          // Together, so a kernel and its initrd dropped at once become one entry.
          return paths.length ? await importPaths(paths, 'move', problems) : { entries: [], problems };
        } finally {
          for (const folder of folders) await rm(folder, { recursive: true, force: true });
        }
      }),

    update: (request) =>
      serial(async () => {
        const { id, ...edit } = request;
        const result = await editEntry(store, options.dataDir(), id, edit);
        const warnings = [...result.warnings];
        if (edit.secureBoot !== undefined) await tellServices(warnings);
        return { entry: toApiEntry(result.entry), warnings };
      }),

    pair: (request) =>
      serial(async () => {
        const entry = pairInitrd(store, request.kernelId, request.initrdId);
        await tellServices([]);
        return toApiEntry(entry);
      }),

    remove: (request) =>
      serial(async () => {
        const removal = await removeEntry(store, options.dataDir(), request.id, { force: request.force });
        return { removed: removal.removed, ...removal.users, who: describeEntryUsers(removal.users), filesDeleted: removal.filesDeleted };
      }),
  };
}
