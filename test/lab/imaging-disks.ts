// Reference disks for the imaging lab tests, made from files with the tools a technician
// has (sfdisk, mkfs, mtools, ntfs-3g): never a disk of this machine.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { biosMarkerNbp, uefiMarkerNbp } from './marker-nbp.js';

const TOOLS = ['sfdisk', 'mkfs.ext4', 'mkfs.vfat', 'mmd', 'mcopy', 'mkntfs', 'ntfs-3g', 'debugfs', 'ntfscat'];
export const missingImagingTools = TOOLS.filter((t) => {
  try {
    execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
});
export const MIB = 1024 * 1024;

/**
 * UEFI PCs boot the imaging environment through the signed GRUB, which runs out of memory
 * loading the kernel and initramfs with the lab's default 256 MB (QEMU touches only what the
 * guest uses). Every imaging lab file calls this before it starts a PC.
 */
export function useImagingGuestMemory(): void {
  process.env.BOOTBENCH_LAB_MEMORY_MB ??= '1024';
}
export const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
export const run = (cmd: string, args: string[], input?: string) =>
  execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } }).toString();

export interface Part {
  n: number;
  start: number;
  sectors: number;
}
export function partitions(file: string): Part[] {
  return run('sfdisk', ['--dump', file])
    .split('\n')
    .flatMap((line) => {
      const m = /(\d+) : start=\s*(\d+), size=\s*(\d+)/.exec(line);
      return m ? [{ n: Number(m[1]), start: Number(m[2]), sectors: Number(m[3]) }] : [];
    });
}
export function putAt(disk: string, part: Part, file: string): void {
  run('dd', [`if=${file}`, `of=${disk}`, 'bs=512', `seek=${part.start}`, 'conv=notrunc', 'status=none']);
}
export function extract(disk: string, part: Part, to: string): string {
  run('dd', [`if=${disk}`, `of=${to}`, 'bs=512', `skip=${part.start}`, `count=${part.sectors}`, 'status=none']);
  return to;
}

/** Files in the reference ext4 file systems: name -> sha256. */
export const FILES = new Map<string, string>();
export function ext4Partition(dir: string, path: string, mib: number, hostname: string): void {
  const src = mkdtempSync(join(dir, 'ext4-src-'));
  mkdirSync(join(src, 'etc'));
  writeFileSync(join(src, 'etc', 'hostname'), `${hostname}\n`);
  for (let i = 0; i < 3; i++) {
    const data = Buffer.alloc(MIB + i * 8192);
    for (let j = 0; j < data.length; j += 4) data.writeUInt32LE((j * 2246822519 + i * 7) >>> 0, j);
    writeFileSync(join(src, `data-${i}.bin`), data);
    FILES.set(`data-${i}.bin`, sha256(data));
  }
  run('mkfs.ext4', ['-q', '-F', '-d', src, path, `${mib}M`]);
}

/** GPT: ESP (UEFI marker as the removable-media loader), ext4, NTFS with a Windows folder. */
export function gptReference(dir: string): string {
  const disk = join(dir, 'gpt-reference.img');
  run('truncate', ['-s', '64M', disk]);
  run(
    'sfdisk',
    ['-q', disk],
    [
      'label: gpt',
      'start=2048, size=32768, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
      'size=40960, type=0FC63DAF-8483-4772-8E79-3D69C47D8E4D',
      'size=24576, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
      '',
    ].join('\n'),
  );
  const [esp, root, windows] = partitions(disk);
  const espFile = join(dir, 'esp.img');
  run('truncate', ['-s', `${esp.sectors * 512}`, espFile]);
  run('mkfs.vfat', ['-n', 'ESP', espFile]);
  const marker = join(dir, 'marker.efi');
  writeFileSync(marker, uefiMarkerNbp());
  run('mmd', ['-i', espFile, '::/EFI', '::/EFI/BOOT']);
  run('mcopy', ['-i', espFile, marker, '::/EFI/BOOT/BOOTX64.EFI']);
  putAt(disk, esp, espFile);
  const rootFile = join(dir, 'gpt-root.img');
  ext4Partition(dir, rootFile, root.sectors / 2048, 'gpt-reference');
  putAt(disk, root, rootFile);
  const ntfsFile = join(dir, 'ntfs.img');
  run('truncate', ['-s', `${windows.sectors * 512}`, ntfsFile]);
  run('mkntfs', ['-Q', '-q', '-F', ntfsFile]);
  const mnt = mkdtempSync(join(dir, 'ntfs-'));
  run('ntfs-3g', [ntfsFile, mnt]);
  try {
    mkdirSync(join(mnt, 'Windows', 'System32'), { recursive: true });
    writeFileSync(join(mnt, 'Windows', 'System32', 'marker.txt'), 'windows\n');
  } finally {
    run('umount', [mnt]);
  }
  putAt(disk, windows, ntfsFile);
  return disk;
}

/** MBR: the BIOS marker as the boot code, one ext4 partition. */
export function mbrReference(dir: string): string {
  const disk = join(dir, 'mbr-reference.img');
  run('truncate', ['-s', '48M', disk]);
  run('sfdisk', ['-q', disk], 'label: dos\nstart=2048, size=61440, type=83\n');
  const code = biosMarkerNbp();
  assert.ok(code.length <= 440, 'the BIOS marker must fit the MBR boot code area');
  writeFileSync(join(dir, 'code.bin'), code);
  run('dd', [`if=${join(dir, 'code.bin')}`, `of=${disk}`, 'conv=notrunc', 'status=none']);
  const [root] = partitions(disk);
  const rootFile = join(dir, 'mbr-root.img');
  ext4Partition(dir, rootFile, root.sectors / 2048, 'mbr-reference');
  putAt(disk, root, rootFile);
  return disk;
}

export function virtioDisk(id: string, file: string, serial: string): string[] {
  return ['-drive', `if=none,id=${id},format=raw,file=${file}`, '-device', `virtio-blk-pci,drive=${id},serial=${serial}`];
}
