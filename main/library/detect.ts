// What is this file? Boot entries are recognised by their content (magic numbers and
// headers), not by their names, so a renamed kernel or an ISO called "image.bin" still works
// and a text file called "boot.efi" is refused with a reason. Only headers are read: the
// first 64 KiB, the ISO descriptors and directories, a WIM's XML block; never a whole file.
import { open, type FileHandle } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { spawn } from 'node:child_process';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { IsoFormatError, IsoImage, readAt, type ElToritoCatalog } from './iso9660.js';
import { UdfFormatError, UdfImage } from './udf.js';
import { LIBRARY_ARCHITECTURES, type LibraryArchitecture } from '../core/index.js';

export { LIBRARY_ARCHITECTURES, type LibraryArchitecture } from '../core/index.js';

export type DetectedKind = 'nbp' | 'kernel' | 'initrd' | 'iso' | 'wim' | 'ipxe-script';

interface DetectionBase {
  kind: DetectedKind;
  /** Where it boots; empty = not tied to one (initrds, iPXE scripts). */
  architectures: LibraryArchitecture[];
  size: number;
  /** One line for people: "EFI application, x64, signed". */
  summary: string;
}

export interface PeInfo {
  machine: number;
  machineName: string;
  /** PE optional header subsystem; 10 = EFI application. */
  subsystem: number;
  pe32plus: boolean;
  /** Has an Authenticode certificate table (may be Secure Boot signed; not verified here). */
  signed: boolean;
}

export interface NbpDetection extends DetectionBase {
  kind: 'nbp';
  format: 'efi' | 'bios-pxe';
  pe?: PeInfo;
}

export interface KernelDetection extends DetectionBase {
  kind: 'kernel';
  format: 'bzimage' | 'arm64-image';
  /** From the setup header's kernel_version string, when present. */
  version?: string;
  /** Boot protocol, e.g. "2.15". */
  protocol?: string;
  /** Also a PE/COFF image firmware can start directly (EFI stub). */
  efiStub: boolean;
  /** The EFI stub carries an Authenticode signature (needed under Secure Boot; not verified here). */
  signed?: boolean;
}

export type InitrdCompression = 'none' | 'gzip' | 'xz' | 'lzma' | 'zstd' | 'lz4' | 'bzip2';

export interface InitrdDetection extends DetectionBase {
  kind: 'initrd';
  compression: InitrdCompression;
  /** cpio format seen (after decompression); undefined when it could not be looked at. */
  cpio?: 'newc' | 'newc-crc' | 'odc' | 'binary';
}

export type LiveFlavour = 'ubuntu-casper' | 'debian-live' | 'clonezilla' | 'systemrescue' | 'arch' | 'fedora' | 'debian-installer' | 'generic';

export interface IsoLinuxInfo {
  flavour: LiveFlavour;
  /** Paths inside the ISO, as listed (Rock Ridge/Joliet names when present). */
  kernel: string;
  initrds: string[];
  /** The root file system image a live system can fetch over HTTP (squashfs etc.), when known. */
  rootImage?: string;
}

export interface IsoWindowsInfo {
  bootmgr?: string;
  bcd?: string;
  bootSdi?: string;
  bootWim?: string;
  /** EFI boot manager (EFI/BOOT/BOOTX64.EFI or EFI/MICROSOFT/BOOT/...). */
  efiBootmgr?: string;
  /** The ISO 9660 side only holds a README (oscdimg -u2): the files above were found through UDF. */
  udfOnly: boolean;
}

export interface IsoDetection extends DetectionBase {
  kind: 'iso';
  volumeId: string;
  elTorito: { bios: boolean; uefi: boolean; entries: ElToritoCatalog['entries'] };
  /** EFI removable-media loaders found in the tree (EFI/BOOT/BOOT*.EFI). */
  efiLoaders: string[];
  linux?: IsoLinuxInfo;
  windows?: IsoWindowsInfo;
}

export interface WimDetection extends DetectionBase {
  kind: 'wim';
  version: number;
  imageCount: number;
  /** 1-based index of the bootable image (0 = none marked). */
  bootIndex: number;
  compression: 'none' | 'xpress' | 'lzx' | 'lzms';
  /** Part number / total parts of a split WIM (.swm). */
  part: { number: number; total: number };
  imageNames: string[];
}

