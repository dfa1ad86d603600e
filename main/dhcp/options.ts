// DHCP options as typed values (RFC 2132, RFC 3004, RFC 3046, RFC 4578, PXE 2.1, iPXE).
// `decodeDhcpOptions` turns the raw option map (code -> concatenated bytes, RFC 3396) into
// `DhcpOptions`; `encodeDhcpOptions` does the reverse. Options we do not know stay as
// bytes in `other`, so nothing a client sent is lost.
import { DhcpDecodeError, DhcpEncodeError } from './errors.js';
import { decodePxeVendorOptions, encodePxeVendorOptions, type PxeVendorOptions } from './pxe-vendor-options.js';
import { decodeIpv4, decodeText, decodeTlv, encodeIpv4, encodeText, encodeTlv, expectLength } from './wire.js';

/** Option 53 values (RFC 2132 §9.6). */
export const DhcpMessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type DhcpMessageTypeName = keyof typeof DhcpMessageType;

/** Names by option 53 value, built once: asked for at least twice per packet. */
const MESSAGE_TYPE_NAMES: readonly string[] = Object.entries(DhcpMessageType).reduce<string[]>((names, [name, value]) => {
  names[value] = name;
  return names;
}, []);

export function messageTypeName(type: number | undefined): string {
  if (type === undefined) return 'BOOTP';
  return MESSAGE_TYPE_NAMES[type] ?? `TYPE${type}`;
}

/**
 * Option 77 (RFC 3004 §4): a list of `len data` items. iPXE instead sends the bare
 * string `iPXE` (its "user class" is not framed), which cannot be a valid RFC 3004 list
 * because its first byte ('i' = 105) is longer than the rest; we keep which form arrived
 * so a reply or a re-encode uses the same.
 */
export interface UserClassOption {
  format: 'rfc3004' | 'plain';
  classes: string[];
}

/** Option 94 (RFC 4578 §2.2): UNDI type (1 = UNDI) and version. */
export interface ClientNdiOption {
  type: number;
  major: number;
  minor: number;
}

/** Option 97 (RFC 4578 §2.3): type 0 followed by a 16-byte GUID. */
export interface ClientUuidOption {
  type: number;
  guid: Buffer;
}

export interface DhcpOptions {
  /** 1 */ subnetMask?: string;
  /** 3 */ routers?: string[];
  /** 6 */ dnsServers?: string[];
  /** 12 */ hostName?: string;
  /** 43, when the vendor class is PXEClient/HTTPClient (PXE 2.1 Table 2-1) */ pxe?: PxeVendorOptions;
  /** 43 for any other vendor: opaque bytes (RFC 2132 §8.4) */ vendorSpecific?: Buffer;
  /** 50 */ requestedIp?: string;
  /** 51, seconds */ leaseTime?: number;
  /** 52: 1 = file field holds options, 2 = sname, 3 = both (RFC 2132 §9.3) */ overload?: number;
  /** 53 */ messageType?: number;
  /** 54 */ serverIdentifier?: string;
  /** 55 */ parameterRequestList?: number[];
  /** 56 */ message?: string;
  /** 57 */ maxMessageSize?: number;
  /** 58, seconds */ renewalTime?: number;
  /** 59, seconds */ rebindingTime?: number;
  /** 60 */ vendorClassId?: string;
  /** 61: type byte + identifier (RFC 2132 §9.14) */ clientId?: Buffer;
  /** 66 */ tftpServerName?: string;
  /** 67 */ bootFileName?: string;
  /** 77 */ userClass?: UserClassOption;
  /** 82: relayed requests; echoed unchanged in replies (RFC 3046 §2.2) */ relayAgentInfo?: Buffer;
  /** 93: one or more architecture types (RFC 4578 §2.1) */ clientArch?: number[];
  /** 94 */ clientNdi?: ClientNdiOption;
  /** 97 */ clientUuid?: ClientUuidOption;
  /** 175: iPXE's encapsulated options (feature flags, bus id ...), by sub-option code */ ipxe?: Map<number, Buffer>;
  /** Everything else, and known options whose form we do not accept leniently (see below). */
  other?: Map<number, Buffer>;
}

export function isPxeVendorClass(vendorClassId: string | undefined): boolean {
  return !!vendorClassId && (vendorClassId.startsWith('PXEClient') || vendorClassId.startsWith('HTTPClient'));
}

function u32(v: Buffer, what: string): number {
  expectLength(v, what, 4);
  return v.readUInt32BE(0);
}

