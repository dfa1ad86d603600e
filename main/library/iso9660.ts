// A small read-only ISO 9660 reader: volume descriptors, directories (with Rock Ridge or
// Joliet names when present) and the El Torito boot catalog. It only ever reads the
// sectors it needs, so the HTTP/TFTP side can serve one file out of a 5 GB installer ISO
// by (offset, length) without unpacking it.
//
// References: ECMA-119 (ISO 9660) 2nd ed. sections 8 (volume descriptors) and 9
// (directory records); Joliet specification (1995) for the supplementary descriptor;
// IEEE P1281 SUSP + P1282 Rock Ridge for the system-use entries SP, CE, NM;
// "El Torito" Bootable CD-ROM Format Specification 1.0 section 2 (boot catalog).
import { open, type FileHandle } from 'node:fs/promises';

export const ISO_SECTOR = 2048;
/** Sector 16: the first volume descriptor (ECMA-119 6.2.1: sectors 0-15 are the system area). */
const FIRST_DESCRIPTOR_SECTOR = 16;
/** More descriptors than this means a broken image; real ones have 3 to 6. */
const MAX_DESCRIPTORS = 64;
const MAX_DIRECTORY_BYTES = 16 * 1024 * 1024;

export class IsoFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IsoFormatError';
  }
}

/** One stretch of the image holding (part of) a file. */
export interface IsoExtent {
  offset: number;
  size: number;
}

export interface IsoDirectoryEntry {
  name: string;
  isDirectory: boolean;
  /** Byte offset of the file's first extent inside the image. */
  offset: number;
  size: number;
  /** Files over 4 GiB are split into several extents (ECMA-119 9.1.6 bit 7, multi-extent). */
  extents: IsoExtent[];
}

export interface ElToritoBootEntry {
  /** Platform id of the section: 0 x86 (BIOS), 0xef EFI, 1 PowerPC, 2 Mac. */
  platformId: number;
  platform: 'bios' | 'efi' | 'ppc' | 'mac' | 'other';
  bootable: boolean;
  /** 0 no emulation, 1-3 floppy emulation, 4 hard disk emulation. */
  mediaType: number;
  loadRba: number;
  sectorCount: number;
}

export interface ElToritoCatalog {
  entries: ElToritoBootEntry[];
  bios: boolean;
  uefi: boolean;
}

export interface IsoVolumeInfo {
  volumeId: string;
  /** Image size the primary descriptor claims, in bytes. */
  volumeSize: number;
  /** Which names directory listings show. */
  names: 'rock-ridge' | 'joliet' | 'iso9660';
}

/*
 * Directory record (ECMA-119 9.1), little-endian halves of both-endian fields used:
 *
 *   0   len_dr         record length (0 = rest of the sector is padding)
 *   1   ext_attr_len
 *   2   extent LBA     u32 LE (+ u32 BE at 6)
 *  10   data length    u32 LE (+ u32 BE at 14)
 *  18   date           7 bytes
 *  25   flags          bit1 directory, bit7 multi-extent (more records follow)
 *  26   unit size, 27 interleave gap, 28 volume sequence (4)
 *  32   len_fi         name length
 *  33   name           len_fi bytes, padded to even total
 *  ..   system use     SUSP / Rock Ridge entries up to len_dr
 */
interface RawRecord {
  lba: number;
  size: number;
  flags: number;
  rawName: Buffer;
  systemUse: Buffer;
}

function parseRecord(buf: Buffer, at: number): RawRecord | undefined {
  if (at + 34 > buf.length) return undefined;
  const length = buf[at];
  if (length < 34 || at + length > buf.length) return undefined;
  const nameLength = buf[at + 32];
  const nameEnd = at + 33 + nameLength;
  const systemUseStart = nameEnd + (nameLength % 2 === 0 ? 1 : 0);
  return {
    lba: buf.readUInt32LE(at + 2),
    size: buf.readUInt32LE(at + 10),
    flags: buf[at + 25],
    rawName: buf.subarray(at + 33, nameEnd),
    systemUse: systemUseStart < at + length ? buf.subarray(systemUseStart, at + length) : Buffer.alloc(0),
  };
}

