// Option 43 as PXE uses it: vendor-specific information encapsulated as sub-options
// (PXE 2.1 §2.4.2, Table 2-1 "PXE DHCP Options (Encapsulated)"; RFC 2132 §8.4 framing).
//
//   43  len | code len data | code len data | ... | 255
//
// Sub-options:
//   1 MTFTP_IP (4)   2 MTFTP_CPORT (2)   3 MTFTP_SPORT (2)   4 MTFTP_TMOUT (1)   5 MTFTP_DELAY (1)
//   6 DISCOVERY_CONTROL (1): bit0 no broadcast discovery, bit1 no multicast discovery,
//                            bit2 accept only listed servers, bit3 use the boot file given
//   7 DISCOVERY_MCAST_ADDR (4)
//   8 BOOT_SERVERS:  { type(2) count(1) ip(4)*count }*
//   9 BOOT_MENU:     { type(2) len(1) description(len) }*
//  10 MENU_PROMPT:   timeout(1) prompt(rest)     timeout 0 = boot first item, 255 = wait
//  11 MCAST_ADDRS_ALLOC (kept as bytes)   12 CREDENTIAL_TYPES: type(4)*
//  71 BOOT_ITEM:     type(2) layer(2)   layer bit 15 = ask for BIS credentials, not the NBP
import { DhcpDecodeError, DhcpEncodeError } from './errors.js';
import { decodeIpv4, decodeTlv, encodeIpv4, encodeTlv, expectLength } from './wire.js';

export interface PxeBootServer {
  type: number;
  addresses: string[];
}

export interface PxeMenuItem {
  type: number;
  description: string;
}

export interface PxeBootItem {
  type: number;
  layer: number;
}

export interface PxeVendorOptions {
  mtftpIp?: string;
  mtftpClientPort?: number;
  mtftpServerPort?: number;
  mtftpTimeout?: number;
  mtftpDelay?: number;
  discoveryControl?: number;
  discoveryMulticastAddress?: string;
  bootServers?: PxeBootServer[];
  bootMenu?: PxeMenuItem[];
  menuPrompt?: { timeout: number; prompt: string };
  multicastAddressAllocation?: Buffer;
  credentialTypes?: number[];
  bootItem?: PxeBootItem;
  /** Sub-options we do not interpret, kept so they can be echoed or inspected. */
  other?: Map<number, Buffer>;
}

export const PXE_DISCOVERY = {
  noBroadcast: 1,
  noMulticast: 2,
  onlyListedServers: 4,
  useBootFile: 8,
} as const;

/** Boot item layer bit 15: the client wants Boot Integrity Services credentials (PXE 2.1 §2.2.3). */
export const PXE_LAYER_CREDENTIALS = 0x8000;

export function decodePxeVendorOptions(data: Buffer): PxeVendorOptions {
  const items = decodeTlv(data, 'option 43');
  const out: PxeVendorOptions = {};
  for (const [code, v] of items) {
    const what = `option 43 sub-option ${code}`;
    switch (code) {
      case 1:
        expectLength(v, what, 4);
        out.mtftpIp = decodeIpv4(v);
        break;
      case 2:
        expectLength(v, what, 2);
        out.mtftpClientPort = v.readUInt16BE(0);
        break;
      case 3:
        expectLength(v, what, 2);
        out.mtftpServerPort = v.readUInt16BE(0);
        break;
      case 4:
        expectLength(v, what, 1);
        out.mtftpTimeout = v[0];
        break;
      case 5:
        expectLength(v, what, 1);
        out.mtftpDelay = v[0];
        break;
      case 6:
        expectLength(v, what, 1);
        out.discoveryControl = v[0];
        break;
      case 7:
        expectLength(v, what, 4);
        out.discoveryMulticastAddress = decodeIpv4(v);
        break;
      case 8:
        out.bootServers = decodeBootServers(v);
        break;
      case 9:
        out.bootMenu = decodeBootMenu(v);
        break;
      case 10:
        expectLength(v, what, undefined, undefined, 1);
        out.menuPrompt = { timeout: v[0], prompt: v.subarray(1).toString('latin1') };
        break;
      case 11:
        out.multicastAddressAllocation = v;
        break;
      case 12:
        expectLength(v, what, undefined, 4);
        out.credentialTypes = [];
        for (let i = 0; i < v.length; i += 4) out.credentialTypes.push(v.readUInt32BE(i));
        break;
      case 71:
        expectLength(v, what, 4);
        out.bootItem = { type: v.readUInt16BE(0), layer: v.readUInt16BE(2) };
        break;
      default:
        (out.other ??= new Map()).set(code, v);
    }
  }
  return out;
}

