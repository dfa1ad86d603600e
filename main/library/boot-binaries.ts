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
  const hint =
    name === 'wimboot'
      ? `wimboot is not packaged by Debian: download it from https://ipxe.org/wimboot into ${dirs.dataDir ? join(dirs.dataDir, 'boot', 'wimboot') : '<data>/boot/wimboot'}`
      : `run "node scripts/fetch-boot-binaries.mjs" (needs Debian packages ipxe, shim-signed, grub-efi-amd64-signed), or put your own file at <data>/boot/${relative}`;
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
