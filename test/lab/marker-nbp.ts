// Marker network bootstrap programs for the real-firmware lab.
//
// The lab needs proof that a client *ran* the file we served, not just that it
// downloaded it. Each NBP here writes a marker line to QEMU's debug console
// (`-debugcon file:X -global isa-debugcon.iobase=0x402`) and then powers QEMU off
// through `-device isa-debug-exit,iobase=0xf4,iosize=0x04`, which makes QEMU exit with
// status (value << 1) | 1. The bytes are emitted here so no assembler is needed; the
// assembly each byte run comes from is written beside it.

export const DEBUGCON_PORT = 0x402;
export const DEBUG_EXIT_PORT = 0xf4;

/** Value written to the isa-debug-exit port; QEMU then exits with (value << 1) | 1. */
export const BIOS_EXIT_VALUE = 0x2a;
export const UEFI_EXIT_VALUE = 0x2b;

export function qemuExitStatus(exitValue: number): number {
  return ((exitValue << 1) | 1) & 0xff;
}

export function markerText(kind: string): string {
  return `BOOTBENCH-NBP-OK ${kind}`;
}

function ascizLine(text: string): Buffer {
  // Leading newline: SeaBIOS (and debug builds of OVMF) also log to port 0x402, so the
  // marker must start its own line to be found reliably.
  return Buffer.concat([Buffer.from(`\n${text}\n`, 'latin1'), Buffer.from([0])]);
}

// The print loop is the same in 16- and 64-bit code: with DX = port, (E/R)SI = string.
//   print: lodsb            AC
//          test al, al      84 C0
//          jz   done        74 03
//          out  dx, al      EE
//          jmp  print       EB F8
//   done:  mov  dx, 0xf4    (operand-size prefixed in 64-bit mode)
//          mov  al, VALUE   B0 vv
//          out  dx, al      EE
//   halt:  cli              FA       (only reached if no isa-debug-exit device)
//          hlt              F4
//          jmp  halt        EB FC
const PRINT_LOOP = [0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8];
const HALT_LOOP = [0xfa, 0xf4, 0xeb, 0xfc];

/**
 * A BIOS PXE NBP. The PXE ROM loads it at 0000:7C00 and jumps there in real mode with
 * CS:IP = 0000:7C00 (PXE 2.1 section 4.4.5); DS is not defined, so it is set here.
 */
export function biosMarkerNbp(marker = markerText('bios'), exitValue = BIOS_EXIT_VALUE): Buffer {
  const LOAD_ADDRESS = 0x7c00;
  const code = (messageAddress: number): number[] => [
    0x31,
    0xc0, //                     xor  ax, ax
    0x8e,
    0xd8, //                     mov  ds, ax
    0xfc, //                           cld
    0xbe,
    messageAddress & 0xff,
    messageAddress >> 8, // mov si, message
    0xba,
    DEBUGCON_PORT & 0xff,
    DEBUGCON_PORT >> 8, //   mov dx, 0x402
    ...PRINT_LOOP,
    0xba,
    DEBUG_EXIT_PORT,
    0x00, //    mov  dx, 0xf4
    0xb0,
    exitValue, //                mov  al, VALUE
    0xee, //                           out  dx, al
    ...HALT_LOOP,
  ];
  const codeLength = code(0).length;
  return Buffer.concat([Buffer.from(code(LOAD_ADDRESS + codeLength)), ascizLine(marker)]);
}

/** x86-64 code for the UEFI marker: position independent (RIP-relative), so no fixups. */
function uefiMarkerCode(marker: string, exitValue: number): Buffer {
  const head = [
    0xfc, //                                cld
    0x66,
    0xba,
    DEBUGCON_PORT & 0xff,
    DEBUGCON_PORT >> 8, // mov dx, 0x402
  ];
  const leaLength = 7; //                   lea rsi, [rip + rel32] = 48 8D 35 rel32
  const tail = [
    ...PRINT_LOOP,
    0x66,
    0xba,
    DEBUG_EXIT_PORT,
    0x00, //   mov dx, 0xf4
    0xb0,
    exitValue, //                     mov al, VALUE
    0xee, //                                out dx, al
    ...HALT_LOOP,
  ];
  // rel32 counts from the end of the lea instruction; the message follows the tail.
  const lea = Buffer.alloc(leaLength);
  lea.set([0x48, 0x8d, 0x35]);
  lea.writeInt32LE(tail.length, 3);
  return Buffer.concat([Buffer.from(head), lea, Buffer.from(tail), ascizLine(marker)]);
}