function decodeBootServers(v: Buffer): PxeBootServer[] {
  const servers: PxeBootServer[] = [];
  let i = 0;
  while (i < v.length) {
    if (i + 3 > v.length) throw new DhcpDecodeError('option 43 sub-option 8: truncated server entry', i);
    const type = v.readUInt16BE(i);
    const count = v[i + 2];
    i += 3;
    if (i + 4 * count > v.length) throw new DhcpDecodeError('option 43 sub-option 8: address list runs past the end', i);
    const addresses: string[] = [];
    for (let k = 0; k < count; k++) addresses.push(decodeIpv4(v, i + 4 * k));
    i += 4 * count;
    servers.push({ type, addresses });
  }
  return servers;
}

function decodeBootMenu(v: Buffer): PxeMenuItem[] {
  const items: PxeMenuItem[] = [];
  let i = 0;
  while (i < v.length) {
    if (i + 3 > v.length) throw new DhcpDecodeError('option 43 sub-option 9: truncated menu item', i);
    const type = v.readUInt16BE(i);
    const len = v[i + 2];
    i += 3;
    if (i + len > v.length) throw new DhcpDecodeError('option 43 sub-option 9: description runs past the end', i);
    items.push({ type, description: v.subarray(i, i + len).toString('latin1') });
    i += len;
  }
  return items;
}

function u16(n: number, what: string): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new DhcpEncodeError(`${what}: ${n} is not a 16-bit value`);
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u8(n: number, what: string): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xff) throw new DhcpEncodeError(`${what}: ${n} is not an 8-bit value`);
  return Buffer.from([n]);
}

/** Encodes the sub-options followed by the end marker; the caller wraps it in option 43. */
export function encodePxeVendorOptions(o: PxeVendorOptions): Buffer {
  const items: [number, Buffer][] = [];
  if (o.mtftpIp !== undefined) items.push([1, encodeIpv4(o.mtftpIp)]);
  if (o.mtftpClientPort !== undefined) items.push([2, u16(o.mtftpClientPort, 'MTFTP_CPORT')]);
  if (o.mtftpServerPort !== undefined) items.push([3, u16(o.mtftpServerPort, 'MTFTP_SPORT')]);
  if (o.mtftpTimeout !== undefined) items.push([4, u8(o.mtftpTimeout, 'MTFTP_TMOUT')]);
  if (o.mtftpDelay !== undefined) items.push([5, u8(o.mtftpDelay, 'MTFTP_DELAY')]);
  if (o.discoveryControl !== undefined) items.push([6, u8(o.discoveryControl, 'DISCOVERY_CONTROL')]);
  if (o.discoveryMulticastAddress !== undefined) items.push([7, encodeIpv4(o.discoveryMulticastAddress)]);
  if (o.bootServers) {
    items.push([
      8,
      Buffer.concat(
        o.bootServers.flatMap((s) => [u16(s.type, 'boot server type'), u8(s.addresses.length, 'boot server count'), ...s.addresses.map(encodeIpv4)]),
      ),
    ]);
  }
  if (o.bootMenu) {
    items.push([
      9,
      Buffer.concat(
        o.bootMenu.flatMap((m) => {
          const text = Buffer.from(m.description, 'latin1');
          return [u16(m.type, 'menu item type'), u8(text.length, 'menu item length'), text];
        }),
      ),
    ]);
  }
  if (o.menuPrompt) items.push([10, Buffer.concat([u8(o.menuPrompt.timeout, 'menu timeout'), Buffer.from(o.menuPrompt.prompt, 'latin1')])]);
  if (o.multicastAddressAllocation) items.push([11, o.multicastAddressAllocation]);
  if (o.credentialTypes) {
    const b = Buffer.alloc(4 * o.credentialTypes.length);
    o.credentialTypes.forEach((t, i) => b.writeUInt32BE(t >>> 0, 4 * i));
    items.push([12, b]);
  }
  if (o.bootItem) items.push([71, Buffer.concat([u16(o.bootItem.type, 'boot item type'), u16(o.bootItem.layer, 'boot item layer')])]);
  for (const [code, v] of o.other ?? []) items.push([code, v]);
  return Buffer.concat([encodeTlv(items), Buffer.from([255])]);
}
