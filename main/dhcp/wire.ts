// Small byte-level helpers shared by the DHCP codecs.
import { DhcpDecodeError, DhcpEncodeError } from './errors.js';

export function decodeIpv4(buf: Buffer, offset = 0): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function encodeIpv4(address: string): Buffer {
  const m = IPV4.exec(address);
  if (!m) throw new DhcpEncodeError(`not an IPv4 address: ${JSON.stringify(address)}`);
  const bytes = m.slice(1, 5).map(Number);
  if (bytes.some((b) => b > 255)) throw new DhcpEncodeError(`not an IPv4 address: ${JSON.stringify(address)}`);
  return Buffer.from(bytes);
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
    const data = buf.subarray(i + 2, i + 2 + len);
    const before = items.get(code);
    items.set(code, before ? Buffer.concat([before, data]) : Buffer.from(data));
    i += 2 + len;
  }
  return items;
}

/** Encodes items as TLV, splitting values longer than 255 bytes (RFC 3396 §7). No end byte. */
export function encodeTlv(items: Iterable<[number, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [code, data] of items) {
    if (code <= 0 || code >= 255) throw new DhcpEncodeError(`option code ${code} cannot be encoded`);
    if (data.length === 0) {
      parts.push(Buffer.from([code, 0]));
      continue;
    }
    for (let at = 0; at < data.length; at += 255) {
      const chunk = data.subarray(at, at + 255);
      parts.push(Buffer.from([code, chunk.length]), chunk);
    }
  }
  return Buffer.concat(parts);
}

export function formatMac(bytes: Buffer): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function parseMac(mac: string): Buffer {
  const parts = mac.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new DhcpEncodeError(`not a MAC address: ${mac}`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}
