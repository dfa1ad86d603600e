// A small read-only UDF reader, for Windows installation media: oscdimg -u2 images keep
// every file in UDF and show only a README in their ISO 9660 tree, so bootmgr, BCD,
// boot.sdi and boot.wim can only be found (and served in place) through UDF.
//
// Covers what such discs use: UDF 1.02-2.01, one physical (type 1) partition, File Entries
// and Extended File Entries with short/long/embedded allocation descriptors. Not covered:
// metadata partitions (UDF 2.50+ on Blu-ray), virtual/sparable partitions (rewritable media).
//
// References: ECMA-167 3rd ed. part 3 (volume structure: 10.1 PVD, 10.5 partition descriptor,
// 10.6 logical volume descriptor, 10.2 anchor), part 4 (file structure: 14.1 file set
// descriptor, 14.4 file identifier descriptor, 14.9 file entry, 14.14 allocation
// descriptors, 7.2 descriptor tag); OSTA UDF 2.01 2.1.1 (CS0 / compressed unicode).
import { open, type FileHandle } from 'node:fs/promises';
import { readAt, type IsoDirectoryEntry, type IsoExtent } from './iso9660.js';

const SECTOR = 2048;
const ANCHOR_SECTOR = 256;
const MAX_DIRECTORY_BYTES = 16 * 1024 * 1024;

export class UdfFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UdfFormatError';
  }
}

/*
 * Descriptor tag (ECMA-167 3/7.2), first 16 bytes of every descriptor:
 *   0 identifier u16   2 version u16   4 checksum u8   6 serial u16
 *   8 CRC u16         10 CRC length u16               12 location u32 (its own sector)
 */
function tagId(buf: Buffer, at = 0): number {
  if (buf.length < at + 16) return -1;
  let sum = 0;
  for (let i = 0; i < 16; i++) if (i !== 4) sum = (sum + buf[at + i]) & 0xff;
  return sum === buf[at + 4] ? buf.readUInt16LE(at) : -1;
}

/** OSTA CS0 "compressed unicode": first byte 8 = one byte per char, 16 = UTF-16BE. */
function decodeCs0(bytes: Buffer): string {
  if (bytes.length === 0) return '';
  if (bytes[0] === 8) return bytes.subarray(1).toString('latin1');
  if (bytes[0] === 16) {
    const body = Buffer.from(bytes.subarray(1, 1 + ((bytes.length - 1) & ~1)));
    body.swap16();
    return body.toString('utf16le');
  }
  return bytes.subarray(1).toString('latin1');
}

interface Icb {
  block: number;
  partition: number;
}