export interface IpxeScriptDetection extends DetectionBase {
  kind: 'ipxe-script';
  dialect: 'ipxe' | 'gpxe';
}

export type Detection = NbpDetection | KernelDetection | InitrdDetection | IsoDetection | WimDetection | IpxeScriptDetection;

/** A file that is not a boot file we can use; the message names what was seen. */
export class UnusableFileError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
    readonly seen: { size: number; firstBytes: string },
  ) {
    super(`${basename(path)}: ${reason} (size ${seen.size} bytes, first bytes ${seen.firstBytes})`);
    this.name = 'UnusableFileError';
  }
}

const HEAD_BYTES = 64 * 1024;

/*
 * BIOS PXE NBPs have no magic number: PXE 2.1 section 4.4.5 loads the raw image at
 * 0000:7C00 and jumps to it in real mode. The heuristic therefore is:
 *   1. the name ends in one of the conventional NBP extensions below (.0 pxelinux,
 *      .pxe/.kpxe/.kkpxe iPXE, .com and .n12 Windows WDS);
 *   2. the content is none of the formats recognised by magic (PE, ELF, bzImage, cpio,
 *      ISO, WIM, archives, scripts): those win over the name;
 *   3. it fits in conventional memory above 0x7C00 (0xA0000 - 0x7C00 = 623,616 bytes):
 *      anything larger cannot be loaded by a PXE ROM;
 *   4. it looks like machine code, not text: at least 10% of the first 4 KiB are bytes
 *      outside printable ASCII and whitespace (catches renamed READMEs and configs).
 */
export const BIOS_NBP_EXTENSIONS = ['.0', '.pxe', '.kpxe', '.kkpxe', '.com', '.n12'] as const;
export const BIOS_NBP_MAX_SIZE = 0xa0000 - 0x7c00;

const PE_MACHINES: Record<number, { name: string; architecture?: LibraryArchitecture }> = {
  0x014c: { name: 'IA32 (i386)', architecture: 'ia32' },
  0x8664: { name: 'x64 (AMD64)', architecture: 'x64' },
  0xaa64: { name: 'ARM64', architecture: 'arm64' },
  0x01c2: { name: 'ARM Thumb' },
  0x01c4: { name: 'ARM32 (ARMv7)' },
  0x0200: { name: 'Itanium' },
  0x0ebc: { name: 'EFI byte code' },
  0x5064: { name: 'RISC-V 64' },
  0x6264: { name: 'LoongArch 64' },
};

const PE_SUBSYSTEMS: Record<number, string> = {
  1: 'native Windows driver',
  2: 'Windows GUI program',
  3: 'Windows console program',
  10: 'EFI application',
  11: 'EFI boot-service driver',
  12: 'EFI runtime driver',
  13: 'EFI ROM image',
  16: 'Windows boot application',
};

/** Detects what a file is; throws UnusableFileError with what was seen when it is not usable. */
export async function detectFile(path: string): Promise<Detection> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const head = await readAt(handle, 0, Math.min(size, HEAD_BYTES));
    return await detectOpened(path, handle, size, head);
  } finally {
    await handle.close();
  }
}