function cleanIsoName(name: string): string {
  // ECMA-119 7.5: "NAME.EXT;1"; a file without extension is written "NAME.;1".
  return name.replace(/;\d*$/, '').replace(/\.$/, '');
}

export class IsoImage {
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly info: IsoVolumeInfo,
    private readonly root: RawRecord,
    private readonly bootCatalogLba: number | undefined,
    /** SUSP "SP" skip count (bytes to skip at the start of each system-use area). */
    private readonly susp: { skip: number } | undefined,
    private readonly joliet: boolean,
  ) {}

  /** Opens the image and reads its volume descriptors; throws IsoFormatError when it is not ISO 9660. */
  static async open(path: string): Promise<IsoImage> {
    const handle = await open(path, 'r');
    try {
      return await IsoImage.fromHandle(handle, path);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  private static async fromHandle(handle: FileHandle, path: string): Promise<IsoImage> {
    let primary: Buffer | undefined;
    let jolietDescriptor: Buffer | undefined;
    let bootCatalogLba: number | undefined;
    for (let i = 0; i < MAX_DESCRIPTORS; i++) {
      const sector = await readAt(handle, (FIRST_DESCRIPTOR_SECTOR + i) * ISO_SECTOR, ISO_SECTOR);
      if (sector.length < ISO_SECTOR || sector.toString('latin1', 1, 6) !== 'CD001') {
        if (i === 0) throw new IsoFormatError('no ISO 9660 volume descriptor ("CD001") at byte 0x8001');
        break;
      }
      const type = sector[0];
      if (type === 255) break; // volume descriptor set terminator (ECMA-119 8.3)
      if (type === 1 && !primary) primary = sector;
      // Joliet: supplementary descriptor with escape sequence %/@, %/C or %/E (UCS-2 levels 1-3).
      if (type === 2 && sector[88] === 0x25 && sector[89] === 0x2f && [0x40, 0x43, 0x45].includes(sector[90])) jolietDescriptor = sector;
      // El Torito 2.0: boot record descriptor, catalog sector at 0x47.
      if (type === 0 && sector.toString('latin1', 7, 30) === 'EL TORITO SPECIFICATION') bootCatalogLba = sector.readUInt32LE(0x47);
    }
    if (!primary) throw new IsoFormatError('ISO 9660 image without a primary volume descriptor');
    const blockSize = primary.readUInt16LE(128);
    if (blockSize !== ISO_SECTOR) throw new IsoFormatError(`ISO 9660 logical block size ${blockSize} is not supported (only 2048)`);
    const volumeId = primary.toString('latin1', 40, 72).trim();
    const volumeSize = primary.readUInt32LE(80) * blockSize;
    const primaryRoot = parseRecord(primary, 156);
    if (!primaryRoot) throw new IsoFormatError('ISO 9660 primary volume descriptor has no root directory record');

    // SUSP 5.3: Rock Ridge is announced by an "SP" entry in the root's "." record.
    const rootDot = await readAt(handle, primaryRoot.lba * ISO_SECTOR, ISO_SECTOR);
    const dot = parseRecord(rootDot, 0);
    let susp: { skip: number } | undefined;
    if (dot && dot.systemUse.length >= 7 && dot.systemUse.toString('latin1', 0, 2) === 'SP' && dot.systemUse[4] === 0xbe && dot.systemUse[5] === 0xef) {
      susp = { skip: dot.systemUse[6] };
    }
    if (susp) return new IsoImage(handle, path, { volumeId, volumeSize, names: 'rock-ridge' }, primaryRoot, bootCatalogLba, susp, false);
    const jolietRoot = jolietDescriptor && parseRecord(jolietDescriptor, 156);
    if (jolietRoot) return new IsoImage(handle, path, { volumeId, volumeSize, names: 'joliet' }, jolietRoot, bootCatalogLba, undefined, true);
    return new IsoImage(handle, path, { volumeId, volumeSize, names: 'iso9660' }, primaryRoot, bootCatalogLba, undefined, false);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  /** Lists a directory ("/" or "/casper"); case-insensitive path; throws when it does not exist. */
  async list(dirPath: string): Promise<IsoDirectoryEntry[]> {
    const dir = dirPath.replace(/\\/g, '/').split('/').filter(Boolean).length === 0 ? this.rootEntry() : await this.stat(dirPath);
    if (!dir) throw new IsoFormatError(`${dirPath}: no such directory in ${this.path}`);
    if (!dir.isDirectory) throw new IsoFormatError(`${dirPath}: is a file, not a directory`);
    return this.readDirectory(dir);
  }

  /** Finds a file or directory by path (separators / or \, any case); undefined when absent. */
  async stat(innerPath: string): Promise<IsoDirectoryEntry | undefined> {
    const parts = innerPath
      .replace(/\\/g, '/')
      .split('/')
      .filter((p) => p !== '' && p !== '.');
    if (parts.some((p) => p === '..')) return undefined;
    let current = this.rootEntry();
    for (const part of parts) {
      if (!current.isDirectory) return undefined;
      const entries = await this.readDirectory(current);
      const wanted = part.toLowerCase();
      const next =
        entries.find((e) => e.name.toLowerCase() === wanted) ??
        // A plain ISO 9660 level-1 image may only know "VMLINUZ" or "INITRD.GZ": try the 8.3 mangling too.
        entries.find((e) => e.name.toLowerCase() === wanted.replace(/-/g, '_'));
      if (!next) return undefined;
      current = next;
    }
    return current;
  }

  /** Reads bytes of a file inside the image (at most `length`, from `position` within the file). */
  async readFile(entry: IsoDirectoryEntry, position = 0, length = entry.size - position): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let skip = position;
    let left = Math.max(0, Math.min(length, entry.size - position));
    for (const extent of entry.extents) {
      if (left === 0) break;
      if (skip >= extent.size) {
        skip -= extent.size;
        continue;
      }
      const take = Math.min(left, extent.size - skip);
      chunks.push(await readAt(this.handle, extent.offset + skip, take));
      left -= take;
      skip = 0;
    }
    return Buffer.concat(chunks);
  }

  /** The El Torito boot catalog, or undefined when the image is not bootable from CD. */
  async bootCatalog(): Promise<ElToritoCatalog | undefined> {
    if (this.bootCatalogLba === undefined) return undefined;
    const catalog = await readAt(this.handle, this.bootCatalogLba * ISO_SECTOR, ISO_SECTOR);
    return decodeBootCatalog(catalog);
  }

  private rootEntry(): IsoDirectoryEntry {
    return {
      name: '',
      isDirectory: true,
      offset: this.root.lba * ISO_SECTOR,
      size: this.root.size,
      extents: [{ offset: this.root.lba * ISO_SECTOR, size: this.root.size }],
    };
  }

  private async readDirectory(dir: IsoDirectoryEntry): Promise<IsoDirectoryEntry[]> {
    // A damaged record can claim a 4 GiB directory; real ones are a few sectors.
    if (dir.size > MAX_DIRECTORY_BYTES) throw new IsoFormatError(`directory "${dir.name || '/'}" claims ${dir.size} bytes; the image is damaged`);
    const data = await readAt(this.handle, dir.offset, dir.size);
    if (data.length < dir.size) throw new IsoFormatError(`directory "${dir.name || '/'}" lies beyond the end of the image; the image is damaged or cut short`);
    const entries: IsoDirectoryEntry[] = [];
    let pending: IsoDirectoryEntry | undefined;
    let at = 0;
    while (at < data.length) {
      const length = data[at];
      if (length === 0) {
        // ECMA-119 6.8.1.1: records never straddle sectors; zero bytes pad to the next one.
        at = (Math.floor(at / ISO_SECTOR) + 1) * ISO_SECTOR;
        continue;
      }
      const record = parseRecord(data, at);
      at += length;
      if (!record) break;
      if (record.rawName.length === 1 && (record.rawName[0] === 0 || record.rawName[0] === 1)) continue; // "." and ".."
      const extent = { offset: record.lba * ISO_SECTOR, size: record.size };
      if (pending) {
        pending.extents.push(extent);
        pending.size += record.size;
      } else {
        const name = await this.recordName(record);
        if (name === undefined) continue;
        pending = { name, isDirectory: (record.flags & 0x02) !== 0, offset: extent.offset, size: record.size, extents: [extent] };
      }
      if ((record.flags & 0x80) === 0) {
        entries.push(pending);
        pending = undefined;
      }
    }
    if (pending) entries.push(pending);
    return entries;
  }

  /** Rock Ridge NM (with CE continuation), else Joliet UCS-2, else the ISO 9660 name. Undefined hides the record. */
  private async recordName(record: RawRecord): Promise<string | undefined> {
    if (this.susp) {
      const name = await this.rockRidgeName(record.systemUse.subarray(this.susp.skip));
      if (name !== undefined) return name;
    }
    if (this.joliet) return cleanIsoName(decodeUcs2be(record.rawName));
    return cleanIsoName(record.rawName.toString('latin1'));
  }

  /*
   * SUSP entry (P1281 4.1): 2-byte signature, 1-byte length, 1-byte version, data.
   *   NM (RRIP 4.1.4): flags (bit0 CONTINUE, bit1 CURRENT, bit2 PARENT), name bytes
   *   CE (SUSP 5.1):   block u32 LE @4, offset u32 LE @12, length u32 LE @20
   *   ST (SUSP 5.4):   end of entries
   */
  private async rockRidgeName(area: Buffer): Promise<string | undefined> {
    let name = '';
    let found = false;
    let hops = 0;
    let current: Buffer | undefined = area;
    while (current && hops++ < 8) {
      let next: Buffer | undefined;
      let at = 0;
      while (at + 4 <= current.length) {
        const signature = current.toString('latin1', at, at + 2);
        const length = current[at + 2];
        if (length < 4 || at + length > current.length) break;
        if (signature === 'NM') {
          const flags = current[at + 4];
          if (flags & 0x06) return undefined; // "." or ".." alias
          name += current.toString('utf8', at + 5, at + length);
          found = true;
        } else if (signature === 'CE' && length >= 28) {
          const block = current.readUInt32LE(at + 4);
          const offset = current.readUInt32LE(at + 12);
          const size = current.readUInt32LE(at + 20);
          next = await readAt(this.handle, block * ISO_SECTOR + offset, Math.min(size, ISO_SECTOR));
        } else if (signature === 'ST') {
          break;
        }
        at += length;
      }
      current = next;
    }
    return found ? name : undefined;
  }
}

function decodeUcs2be(bytes: Buffer): string {
  const swapped = Buffer.from(bytes.subarray(0, bytes.length - (bytes.length % 2)));
  swapped.swap16();
  return swapped.toString('utf16le');
}

/*
 * El Torito boot catalog (El Torito 1.0, section 2), 32-byte entries:
 *
 *   validation entry: 0 header id (1), 1 platform id, 4..27 id string, 28 checksum, 30 55 AA
 *   default entry:    0 boot indicator (0x88 bootable), 1 media type, 2 load segment,
 *                     4 system type, 6 sector count u16, 8 load RBA u32
 *   section header:   0 0x90 (more follow) / 0x91 (last), 1 platform id, 2 entry count u16
 *   section entry:    as the default entry; 0x44 extension entries may follow one
 */
export function decodeBootCatalog(catalog: Buffer): ElToritoCatalog | undefined {
  if (catalog.length < 64 || catalog[0] !== 1 || catalog[30] !== 0x55 || catalog[31] !== 0xaa) return undefined;
  const entries: ElToritoBootEntry[] = [];
  const entryAt = (at: number, platformId: number): ElToritoBootEntry => ({
    platformId,
    platform: platformId === 0 ? 'bios' : platformId === 0xef ? 'efi' : platformId === 1 ? 'ppc' : platformId === 2 ? 'mac' : 'other',
    bootable: catalog[at] === 0x88,
    mediaType: catalog[at + 1] & 0x0f,
    sectorCount: catalog.readUInt16LE(at + 6),
    loadRba: catalog.readUInt32LE(at + 8),
  });
  entries.push(entryAt(32, catalog[1]));
  let at = 64;
  while (at + 32 <= catalog.length) {
    const indicator = catalog[at];
    if (indicator !== 0x90 && indicator !== 0x91) break;
    const platformId = catalog[at + 1];
    let count = catalog.readUInt16LE(at + 2);
    at += 32;
    while (count > 0 && at + 32 <= catalog.length) {
      if (catalog[at] === 0x44) {
        at += 32;
        continue;
      }
      entries.push(entryAt(at, platformId));
      count--;
      at += 32;
    }
    if (indicator === 0x91) break;
  }
  return {
    entries,
    bios: entries.some((e) => e.platform === 'bios' && e.bootable),
    uefi: entries.some((e) => e.platform === 'efi' && e.bootable),
  };
}

/** Reads up to `length` bytes at `position`, fewer only at the end of the file. */
export async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === length ? buffer : buffer.subarray(0, filled);
}

