// "The database may have changed": for a copy of store data kept elsewhere (the DHCP thread's
// assignments, main/dhcp/dhcp-thread.ts). Writes through this connection are reported as
// they run (onLocalWrites); another process's commits (`bootbench entries import` beside a
// running host) show up as changes to the database file or its write-ahead log, which the
// OS reports (fs.watch: inotify, FSEvents, ReadDirectoryChangesW) without polling.
// Where the OS cannot watch the folder, the caller's slower poll is all there is.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { onLocalWrites, type Store } from './open-store.js';

/** Calls `changed` (often, maybe more than once per change: callers coalesce) until the returned function is called. */
export function watchStoreChanges(store: Store, changed: () => void): () => void {
  const stopLocal = onLocalWrites(store.db, changed);
  const name = basename(store.path);
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(store.path), { persistent: false }, (_event, file) => {
      // Some platforms give no name: then anything in the folder counts.
      if (!file || file === name || file === `${name}-wal`) changed();
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    watcher = undefined; // no watching here (an unusual file system): the caller's poll remains
  }
  return () => {
    stopLocal();
    watcher?.close();
  };
}
