// TFTP packet codec (RFC 1350 §5, options RFC 2347 §2, OACK RFC 2347 §2).
// Pure: bytes in, typed packet out, and back. No sockets here.
//
// All integers are big-endian ("network order"). Strings are bytes terminated by NUL.

export enum TftpOpcode {
  RRQ = 1,
  WRQ = 2,
  DATA = 3,
  ACK = 4,
  ERROR = 5,
  OACK = 6,
}

/** RFC 1350 §5 error codes, plus 8 from RFC 2347 §2. */
export const TftpErrorCode = {
  NotDefined: 0,
  FileNotFound: 1,
  AccessViolation: 2,
  DiskFull: 3,
  IllegalOperation: 4,
  UnknownTransferId: 5,
  FileExists: 6,
  NoSuchUser: 7,
  OptionNegotiation: 8,
} as const;
export type TftpErrorCode = (typeof TftpErrorCode)[keyof typeof TftpErrorCode];

export interface TftpOption {
  /** lower-cased: option names are case-insensitive (RFC 2347 §2) */
  name: string;
  value: string;
}

export interface TftpRequestPacket {
  opcode: TftpOpcode.RRQ | TftpOpcode.WRQ;
  filename: string;
  /** lower-cased: "netascii", "octet" or "mail" (RFC 1350 §5) */
  mode: string;
  /** in the order sent; may contain repeats, which the negotiator handles */
  options: TftpOption[];
}
export interface TftpDataPacket {
  opcode: TftpOpcode.DATA;
  block: number;
  data: Uint8Array;
}
export interface TftpAckPacket {
  opcode: TftpOpcode.ACK;
  block: number;
}
export interface TftpErrorPacket {
  opcode: TftpOpcode.ERROR;
  code: number;
  message: string;
}
export interface TftpOackPacket {
  opcode: TftpOpcode.OACK;
  options: TftpOption[];
}
export type TftpPacket = TftpRequestPacket | TftpDataPacket | TftpAckPacket | TftpErrorPacket | TftpOackPacket;

/** A packet that cannot be decoded; `errorCode` is the RFC answer when one is due. */
export class TftpDecodeError extends Error {
  override readonly name = 'TftpDecodeError';
  constructor(
    message: string,
    readonly errorCode: TftpErrorCode = TftpErrorCode.IllegalOperation,
  ) {
    super(message);
  }
}

/** RFC 1350 §2: a packet never exceeds 4 + blksize; RFC 2348 caps blksize at 65464. */
export const MAX_TFTP_PACKET = 4 + 65464;

/** Reads a NUL-terminated string starting at `offset`; returns it and the offset after the NUL. */
function readCString(buf: Uint8Array, offset: number, what: string): [string, number] {
  const end = buf.indexOf(0, offset);
  if (end < 0) throw new TftpDecodeError(`${what} is not NUL-terminated`);
  return [Buffer.from(buf.buffer, buf.byteOffset + offset, end - offset).toString('utf8'), end + 1];
}

export function decodeTftpPacket(buf: Uint8Array): TftpPacket {
  if (buf.length < 2) throw new TftpDecodeError('packet shorter than an opcode');
  if (buf.length > MAX_TFTP_PACKET) throw new TftpDecodeError('packet longer than any TFTP packet');
  const opcode = (buf[0] << 8) | buf[1];
  switch (opcode) {
    //  2 bytes    string    1 byte  string  1 byte  string  1 byte  string  1 byte
    // +--------+----------+------+--------+------+--------+------+--------+------+--
    // | 01/02  | filename |  0   |  mode  |  0   |  opt1  |  0   | value1 |  0   | ...
    // +--------+----------+------+--------+------+--------+------+--------+------+--
    // RFC 1350 §5 (RRQ/WRQ), RFC 2347 §2 (options appended after the mode)
    case TftpOpcode.RRQ:
    case TftpOpcode.WRQ: {
      const [filename, afterName] = readCString(buf, 2, 'file name');
      const [mode, afterMode] = readCString(buf, afterName, 'mode');
      const options = decodeOptions(buf, afterMode);
      return { opcode, filename, mode: mode.toLowerCase(), options };
    }
    //  2 bytes   2 bytes   n bytes (0..blksize)
    // +--------+---------+----------+
    // |   03   | Block # |   Data   |   RFC 1350 §5
    // +--------+---------+----------+
    case TftpOpcode.DATA:
      if (buf.length < 4) throw new TftpDecodeError('DATA shorter than 4 bytes');
      return { opcode, block: (buf[2] << 8) | buf[3], data: buf.subarray(4) };
    //  2 bytes   2 bytes
    // +--------+---------+
    // |   04   | Block # |   RFC 1350 §5 (block 0 acknowledges an OACK, RFC 2347 §2)
    // +--------+---------+
    case TftpOpcode.ACK:
      if (buf.length < 4) throw new TftpDecodeError('ACK shorter than 4 bytes');
      return { opcode, block: (buf[2] << 8) | buf[3] };
    //  2 bytes   2 bytes     string    1 byte
    // +--------+-----------+----------+------+
    // |   05   | ErrorCode |  ErrMsg  |  0   |   RFC 1350 §5
    // +--------+-----------+----------+------+
    case TftpOpcode.ERROR: {
      if (buf.length < 4) throw new TftpDecodeError('ERROR shorter than 4 bytes');
      const code = (buf[2] << 8) | buf[3];
      // Some clients omit the terminating NUL; the message is informational only.
      const end = buf.indexOf(0, 4);
      const message = Buffer.from(buf.buffer, buf.byteOffset + 4, (end < 0 ? buf.length : end) - 4).toString('utf8');
      return { opcode, code, message };
    }
    //  2 bytes   string  1 byte  string  1 byte
    // +--------+-------+------+--------+------+--
    // |   06   |  opt1 |  0   | value1 |  0   | ...   RFC 2347 §2
    // +--------+-------+------+--------+------+--
    case TftpOpcode.OACK:
      return { opcode, options: decodeOptions(buf, 2) };
    default:
      throw new TftpDecodeError(`unknown opcode ${opcode}`);
  }
}

