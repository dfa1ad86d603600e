// What a failed database write means for the technician. A full disk or a failing disk under
// the data folder must never stop boot service: the recorder turns history
// off and tries again later, and API edits answer with these sentences instead of SQLite's.
import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';

export type WriteFailureKind = 'disk-full' | 'disk-error' | 'read-only' | 'other';

export interface WriteFailure {
  kind: WriteFailureKind;
  /** SQLite's extended code (SQLITE_FULL, SQLITE_IOERR_WRITE ...) or the errno name. */
  code: string;
  /** The folder that needs space or attention. */
  folder: string;
  /** What happened, in plain words. */
  problem: string;
  /** What to do about it. */
  fix: string;
}

/**
 * Sorts a write error by cause. SQLite reports a full file system as SQLITE_FULL, but a
 * WAL or -shm file that cannot grow shows up as one of the SQLITE_IOERR_* codes (WRITE,
 * SHMSIZE, FSYNC ...) with ENOSPC underneath, so IOERR counts as the disk too.
 * https://sqlite.org/rescode.html
 */
export function classifyWriteFailure(err: unknown, databasePath: string): WriteFailure {
  const code = String((err as { code?: unknown })?.code ?? 'error');
  const folder = databasePath === ':memory:' ? databasePath : dirname(databasePath);
  const message = (err as Error)?.message ?? String(err);
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || /disk is full|no space left/i.test(message)) {
    return {
      kind: 'disk-full',
      code,
      folder,
      problem: `the disk holding ${folder} is full`,
      fix: `free space on ${folder} (delete old files, or move the data folder with --data DIR)`,
    };
  }
  if (code.startsWith('SQLITE_IOERR') || code === 'EIO') {
    return {
      kind: 'disk-error',
      code,
      folder,
      problem: `the disk holding ${folder} reported a write error`,
      fix: `check the disk holding ${folder} (space, errors in the system log), or move the data folder with --data DIR`,
    };
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === 'EACCES' || code === 'EPERM') {
    return {
      kind: 'read-only',
      code,
      folder,
      problem: `${folder} cannot be written`,
      fix: `make ${folder} writable for the user running Bootbench, or choose another data folder with --data DIR`,
    };
  }
  return {
    kind: 'other',
    code,
    folder,
    problem: `the database could not be written (${message})`,
    fix: `check ${folder}; restarting Bootbench opens the database again`,
  };
}

/** The error an API edit answers with when the database cannot take it. */
export class StoreWriteError extends Error {
  constructor(
    readonly failure: WriteFailure,
    cause?: unknown,
  ) {
    super(`The change was not saved: ${failure.problem}. To fix: ${failure.fix}. Booting goes on meanwhile.`, { cause });
    this.name = 'StoreWriteError';
  }
}

/** Runs an edit; a database that cannot take it becomes a StoreWriteError naming the fix. */
export function savingTo<T>(databasePath: string, edit: () => T): T {
  try {
    return edit();
  } catch (err) {
    const code = String((err as { code?: unknown })?.code ?? '');
    // Input errors (unknown entry, bad MAC ...) keep their own words.
    if (!code.startsWith('SQLITE_') && !['ENOSPC', 'EIO', 'EROFS'].includes(code)) throw err;
    const failure = classifyWriteFailure(err, databasePath);
    // A constraint or a busy database is not the disk: SQLite's own words are clearer.
    if (failure.kind === 'other') throw err;
    throw new StoreWriteError(failure, err);
  }
}

/** Below this, `bootbench doctor` warns: a few days of a busy bench's history and the WAL. */
export const LOW_DATA_FOLDER_SPACE_BYTES = 64 * 1024 * 1024;

export interface DataFolderSpace {
  folder: string;
  /** Bytes free for this user on the folder's file system; undefined when it cannot be read. */
  freeBytes?: number;
  /** Set when the free space is below the threshold: what it means and what to do. */
  problem?: string;
  fix?: string;
}

/**
 * The free space under the data folder, for a preflight check (`bootbench doctor`): a full
 * disk does not stop booting, but history stops being recorded until space returns.
 */
export function checkDataFolderSpace(
  folder: string,
  lowBytes = LOW_DATA_FOLDER_SPACE_BYTES,
  statfs: (path: string) => { bavail: number; bsize: number } = statfsSync,
): DataFolderSpace {
  let freeBytes: number;
  try {
    const fs = statfs(folder);
    freeBytes = fs.bavail * fs.bsize;
  } catch {
    return { folder };
  }
  if (freeBytes >= lowBytes) return { folder, freeBytes };
  const mib = (n: number) => `${Math.floor(n / (1024 * 1024))} MiB`;
  return {
    folder,
    freeBytes,
    problem: `only ${mib(freeBytes)} free under the data folder ${folder}: when it is full, boot history stops being recorded (booting goes on)`,
    fix: `free space on ${folder}, or move the data folder with --data DIR`,
  };
}