function ipv4List(v: Buffer, what: string): string[] {
  expectLength(v, what, undefined, 4, 4);
  const out: string[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(decodeIpv4(v, i));
  return out;
}

function decodeUserClass(v: Buffer): UserClassOption {
  const classes: string[] = [];
  let i = 0;
  let framed = v.length > 0;
  while (framed && i < v.length) {
    const len = v[i];
    if (len === 0 || i + 1 + len > v.length) framed = false;
    else {
      classes.push(v.subarray(i + 1, i + 1 + len).toString('latin1'));
      i += 1 + len;
    }
  }
  if (framed) return { format: 'rfc3004', classes };
  return { format: 'plain', classes: [decodeText(v)] };
}

function encodeUserClass(u: UserClassOption): Buffer {
  if (u.format === 'plain') return encodeText(u.classes.join(''));
  return Buffer.concat(
    u.classes.flatMap((c) => {
      const b = encodeText(c);
      if (b.length === 0 || b.length > 255) throw new DhcpEncodeError(`user class item ${JSON.stringify(c)} must be 1-255 bytes`);
      return [Buffer.from([b.length]), b];
    }),
  );
}

// Module functions, not closures per call: tsx (esbuild keepNames) names every closure it
// creates, which showed per packet in a DISCOVER storm's profile.
function keepRawOption(o: DhcpOptions, code: number, v: Buffer): void {
  (o.other ??= new Map()).set(code, v);
}

function addOption(items: [number, Buffer][], code: number, v: Buffer | undefined): void {
  if (v) items.push([code, v]);
}

/** Turns the raw option map into typed options. Throws DhcpDecodeError on bad lengths. */
export function decodeDhcpOptions(raw: Map<number, Buffer>): DhcpOptions {
  const o: DhcpOptions = {};
  for (const [code, v] of raw) {
    const what = `option ${code}`;
    switch (code) {
      case 1:
        expectLength(v, what, 4);
        o.subnetMask = decodeIpv4(v);
        break;
      case 3:
        o.routers = ipv4List(v, what);
        break;
      case 6:
        o.dnsServers = ipv4List(v, what);
        break;
      case 12:
        o.hostName = decodeText(v);
        break;
      case 43:
        break; // decoded below, once option 60 is known
      case 50:
        expectLength(v, what, 4);
        o.requestedIp = decodeIpv4(v);
        break;
      case 51:
        o.leaseTime = u32(v, what);
        break;
      case 52:
        expectLength(v, what, 1);
        if (v[0] < 1 || v[0] > 3) throw new DhcpDecodeError(`option 52: overload value ${v[0]} is not 1, 2 or 3`);
        o.overload = v[0];
        break;
      case 53:
        expectLength(v, what, 1);
        o.messageType = v[0];
        break;
      case 54:
        expectLength(v, what, 4);
        o.serverIdentifier = decodeIpv4(v);
        break;
      case 55:
        o.parameterRequestList = [...v];
        break;
      case 56:
        o.message = decodeText(v);
        break;
      case 57:
        expectLength(v, what, 2);
        o.maxMessageSize = v.readUInt16BE(0);
        break;
      case 58:
        o.renewalTime = u32(v, what);
        break;
      case 59:
        o.rebindingTime = u32(v, what);
        break;
      case 60:
        o.vendorClassId = decodeText(v);
        break;
      case 61:
        o.clientId = v;
        break;
      case 66:
        o.tftpServerName = decodeText(v);
        break;
      case 67:
        o.bootFileName = decodeText(v);
        break;
      case 77:
        o.userClass = decodeUserClass(v);
        break;
      case 82:
        o.relayAgentInfo = v;
        break;
      case 93:
        expectLength(v, what, undefined, 2, 2);
        o.clientArch = [];
        for (let i = 0; i < v.length; i += 2) o.clientArch.push(v.readUInt16BE(i));
        break;
      // 94 and 97 with an unexpected length are kept as bytes (and still echoed) rather
      // than refused: a client with a sloppy UUID option must still boot.
      case 94:
        if (v.length === 3) o.clientNdi = { type: v[0], major: v[1], minor: v[2] };
        else keepRawOption(o, code, v);
        break;
      case 97:
        if (v.length === 17) o.clientUuid = { type: v[0], guid: Buffer.from(v.subarray(1)) };
        else keepRawOption(o, code, v);
        break;
      case 175:
        o.ipxe = decodeTlv(v, 'option 175');
        break;
      default:
        keepRawOption(o, code, v);
    }
  }
  const vendor = raw.get(43);
  if (vendor) {
    if (isPxeVendorClass(o.vendorClassId)) o.pxe = decodePxeVendorOptions(vendor);
    else o.vendorSpecific = vendor;
  }
  return o;
}

function u8(n: number, what: string): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xff) throw new DhcpEncodeError(`${what}: ${n} is not an 8-bit value`);
  return Buffer.from([n]);
}