// PE32+ layout used for the UEFI marker (Microsoft PE/COFF specification; UEFI 2.10
// section 2.1.1: subsystem 10 = EFI application, machine 0x8664 = x64):
//
//   file off  RVA     content
//   0x000     0x0000  DOS header "MZ", e_lfanew (0x3C) = 0x40
//   0x040             "PE\0\0"
//   0x044             COFF file header (20 bytes)
//   0x058             optional header PE32+ (240 bytes, 16 data directories)
//   0x148             section table: .text, .reloc (40 bytes each)
//   0x200     0x1000  .text  (entry point at its start)
//   0x400     0x2000  .reloc (one block holding only ABSOLUTE padding entries)
//   0x600             end; SizeOfImage = 0x3000
//
// EDK2's loader refuses to relocate an image without relocation data when it cannot
// place it at ImageBase, so a tiny .reloc is present even though the code needs no fixups.
const FILE_ALIGNMENT = 0x200;
const SECTION_ALIGNMENT = 0x1000;
const PE_OFFSET = 0x40;
const COFF_OFFSET = PE_OFFSET + 4;
const OPTIONAL_OFFSET = COFF_OFFSET + 20;
const OPTIONAL_SIZE = 240;
const SECTIONS_OFFSET = OPTIONAL_OFFSET + OPTIONAL_SIZE;
const TEXT_RVA = 0x1000;
const RELOC_RVA = 0x2000;
const IMAGE_SIZE = 0x3000;
const HEADERS_SIZE = 0x200;

export const PE_MACHINE_X64 = 0x8664;
export const EFI_APPLICATION_SUBSYSTEM = 10;
const DATA_DIRECTORY_BASERELOC = 5;

/** A minimal PE32+ EFI application (x64) that writes the marker and exits QEMU. */
export function uefiMarkerNbp(marker = markerText('uefi64'), exitValue = UEFI_EXIT_VALUE): Buffer {
  const code = uefiMarkerCode(marker, exitValue);
  if (code.length > FILE_ALIGNMENT) throw new Error('marker too long for one .text block');
  // Base relocation block (PE/COFF 6.6): page RVA, block size, then 16-bit entries;
  // type 0 (IMAGE_REL_BASED_ABSOLUTE) entries are padding and are skipped by loaders.
  const reloc = Buffer.alloc(12);
  reloc.writeUInt32LE(TEXT_RVA, 0);
  reloc.writeUInt32LE(reloc.length, 4);

  const file = Buffer.alloc(HEADERS_SIZE + 2 * FILE_ALIGNMENT);
  file.write('MZ', 0, 'latin1');
  file.writeUInt32LE(PE_OFFSET, 0x3c);
  file.write('PE\0\0', PE_OFFSET, 'latin1');

  // COFF file header
  file.writeUInt16LE(PE_MACHINE_X64, COFF_OFFSET);
  file.writeUInt16LE(2, COFF_OFFSET + 2); // NumberOfSections
  file.writeUInt16LE(OPTIONAL_SIZE, COFF_OFFSET + 16);
  file.writeUInt16LE(0x0022, COFF_OFFSET + 18); // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE (not RELOCS_STRIPPED)

  // Optional header (PE32+)
  const o = OPTIONAL_OFFSET;
  file.writeUInt16LE(0x20b, o); // Magic PE32+
  file.writeUInt32LE(FILE_ALIGNMENT, o + 4); // SizeOfCode
  file.writeUInt32LE(FILE_ALIGNMENT, o + 8); // SizeOfInitializedData
  file.writeUInt32LE(TEXT_RVA, o + 16); // AddressOfEntryPoint
  file.writeUInt32LE(TEXT_RVA, o + 20); // BaseOfCode
  file.writeBigUInt64LE(0x10000000n, o + 24); // ImageBase
  file.writeUInt32LE(SECTION_ALIGNMENT, o + 32);
  file.writeUInt32LE(FILE_ALIGNMENT, o + 36);
  file.writeUInt32LE(IMAGE_SIZE, o + 56);
  file.writeUInt32LE(HEADERS_SIZE, o + 60);
  file.writeUInt16LE(EFI_APPLICATION_SUBSYSTEM, o + 68);
  file.writeBigUInt64LE(0x10000n, o + 72); // SizeOfStackReserve
  file.writeBigUInt64LE(0x10000n, o + 80); // SizeOfStackCommit
  file.writeBigUInt64LE(0x10000n, o + 88); // SizeOfHeapReserve
  file.writeBigUInt64LE(0x1000n, o + 96); // SizeOfHeapCommit
  file.writeUInt32LE(16, o + 108); // NumberOfRvaAndSizes
  file.writeUInt32LE(RELOC_RVA, o + 112 + DATA_DIRECTORY_BASERELOC * 8);
  file.writeUInt32LE(reloc.length, o + 112 + DATA_DIRECTORY_BASERELOC * 8 + 4);

  const section = (index: number, name: string, virtualSize: number, rva: number, rawOffset: number, characteristics: number): void => {
    const s = SECTIONS_OFFSET + index * 40;
    file.write(name, s, 'latin1');
    file.writeUInt32LE(virtualSize, s + 8);
    file.writeUInt32LE(rva, s + 12);
    file.writeUInt32LE(FILE_ALIGNMENT, s + 16); // SizeOfRawData
    file.writeUInt32LE(rawOffset, s + 20); // PointerToRawData
    file.writeUInt32LE(characteristics, s + 36);
  };
  section(0, '.text', code.length, TEXT_RVA, HEADERS_SIZE, 0x60000020); // CODE | EXECUTE | READ
  section(1, '.reloc', reloc.length, RELOC_RVA, HEADERS_SIZE + FILE_ALIGNMENT, 0x42000040); // INITIALIZED_DATA | DISCARDABLE | READ

  code.copy(file, HEADERS_SIZE);
  reloc.copy(file, HEADERS_SIZE + FILE_ALIGNMENT);
  return file;
}
