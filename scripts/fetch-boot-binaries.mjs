#!/usr/bin/env node
// Build step: copies the boot binaries Bootbench hands to PXE clients out of the Debian
// packages installed on the build machine into resources/boot/ (not committed: they are
// other projects' binaries, taken fresh from the distribution at build time).
//
//   resources/boot/ipxe/undionly.kpxe          BIOS clients (package ipxe)
//   resources/boot/ipxe/ipxe.efi               UEFI x64 clients, own NIC drivers (ipxe)
//   resources/boot/ipxe/snponly.efi            UEFI x64 clients, firmware's network stack (ipxe)
//   resources/boot/secure-boot/shimx64.efi     Microsoft-signed shim (shim-signed)
//   resources/boot/secure-boot/grubx64.efi     Debian-signed netboot GRUB (grub-efi-amd64-signed);
//                                              named grubx64.efi because shim loads that name
//   resources/boot/secure-boot/grub/x86_64-efi/*.lst  module lists the netboot GRUB asks for
//                                              (optional, grub-efi-amd64-bin)
//   resources/boot/manifest.json               package, version, source path, size, sha256 of each
//
// Usage: node scripts/fetch-boot-binaries.mjs [--out DIR] [--allow-missing] [--source-root DIR]
// (--source-root prefixes the package paths: for tests, or a Debian tree unpacked elsewhere.)
// Exits 1 naming the missing package(s) and the apt-get line to install them, unless
// --allow-missing (then copies what exists and still lists what is missing).
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: { out: { type: 'string' }, 'source-root': { type: 'string' }, 'allow-missing': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help) {
  console.log('Usage: node scripts/fetch-boot-binaries.mjs [--out DIR] [--allow-missing] [--source-root DIR]');
  process.exit(0);
}
const out = resolve(values.out ?? join(here, '..', 'resources', 'boot'));
const sourceRoot = resolve(values['source-root'] ?? '/');
const fromRoot = (path) => join(sourceRoot, path);

const BINARIES = [
  { name: 'ipxe/undionly.kpxe', pkg: 'ipxe', source: '/usr/lib/ipxe/undionly.kpxe', purpose: 'iPXE for BIOS PXE clients' },
  { name: 'ipxe/ipxe.efi', pkg: 'ipxe', source: '/usr/lib/ipxe/ipxe.efi', purpose: 'iPXE for UEFI x64 clients (own NIC drivers)' },
  { name: 'ipxe/snponly.efi', pkg: 'ipxe', source: '/usr/lib/ipxe/snponly.efi', purpose: "iPXE for UEFI x64 clients (firmware's SNP network driver)" },
  {
    name: 'secure-boot/shimx64.efi',
    pkg: 'shim-signed',
    source: '/usr/lib/shim/shimx64.efi.signed',
    purpose: 'Microsoft-signed shim, first stage of the Secure Boot chain',
  },
  {
    name: 'secure-boot/grubx64.efi',
    pkg: 'grub-efi-amd64-signed',
    source: '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed',
    purpose: 'Debian-signed netboot GRUB, loaded by shim',
  },
];
const GRUB_LISTS = { pkg: 'grub-efi-amd64-bin', dir: '/usr/lib/grub/x86_64-efi', files: ['command.lst', 'fs.lst', 'crypto.lst', 'terminal.lst'] };

function packageVersion(pkg) {
  if (sourceRoot !== '/') return undefined; // dpkg describes this machine, not the tree given
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout ? r.stdout : undefined;
}

function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

const manifest = { generatedAt: new Date().toISOString(), files: [] };
const missing = new Map();
for (const binary of BINARIES) {
  const source = fromRoot(binary.source);
  if (!existsSync(source)) {
    missing.set(binary.pkg, [...(missing.get(binary.pkg) ?? []), binary.source]);
    continue;
  }
  const target = join(out, binary.name);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(source, target);
  const content = readFileSync(target);
  manifest.files.push({
    name: binary.name,
    package: binary.pkg,
    version: packageVersion(binary.pkg),
    source,
    purpose: binary.purpose,
    size: content.length,
    sha256: sha256(target),
  });
  console.log(`copied ${source} -> ${target} (${binary.pkg} ${packageVersion(binary.pkg) ?? '?'})`);
}

// The netboot GRUB asks for these lists under its prefix (/grub) before grub.cfg; without them
// it only logs "file not found", so they are optional.
const listTarget = join(out, 'secure-boot', 'grub', 'x86_64-efi');
const listSource = fromRoot(GRUB_LISTS.dir);
const lists = existsSync(listSource) ? readdirSync(listSource).filter((f) => GRUB_LISTS.files.includes(f)) : [];
if (lists.length > 0) {
  mkdirSync(listTarget, { recursive: true });
  for (const file of lists) {
    copyFileSync(join(listSource, file), join(listTarget, file));
    manifest.files.push({
      name: `secure-boot/grub/x86_64-efi/${file}`,
      package: GRUB_LISTS.pkg,
      version: packageVersion(GRUB_LISTS.pkg),
      source: join(listSource, file),
      purpose: 'GRUB module list',
      size: readFileSync(join(listTarget, file)).length,
      sha256: sha256(join(listTarget, file)),
    });
  }
  console.log(`copied ${lists.length} GRUB module lists -> ${listTarget}`);
} else {
  console.log(`note: ${GRUB_LISTS.pkg} is not installed; the netboot GRUB will log "file not found" for its module lists (harmless)`);
}

mkdirSync(out, { recursive: true });
manifest.missing = [...missing.entries()].map(([pkg, files]) => ({ package: pkg, files }));
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

if (missing.size > 0) {
  for (const [pkg, files] of missing) console.error(`missing: package ${pkg} is not installed (no ${files.join(', ')})`);
  console.error(`install with: apt-get install -y ${[...missing.keys()].join(' ')}`);
  if (!values['allow-missing']) process.exit(1);
}