async function detectOpened(path: string, handle: FileHandle, size: number, head: Buffer): Promise<Detection> {
  const refuse = (reason: string): never => {
    throw new UnusableFileError(path, reason, { size, firstBytes: describeBytes(head) });
  };
  if (size === 0) refuse('the file is empty');

  // ECMA-119 8.1: the first volume descriptor at sector 16 (byte 0x8000) starts "\x01CD001"
  // (a hybrid ISO also has an MBR at 0, so this is checked before anything at offset 0).
  if (size >= 0x8006) {
    const descriptor = await readAt(handle, 0x8001, 5);
    if (descriptor.toString('latin1') === 'CD001') {
      try {
        const iso = await detectIso(path, size);
        const unbootable = whyIsoIsNotBootable(iso);
        if (unbootable) refuse(unbootable);
        return iso;
      } catch (err) {
        if (err instanceof IsoFormatError) refuse(`an ISO 9660 image that cannot be read: ${err.message}`);
        throw err;
      }
    }
  }

  if (head.length >= 8 && head.toString('latin1', 0, 8) === 'MSWIM\0\0\0') return detectWim(path, handle, size, head, refuse);

  // Linux/x86 boot protocol: "HdrS" at 0x202 and the 0xAA55 boot flag at 0x1FE.
  if (head.length >= 0x210 && head.toString('latin1', 0x202, 0x206) === 'HdrS' && head.readUInt16LE(0x1fe) === 0xaa55) return detectBzImage(head, size);

  // Linux arm64 Image header (Documentation/arch/arm64/booting.rst): magic "ARM\x64" at 0x38.
  if (head.length >= 0x40 && head.readUInt32LE(0x38) === 0x644d5241) {
    return {
      kind: 'kernel',
      format: 'arm64-image',
      architectures: ['arm64'],
      size,
      efiStub: head.toString('latin1', 0, 2) === 'MZ',
      summary: 'Linux kernel image, ARM64',
    };
  }

  const pe = decodePe(head);
  if (pe) {
    const machine = PE_MACHINES[pe.machine];
    const subsystemName = PE_SUBSYSTEMS[pe.subsystem] ?? `subsystem ${pe.subsystem}`;
    if (pe.subsystem !== 10)
      return refuse(`a PE/COFF ${subsystemName} for ${machine?.name ?? `machine 0x${pe.machine.toString(16)}`}, not an EFI application firmware can boot`);
    if (!machine?.architecture)
      return refuse(
        `an EFI application for ${machine?.name ?? `machine type 0x${pe.machine.toString(16)}`}, which Bootbench does not serve (x64, IA32 and ARM64 only)`,
      );
    return {
      kind: 'nbp',
      format: 'efi',
      architectures: [machine.architecture],
      size,
      pe: { ...pe, machineName: machine.name },
      summary: `EFI application, ${machine.name}${pe.signed ? ', signed' : ''}`,
    };
  }
  if (head.length >= 2 && head.toString('latin1', 0, 2) === 'MZ') refuse('an MZ (DOS/Windows) executable without a valid PE header');

  const text = head.subarray(head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0, 64).toString('latin1');
  const shebang = /^\s*#!(ipxe|gpxe)\b/i.exec(text);
  if (shebang) {
    if (size > 1024 * 1024) refuse('starts like an iPXE script but is larger than 1 MiB');
    const dialect = shebang[1].toLowerCase() as 'ipxe' | 'gpxe';
    return { kind: 'ipxe-script', dialect, architectures: [], size, summary: `${dialect === 'ipxe' ? 'iPXE' : 'gPXE'} script` };
  }

  const initrd = await detectInitrd(path, head, size, refuse);
  if (initrd) return initrd;

  return detectBiosNbp(path, head, size, refuse);
}

// ---------------------------------------------------------------------------------------
// PE/COFF (Microsoft PE and COFF Specification, sections 2 and 3)
//
//   0x00 "MZ" ... 0x3C e_lfanew u32 -> "PE\0\0"
//   +4  COFF: Machine u16, NumberOfSections u16, TimeDateStamp u32, PointerToSymbolTable u32,
//            NumberOfSymbols u32, SizeOfOptionalHeader u16, Characteristics u16
//   +24 optional header: Magic u16 (0x10b PE32, 0x20b PE32+), ... Subsystem u16 at +68,
//       NumberOfRvaAndSizes at +92 (PE32) / +108 (PE32+), data directories after it;
//       directory 4 is the certificate table (Authenticode signature).
// ---------------------------------------------------------------------------------------
export function decodePe(head: Buffer): Omit<PeInfo, 'machineName'> | undefined {
  if (head.length < 0x40 || head.toString('latin1', 0, 2) !== 'MZ') return undefined;
  const pe = head.readUInt32LE(0x3c);
  if (pe + 24 + 70 > head.length || head.toString('latin1', pe, pe + 4) !== 'PE\0\0') return undefined;
  const machine = head.readUInt16LE(pe + 4);
  const optionalSize = head.readUInt16LE(pe + 20);
  const opt = pe + 24;
  const magic = head.readUInt16LE(opt);
  if (magic !== 0x10b && magic !== 0x20b) return undefined;
  const pe32plus = magic === 0x20b;
  const subsystem = head.readUInt16LE(opt + 68);
  const directoryCountAt = opt + (pe32plus ? 108 : 92);
  let signed = false;
  if (directoryCountAt + 4 <= head.length && optionalSize >= (pe32plus ? 112 : 96) + 5 * 8) {
    const count = head.readUInt32LE(directoryCountAt);
    const security = directoryCountAt + 4 + 4 * 8;
    if (count > 4 && security + 8 <= head.length) signed = head.readUInt32LE(security) !== 0 && head.readUInt32LE(security + 4) !== 0;
  }
  return { machine, subsystem, pe32plus, signed };
}

