// The one registry of firmware kinds: the boot classes the settings, the store and the boot
// policy use (one per kind of boot program), the option-93 architecture codes that map to
// them, and the library's firmware families (bios, ia32, x64, arm64).

export type BootClass = 'bios' | 'uefi32' | 'uefi64' | 'arm64' | 'http64' | 'httparm64';
export const BOOT_CLASS_NAMES: readonly BootClass[] = ['bios', 'uefi32', 'uefi64', 'arm64', 'http64', 'httparm64'];

/**
 * Option 93 values (RFC 4578 §2.1 and the IANA "Processor Architecture Types" registry).
 * Only the ones with a boot class can be served; the rest are named for the log.
 */
export const ARCHITECTURES: Record<number, { name: string; bootClass?: BootClass; http?: boolean }> = {
  0: { name: 'x86 BIOS', bootClass: 'bios' },
  1: { name: 'NEC/PC98' },
  2: { name: 'Itanium' },
  3: { name: 'DEC Alpha' },
  4: { name: 'Arc x86' },
  5: { name: 'Intel Lean Client' },
  6: { name: 'x86 UEFI (IA32)', bootClass: 'uefi32' },
  7: { name: 'x64 UEFI', bootClass: 'uefi64' },
  8: { name: 'EFI Xscale' },
  9: { name: 'x64 UEFI (EFI BC)', bootClass: 'uefi64' },
  10: { name: 'ARM32 UEFI' },
  11: { name: 'ARM64 UEFI', bootClass: 'arm64' },
  15: { name: 'x86 UEFI HTTP', http: true },
  16: { name: 'x64 UEFI HTTP', bootClass: 'http64', http: true },
  17: { name: 'EBC UEFI HTTP', http: true },
  18: { name: 'ARM32 UEFI HTTP', http: true },
  19: { name: 'ARM64 UEFI HTTP', bootClass: 'httparm64', http: true },
  25: { name: 'RISC-V 64 UEFI' },
  27: { name: 'RISC-V 64 UEFI HTTP', http: true },
};

export function architectureName(arch: number | undefined): string {
  if (arch === undefined) return 'unknown';
  return ARCHITECTURES[arch]?.name ?? `architecture ${arch}`;
}

export function bootClassForArch(arch: number): BootClass | undefined {
  return ARCHITECTURES[arch]?.bootClass;
}

export function isHttpBootClass(c: BootClass): boolean {
  return c === 'http64' || c === 'httparm64';
}

export const LIBRARY_ARCHITECTURES = ['bios', 'ia32', 'x64', 'arm64'] as const;
export type LibraryArchitecture = (typeof LIBRARY_ARCHITECTURES)[number];

export const BOOT_CLASS_FOR_ARCHITECTURE: Record<LibraryArchitecture, BootClass> = {
  bios: 'bios',
  ia32: 'uefi32',
  x64: 'uefi64',
  arm64: 'arm64',
};

export function architectureForBootClass(bootClass: string): LibraryArchitecture | undefined {
  if (bootClass === 'http64') return 'x64';
  if (bootClass === 'httparm64') return 'arm64';
  return (Object.entries(BOOT_CLASS_FOR_ARCHITECTURE) as [LibraryArchitecture, string][]).find(([, c]) => c === bootClass)?.[0];
}
