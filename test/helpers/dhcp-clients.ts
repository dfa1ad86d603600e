// Client messages shaped like the firmware in PXE-NOTES "What real clients sent", built
// byte by byte (not with our encoder) so decoding them tests the codec against the wire
// layout rather than against itself.

/** One option as it goes on the wire. */
export type RawOption = [code: number, data: Buffer | number[] | string];

export interface RawRequest {
  op?: number;
  xid: number;
  mac: string;
  flags?: number;
  ciaddr?: string;
  giaddr?: string;
  options: RawOption[];
  /** Leave out the end option (some clients do). */
  noEnd?: boolean;
  /** Pad the message to this many bytes. */
  padTo?: number;
}

function ip(address: string): number[] {
  return address.split('.').map(Number);
}

export function macBytes(mac: string): number[] {
  return mac.split(':').map((h) => parseInt(h, 16));
}

/** Builds a BOOTREQUEST by hand: 236-byte header, magic cookie, options, end. */
export function rawDhcp(r: RawRequest): Buffer {
  const header = Buffer.alloc(236);
  header[0] = r.op ?? 1;
  header[1] = 1;
  header[2] = 6;
  header.writeUInt32BE(r.xid >>> 0, 4);
  header.writeUInt16BE(r.flags ?? 0, 10);
  Buffer.from(ip(r.ciaddr ?? '0.0.0.0')).copy(header, 12);
  Buffer.from(ip(r.giaddr ?? '0.0.0.0')).copy(header, 24);
  Buffer.from(macBytes(r.mac)).copy(header, 28);
  const parts: Buffer[] = [header, Buffer.from([99, 130, 83, 99])];
  for (const [code, data] of r.options) {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data);
    parts.push(Buffer.from([code, bytes.length]), bytes);
  }
  if (!r.noEnd) parts.push(Buffer.from([255]));
  let out = Buffer.concat(parts);
  if (r.padTo && out.length < r.padTo) out = Buffer.concat([out, Buffer.alloc(r.padTo - out.length)]);
  return out;
}

const u16 = (n: number) => [n >> 8, n & 0xff];

/** Wire bytes of a GUID whose canonical form is 8-4-4-4-12 hex (first three fields little-endian). */
export function guidBytes(uuid: string): number[] {
  const b = Buffer.from(uuid.replace(/-/g, ''), 'hex');
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return [...b];
}

export const SAMPLE_UUID = '8a4d1c2e-5b6f-4a70-9c31-0123456789ab';

export type FirmwareKind = 'ipxe-bios' | 'ipxe-uefi' | 'edk2-x64' | 'edk2-arm64' | 'http-x64' | 'http-arm64' | 'intel-bios';

const PRL_PXE = [1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135];
const PRL_IPXE = [1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203];

/** Options a DISCOVER (or, with `messageType`, a REQUEST) from this firmware carries, in its order. */
export function firmwareOptions(kind: FirmwareKind, mac: string, opts: { messageType?: number; uuid?: string; extra?: RawOption[] } = {}): RawOption[] {
  const type = opts.messageType ?? 1;
  const uuid: RawOption = [97, [0, ...guidBytes(opts.uuid ?? SAMPLE_UUID)]];
  const extra = opts.extra ?? [];
  switch (kind) {
    // iPXE: 53, 57, 93, 94, 60, 77 "iPXE" (bare string), 55, 175, 61, 97.
    case 'ipxe-bios':
    case 'ipxe-uefi': {
      const bios = kind === 'ipxe-bios';
      return [
        [53, [type]],
        [57, u16(1472)],
        [93, u16(bios ? 0 : 7)],
        [94, bios ? [1, 2, 1] : [1, 3, 10]],
        [60, bios ? 'PXEClient:Arch:00000:UNDI:002001' : 'PXEClient:Arch:00007:UNDI:003010'],
        [77, 'iPXE'],
        [55, PRL_IPXE],
        [175, [0xb1, 5, 1, 0x80, 0x86, 0x10, 0x0e, 0xeb, 1, 1, 0x13, 1, 1]],
        [61, [1, ...macBytes(mac)]],
        uuid,
        ...extra,
      ];
    }
    // EDK2 PxeBcDxe: 53, 57, 55, 97, 94 (1.3.0), 93, 60; no 61, no 77.
    case 'edk2-x64':
    case 'edk2-arm64': {
      const arch = kind === 'edk2-x64' ? 7 : 11;
      return [
        [53, [type]],
        [57, u16(1472)],
        [55, PRL_PXE],
        uuid,
        [94, [1, 3, 0]],
        [93, u16(arch)],
        [60, `PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:003000`],
        ...extra,
      ];
    }
    case 'http-x64':
    case 'http-arm64': {
      const arch = kind === 'http-x64' ? 16 : 19;
      return [
        [53, [type]],
        [57, u16(1472)],
        [55, [...PRL_PXE]],
        uuid,
        [94, [1, 3, 0]],
        [93, u16(arch)],
        [60, `HTTPClient:Arch:${String(arch).padStart(5, '0')}:UNDI:003000`],
        ...extra,
      ];
    }
    // A classic Intel/PXE 2.1 BIOS ROM (no iPXE): 53, 57, 55, 97, 93, 94, 60.
    case 'intel-bios':
      return [[53, [type]], [57, u16(1260)], [55, PRL_PXE], uuid, [93, u16(0)], [94, [1, 2, 1]], [60, 'PXEClient:Arch:00000:UNDI:002001'], ...extra];
  }
}

/** Option 43 carrying sub-option 71 (boot item type, layer) and the end marker. */
export function bootItemOption(type: number, layer = 0): RawOption {
  return [43, [71, 4, ...u16(type), ...u16(layer), 255]];
}

export function firmwareDiscover(kind: FirmwareKind, mac: string, xid: number, opts: { uuid?: string; extra?: RawOption[] } = {}): Buffer {
  // EDK2 sets the broadcast flag; iPXE does not.
  const flags = kind.startsWith('ipxe') ? 0 : 0x8000;
  return rawDhcp({ xid, mac, flags, options: firmwareOptions(kind, mac, opts), padTo: 300 });
}

/** The extended DHCPREQUEST a client sends to the boot server on 4011 (PXE 2.1 §2.2.5). */
export function firmwareBootRequest(kind: FirmwareKind, mac: string, xid: number, ciaddr: string, bootItemType = 0, opts: { uuid?: string } = {}): Buffer {
  return rawDhcp({
    xid,
    mac,
    ciaddr,
    options: firmwareOptions(kind, mac, { messageType: 3, uuid: opts.uuid, extra: [bootItemOption(bootItemType)] }),
    padTo: 300,
  });
}
