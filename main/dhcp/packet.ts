// BOOTP/DHCP message codec (RFC 951, RFC 2131 §2, RFC 2132). Pure: bytes in, typed
// packet out, and back. Sockets live in service.ts.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +---------------+---------------+---------------+---------------+
//  |     op (1)    |   htype (1)   |   hlen (1)    |   hops (1)    |   0
//  +---------------+---------------+---------------+---------------+
//  |                            xid (4)                            |   4
//  +-------------------------------+-------------------------------+
//  |           secs (2)            |           flags (2)           |   8   flags bit 15 = BROADCAST
//  +-------------------------------+-------------------------------+
//  |                          ciaddr (4)                           |  12
//  |                          yiaddr (4)                           |  16
//  |                          siaddr (4)                           |  20   next server (TFTP)
//  |                          giaddr (4)                           |  24   relay agent
//  |                          chaddr (16)                          |  28
//  |                          sname (64)                           |  44   NUL-terminated
//  |                          file (128)                           | 108   NUL-terminated
//  |                 magic cookie 99.130.83.99 (4)                 | 236   RFC 2131 §3
//  |                          options (variable) ... 255           | 240
//  +---------------------------------------------------------------+
//
// A BOOTP reply must be at least 300 bytes (RFC 951's 64-byte vend area; RFC 1542 §3.3
// notes relay agents and old clients drop shorter ones), so replies are zero-padded.
import { DhcpDecodeError, DhcpEncodeError } from './errors.js';
import { decodeDhcpOptions, encodeDhcpOptions, type DhcpOptions } from './options.js';
import { decodeIpv4, decodeTlv, formatMac, writeIpv4 } from './wire.js';

export { DhcpDecodeError, DhcpEncodeError } from './errors.js';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const FLAG_BROADCAST = 0x8000;
export const MAGIC_COOKIE = 0x63825363;
export const MIN_BOOTP_LENGTH = 300;

const FIXED_LENGTH = 236;
const SNAME_OFFSET = 44;
const SNAME_LENGTH = 64;
const FILE_OFFSET = 108;
const FILE_LENGTH = 128;

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** The full 16-byte field; the hardware address is the first `hlen` bytes. */
  chaddr: Buffer;
  sname: string;
  file: string;
  options: DhcpOptions;
}

function fieldText(buf: Buffer, offset: number, length: number): string {
  if (buf[offset] === 0) return ''; // nearly every client's sname and file
  const field = buf.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? length : nul).toString('latin1');
}

/** Decodes one UDP payload. Throws DhcpDecodeError for anything that is not a well-formed message. */
export function decodeDhcpPacket(buf: Buffer): DhcpPacket {
  if (buf.length < FIXED_LENGTH) throw new DhcpDecodeError(`truncated: ${buf.length} bytes, a BOOTP header is ${FIXED_LENGTH}`);
  const op = buf[0];
  if (op !== BOOTREQUEST && op !== BOOTREPLY) throw new DhcpDecodeError(`op ${op} is neither BOOTREQUEST nor BOOTREPLY`, 0);
  const hlen = buf[2];
  if (hlen > 16) throw new DhcpDecodeError(`hlen ${hlen} exceeds the 16-byte chaddr field`, 2);

  let raw = new Map<number, Buffer>();
  if (buf.length >= FIXED_LENGTH + 4 && buf.readUInt32BE(FIXED_LENGTH) === MAGIC_COOKIE) {
    raw = decodeTlv(buf.subarray(FIXED_LENGTH + 4), 'options', FIXED_LENGTH + 4);
  } else if (!buf.subarray(FIXED_LENGTH).every((b) => b === 0)) {
    // RFC 951 clients may leave the vend area zeroed; anything else without the cookie is not ours to guess.
    throw new DhcpDecodeError('bad magic cookie', FIXED_LENGTH);
  }

  // RFC 2132 §9.3: option 52 moves more options into file and/or sname, read in that order.
  let file = fieldText(buf, FILE_OFFSET, FILE_LENGTH);
  let sname = fieldText(buf, SNAME_OFFSET, SNAME_LENGTH);
  const overload = raw.get(52);
  if (overload && overload.length === 1 && overload[0] >= 1 && overload[0] <= 3) {
    const merge = (extra: Map<number, Buffer>) => {
      for (const [code, v] of extra) {
        const before = raw.get(code);
        raw.set(code, before ? Buffer.concat([before, v]) : v);
      }
    };
    if (overload[0] & 1) {
      merge(decodeTlv(buf.subarray(FILE_OFFSET, FILE_OFFSET + FILE_LENGTH), 'options in the file field', FILE_OFFSET));
      file = '';
    }
    if (overload[0] & 2) {
      merge(decodeTlv(buf.subarray(SNAME_OFFSET, SNAME_OFFSET + SNAME_LENGTH), 'options in the sname field', SNAME_OFFSET));
      sname = '';
    }
  }

  return {
    op,
    htype: buf[1],
    hlen,
    hops: buf[3],
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: decodeIpv4(buf, 12),
    yiaddr: decodeIpv4(buf, 16),
    siaddr: decodeIpv4(buf, 20),
    giaddr: decodeIpv4(buf, 24),
    chaddr: Buffer.from(buf.subarray(28, 44)),
    sname,
    file,
    options: decodeDhcpOptions(raw),
  };
}