/**
 * Where a file inside an ISO lies, so HTTP/TFTP can serve it straight from the image
 * (a read stream with `start: offset, end: offset + size - 1`). Throws when the path is
 * absent, is a directory, or is a multi-extent file whose pieces are not contiguous.
 */
export async function openIsoFile(isoPath: string, innerPath: string): Promise<{ offset: number; size: number }> {
  const image = await IsoImage.open(isoPath);
  try {
    const entry = await image.stat(innerPath);
    if (!entry) throw new IsoFormatError(`${innerPath} is not in ${isoPath}`);
    if (entry.isDirectory) throw new IsoFormatError(`${innerPath} is a directory in ${isoPath}`);
    for (let i = 1; i < entry.extents.length; i++) {
      const previous = entry.extents[i - 1];
      if (entry.extents[i].offset !== previous.offset + previous.size) {
        throw new IsoFormatError(`${innerPath} in ${isoPath} is stored in separate pieces; it has to be extracted first`);
      }
    }
    return { offset: entry.offset, size: entry.size };
  } finally {
    await image.close();
  }
}

/** Lists one directory of an ISO (for the UI's "browse image" and for tests). */
export async function listIsoDirectory(isoPath: string, dirPath = '/'): Promise<IsoDirectoryEntry[]> {
  const image = await IsoImage.open(isoPath);
  try {
    return await image.list(dirPath);
  } finally {
    await image.close();
  }
}