// ---------------------------------------------------------------------------------------
// Linux/x86 boot protocol (Documentation/arch/x86/boot.rst), setup header fields used:
//   0x1F1 setup_sects u8   0x1FE boot_flag 0xAA55   0x202 "HdrS"   0x206 version u16
//   0x20E kernel_version u16 (string at +0x200)     0x211 loadflags u8 (bit0 LOADED_HIGH)
//   0x236 xloadflags u16 (2.12+): bit0 KERNEL_64, bit2 EFI_HANDOVER_32, bit3 EFI_HANDOVER_64
// ---------------------------------------------------------------------------------------
function detectBzImage(head: Buffer, size: number): KernelDetection {
  const version = head.readUInt16LE(0x206);
  const protocol = `${version >> 8}.${version & 0xff}`;
  const versionPointer = head.readUInt16LE(0x20e);
  let kernelVersion: string | undefined;
  if (versionPointer !== 0 && versionPointer + 0x200 < head.length) {
    const start = versionPointer + 0x200;
    const end = head.indexOf(0, start);
    kernelVersion = head.toString('latin1', start, end === -1 ? Math.min(head.length, start + 256) : end).trim() || undefined;
  }
  const xloadflags = version >= 0x020c ? head.readUInt16LE(0x236) : 0;
  const is64 = (xloadflags & 0x01) !== 0;
  const architectures: LibraryArchitecture[] = ['bios'];
  if ((xloadflags & 0x04) !== 0 || !is64) architectures.push('ia32');
  if (is64 || (xloadflags & 0x08) !== 0) architectures.push('x64');
  const stub = decodePe(head);
  const efiStub = stub !== undefined;
  const bzImage = (head[0x211] & 0x01) !== 0;
  return {
    kind: 'kernel',
    format: 'bzimage',
    architectures,
    size,
    version: kernelVersion,
    protocol,
    efiStub,
    signed: stub?.signed ?? false,
    summary: `Linux kernel (${bzImage ? 'bzImage' : 'zImage'}, boot protocol ${protocol}${is64 ? ', 64-bit' : ', 32-bit'}${kernelVersion ? `, ${kernelVersion.split(' ')[0]}` : ''})`,
  };
}