function writeField(out: Buffer, text: string, offset: number, length: number, what: string): void {
  if (text === '') return; // the field is zeroed already
  const bytes = Buffer.from(text, 'latin1');
  // One byte is kept for the NUL terminator: firmware reads these as C strings.
  if (bytes.length > length - 1) throw new DhcpEncodeError(`${what} is ${bytes.length} bytes; the field holds ${length - 1} plus NUL`);
  if (bytes.includes(0)) throw new DhcpEncodeError(`${what} contains a NUL byte`);
  bytes.copy(out, offset);
}

/** Encodes a message with the end option, zero-padded to at least 300 bytes. */
export function encodeDhcpPacket(p: DhcpPacket): Buffer {
  if (p.chaddr.length > 16) throw new DhcpEncodeError('chaddr is longer than 16 bytes');
  if (p.options.overload !== undefined) throw new DhcpEncodeError('option overload is decoded but never encoded');
  const options = encodeDhcpOptions(p.options);
  // One zeroed buffer for header, options, end and padding: a storm sends thousands a second.
  const out = Buffer.alloc(Math.max(FIXED_LENGTH + 4 + options.length + 1, MIN_BOOTP_LENGTH));
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = p.hlen;
  out[3] = p.hops;
  out.writeUInt32BE(p.xid >>> 0, 4);
  out.writeUInt16BE(p.secs, 8);
  out.writeUInt16BE(p.flags, 10);
  writeIpv4(out, p.ciaddr, 12);
  writeIpv4(out, p.yiaddr, 16);
  writeIpv4(out, p.siaddr, 20);
  writeIpv4(out, p.giaddr, 24);
  p.chaddr.copy(out, 28);
  writeField(out, p.sname, SNAME_OFFSET, SNAME_LENGTH, 'sname');
  writeField(out, p.file, FILE_OFFSET, FILE_LENGTH, 'file');
  out.writeUInt32BE(MAGIC_COOKIE, FIXED_LENGTH);
  options.copy(out, FIXED_LENGTH + 4);
  out[FIXED_LENGTH + 4 + options.length] = 255;
  return out;
}

/** The client's hardware address in lower-case colon form (the first `hlen` bytes of chaddr). */
export function clientMac(p: DhcpPacket): string {
  return formatMac(p.chaddr.subarray(0, Math.min(p.hlen, 16)));
}

export function isBroadcastFlag(p: DhcpPacket): boolean {
  return (p.flags & FLAG_BROADCAST) !== 0;
}
