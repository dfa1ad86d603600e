// Small boot files built byte by byte for the library tests: just the headers the
// detector reads, laid out as the specifications say (see main/library/detect.ts).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** A PE32+ (or PE32) image with the given COFF machine and optional-header subsystem. */
export function buildPe(machine: number, options: { subsystem?: number; pe32?: boolean; signed?: boolean } = {}): Buffer {
  const pe32 = options.pe32 ?? machine === 0x014c;
  const optionalSize = pe32 ? 96 + 16 * 8 : 112 + 16 * 8;
  const buf = Buffer.alloc(1024);
  buf.write('MZ', 0, 'latin1');
  buf.writeUInt32LE(0x80, 0x3c);
  buf.write('PE\0\0', 0x80, 'latin1');
  buf.writeUInt16LE(machine, 0x84);
  buf.writeUInt16LE(1, 0x86); // one section
  buf.writeUInt16LE(optionalSize, 0x94);
  buf.writeUInt16LE(0x0022, 0x96); // executable, large-address aware
  const opt = 0x98;
  buf.writeUInt16LE(pe32 ? 0x10b : 0x20b, opt);
  buf.writeUInt16LE(options.subsystem ?? 10, opt + 68);
  const countAt = opt + (pe32 ? 92 : 108);
  buf.writeUInt32LE(16, countAt);
  if (options.signed) {
    buf.writeUInt32LE(0x400, countAt + 4 + 32); // certificate table file offset
    buf.writeUInt32LE(0x100, countAt + 4 + 36);
  }
  return buf;
}

/** A Linux/x86 setup header with a version string; `xloadflags` bit0 = 64-bit kernel. */
export function buildBzImage(options: { version?: string; protocol?: number; xloadflags?: number; efiStub?: boolean } = {}): Buffer {
  const buf = options.efiStub ? Buffer.concat([buildPe(0x8664), Buffer.alloc(0x2000 - 1024)]) : Buffer.alloc(0x2000);
  buf[0x1f1] = 1;
  buf.writeUInt16LE(0xaa55, 0x1fe);
  buf.write('HdrS', 0x202, 'latin1');
  buf.writeUInt16LE(options.protocol ?? 0x020f, 0x206);
  if (options.version) {
    buf.writeUInt16LE(0x300, 0x20e);
    buf.write(`${options.version}\0`, 0x500, 'latin1');
  }
  buf[0x211] = 0x01;
  buf.writeUInt16LE(options.xloadflags ?? 0x000b, 0x236);
  return buf;
}

/** A cpio "newc" archive with one file and the trailer (enough for the detector). */
export function buildCpioNewc(name = 'init', content = Buffer.from('#!/bin/sh\necho marker\n')): Buffer {
  const entry = (entryName: string, data: Buffer, mode: number) => {
    const fields = [1, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, entryName.length + 1, 0];
    const header = '070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join('');
    const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
    const head = Buffer.concat([Buffer.from(header + entryName + '\0', 'latin1')]);
    return Buffer.concat([head, pad4(head.length), data, pad4(data.length)]);
  };
  return Buffer.concat([entry(name, content, 0o100755), entry('TRAILER!!!', Buffer.alloc(0), 0)]);
}

