// A marker initrd for kernel+initrd boot entries in the lab: a newc cpio archive whose
// /init is a tiny static x86-64 ELF. The kernel runs it as PID 1. It writes
// `BOOTBENCH-INITRD-OK` to /dev/ttyS0 (the serial log), then asks for port access and, if
// granted, writes the marker to QEMU's debug console (0x402) and exits QEMU through
// isa-debug-exit (0xf4) like the marker NBPs. A kernel in Secure Boot lockdown refuses
// port access (ioperm), so there it powers off instead: QEMU exits 0, the marker is on
// the serial log only, and no debugcon marker means lockdown was on.
import { DEBUGCON_PORT, DEBUG_EXIT_PORT } from './marker-nbp.js';

export const INITRD_EXIT_VALUE = 0x2c;
export const INITRD_MARKER = 'BOOTBENCH-INITRD-OK';

// x86-64 Linux syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl).
const SYS_WRITE = 1;
const SYS_OPEN = 2;
const SYS_REBOOT = 169;
const SYS_IOPERM = 173;
const O_WRONLY_NOCTTY = 0x101;
const LINUX_REBOOT_MAGIC1 = 0xfee1dead;
const LINUX_REBOOT_MAGIC2 = 672274793;
const LINUX_REBOOT_CMD_POWER_OFF = 0x4321fedc;
const LOAD_ADDRESS = 0x400000;
const ELF_HEADER_SIZE = 64;
const PROGRAM_HEADER_SIZE = 56;

function u32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

/** Code with forward references: byte runs, labels, and rel8/rel32 slots resolved in a second pass. */
type Piece = number[] | { label: string } | { rel32: string } | { rel8: string };

function assemble(pieces: Piece[]): Buffer {
  const size = (p: Piece): number => (Array.isArray(p) ? p.length : 'label' in p ? 0 : 'rel32' in p ? 4 : 1);
  const labels = new Map<string, number>();
  let at = 0;
  for (const p of pieces) {
    if (!Array.isArray(p) && 'label' in p) labels.set(p.label, at);
    at += size(p);
  }
  const out: number[] = [];
  for (const p of pieces) {
    if (Array.isArray(p)) out.push(...p);
    else if ('rel32' in p) out.push(...u32(labels.get(p.rel32)! - (out.length + 4)));
    else if ('rel8' in p) {
      const rel = labels.get(p.rel8)! - (out.length + 1);
      if (rel < -128 || rel > 127) throw new Error(`rel8 to ${p.rel8} out of range`);
      out.push(rel & 0xff);
    }
  }
  return Buffer.from(out);
}

function initCode(marker: string, exitValue: number): Buffer {
  const message = Buffer.from(`\n${marker}\n`, 'latin1');
  const ioperm = (port: number): Piece[] => [
    [0xb8, ...u32(SYS_IOPERM)], //   mov eax, SYS_ioperm
    [0xbf, ...u32(port)], //         mov edi, port
    [0xbe, ...u32(1)], //            mov esi, 1      (one port)
    [0xba, ...u32(1)], //            mov edx, 1      (turn on)
    [0x0f, 0x05], //                 syscall
    [0x85, 0xc0], //                 test eax, eax
    [0x75],
    { rel8: 'poweroff' }, // jnz poweroff    (refused: lockdown)
  ];
  return assemble([
    [0xb8, ...u32(SYS_OPEN)], //     mov eax, SYS_open
    [0x48, 0x8d, 0x3d],
    { rel32: 'tty' }, // lea rdi, [rip + tty]
    [0xbe, ...u32(O_WRONLY_NOCTTY)], // mov esi, O_WRONLY | O_NOCTTY
    [0x31, 0xd2], //                 xor edx, edx
    [0x0f, 0x05], //                 syscall
    [0x89, 0xc7], //                 mov edi, eax    (a failed open makes write fail: harmless)
    [0xb8, ...u32(SYS_WRITE)], //    mov eax, SYS_write
    [0x48, 0x8d, 0x35],
    { rel32: 'message' }, // lea rsi, [rip + message]
    [0xba, ...u32(message.length)], // mov edx, length
    [0x0f, 0x05], //                 syscall
    ...ioperm(DEBUGCON_PORT),
    ...ioperm(DEBUG_EXIT_PORT),
    [0xfc], //                       cld
    [0x66, 0xba, DEBUGCON_PORT & 0xff, DEBUGCON_PORT >> 8], // mov dx, 0x402
    [0x48, 0x8d, 0x35],
    { rel32: 'message' }, // lea rsi, [rip + message]
    { label: 'print' },
    [0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8], // lodsb; test al,al; jz +3; out dx,al; jmp print
    [0x66, 0xba, DEBUG_EXIT_PORT, 0x00], // mov dx, 0xf4
    [0xb0, exitValue], //            mov al, VALUE
    [0xee], //                       out dx, al      (QEMU exits here)
    { label: 'poweroff' },
    [0xb8, ...u32(SYS_REBOOT)], //   mov eax, SYS_reboot
    [0xbf, ...u32(LINUX_REBOOT_MAGIC1)], // mov edi, magic1
    [0xbe, ...u32(LINUX_REBOOT_MAGIC2)], // mov esi, magic2
    [0xba, ...u32(LINUX_REBOOT_CMD_POWER_OFF)], // mov edx, POWER_OFF
    [0x45, 0x31, 0xd2], //           xor r10d, r10d
    [0x0f, 0x05], //                 syscall
    { label: 'hang' },
    [0xeb, 0xfe], //                 jmp $           (PID 1 must never exit: the kernel would panic)
    { label: 'tty' },
    [...Buffer.from('/dev/ttyS0\0', 'latin1')],
    { label: 'message' },
    [...message, 0],
  ]);
}

