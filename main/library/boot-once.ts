// "Boot once, then local disk": an assignment marked boot-once ends when the machine has
// fetched the last file its entry needs (the kernel is running, or wimboot has its WIM).
// Pure functions of (assignment, entry, fetch event) so every case is unit-testable; the
// host applies the result to the store (machines.clearAssignment / completeBootOnce).
import type { LibraryArchitecture } from './detect.js';
import { entryFileServedPath, filesForArchitecture, isoInnerServedPath, type ScriptEntry } from './ipxe-script.js';

export interface BootOnceAssignment {
  entryId: number | null;
  bootOnce: boolean;
  /** Set once the boot-once boot happened: the machine boots its local disk from now on. */
  localDisk?: boolean;
}

/** A finished transfer, as TFTP/HTTP events report it. */
export interface FetchEvent {
  /** Request path as served (URL path, decoded), e.g. /library/e12/initrd.img. */
  path: string;
  /** The whole file was sent (not a size probe, not an aborted transfer). */
  complete: boolean;
  /** A range request (iPXE's sanboot reads an ISO in ranges, never as a whole). */
  range?: boolean;
}

export type BootOnceTransition =
  { changed: false; assignment: BootOnceAssignment; reason: string } | { changed: true; assignment: BootOnceAssignment; reason: string };

/**
 * The served paths whose fetch completes a boot of this entry on this architecture.
 * Usually one (the last file fetched); for a sanbooted ISO the ISO itself, on its first read.
 */
export function finishingPaths(entry: ScriptEntry, architecture: LibraryArchitecture): { paths: string[]; rangeCounts: boolean } {
  const files = filesForArchitecture(entry, architecture);
  const last = (roles: string[]) => [...files].reverse().find((f) => roles.includes(f.role));
  switch (entry.kind) {
    case 'kernel':
    case 'secure-boot-chain': {
      const file = last(['initrd']) ?? last(['kernel']);
      return { paths: file ? [entryFileServedPath(entry.id, file.path)] : [], rangeCounts: false };
    }
    case 'wim': {
      const file = last(['wim']);
      return { paths: file ? [entryFileServedPath(entry.id, file.path)] : [], rangeCounts: false };
    }
    case 'nbp':
    case 'ipxe-script': {
      const file = last(['nbp', 'script']);
      return { paths: file ? [entryFileServedPath(entry.id, file.path)] : [], rangeCounts: false };
    }
    case 'iso': {
      const linux = entry.iso?.linux;
      if (linux) return { paths: [isoInnerServedPath(entry.id, linux.initrds.at(-1) ?? linux.kernel)], rangeCounts: false };
      const windows = entry.iso?.windows;
      if (windows?.bootWim && windows.bcd && windows.bootSdi) return { paths: [isoInnerServedPath(entry.id, windows.bootWim)], rangeCounts: false };
      const iso = last(['iso']);
      return { paths: iso ? [entryFileServedPath(entry.id, iso.path)] : [], rangeCounts: true };
    }
    default:
      return { paths: [], rangeCounts: false };
  }
}

/** Served paths compared as a client may spell them (escapes, a query, slashes, case). */
export function samePath(a: string, b: string): boolean {
  const clean = (p: string) => {
    let decoded = p;
    try {
      decoded = decodeURIComponent(p);
    } catch {
      // keep as sent
    }
    return ('/' + decoded.split('?')[0].replace(/\\/g, '/').replace(/^\/+/, '')).toLowerCase();
  };
  return clean(a) === clean(b);
}

/** Next assignment after a fetch: unchanged, or (boot-once done) local disk. */
export function nextAssignmentAfterFetch(
  assignment: BootOnceAssignment,
  entry: ScriptEntry | undefined,
  architecture: LibraryArchitecture,
  event: FetchEvent,
): BootOnceTransition {
  if (!assignment.bootOnce || assignment.entryId === null) return { changed: false, assignment, reason: 'not a boot-once assignment' };
  if (!entry || entry.id !== assignment.entryId) return { changed: false, assignment, reason: 'the fetch belongs to another entry' };
  const { paths, rangeCounts } = finishingPaths(entry, architecture);
  if (!paths.some((p) => samePath(p, event.path))) return { changed: false, assignment, reason: "not the entry's last file" };
  if (!event.complete && !(rangeCounts && event.range)) return { changed: false, assignment, reason: 'the last file was not fetched completely' };
  return {
    changed: true,
    assignment: { entryId: null, bootOnce: false, localDisk: true },
    reason: `${entry.name} was booted once (${event.path} fetched); local disk from the next boot`,
  };
}

/** The group action "reinstall these N machines once": each gets the entry, boot-once. */
export function assignOnce(machineIds: number[], entryId: number): { machineId: number; assignment: BootOnceAssignment }[] {
  return [...new Set(machineIds)].map((machineId) => ({ machineId, assignment: { entryId, bootOnce: true } }));
}

/**
 * Next assignment after an installer reported that it finished (its answer file's callback):
 * a boot-once assignment of that entry still pending ends, so the next boot is the new system
 * on the disk. Usually the last file's fetch ended it already.
 */
export function nextAssignmentAfterInstall(assignment: BootOnceAssignment, installedEntryId: number): BootOnceTransition {
  if (!assignment.bootOnce || assignment.entryId === null) return { changed: false, assignment, reason: 'not a boot-once assignment' };
  if (assignment.entryId !== installedEntryId) return { changed: false, assignment, reason: 'the install belongs to another entry' };
  return {
    changed: true,
    assignment: { entryId: null, bootOnce: false, localDisk: true },
    reason: 'the installer reported that it finished; local disk from the next boot',
  };
}
