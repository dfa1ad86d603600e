// Firmware names as technicians know them (DHCP option 93, RFC 4578 §2.1).
const ARCH_NAMES: Record<string, string> = {
  '0': 'BIOS',
  '6': 'UEFI 32-bit',
  '7': 'UEFI 64-bit',
  '9': 'UEFI 64-bit',
  '10': 'ARM 32-bit UEFI',
  '11': 'ARM 64-bit UEFI',
  '16': 'UEFI HTTP boot',
  '19': 'ARM UEFI HTTP boot',
  bios: 'BIOS',
  uefi32: 'UEFI 32-bit',
  uefi64: 'UEFI 64-bit',
  arm64: 'ARM 64-bit UEFI',
  http64: 'UEFI HTTP boot',
  httparm64: 'ARM UEFI HTTP boot',
};

export function archLabel(arch: string | number | undefined): string {
  if (arch === undefined || arch === '') return '';
  return ARCH_NAMES[String(arch)] ?? String(arch);
}