// ---------------------------------------------------------------------------------------
// initrd / initramfs: a cpio archive (newc "070701", newc+crc "070702", odc "070707",
// old binary 070707 octal as a u16), possibly compressed. Ubuntu's initrd is an
// uncompressed early-microcode cpio followed by a compressed one, so it starts "070701".
// Compressed ones are opened just far enough to see the cpio magic.
// ---------------------------------------------------------------------------------------
const COMPRESSION_MAGICS: [InitrdCompression, number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['lz4', [0x02, 0x21, 0x4c, 0x18]], // legacy frame, what the kernel's lz4 initrds use
  ['lz4', [0x04, 0x22, 0x4d, 0x18]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['lzma', [0x5d, 0x00, 0x00]],
];

const DECOMPRESSORS: Record<Exclude<InitrdCompression, 'none' | 'gzip'>, string[]> = {
  xz: ['xz', '-dc'],
  lzma: ['xz', '--format=lzma', '-dc'],
  zstd: ['zstd', '-dcq'],
  lz4: ['lz4', '-dcq'],
  bzip2: ['bzip2', '-dc'],
};

export function cpioFormat(bytes: Buffer): InitrdDetection['cpio'] {
  if (bytes.length >= 6) {
    const magic = bytes.toString('latin1', 0, 6);
    if (magic === '070701') return 'newc';
    if (magic === '070702') return 'newc-crc';
    if (magic === '070707') return 'odc';
  }
  if (bytes.length >= 2 && (bytes.readUInt16LE(0) === 0o070707 || bytes.readUInt16BE(0) === 0o070707)) return 'binary';
  return undefined;
}

async function detectInitrd(path: string, head: Buffer, size: number, refuse: (reason: string) => never): Promise<InitrdDetection | undefined> {
  const plain = cpioFormat(head);
  if (plain) return { kind: 'initrd', compression: 'none', cpio: plain, architectures: [], size, summary: `initrd (cpio ${plain}, uncompressed)` };
  const match = COMPRESSION_MAGICS.find(([, magic]) => magic.every((byte, i) => head[i] === byte));
  if (!match) return undefined;
  const compression = match[0];
  let inner: Buffer | 'tool-missing';
  if (compression === 'gzip') {
    try {
      inner = gunzipSync(head, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (err) {
      return refuse(`gzip data that does not decompress (${(err as Error).message})`);
    }
  } else {
    const command = DECOMPRESSORS[compression as keyof typeof DECOMPRESSORS];
    inner = await peekDecompressed(head, command);
    if (inner === 'tool-missing') {
      // Without the tool the content cannot be checked; accept only what is named like an initrd.
      if (/init(rd|ramfs)|\.cpio/i.test(basename(path))) {
        return {
          kind: 'initrd',
          compression,
          architectures: [],
          size,
          summary: `initrd (${compression}; content not checked: ${command[0]} is not installed)`,
        };
      }
      return refuse(`${compression}-compressed data; install ${command[0]} so Bootbench can check whether it is an initrd`);
    }
  }
  const format = cpioFormat(inner);
  if (!format) {
    refuse(`${compression}-compressed data that is not a cpio archive (decompressed bytes start ${describeBytes(inner)}), so not an initrd`);
  }
  return { kind: 'initrd', compression, cpio: format, architectures: [], size, summary: `initrd (cpio ${format}, ${compression})` };
}

/** Runs a decompressor over the head only and returns the first bytes it produced. */
function peekDecompressed(head: Buffer, command: string[]): Promise<Buffer | 'tool-missing'> {
  return new Promise((resolve) => {
    const child = spawn(command[0], command.slice(1), { stdio: ['pipe', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    let length = 0;
    let settled = false;
    const finish = (value: Buffer | 'tool-missing') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill();
      resolve(value);
    };
    const timer = setTimeout(() => finish(Buffer.concat(chunks)), 5000);
    child.on('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ENOENT' ? 'tool-missing' : Buffer.alloc(0)));
    child.stdout.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= 512) finish(Buffer.concat(chunks));
    });
    child.on('close', () => finish(Buffer.concat(chunks)));
    // The head is deliberately truncated input: the tool complains at the end, which is fine.
    child.stdin.on('error', () => undefined);
    child.stdin.end(head);
  });
}

// ---------------------------------------------------------------------------------------
// WIM header (Microsoft "Windows Imaging File Format", WIM_HEADER_V1_2), little-endian:
//   0 ImageTag "MSWIM\0\0\0"   8 cbSize u32   12 dwVersion u32   16 dwFlags u32
//  20 dwCompressionSize u32    24 gWIMGuid[16] 40 usPartNumber u16 42 usTotalParts u16
//  44 dwImageCount u32         48 rhOffsetTable  72 rhXmlData  96 rhBootMetadata (24 each)
// 120 dwBootIndex u32
// A resource header: 7-byte compressed size + 1 flag byte, u64 offset, u64 original size.
// The XML block (UTF-16LE, never compressed) holds <ARCH> per image: 0 x86, 9 x64, 12 ARM64.
// ---------------------------------------------------------------------------------------
async function detectWim(path: string, handle: FileHandle, size: number, head: Buffer, refuse: (reason: string) => never): Promise<WimDetection> {
  if (head.length < 124) refuse('a WIM header cut short');
  const version = head.readUInt32LE(12);
  const flags = head.readUInt32LE(16);
  const compression = flags & 0x20000 ? 'xpress' : flags & 0x40000 ? 'lzx' : flags & 0x80000 ? 'lzms' : 'none';
  const imageCount = head.readUInt32LE(44);
  const bootIndex = head.readUInt32LE(120);
  const part = { number: head.readUInt16LE(40), total: head.readUInt16LE(42) };
  const xmlSize = Number(head.readBigUInt64LE(72) & 0x00ffffffffffffffn);
  const xmlOffset = Number(head.readBigUInt64LE(80));
  const architectures = new Set<LibraryArchitecture>();
  const imageNames: string[] = [];
  if (xmlSize > 0 && xmlSize <= 4 * 1024 * 1024 && xmlOffset + xmlSize <= size) {
    const xml = (await readAt(handle, xmlOffset, xmlSize)).toString('utf16le');
    for (const m of xml.matchAll(/<ARCH>(\d+)<\/ARCH>/g)) {
      const code = Number(m[1]);
      if (code === 9) ['bios', 'x64'].forEach((a) => architectures.add(a as LibraryArchitecture));
      else if (code === 0) ['bios', 'ia32'].forEach((a) => architectures.add(a as LibraryArchitecture));
      else if (code === 12) architectures.add('arm64');
    }
    for (const m of xml.matchAll(/<IMAGE INDEX="\d+"[^>]*>[\s\S]*?<NAME>([^<]*)<\/NAME>/g)) imageNames.push(m[1]);
  }
  const sorted = LIBRARY_ARCHITECTURES.filter((a) => architectures.has(a));
  const name = imageNames[0] ? `"${imageNames[0]}"` : `${imageCount} image${imageCount === 1 ? '' : 's'}`;
  return {
    kind: 'wim',
    version,
    imageCount,
    bootIndex,
    compression,
    part,
    imageNames,
    architectures: sorted,
    size,
    summary: `Windows image (WIM, ${name}${bootIndex ? `, boot index ${bootIndex}` : ''}${part.total > 1 ? `, part ${part.number} of ${part.total}` : ''})`,
  };
}

// ---------------------------------------------------------------------------------------
// ISO 9660: El Torito for BIOS/UEFI, and what the tree carries.
// ---------------------------------------------------------------------------------------
interface LiveLayout {
  flavour: LiveFlavour;
  dir: string;
  kernel: RegExp;
  initrd: RegExp;
  rootImage?: string;
  /** A file whose presence distinguishes a derivative using the same layout. */
  marker?: string;
}

/** Ordered: first match wins (Clonezilla uses Debian live's layout plus its own marker file). */
const LIVE_LAYOUTS: LiveLayout[] = [
  {
    flavour: 'ubuntu-casper',
    dir: 'casper',
    kernel: /^(hwe-)?vmlinuz(\.efi)?$/i,
    initrd: /^(hwe-)?initrd(\.(lz|gz|img))?$/i,
    rootImage: 'casper/filesystem.squashfs',
  },
  { flavour: 'clonezilla', dir: 'live', kernel: /^vmlinuz/i, initrd: /^initrd/i, rootImage: 'live/filesystem.squashfs', marker: 'Clonezilla-Live-Version' },
  { flavour: 'debian-live', dir: 'live', kernel: /^vmlinuz/i, initrd: /^initrd/i, rootImage: 'live/filesystem.squashfs' },
  { flavour: 'systemrescue', dir: 'sysresccd/boot/x86_64', kernel: /^vmlinuz$/i, initrd: /^sysresccd\.img$/i, rootImage: 'sysresccd/x86_64/airootfs.sfs' },
  { flavour: 'arch', dir: 'arch/boot/x86_64', kernel: /^vmlinuz-linux/i, initrd: /^initramfs-linux.*\.img$/i, rootImage: 'arch/x86_64/airootfs.sfs' },
  { flavour: 'fedora', dir: 'images/pxeboot', kernel: /^vmlinuz$/i, initrd: /^initrd\.img$/i, rootImage: 'LiveOS/squashfs.img' },
  { flavour: 'debian-installer', dir: 'install.amd', kernel: /^vmlinuz$/i, initrd: /^initrd\.gz$/i },
  { flavour: 'generic', dir: 'isolinux', kernel: /^vmlinuz/i, initrd: /^initrd/i },
  { flavour: 'generic', dir: 'boot', kernel: /^(vmlinuz|bzimage|linux)/i, initrd: /^(initrd|initramfs)/i },
];

const EFI_LOADERS: [string, LibraryArchitecture][] = [
  ['BOOTX64.EFI', 'x64'],
  ['BOOTIA32.EFI', 'ia32'],
  ['BOOTAA64.EFI', 'arm64'],
];

async function detectIso(path: string, size: number): Promise<IsoDetection> {
  const image = await IsoImage.open(path);
  try {
    if (image.info.volumeSize > size) {
      // The usual cause: a download that stopped early. Booting it would fail half-way.
      throw new IsoFormatError(`the volume is ${image.info.volumeSize} bytes but the file has only ${size}: it is incomplete (interrupted download?)`);
    }
    const catalog = await image.bootCatalog();
    const architectures = new Set<LibraryArchitecture>();
    if (catalog?.bios) architectures.add('bios');
    const efiLoaders: string[] = [];
    const efiBoot = await image.stat('EFI/BOOT');
    if (efiBoot?.isDirectory) {
      const names = (await image.list('EFI/BOOT')).map((e) => e.name);
      for (const [loader, arch] of EFI_LOADERS) {
        const found = names.find((n) => n.toUpperCase() === loader);
        if (found) {
          efiLoaders.push(`EFI/BOOT/${found}`);
          architectures.add(arch);
        }
      }
    }
    const linux = await findLinux(image);
    const windows = await findWindows(image, path);
    // UDF-only Windows media: the EFI loader is only visible through UDF.
    if (windows?.efiBootmgr && windows.udfOnly) {
      architectures.add('x64');
      efiLoaders.push(windows.efiBootmgr);
    }
    const sorted = LIBRARY_ARCHITECTURES.filter((a) => architectures.has(a));
    const boots = [catalog?.bios ? 'BIOS' : '', catalog?.uefi ? 'UEFI' : ''].filter(Boolean).join('+') || 'not bootable from CD';
    const carries = linux
      ? `, Linux (${linux.flavour})`
      : windows
        ? windows.bootWim
          ? `, Windows boot files${windows.udfOnly ? ' (in UDF)' : ''}`
          : ', Windows files in UDF that could not be read'
        : '';
    return {
      kind: 'iso',
      volumeId: image.info.volumeId,
      elTorito: { bios: catalog?.bios ?? false, uefi: catalog?.uefi ?? false, entries: catalog?.entries ?? [] },
      efiLoaders,
      linux,
      windows,
      architectures: sorted,
      size,
      summary: `ISO 9660 image "${image.info.volumeId}" (El Torito ${boots}${carries})`,
    };
  } finally {
    await image.close();
  }
}

/**
 * A data disc: nothing in it that firmware, iPXE or GRUB could start. Taken in, it would be
 * offered for booting and fail on the machine after the first few kilobytes.
 */
export function whyIsoIsNotBootable(iso: IsoDetection): string | undefined {
  if (iso.elTorito.bios || iso.elTorito.uefi || iso.efiLoaders.length > 0 || iso.linux || iso.windows?.bootWim) return undefined;
  return `not bootable: the ISO image "${iso.volumeId}" has no El Torito boot record, no EFI loader (EFI/BOOT/BOOT*.EFI) and no Linux kernel or Windows boot files, so a PC given it would stop at once; it is a data disc: add a bootable ISO instead`;
}

async function findLinux(image: IsoImage): Promise<IsoLinuxInfo | undefined> {
  for (const layout of LIVE_LAYOUTS) {
    const dir = await image.stat(layout.dir);
    if (!dir?.isDirectory) continue;
    if (layout.marker && !(await image.stat(layout.marker))) continue;
    const files = (await image.list(layout.dir))
      .filter((e) => !e.isDirectory)
      .map((e) => e.name)
      .sort();
    const kernel = files.find((n) => layout.kernel.test(n));
    const initrds = files.filter((n) => layout.initrd.test(n));
    if (!kernel || initrds.length === 0) continue;
    const rootImage = layout.rootImage && (await image.stat(layout.rootImage)) ? layout.rootImage : undefined;
    // Several initrds (e.g. Debian live's per-version ones): the one matching the kernel's suffix.
    const suffix = kernel.replace(layout.kernel, '');
    const initrd = (suffix && initrds.find((n) => n.endsWith(suffix))) || initrds[0];
    return { flavour: layout.flavour, kernel: `${layout.dir}/${kernel}`, initrds: [`${layout.dir}/${initrd}`], rootImage };
  }
  return undefined;
}

/** What both the ISO 9660 and the UDF readers offer. */
interface DiscTree {
  stat(path: string): Promise<{ isDirectory: boolean } | undefined>;
}

async function windowsFiles(tree: DiscTree, udfOnly: boolean): Promise<IsoWindowsInfo | undefined> {
  const found = async (p: string) => ((await tree.stat(p))?.isDirectory === false ? p : undefined);
  const info: IsoWindowsInfo = {
    bootmgr: await found('bootmgr'),
    bcd: await found('boot/bcd'),
    bootSdi: await found('boot/boot.sdi'),
    bootWim: await found('sources/boot.wim'),
    efiBootmgr: (await found('efi/boot/bootx64.efi')) ?? (await found('efi/microsoft/boot/bootmgfw.efi')),
    udfOnly,
  };
  return info.bootmgr || info.bcd || info.bootWim ? info : undefined;
}

async function findWindows(image: IsoImage, path: string): Promise<IsoWindowsInfo | undefined> {
  const onIso = await windowsFiles(image, false);
  if (onIso) return onIso;
  // Windows install media made with oscdimg -u2 keep everything in UDF; the ISO 9660 side has a README only.
  const root = await image.list('/');
  const readme = root.find((e) => /^readme\.txt$/i.test(e.name));
  if (root.length > 2 || !readme || !/UDF/.test((await image.readFile(readme, 0, 512)).toString('latin1'))) return undefined;
  try {
    const udf = await UdfImage.open(path);
    if (udf) {
      try {
        const info = await windowsFiles(udf, true);
        if (info) return info;
      } finally {
        await udf.close();
      }
    }
  } catch (err) {
    if (!(err instanceof UdfFormatError)) throw err;
  }
  return { udfOnly: true };
}

// ---------------------------------------------------------------------------------------
// BIOS NBP (see the heuristic above BIOS_NBP_EXTENSIONS).
// ---------------------------------------------------------------------------------------
const OTHER_MAGICS: [string, number[]][] = [
  ['an ELF executable', [0x7f, 0x45, 0x4c, 0x46]],
  ['a ZIP archive', [0x50, 0x4b, 0x03, 0x04]],
  ['a PDF document', [0x25, 0x50, 0x44, 0x46]],
  ['a 7-Zip archive', [0x37, 0x7a, 0xbc, 0xaf]],
  ['a qcow2 disk image', [0x51, 0x46, 0x49, 0xfb]],
];

function detectBiosNbp(path: string, head: Buffer, size: number, refuse: (reason: string) => never): NbpDetection {
  const extension = extname(path).toLowerCase();
  const other = OTHER_MAGICS.find(([, magic]) => magic.every((byte, i) => head[i] === byte));
  if (other) refuse(`${other[0]}, not a boot file`);
  if (!(BIOS_NBP_EXTENSIONS as readonly string[]).includes(extension)) {
    refuse(
      `not a recognised boot file (no PE, Linux kernel, initrd, ISO 9660, WIM or iPXE script header); a BIOS PXE program is only recognised by its name ending in ${BIOS_NBP_EXTENSIONS.join(', ')}`,
    );
  }
  if (size > BIOS_NBP_MAX_SIZE) {
    refuse(`named like a BIOS PXE program but ${size} bytes: a PXE ROM loads programs at 0x7C00 below 640 KiB, so at most ${BIOS_NBP_MAX_SIZE} bytes`);
  }
  const sample = head.subarray(0, 4096);
  let binary = 0;
  for (const byte of sample) if (!(byte === 9 || byte === 10 || byte === 13 || (byte >= 0x20 && byte < 0x7f))) binary++;
  if (binary < sample.length * 0.1) refuse(`named like a BIOS PXE program but it is text, not machine code`);
  return { kind: 'nbp', format: 'bios-pxe', architectures: ['bios'], size, summary: `BIOS PXE program (${extension}, by name and size)` };
}

/** "4d 5a 90 00 03 00 ... "MZ.....""; at most 16 bytes. */
export function describeBytes(bytes: Buffer): string {
  const first = bytes.subarray(0, 16);
  if (first.length === 0) return '(none)';
  const hex = [...first].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  const ascii = [...first].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  return `${hex} "${ascii}"`;
}