function decodeOptions(buf: Uint8Array, offset: number): TftpOption[] {
  const options: TftpOption[] = [];
  while (offset < buf.length) {
    const [name, afterName] = readCString(buf, offset, 'option name');
    // RFC 2347 §2 allows trailing padding of NULs from some clients; an empty name ends the list.
    if (name === '') break;
    if (afterName >= buf.length) throw new TftpDecodeError(`option ${name} has no value`, TftpErrorCode.OptionNegotiation);
    const [value, afterValue] = readCString(buf, afterName, `value of option ${name}`);
    options.push({ name: name.toLowerCase(), value });
    offset = afterValue;
  }
  return options;
}

function cStringsLength(strings: string[]): number {
  let n = 0;
  for (const s of strings) n += Buffer.byteLength(s, 'utf8') + 1;
  return n;
}

function writeCStrings(buf: Buffer, offset: number, strings: string[]): number {
  for (const s of strings) {
    offset += buf.write(s, offset, 'utf8');
    buf[offset++] = 0;
  }
  return offset;
}

export function encodeTftpPacket(packet: TftpPacket): Buffer {
  switch (packet.opcode) {
    case TftpOpcode.RRQ:
    case TftpOpcode.WRQ: {
      const strings = [packet.filename, packet.mode, ...packet.options.flatMap((o) => [o.name, o.value])];
      const buf = Buffer.allocUnsafe(2 + cStringsLength(strings));
      buf.writeUInt16BE(packet.opcode, 0);
      writeCStrings(buf, 2, strings);
      return buf;
    }
    case TftpOpcode.DATA: {
      const buf = Buffer.allocUnsafe(4 + packet.data.length);
      writeDataHeader(buf, 0, packet.block);
      buf.set(packet.data, 4);
      return buf;
    }
    case TftpOpcode.ACK:
      return encodeAck(packet.block);
    case TftpOpcode.ERROR:
      return encodeError(packet.code, packet.message);
    case TftpOpcode.OACK:
      return encodeOack(packet.options);
  }
}

/** Writes the 4-byte DATA header (opcode 3, block number modulo 2^16) in place. */
export function writeDataHeader(target: Uint8Array, offset: number, block: number): void {
  target[offset] = 0;
  target[offset + 1] = TftpOpcode.DATA;
  target[offset + 2] = (block >>> 8) & 0xff;
  target[offset + 3] = block & 0xff;
}

export function encodeAck(block: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt16BE(TftpOpcode.ACK, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  return buf;
}

export function encodeError(code: number, message: string): Buffer {
  const buf = Buffer.allocUnsafe(4 + Buffer.byteLength(message, 'utf8') + 1);
  buf.writeUInt16BE(TftpOpcode.ERROR, 0);
  buf.writeUInt16BE(code, 2);
  writeCStrings(buf, 4, [message]);
  return buf;
}

export function encodeOack(options: TftpOption[]): Buffer {
  const strings = options.flatMap((o) => [o.name, o.value]);
  const buf = Buffer.allocUnsafe(2 + cStringsLength(strings));
  buf.writeUInt16BE(TftpOpcode.OACK, 0);
  writeCStrings(buf, 2, strings);
  return buf;
}