// ELF64 executable, one PT_LOAD segment mapping the whole file (System V gABI, x86-64 psABI):
//   0x00  ELF header (64)      e_entry = 0x400000 + 120
//   0x40  program header (56)  PT_LOAD, offset 0, vaddr 0x400000, R+X
//   0x78  code + strings
export function markerInitElf(marker = INITRD_MARKER, exitValue = INITRD_EXIT_VALUE): Buffer {
  const code = initCode(marker, exitValue);
  const codeOffset = ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE;
  const elf = Buffer.alloc(codeOffset + code.length);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0); // \x7fELF, 64-bit, little endian, version 1, System V ABI
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(62, 18); // EM_X86_64
  elf.writeUInt32LE(1, 20); // EV_CURRENT
  elf.writeBigUInt64LE(BigInt(LOAD_ADDRESS + codeOffset), 24); // e_entry
  elf.writeBigUInt64LE(BigInt(ELF_HEADER_SIZE), 32); // e_phoff
  elf.writeUInt16LE(ELF_HEADER_SIZE, 52); // e_ehsize
  elf.writeUInt16LE(PROGRAM_HEADER_SIZE, 54); // e_phentsize
  elf.writeUInt16LE(1, 56); // e_phnum
  const ph = ELF_HEADER_SIZE;
  elf.writeUInt32LE(1, ph); // PT_LOAD
  elf.writeUInt32LE(5, ph + 4); // PF_R | PF_X
  elf.writeBigUInt64LE(0n, ph + 8); // p_offset
  elf.writeBigUInt64LE(BigInt(LOAD_ADDRESS), ph + 16); // p_vaddr
  elf.writeBigUInt64LE(BigInt(LOAD_ADDRESS), ph + 24); // p_paddr
  elf.writeBigUInt64LE(BigInt(elf.length), ph + 32); // p_filesz
  elf.writeBigUInt64LE(BigInt(elf.length), ph + 40); // p_memsz
  elf.writeBigUInt64LE(0x1000n, ph + 48); // p_align
  code.copy(elf, codeOffset);
  return elf;
}

// newc cpio (the format the kernel unpacks into its initramfs, see the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst):
//   "070701" then 13 fields of 8 hex digits: ino mode uid gid nlink mtime filesize
//   devmajor devminor rdevmajor rdevminor namesize(with NUL) check;
//   name + NUL padded to 4 bytes, data padded to 4 bytes; ends with "TRAILER!!!".
interface CpioEntry {
  name: string;
  mode: number;
  data?: Buffer;
  rdev?: [number, number];
}

function cpioEntry(entry: CpioEntry, ino: number): Buffer {
  const data = entry.data ?? Buffer.alloc(0);
  const name = Buffer.from(`${entry.name}\0`, 'latin1');
  const fields = [ino, entry.mode, 0, 0, 1, 0, data.length, 0, 0, entry.rdev?.[0] ?? 0, entry.rdev?.[1] ?? 0, name.length, 0];
  const header = Buffer.from('070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join(''), 'latin1');
  const pad = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);
  return Buffer.concat([header, name, pad(header.length + name.length), data, pad(data.length)]);
}

export function markerInitrd(marker = INITRD_MARKER, exitValue = INITRD_EXIT_VALUE): Buffer {
  const entries: CpioEntry[] = [
    { name: 'dev', mode: 0o040755 },
    { name: 'dev/console', mode: 0o020600, rdev: [5, 1] }, // so the kernel can give init a console
    { name: 'dev/ttyS0', mode: 0o020600, rdev: [4, 64] }, // COM1: the marker reaches the serial log without console=
    { name: 'init', mode: 0o100755, data: markerInitElf(marker, exitValue) },
    { name: 'TRAILER!!!', mode: 0 },
  ];
  return Buffer.concat(entries.map((e, i) => cpioEntry(e, i + 1)));
}

/** A Linux kernel for kernel+initrd scenarios: BOOTBENCH_LAB_KERNEL, or one installed in /boot. */
export function findLinuxKernel(existsSync: (p: string) => boolean, readdir: (p: string) => string[]): string | undefined {
  const fromEnv = process.env.BOOTBENCH_LAB_KERNEL;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  try {
    const kernels = readdir('/boot')
      .filter((n) => /^vmlinuz-.*amd64$|^vmlinuz-[0-9]/.test(n))
      .sort();
    if (kernels.length) return `/boot/${kernels[kernels.length - 1]}`;
  } catch {
    /* no /boot */
  }
  return undefined;
}
