// Small byte-level helpers shared by the DHCP codecs.
import { DhcpDecodeError, DhcpEncodeError } from './errors.js';

export function decodeIpv4(buf: Buffer, offset = 0): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

export function encodeIpv4(address: string): Buffer {
  const out = Buffer.alloc(4);
  writeIpv4(out, address, 0);
  return out;
}

/**
 * encodeIpv4 in place: a reply's four header addresses without a Buffer or a regex match
 * each. Accepts four dot-separated groups of 1-3 decimal digits, each at most 255.
 */
export function writeIpv4(out: Buffer, address: string, offset: number): void {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= address.length; i++) {
    const c = i < address.length ? address.charCodeAt(i) : 0x2e; // the end closes the last group like a dot
    if (c >= 0x30 && c <= 0x39 && digits < 3) {
      value = value * 10 + (c - 0x30);
      digits++;
    } else if (c === 0x2e && digits > 0 && value <= 255 && part < 4) {
      out[offset + part++] = value;
      value = 0;
      digits = 0;
    } else {
      part = -1;
      break;
    }
  }
  if (part !== 4) throw new DhcpEncodeError(`not an IPv4 address: ${JSON.stringify(address)}`);
}

export function ipv4ToNumber(address: string): number {
  return encodeIpv4(address).readUInt32BE(0);
}

export function numberToIpv4(value: number): string {
  const buf = Buffer.alloc(4);
  buf.writeUInt32BE(value >>> 0, 0);
  return decodeIpv4(buf);
}

/** Expects `buf` to be exactly `length` bytes (or a multiple of `unit`) for option `what`. */
export function expectLength(buf: Buffer, what: string, exact?: number, unit?: number, min = 0): void {
  if (exact !== undefined && buf.length !== exact) throw new DhcpDecodeError(`${what}: length ${buf.length}, expected ${exact}`);
  if (unit !== undefined && buf.length % unit !== 0) throw new DhcpDecodeError(`${what}: length ${buf.length} is not a multiple of ${unit}`);
  if (buf.length < min) throw new DhcpDecodeError(`${what}: length ${buf.length}, expected at least ${min}`);
}

/** Text of a string option. RFC 2132 §2 says no NUL terminator, but firmware sends one anyway. */
export function decodeText(buf: Buffer): string {
  let end = buf.length;
  while (end > 0 && buf[end - 1] === 0) end--;
  return buf.subarray(0, end).toString('latin1');
}

export function encodeText(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/**
 * Type-length-value items as in DHCP options and the sub-options of options 43/82/175
 * (RFC 2132 §2): pad (0) skipped, end (255) stops, everything else `code len data`.
 * Repeated codes are concatenated (RFC 3396 §6).
 */
export function decodeTlv(buf: Buffer, what: string, baseOffset = 0): Map<number, Buffer> {
  const items = new Map<number, Buffer>();
  // Values do not share memory with the caller's buffer: one copy of it, not one per option.
  let copy: Buffer | undefined;
  let i = 0;
  while (i < buf.length) {
    const code = buf[i];
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 255) break;
    if (i + 1 >= buf.length) throw new DhcpDecodeError(`${what}: option ${code} has no length byte`, baseOffset + i);
    const len = buf[i + 1];
    if (i + 2 + len > buf.length) throw new DhcpDecodeError(`${what}: option ${code} (length ${len}) runs past the end`, baseOffset + i);
    copy ??= Buffer.from(buf);
    const data = copy.subarray(i + 2, i + 2 + len);
    const before = items.get(code);
    items.set(code, before ? Buffer.concat([before, data]) : data);
    i += 2 + len;
  }
  return items;
}

/** Encodes items as TLV, splitting values longer than 255 bytes (RFC 3396 §7). No end byte. */
export function encodeTlv(items: Iterable<[number, Buffer]>): Buffer {
  const list = Array.isArray(items) ? (items as [number, Buffer][]) : [...items];
  // Sized first, then written into one buffer: a reply is built per DISCOVER.
  let length = 0;
  for (const [code, data] of list) {
    if (code <= 0 || code >= 255) throw new DhcpEncodeError(`option code ${code} cannot be encoded`);
    length += data.length === 0 ? 2 : data.length + 2 * Math.ceil(data.length / 255);
  }
  const out = Buffer.allocUnsafe(length); // every byte is written below
  let at = 0;
  for (const [code, data] of list) {
    if (data.length === 0) {
      out[at++] = code;
      out[at++] = 0;
      continue;
    }
    for (let from = 0; from < data.length; from += 255) {
      const chunk = Math.min(255, data.length - from);
      out[at++] = code;
      out[at++] = chunk;
      data.copy(out, at, from, from + chunk);
      at += chunk;
    }
  }
  return out;
}

const HEX_PAIRS: readonly string[] = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** Lower-case colon form; every DHCP event carries one, so no array or closure per byte. */
export function formatMac(bytes: Buffer): string {
  let text = '';
  for (let i = 0; i < bytes.length; i++) text += i === 0 ? HEX_PAIRS[bytes[i]] : `:${HEX_PAIRS[bytes[i]]}`;
  return text;
}

export function parseMac(mac: string): Buffer {
  const parts = mac.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new DhcpEncodeError(`not a MAC address: ${mac}`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}
