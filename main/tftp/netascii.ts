// RFC 1350 §5 / RFC 764 netascii: end of line is CR LF on the wire, and a CR that is not
// followed by LF is sent as CR NUL. tftp-hpa's client defaults to this mode, so a plain
// `tftp host -c get file` must work.

/** Converts a local file's bytes (LF line ends) to netascii. */
export function toNetascii(input: Uint8Array): Buffer {
  let extra = 0;
  for (let i = 0; i < input.length; i++) if (input[i] === 0x0a || input[i] === 0x0d) extra++;
  const out = Buffer.allocUnsafe(input.length + extra);
  let o = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c === 0x0a) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    } else if (c === 0x0d) {
      out[o++] = 0x0d;
      out[o++] = 0x00;
    } else out[o++] = c;
  }
  return out;
}

/** Largest file converted for a netascii transfer (the conversion is done in memory). */
export const MAX_NETASCII_FILE = 16 * 1024 * 1024;
