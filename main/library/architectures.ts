// Firmware families (named bios, ia32, x64, arm64) and the boot class names the
// store and the DHCP policy use for them. Kept apart so the pure script generators need no I/O module.
export const LIBRARY_ARCHITECTURES = ['bios', 'ia32', 'x64', 'arm64'] as const;
export type LibraryArchitecture = (typeof LIBRARY_ARCHITECTURES)[number];

export const BOOT_CLASS_FOR_ARCHITECTURE: Record<LibraryArchitecture, string> = {
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
