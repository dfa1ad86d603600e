// Turning a name a client asked for (TFTP filename, URL-decoded HTTP path) into path
// segments relative to a root, or a refusal. Pure: no file system access here; the
// resolver (resolver.ts) walks the segments and checks what it finds on disk.
//
// Why each rule exists:
// - `\` -> `/`: Windows boot managers and WDS-style configs ask for `\Boot\x64\wdsnbp.com`
//   or `/boot\bcd` (PXE-NOTES, "TFTP facts").
// - A leading `/` is relative to the root, as tftpd-hpa does with `--secure`: the signed
//   netboot GRUB asks for `/grub/x86_64-efi/command.lst`. Such a name can therefore only
//   ever reach files inside the root.
// - `..` is refused outright (not clamped): a client that asks for it is probing.
// - Drive letters (`C:`) are refused: on a Windows host they would make the path absolute.
// - NUL and other control characters are refused: TFTP strings end at NUL (RFC 1350 §5),
//   so a NUL inside a name means someone built it by hand, and control characters have no
//   place in boot file names.
// - No Unicode normalisation: look-alikes such as U+FF0E FULLWIDTH FULL STOP stay what
//   they are (ordinary file name characters), so `．．` can never become `..`.

/** Whole request, in UTF-8 bytes. Firmware names are short; PATH_MAX-sized names are probes. */
export const MAX_REQUEST_PATH_BYTES = 1024;
/** One path component, in UTF-8 bytes (NAME_MAX on Linux, and the limit of most file systems). */
export const MAX_SEGMENT_BYTES = 255;

export type RefusalCode = 'not-found' | 'access-denied';

export interface PathRefusal {
  ok: false;
  code: RefusalCode;
  reason: string;
}

export interface NormalizedRequestPath {
  ok: true;
  /** Components relative to the root, never empty strings, `.` or `..`. */
  segments: string[];
  /** `/` + segments joined by `/`: the canonical name used in events and virtual lookups. */
  path: string;
}

// C0 controls and DEL. TAB and newline are as suspicious as NUL in a boot file name.

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
const DRIVE_LETTER = /^[A-Za-z]:/;

export function normalizeRequestPath(requested: string): NormalizedRequestPath | PathRefusal {
  if (requested.length === 0) return { ok: false, code: 'not-found', reason: 'empty file name' };
  if (requested.includes('\u0000')) return { ok: false, code: 'access-denied', reason: 'NUL byte in file name' };
  if (Buffer.byteLength(requested, 'utf8') > MAX_REQUEST_PATH_BYTES) {
    return { ok: false, code: 'access-denied', reason: `file name longer than ${MAX_REQUEST_PATH_BYTES} bytes` };
  }
  if (CONTROL_CHARACTERS.test(requested)) return { ok: false, code: 'access-denied', reason: 'control character in file name' };
  if (requested.includes('\ufffd')) {
    // Invalid UTF-8 from the wire decodes to U+FFFD; such a name cannot match a file honestly.
    return { ok: false, code: 'access-denied', reason: 'file name is not valid UTF-8' };
  }
  const slashed = requested.replace(/\\/g, '/');
  if (DRIVE_LETTER.test(slashed) || DRIVE_LETTER.test(slashed.replace(/^\/+/, ''))) {
    return { ok: false, code: 'access-denied', reason: 'drive-letter paths are not served' };
  }
  const segments: string[] = [];
  for (const segment of slashed.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') return { ok: false, code: 'access-denied', reason: '".." in file name' };
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) {
      return { ok: false, code: 'access-denied', reason: `path component longer than ${MAX_SEGMENT_BYTES} bytes` };
    }
    segments.push(segment);
  }
  if (segments.length === 0) return { ok: false, code: 'not-found', reason: 'the root folder is not a file' };
  return { ok: true, segments, path: '/' + segments.join('/') };
}

/** Lower-case key for case-insensitive comparison (no normalisation, see above). */
export function foldCase(name: string): string {
  return name.toLowerCase();
}
