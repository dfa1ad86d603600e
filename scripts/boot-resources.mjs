// The boot binaries PXE clients are handed (resources/boot/: iPXE, shim, GRUB), copied from
// Debian's packages when a file is missing, so a fresh checkout started with `npm start`
// boots BIOS and UEFI PCs without a separate build step. Used by scripts/start.mjs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** What fetch-boot-binaries.mjs puts in place (the GRUB module lists are optional). */
export const BOOT_RESOURCE_FILES = ['ipxe/undionly.kpxe', 'ipxe/ipxe.efi', 'ipxe/snponly.efi', 'secure-boot/shimx64.efi', 'secure-boot/grubx64.efi'];

/**
 * Copies the boot binaries into `out` when any is missing. `sourceRoot` prefixes the package
 * paths (tests hand in a fake tree). Returns whether the copy ran and what is still missing
 * afterwards; the copy script has already printed the apt-get line for a missing package.
 */
export function ensureBootBinaries({ out = join(here, '..', 'resources', 'boot'), sourceRoot, stdio = 'inherit' } = {}) {
  const absent = () => BOOT_RESOURCE_FILES.filter((f) => !existsSync(join(out, f)));
  if (absent().length === 0) return { ran: false, missing: [] };
  const args = [join(here, 'fetch-boot-binaries.mjs'), '--out', out, '--allow-missing'];
  if (sourceRoot) args.push('--source-root', sourceRoot);
  const result = spawnSync(process.execPath, args, { stdio, encoding: 'utf8' });
  return { ran: true, status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}`, missing: absent() };
}