function u16(n: number, what: string): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new DhcpEncodeError(`${what}: ${n} is not a 16-bit value`);
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32Enc(n: number, what: string): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new DhcpEncodeError(`${what}: ${n} is not a 32-bit value`);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/**
 * Options in wire order: 53 first (some BOOTP-era clients look only there), 82 last
 * (RFC 3046 §2.1: the relay agent information is the last option), no end marker.
 */
export function encodeDhcpOptions(o: DhcpOptions): Buffer {
  const items: [number, Buffer][] = [];
  addOption(items, 53, o.messageType === undefined ? undefined : u8(o.messageType, 'option 53'));
  addOption(items, 54, o.serverIdentifier === undefined ? undefined : encodeIpv4(o.serverIdentifier));
  addOption(items, 51, o.leaseTime === undefined ? undefined : u32Enc(o.leaseTime, 'option 51'));
  addOption(items, 58, o.renewalTime === undefined ? undefined : u32Enc(o.renewalTime, 'option 58'));
  addOption(items, 59, o.rebindingTime === undefined ? undefined : u32Enc(o.rebindingTime, 'option 59'));
  addOption(items, 1, o.subnetMask === undefined ? undefined : encodeIpv4(o.subnetMask));
  addOption(items, 3, o.routers?.length ? Buffer.concat(o.routers.map(encodeIpv4)) : undefined);
  addOption(items, 6, o.dnsServers?.length ? Buffer.concat(o.dnsServers.map(encodeIpv4)) : undefined);
  addOption(items, 12, o.hostName === undefined ? undefined : encodeText(o.hostName));
  addOption(items, 50, o.requestedIp === undefined ? undefined : encodeIpv4(o.requestedIp));
  addOption(items, 52, o.overload === undefined ? undefined : u8(o.overload, 'option 52'));
  addOption(items, 55, o.parameterRequestList ? Buffer.from(o.parameterRequestList.map((c) => u8(c, 'option 55')[0])) : undefined);
  addOption(items, 56, o.message === undefined ? undefined : encodeText(o.message));
  addOption(items, 57, o.maxMessageSize === undefined ? undefined : u16(o.maxMessageSize, 'option 57'));
  addOption(items, 60, o.vendorClassId === undefined ? undefined : encodeText(o.vendorClassId));
  addOption(items, 61, o.clientId);
  addOption(items, 66, o.tftpServerName === undefined ? undefined : encodeText(o.tftpServerName));
  addOption(items, 67, o.bootFileName === undefined ? undefined : encodeText(o.bootFileName));
  addOption(items, 77, o.userClass ? encodeUserClass(o.userClass) : undefined);
  addOption(items, 93, o.clientArch ? Buffer.concat(o.clientArch.map((a) => u16(a, 'option 93'))) : undefined);
  addOption(
    items,
    94,
    o.clientNdi ? Buffer.from([u8(o.clientNdi.type, 'option 94')[0], u8(o.clientNdi.major, 'option 94')[0], u8(o.clientNdi.minor, 'option 94')[0]]) : undefined,
  );
  if (o.clientUuid) {
    if (o.clientUuid.guid.length !== 16) throw new DhcpEncodeError('option 97: the GUID must be 16 bytes');
    addOption(items, 97, Buffer.concat([u8(o.clientUuid.type, 'option 97'), o.clientUuid.guid]));
  }
  if (o.pxe && o.vendorSpecific) throw new DhcpEncodeError('option 43 given both as PXE sub-options and as raw bytes');
  addOption(items, 43, o.pxe ? encodePxeVendorOptions(o.pxe) : o.vendorSpecific);
  addOption(items, 175, o.ipxe ? encodeTlv(o.ipxe) : undefined);
  for (const [code, v] of o.other ?? []) addOption(items, code, v);
  addOption(items, 82, o.relayAgentInfo);
  return encodeTlv(items);
}

/**
 * Option 97's GUID in the canonical text form that dmidecode and firmware setup show.
 * RFC 4578 §2.3 leaves the byte order open; iPXE and EDK2 send the EFI GUID layout,
 * whose first three fields are little-endian (SMBIOS 2.6 §7.2.1), so those are swapped.
 * All-zero (QEMU without -uuid) and all-FF GUIDs identify nothing: undefined.
 */
export function canonicalUuid(guid: Buffer | undefined): string | undefined {
  if (!guid || guid.length !== 16) return undefined;
  if (guid.every((b) => b === 0) || guid.every((b) => b === 0xff)) return undefined;
  const b = Buffer.from(guid);
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Inverse of `canonicalUuid`: the wire GUID for a canonical UUID string. */
export function guidFromCanonicalUuid(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new DhcpEncodeError(`not a UUID: ${uuid}`);
  const b = Buffer.from(hex, 'hex');
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}
