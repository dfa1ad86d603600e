// Where the boot binaries handed to PXE clients are: the user's own copy in the data folder's
// boot/ first (they may replace any of them), then the ones the build copied from Debian's
// packages into resources/boot/ (scripts/fetch-boot-binaries.mjs).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BOOT_BINARIES = {
  /** iPXE for BIOS PXE ROMs (UNDI driver: works on any NIC with a PXE ROM). */
  biosIpxe: 'ipxe/undionly.kpxe',
  /** iPXE for UEFI x64 with its own NIC drivers. */
  uefiIpxe: 'ipxe/ipxe.efi',
  /** iPXE for UEFI x64 using the firmware's network driver (SNP): the safer default. */
  uefiSnpIpxe: 'ipxe/snponly.efi',
  /** Microsoft-signed shim; loads grubx64.efi from the same folder. */
  shim: 'secure-boot/shimx64.efi',
  /** Debian-signed netboot GRUB (grubnetx64.efi.signed). */
  grub: 'secure-boot/grubx64.efi',
  /** wimboot (not packaged by Debian: only the user's copy in <data>/boot/wimboot). */
  wimboot: 'wimboot',
} as const;

export type BootBinaryName = keyof typeof BOOT_BINARIES;

/** The Debian package each bundled binary is copied from (scripts/fetch-boot-binaries.mjs). */
const BOOT_BINARY_PACKAGES: Record<Exclude<BootBinaryName, 'wimboot'>, string> = {
  biosIpxe: 'ipxe',
  uefiIpxe: 'ipxe',
  uefiSnpIpxe: 'ipxe',
  shim: 'shim-signed',
  grub: 'grub-efi-amd64-signed',
};

/** resources/boot of this checkout or installation. */
export function defaultResourcesBootDir(): string {
  // main/library/boot-binaries.(ts|js) -> <root>/resources/boot; dist/main/library -> <root>/resources/boot
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(here, '..', '..', 'resources', 'boot'), resolve(here, '..', '..', '..', 'resources', 'boot')];
  return candidates.find((c) => existsSync(c)) ?? candidates[0];
}

export interface BootBinaryLocation {
  name: BootBinaryName;
  /** Absolute path, or undefined when neither the user nor the build provided it. */
  path?: string;
  source?: 'data' | 'resources';
  /** What to do when it is missing. */
  hint?: string;
}

export function locateBootBinary(name: BootBinaryName, dirs: { dataDir?: string; resourcesDir?: string } = {}): BootBinaryLocation {
  const relative = BOOT_BINARIES[name];
  if (dirs.dataDir) {
    const own = join(resolve(dirs.dataDir), 'boot', relative);
    if (existsSync(own)) return { name, path: own, source: 'data' };
  }
  if (name !== 'wimboot') {
    const shipped = join(dirs.resourcesDir ?? defaultResourcesBootDir(), relative);
    if (existsSync(shipped)) return { name, path: shipped, source: 'resources' };
  }
  const own = dirs.dataDir ? join(resolve(dirs.dataDir), 'boot', relative) : `<data>/boot/${relative}`;
  const hint =
    name === 'wimboot'
      ? `wimboot is not packaged by Debian: download it from https://ipxe.org/wimboot into ${own}`
      : `install the Debian package ${BOOT_BINARY_PACKAGES[name]} (sudo apt-get install ${BOOT_BINARY_PACKAGES[name]}) and run "npm run build:resources" (npm start does it by itself), or put your own copy at ${own}`;
  return { name, hint };
}

/**
 * Virtual paths (TFTP/HTTP) the host mounts the binaries at, and the default boot file per
 * boot class for clients that are not iPXE yet. Shim and GRUB share a folder because shim
 * loads grubx64.efi from the folder it was loaded from.
 */
export const BOOT_BINARY_MOUNTS: Record<Exclude<BootBinaryName, 'wimboot'>, string> & { wimboot: string } = {
  biosIpxe: '/bootbench/undionly.kpxe',
  uefiIpxe: '/bootbench/ipxe.efi',
  uefiSnpIpxe: '/bootbench/snponly.efi',
  shim: '/bootbench/secure-boot/shimx64.efi',
  grub: '/bootbench/secure-boot/grubx64.efi',
  wimboot: '/ipxe/wimboot',
};

/** Boot file per boot class that chainloads iPXE (relative paths for the DHCP policy's `boot`). */
export const CHAINLOAD_BOOT_FILES = {
  bios: BOOT_BINARY_MOUNTS.biosIpxe.slice(1),
  uefi64: BOOT_BINARY_MOUNTS.uefiSnpIpxe.slice(1),
} as const;

/**
 * What the DHCP policy needs so that plain PXE clients chainload the bundled iPXE and iPXE
 * clients fetch the library's bootstrap script. Boot files the user configured win.
 */
export function chainloadPolicy(httpBaseUrl: string, userBoot: Partial<Record<string, string>> = {}): { boot: Record<string, string>; ipxeScriptUrl: string } {
  // UEFI HTTP boot clients (class http64) fetch the NBP themselves and need a full URL.
  const boot: Record<string, string> = { ...CHAINLOAD_BOOT_FILES, http64: `${httpBaseUrl.replace(/\/+$/, '')}${BOOT_BINARY_MOUNTS.uefiSnpIpxe}` };
  for (const [cls, file] of Object.entries(userBoot)) if (file) boot[cls] = file;
  return { boot, ipxeScriptUrl: `${httpBaseUrl.replace(/\/+$/, '')}/ipxe/boot.ipxe` };
}

/**
 * The programs the bundled iPXE chain hands to PXE firmware, found or not. Without the
 * first, BIOS PCs cannot boot; without the second, UEFI PCs cannot (EDK2 asks for it by TFTP).
 */
export function chainloadBootPrograms(
  dirs: { dataDir?: string; resourcesDir?: string } = {},
): { firmware: 'BIOS' | 'UEFI'; file: string; path?: string; missing?: string; fix?: string }[] {
  const wanted: [firmware: 'BIOS' | 'UEFI', name: BootBinaryName][] = [
    ['BIOS', 'biosIpxe'],
    ['UEFI', 'uefiSnpIpxe'],
  ];
  return wanted.map(([firmware, name]) => {
    const found = locateBootBinary(name, dirs);
    if (found.path) return { firmware, file: BOOT_BINARIES[name], path: found.path };
    return {
      firmware,
      file: BOOT_BINARIES[name],
      missing: `${firmware} PCs cannot boot: the iPXE they are handed (${BOOT_BINARIES[name]}) is missing.`,
      fix: found.hint,
    };
  });
}