export class UdfImage {
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly volumeId: string,
    private readonly blockSize: number,
    /** Partition start sector per partition reference number. */
    private readonly partitionStarts: number[],
    private readonly root: Icb,
  ) {}

  /** Opens the UDF side of an image; undefined when it has none (no anchor at sector 256). */
  static async open(path: string): Promise<UdfImage | undefined> {
    const handle = await open(path, 'r');
    try {
      const image = await UdfImage.fromHandle(handle, path);
      if (!image) await handle.close();
      return image;
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  private static async fromHandle(handle: FileHandle, path: string): Promise<UdfImage | undefined> {
    // ECMA-167 3/10.2: anchor volume descriptor pointer; main VDS extent at 16 (length, location).
    const anchor = await readAt(handle, ANCHOR_SECTOR * SECTOR, SECTOR);
    if (tagId(anchor) !== 2) return undefined;
    const vdsLength = anchor.readUInt32LE(16);
    const vdsLocation = anchor.readUInt32LE(20);
    const partitions = new Map<number, number>();
    let logicalVolume: Buffer | undefined;
    for (let i = 0; i < Math.min(64, Math.ceil(vdsLength / SECTOR)); i++) {
      const d = await readAt(handle, (vdsLocation + i) * SECTOR, SECTOR);
      const id = tagId(d);
      if (id === 5)
        partitions.set(d.readUInt16LE(22), d.readUInt32LE(188)); // partition number -> start
      else if (id === 6 && !logicalVolume) logicalVolume = d;
      else if (id === 8 || id === -1) break; // terminating descriptor, or the end of the sequence
    }
    if (!logicalVolume) throw new UdfFormatError('UDF volume without a logical volume descriptor');
    const blockSize = logicalVolume.readUInt32LE(212);
    if (blockSize !== SECTOR) throw new UdfFormatError(`UDF logical block size ${blockSize} is not supported (only 2048)`);
    const volumeId = decodeCs0(logicalVolume.subarray(84, 84 + Math.min(127, logicalVolume[84 + 127]))).trim();
    // Partition maps (3/10.7): reference number = index; type 1 names the partition number.
    const mapCount = logicalVolume.readUInt32LE(268);
    const starts: number[] = [];
    let at = 440;
    for (let i = 0; i < mapCount && at + 2 <= logicalVolume.length; i++) {
      const type = logicalVolume[at];
      const length = logicalVolume[at + 1];
      if (type !== 1) throw new UdfFormatError(`UDF partition map type ${type} (virtual, sparable or metadata partition) is not supported`);
      const start = partitions.get(logicalVolume.readUInt16LE(at + 4));
      if (start === undefined) throw new UdfFormatError('UDF partition map names a partition that has no descriptor');
      starts.push(start);
      at += length || 6;
    }
    if (starts.length === 0) throw new UdfFormatError('UDF volume without partitions');
    // File set descriptor: long_ad at 248 in the logical volume contents use.
    const fsdBlock = logicalVolume.readUInt32LE(252);
    const fsdPartition = logicalVolume.readUInt16LE(256);
    const fsd = await readAt(handle, (starts[fsdPartition] + fsdBlock) * SECTOR, SECTOR);
    if (tagId(fsd) !== 256) throw new UdfFormatError('UDF file set descriptor not found where the volume says');
    const root = { block: fsd.readUInt32LE(404), partition: fsd.readUInt16LE(408) };
    return new UdfImage(handle, path, volumeId, blockSize, starts, root);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  private offsetOf(block: number, partition: number): number {
    const start = this.partitionStarts[partition];
    if (start === undefined) throw new UdfFormatError(`UDF partition reference ${partition} does not exist`);
    return (start + block) * this.blockSize;
  }

  /*
   * File entry (4/14.9, tag 261) / extended file entry (4/14.17, tag 266):
   *   16 ICB tag: +11 file type (4 directory), +18 flags (bits 0-2: 0 short_ad, 1 long_ad, 3 embedded)
   *   56 information length u64
   *   FE: 168 L_EA, 172 L_AD, 176 data      EFE: 208 L_EA, 212 L_AD, 216 data
   */
  private async readEntry(icb: Icb): Promise<{ isDirectory: boolean; size: number; extents: IsoExtent[]; embedded?: Buffer }> {
    const base = this.offsetOf(icb.block, icb.partition);
    const fe = await readAt(this.handle, base, this.blockSize);
    const id = tagId(fe);
    if (id !== 261 && id !== 266) throw new UdfFormatError(`expected a UDF file entry at block ${icb.block}, found tag ${id}`);
    const isDirectory = fe[16 + 11] === 4;
    const adType = fe.readUInt16LE(16 + 18) & 0x07;
    const size = Number(fe.readBigUInt64LE(56));
    const [eaAt, adAt, dataAt] = id === 261 ? [168, 172, 176] : [208, 212, 216];
    const start = dataAt + fe.readUInt32LE(eaAt);
    const adLength = fe.readUInt32LE(adAt);
    if (start + adLength > fe.length) throw new UdfFormatError(`UDF file entry at block ${icb.block} is damaged`);
    const descriptors = fe.subarray(start, start + adLength);
    if (adType === 3) return { isDirectory, size, extents: [], embedded: descriptors.subarray(0, size) };
    const extents: IsoExtent[] = [];
    const step = adType === 0 ? 8 : adType === 1 ? 16 : 0;
    if (step === 0) throw new UdfFormatError(`UDF allocation descriptor type ${adType} is not supported`);
    let remaining = size;
    for (let at = 0; at + step <= descriptors.length && remaining > 0; at += step) {
      const raw = descriptors.readUInt32LE(at);
      const length = raw & 0x3fffffff;
      const kind = raw >>> 30; // 0 recorded, 1 allocated not recorded, 2 unallocated, 3 continuation
      if (length === 0) break;
      if (kind === 3) throw new UdfFormatError('UDF allocation extent continuation is not supported');
      const block = descriptors.readUInt32LE(at + 4);
      const partition = adType === 1 ? descriptors.readUInt16LE(at + 8) : icb.partition;
      const take = Math.min(length, remaining);
      if (kind === 0) extents.push({ offset: this.offsetOf(block, partition), size: take });
      else throw new UdfFormatError('UDF file with unrecorded extents (sparse) cannot be served in place');
      remaining -= take;
    }
    return { isDirectory, size, extents };
  }

  private async readContent(entry: { size: number; extents: IsoExtent[]; embedded?: Buffer }): Promise<Buffer> {
    if (entry.embedded) return entry.embedded;
    if (entry.size > MAX_DIRECTORY_BYTES) throw new UdfFormatError(`UDF directory of ${entry.size} bytes; the image is damaged`);
    const parts: Buffer[] = [];
    for (const e of entry.extents) parts.push(await readAt(this.handle, e.offset, e.size));
    return Buffer.concat(parts);
  }

  /*
   * File identifier descriptor (4/14.4, tag 257):
   *   18 characteristics (bit1 directory, bit2 deleted, bit3 parent)   19 L_FI
   *   20 ICB long_ad (length, block u32 @24, partition u16 @28)   36 L_IU   38 impl use, then the name
   *   padded to a multiple of 4
   */
  private async readDirectory(icb: Icb): Promise<(IsoDirectoryEntry & { icb: Icb })[]> {
    const entry = await this.readEntry(icb);
    if (!entry.isDirectory) throw new UdfFormatError('not a directory');
    const data = await this.readContent(entry);
    const out: (IsoDirectoryEntry & { icb: Icb })[] = [];
    let at = 0;
    while (at + 38 <= data.length) {
      if (tagId(data, at) !== 257) break;
      const characteristics = data[at + 18];
      const nameLength = data[at + 19];
      const child = { block: data.readUInt32LE(at + 24), partition: data.readUInt16LE(at + 28) };
      const implLength = data.readUInt16LE(at + 36);
      const nameStart = at + 38 + implLength;
      const name = decodeCs0(data.subarray(nameStart, nameStart + nameLength));
      at += Math.ceil((38 + implLength + nameLength) / 4) * 4;
      if (characteristics & 0x0c) continue; // deleted, or the parent entry
      const target = await this.readEntry(child);
      out.push({ name, isDirectory: target.isDirectory, offset: target.extents[0]?.offset ?? 0, size: target.size, extents: target.extents, icb: child });
    }
    return out;
  }

  async list(dirPath: string): Promise<IsoDirectoryEntry[]> {
    const dir = await this.find(dirPath);
    if (!dir?.isDirectory) throw new UdfFormatError(`${dirPath}: no such directory in ${this.path}`);
    return (await this.readDirectory(dir.icb)).map(({ icb: _icb, ...rest }) => rest);
  }

  /** A file or directory by path (any case, / or \); undefined when absent. */
  async stat(innerPath: string): Promise<IsoDirectoryEntry | undefined> {
    const found = await this.find(innerPath);
    if (!found) return undefined;
    const { icb: _icb, ...rest } = found;
    return rest;
  }

  private async find(innerPath: string): Promise<(IsoDirectoryEntry & { icb: Icb }) | undefined> {
    const parts = innerPath
      .replace(/\\/g, '/')
      .split('/')
      .filter((p) => p !== '' && p !== '.');
    if (parts.includes('..')) return undefined;
    const root = await this.readEntry(this.root);
    let current: IsoDirectoryEntry & { icb: Icb } = {
      name: '',
      isDirectory: root.isDirectory,
      offset: 0,
      size: root.size,
      extents: root.extents,
      icb: this.root,
    };
    for (const part of parts) {
      if (!current.isDirectory) return undefined;
      const next = (await this.readDirectory(current.icb)).find((e) => e.name.toLowerCase() === part.toLowerCase());
      if (!next) return undefined;
      current = next;
    }
    return current;
  }
}