/**
 * Copies one file out of an ISO (for what cannot be served in place: a multi-extent file
 * whose pieces are apart). Writes `target` via a .partial file; progress per 4 MiB.
 */
export async function extractIsoFile(
  isoPath: string,
  innerPath: string,
  target: string,
  onProgress?: (progress: { bytes: number; size: number }) => void,
): Promise<{ size: number }> {
  const { open: openFile, rename, rm } = await import('node:fs/promises');
  const image = await IsoImage.open(isoPath);
  const partial = `${target}.partial`;
  try {
    const entry = await image.stat(innerPath);
    if (!entry || entry.isDirectory) throw new IsoFormatError(`${innerPath} is not a file in ${isoPath}`);
    const out = await openFile(partial, 'w');
    try {
      const chunk = 4 * 1024 * 1024;
      for (let position = 0; position < entry.size; position += chunk) {
        const data = await image.readFile(entry, position, chunk);
        if (data.length === 0) throw new IsoFormatError(`${innerPath} ends before its recorded size; the image is damaged`);
        await out.write(data, 0, data.length, position);
        onProgress?.({ bytes: Math.min(entry.size, position + data.length), size: entry.size });
      }
    } finally {
      await out.close();
    }
    await rename(partial, target);
    return { size: entry.size };
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  } finally {
    await image.close();
  }
}