/** A WIM header followed by its UTF-16LE XML block naming one image of the given <ARCH>. */
export function buildWim(arch: number, name = 'Microsoft Windows PE (amd64)'): Buffer {
  const xml = Buffer.concat([
    Buffer.from([0xff, 0xfe]),
    Buffer.from(`<WIM><TOTALBYTES>0</TOTALBYTES><IMAGE INDEX="1"><WINDOWS><ARCH>${arch}</ARCH></WINDOWS><NAME>${name}</NAME></IMAGE></WIM>`, 'utf16le'),
  ]);
  const header = Buffer.alloc(208);
  header.write('MSWIM\0\0\0', 0, 'latin1');
  header.writeUInt32LE(208, 8);
  header.writeUInt32LE(0x10d00, 12);
  header.writeUInt32LE(0x00040002, 16); // compressed resources, LZX
  header.writeUInt32LE(32768, 20);
  header.writeUInt16LE(1, 40);
  header.writeUInt16LE(1, 42);
  header.writeUInt32LE(1, 44);
  header.writeBigUInt64LE(BigInt(xml.length), 72); // size (flags byte 0)
  header.writeBigUInt64LE(208n, 80);
  header.writeBigUInt64LE(BigInt(xml.length), 88);
  header.writeUInt32LE(1, 120);
  return Buffer.concat([header, xml]);
}

export function xorrisoMissing(): string | undefined {
  const r = spawnSync('xorriso', ['-version'], { encoding: 'utf8' });
  return r.error ? 'xorriso is not installed (Debian package xorriso)' : undefined;
}

/** Writes `files` (path -> content) under `dir`, then builds an ISO with xorriso's mkisofs emulation. */
export function buildIso(dir: string, files: Record<string, Buffer | string>, args: string[], isoName = 'test.iso'): string {
  const tree = join(dir, `${isoName}.tree`);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(tree, path)), { recursive: true });
    writeFileSync(join(tree, path), content);
  }
  const iso = join(dir, isoName);
  const r = spawnSync('xorriso', ['-as', 'mkisofs', '-o', iso, ...args, tree], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`xorriso failed: ${r.stderr}`);
  return iso;
}

/** El Torito BIOS (isolinux/isolinux.bin) + UEFI (efi.img) arguments for buildIso. */
export const EL_TORITO_ARGS = ['-b', 'isolinux/isolinux.bin', '-no-emul-boot', '-boot-load-size', '4', '-eltorito-alt-boot', '-e', 'efi.img', '-no-emul-boot'];

export function genisoimageMissing(): string | undefined {
  return spawnSync('genisoimage', ['-version']).error ? 'genisoimage is not installed (Debian package genisoimage)' : undefined;
}

/**
 * Windows-install-media style image: files in UDF, and an ISO 9660 tree that shows only a
 * README (what oscdimg -u2 writes). genisoimage writes both trees; the ISO 9660 root's
 * other records are then blanked, which leaves the UDF directories untouched.
 */
export function buildUdfOnlyIso(dir: string, files: Record<string, Buffer | string>, isoName = 'udf-only.iso'): string {
  const tree = join(dir, `${isoName}.tree`);
  const all = {
    'README.TXT': 'This disc contains a "UDF" file system and requires an operating system\nthat supports the ISO-13346 "UDF" file system specification.\n',
    ...files,
  };
  for (const [path, content] of Object.entries(all)) {
    mkdirSync(dirname(join(tree, path)), { recursive: true });
    writeFileSync(join(tree, path), content);
  }
  const iso = join(dir, isoName);
  const r = spawnSync('genisoimage', ['-quiet', '-udf', '-V', 'CCCOMA_X64FRE_EN-US_DV9', '-o', iso, tree], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`genisoimage failed: ${r.stderr}`);
  const image = readFileSync(iso);
  const pvd = 16 * 2048;
  const rootLba = image.readUInt32LE(pvd + 156 + 2);
  const rootSize = image.readUInt32LE(pvd + 156 + 10);
  const root = image.subarray(rootLba * 2048, rootLba * 2048 + rootSize);
  const kept: Buffer[] = [];
  for (let at = 0; at < root.length && root[at] > 0; at += root[at]) {
    const record = root.subarray(at, at + root[at]);
    const name = record.toString('latin1', 33, 33 + record[32]);
    if (record[32] === 1 || name.startsWith('README.TXT')) kept.push(Buffer.from(record));
  }
  root.fill(0);
  Buffer.concat(kept).copy(root);
  writeFileSync(iso, image);
  return iso;
}
