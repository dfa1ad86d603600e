#!/usr/bin/env node
// Build step: the imaging environment a PC boots to be captured or deployed, made from
// Debian packages (nothing of it is committed; like resources/boot/ it is taken fresh from
// the distribution at build time):
//
//   resources/imaging/vmlinuz        Debian's signed kernel (linux-image-*-amd64), untouched:
//                                    shim and signed GRUB verify it, so Secure Boot stays on
//   resources/imaging/initrd.img     our initramfs (newc cpio, zstd): busybox-static, the
//                                    imaging tools with their libraries, the kernel modules for
//                                    common NICs and disks, /init and the agent
//   resources/imaging/manifest.json  kernel version, packages and versions, sizes, sha256
//
// The kernel package is taken from --kernel-deb, else from the cache folder, else fetched
// there with `apt-get download` (the package is unpacked, never installed).
//
// Usage: node scripts/build-imaging-env.mjs [--out DIR] [--kernel-deb FILE] [--cache DIR]
//        [--allow-missing] [--force]
// Without --force, nothing is rebuilt when the manifest's inputs (kernel package, tool
// versions, our own scripts) are unchanged. Exits 1 naming what is missing and the apt-get
// line, unless --allow-missing (then it says what is missing and builds nothing).
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const projectRoot = join(here, '..');
const sourceDir = join(projectRoot, 'build', 'imaging-env');
const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    'kernel-deb': { type: 'string' },
    cache: { type: 'string' },
    'allow-missing': { type: 'boolean' },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('Usage: node scripts/build-imaging-env.mjs [--out DIR] [--kernel-deb FILE] [--cache DIR] [--allow-missing] [--force]');
  process.exit(0);
}
const out = resolve(values.out ?? join(projectRoot, 'resources', 'imaging'));
const cache = resolve(values.cache ?? process.env.BOOTBENCH_DEB_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'bootbench', 'debs'));

// Tools and the package each comes from. Every one is needed by the agent or by /init.
const TOOLS = [
  { pkg: 'busybox-static', path: '/bin/busybox' },
  { pkg: 'partclone', path: '/usr/sbin/partclone.extfs' },
  { pkg: 'partclone', path: '/usr/sbin/partclone.ntfs' },
  { pkg: 'partclone', path: '/usr/sbin/partclone.fat' },
  { pkg: 'partclone', path: '/usr/sbin/partclone.xfs' },
  { pkg: 'partclone', path: '/usr/sbin/partclone.btrfs' },
  { pkg: 'partclone', path: '/usr/sbin/partclone.dd' },
  { pkg: 'partclone', path: '/usr/sbin/partclone.restore' },
  { pkg: 'zstd', path: '/usr/bin/zstd' },
  { pkg: 'curl', path: '/usr/bin/curl' },
  // The agent's SHA-256 (CPU SHA instructions); libssl and libcrypto come with curl already.
  { pkg: 'openssl', path: '/usr/bin/openssl' },
  { pkg: 'udpcast', path: '/usr/bin/udp-receiver' },
  { pkg: 'ntfs-3g', path: '/bin/ntfs-3g' },
  { pkg: 'ntfs-3g', path: '/bin/ntfs-3g.probe' },
  { pkg: 'gdisk', path: '/usr/sbin/sgdisk' },
  { pkg: 'fdisk', path: '/usr/sbin/sfdisk' },
  { pkg: 'util-linux', path: '/usr/bin/lsblk' },
  { pkg: 'util-linux', path: '/usr/sbin/blkid' },
  { pkg: 'util-linux', path: '/usr/sbin/blockdev' },
  { pkg: 'util-linux', path: '/usr/sbin/wipefs' },
  { pkg: 'e2fsprogs', path: '/usr/sbin/e2fsck' },
  { pkg: 'e2fsprogs', path: '/usr/sbin/resize2fs' },
  { pkg: 'dosfstools', path: '/usr/sbin/fsck.fat' },
];
// Drivers for the disks and NICs of common PCs (and QEMU's), the filesystems the agent
// mounts to name a PC, and USB storage so a USB disk is seen (and refused), not missed.
const MODULES = [
  'virtio_pci',
  'virtio_blk',
  'virtio_net',
  'virtio_scsi',
  'sd_mod',
  'sr_mod',
  'ahci',
  'ata_piix',
  'nvme',
  'e1000',
  'e1000e',
  'igb',
  'igc',
  'r8169',
  'tg3',
  'bnx2',
  'ixgbe',
  'xhci_pci',
  'ehci_pci',
  'uhci_hcd',
  'ohci_pci',
  'usb_storage',
  'uas',
  'ext4',
  'xfs',
  'btrfs',
  'fuse',
  'vfat',
  'nls_cp437',
  'nls_iso8859_1',
  'efivarfs',
  // The file systems' soft dependencies (checksums), which busybox's modprobe does not follow.
  'crc32c_generic',
  'crc32c_intel',
  'libcrc32c',
  'xxhash_generic',
  'blake2b_generic',
];
const OUR_FILES = ['init', 'agent.sh'];
// The multicast image stream's receiver, compiled here (C, no library beyond libc).
const RECEIVER_SOURCE = 'bb-stream-recv.c';
// The agent's chunk mover (cut, zstd, SHA-256, HTTP keep-alive in one process), with libzstd and libcrypto.
const IMGIO_SOURCE = 'bb-imgio.c';

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  if (result.error) throw new Error(`${cmd}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}
const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

function packageVersion(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout ? r.stdout : undefined;
}

function missingPrerequisites() {
  const missing = new Set();
  for (const tool of TOOLS) if (!existsSync(tool.path)) missing.add(tool.pkg);
  for (const [cmd, pkg] of [
    ['cpio', 'cpio'],
    ['depmod', 'kmod'],
    ['dpkg-deb', 'dpkg'],
    ['gcc', 'gcc'],
  ]) {
    if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) missing.add(pkg);
  }
  return [...missing];
}

function kernelPackageName() {
  const depends = spawnSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' }).stdout ?? '';
  return /Depends: (linux-image-[0-9][^\s]*)/.exec(depends)?.[1];
}

function findKernelDeb() {
  if (values['kernel-deb']) return resolve(values['kernel-deb']);
  const wanted = kernelPackageName();
  const cached = existsSync(cache)
    ? readdirSync(cache)
        .filter((n) => /^linux-image-[0-9].*-amd64_.*\.deb$/.test(n))
        .sort()
    : [];
  const match = cached.find((n) => wanted && n.startsWith(`${wanted}_`)) ?? cached.at(-1);
  if (match) return join(cache, match);
  if (!wanted) return undefined;
  mkdirSync(cache, { recursive: true });
  console.log(`fetching ${wanted} into ${cache} (apt-get download)`);
  const r = spawnSync('apt-get', ['download', '-qq', wanted], { cwd: cache, encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return findKernelDeb();
}

/** Shared libraries a dynamic binary needs (ldd), the loader included. */
function sharedLibraries(binary) {
  const r = spawnSync('ldd', [binary], { encoding: 'utf8' });
  if (r.status !== 0) return []; // "not a dynamic executable": busybox-static
  const libs = [];
  for (const line of r.stdout.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

/** Copies a file to the same path under root, recreating symlinks along the way. */
function copyIntoRoot(root, path) {
  const target = join(root, path);
  if (existsSync(target)) return;
  mkdirSync(dirname(target), { recursive: true });
  if (lstatSync(path).isSymbolicLink()) {
    const link = readlinkSync(path);
    symlinkSync(link, target);
    copyIntoRoot(root, resolve(dirname(path), link));
    return;
  }
  copyFileSync(path, target);
  chmodSync(target, statSync(path).mode & 0o777);
}

/** name (with - or _) -> path of its .ko in the unpacked kernel tree. */
function moduleIndex(moduleRoot) {
  const index = new Map();
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ko')) index.set(entry.name.slice(0, -3).replace(/-/g, '_'), path);
    }
  };
  walk(moduleRoot);
  return index;
}

/**
 * bb-stream-recv into /usr/bin: static when this host has static glibc (libc6-dev), else
 * dynamic with its libraries copied like the tools'. Without it the agent fetches by HTTP.
 */
function compileReceiver(root) {
  const target = join(root, 'usr', 'bin', 'bb-stream-recv');
  const source = join(sourceDir, RECEIVER_SOURCE);
  const flags = ['-O2', '-pthread', '-o', target, source];
  // libcrypto's SHA-256 (libssl-dev): the writer checks every chunk before writing it, several times faster than the portable one.
  const crypto = ['-DBB_LIBCRYPTO', ...flags, '-lcrypto'];
  const linked = [['-static', ...crypto], crypto, ['-static', ...flags]].findIndex((f) => spawnSync('gcc', f, { encoding: 'utf8' }).status === 0);
  if (linked < 0) run('gcc', flags);
  if (linked !== 0 && linked !== 2) for (const lib of sharedLibraries(target)) copyIntoRoot(root, lib);
  run('strip', [target]);
}

/**
 * bb-imgio into /usr/bin, linked statically against libzstd and libcrypto (libzstd-dev,
 * libssl-dev) when this host has their archives, else dynamically with its libraries copied.
 * Without it the agent moves chunks with dd, zstd, openssl and curl, as before.
 */
function compileImgio(root) {
  const target = join(root, 'usr', 'bin', 'bb-imgio');
  const source = join(sourceDir, IMGIO_SOURCE);
  const flags = ['-O2', '-pthread', '-o', target, source, '-lzstd', '-lcrypto'];
  const linked = spawnSync('gcc', ['-static', ...flags], { encoding: 'utf8' });
  if (linked.status !== 0) {
    const dynamic = spawnSync('gcc', flags, { encoding: 'utf8' });
    if (dynamic.status !== 0) {
      console.log(`bb-imgio not built (install libzstd-dev libssl-dev): ${dynamic.stderr.trim().split('\n').at(-1)}`);
      return false;
    }
    for (const lib of sharedLibraries(target)) copyIntoRoot(root, lib);
  }
  run('strip', [target]);
  return true;
}

function build() {
  const missing = missingPrerequisites();
  if (missing.length) {
    const message = `the imaging environment needs: ${missing.join(', ')}; install with: sudo apt-get install ${missing.join(' ')}`;
    if (values['allow-missing']) {
      console.log(`not building the imaging environment: ${message}`);
      return 0;
    }
    console.error(message);
    return 1;
  }
  const kernelDeb = findKernelDeb();
  if (!kernelDeb || !existsSync(kernelDeb)) {
    const message = `no Debian kernel package: give --kernel-deb FILE, or put linux-image-*-amd64_*.deb in ${cache} (apt-get download linux-image-amd64's dependency)`;
    if (values['allow-missing']) {
      console.log(`not building the imaging environment: ${message}`);
      return 0;
    }
    console.error(message);
    return 1;
  }

  const inputs = {
    kernelDeb: basename(kernelDeb),
    packages: Object.fromEntries([...new Set(TOOLS.map((t) => t.pkg))].map((p) => [p, packageVersion(p) ?? 'unknown'])),
    modules: MODULES,
    scripts: Object.fromEntries([...OUR_FILES, RECEIVER_SOURCE, IMGIO_SOURCE].map((f) => [f, sha256(join(sourceDir, f))])),
    builder: sha256(fileURLToPath(import.meta.url)),
  };
  const manifestPath = join(out, 'manifest.json');
  if (!values.force && existsSync(manifestPath) && existsSync(join(out, 'initrd.img')) && existsSync(join(out, 'vmlinuz'))) {
    const previous = JSON.parse(readFileSync(manifestPath, 'utf8'));
    if (JSON.stringify(previous.inputs) === JSON.stringify(inputs)) {
      console.log(`imaging environment is current (${out})`);
      return 0;
    }
  }

  const work = mkdtempSync(join(tmpdir(), 'bootbench-imaging-'));
  try {
    const kernelTree = join(work, 'kernel');
    run('dpkg-deb', ['-x', kernelDeb, kernelTree]);
    const version = readdirSync(join(kernelTree, 'lib', 'modules'))[0];
    const vmlinuz = join(kernelTree, 'boot', `vmlinuz-${version}`);
    if (!version || !existsSync(vmlinuz)) throw new Error(`${kernelDeb} holds no kernel (boot/vmlinuz-*)`);

    const root = join(work, 'root');
    for (const dir of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'run', 'tmp', 'mnt', 'etc', 'root']) {
      mkdirSync(join(root, dir), { recursive: true });
    }

    // Modules and what they depend on (modinfo reads the .ko's own dependency list).
    const moduleRoot = join(kernelTree, 'lib', 'modules', version);
    const index = moduleIndex(moduleRoot);
    const wanted = [...MODULES];
    const chosen = new Set();
    const builtin = readFileSync(join(moduleRoot, 'modules.builtin'), 'utf8');
    const notFound = [];
    while (wanted.length) {
      const name = wanted.pop().replace(/-/g, '_');
      if (chosen.has(name)) continue;
      const path = index.get(name);
      if (!path) {
        if (!new RegExp(`/${name.replace(/_/g, '[-_]')}\\.ko$`, 'm').test(builtin)) notFound.push(name);
        continue;
      }
      chosen.add(name);
      const depends = run('modinfo', ['-F', 'depends', path]).trim();
      if (depends) wanted.push(...depends.split(','));
    }
    if (notFound.length) throw new Error(`kernel ${version} has no module ${notFound.join(', ')} (neither built in nor a .ko)`);
    for (const name of chosen) {
      const from = index.get(name);
      const to = join(root, 'lib', 'modules', version, relative(moduleRoot, from));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(from, to);
    }
    for (const file of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) {
      if (existsSync(join(moduleRoot, file))) copyFileSync(join(moduleRoot, file), join(root, 'lib', 'modules', version, file));
    }
    run('depmod', ['-b', root, version]);

    // Tools with their libraries.
    for (const tool of TOOLS) {
      copyIntoRoot(root, tool.path);
      for (const lib of sharedLibraries(tool.path)) copyIntoRoot(root, lib);
    }
    for (const file of OUR_FILES) {
      const to = join(root, file === 'init' ? 'init' : 'bin/bootbench-agent');
      copyFileSync(join(sourceDir, file), to);
      chmodSync(to, 0o755);
    }
    compileReceiver(root);
    compileImgio(root);
    writeFileSync(join(root, 'etc', 'bootbench-imaging-release'), `kernel=${version}\n`);

    // newc cpio, owned by root, compressed with zstd (the Debian kernel has RD_ZSTD).
    mkdirSync(out, { recursive: true });
    const cpioPath = join(work, 'initrd.cpio');
    run('sh', ['-c', `cd "${root}" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner=0:0 --quiet > "${cpioPath}"`]);
    // Each file is written beside its old self and renamed over it: a PC booting meanwhile
    // (a lab test, a bench) reads the old file or the new one, never half of one.
    run('zstd', ['-q', '-f', '-15', '-T0', cpioPath, '-o', join(out, 'initrd.img.new')]);
    copyFileSync(vmlinuz, join(out, 'vmlinuz.new'));
    renameSync(join(out, 'initrd.img.new'), join(out, 'initrd.img'));
    renameSync(join(out, 'vmlinuz.new'), join(out, 'vmlinuz'));

    const files = ['vmlinuz', 'initrd.img'].map((name) => ({ name, size: statSync(join(out, name)).size, sha256: sha256(join(out, name)) }));
    const manifest = {
      generatedAt: new Date().toISOString(),
      kernelVersion: version,
      inputs,
      unpackedSize: statSync(cpioPath).size,
      modules: [...chosen].sort(),
      files,
    };
    writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
    const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
    console.log(
      `imaging environment: kernel ${version} (${mib(files[0].size)}), initramfs ${mib(files[1].size)} (${mib(manifest.unpackedSize)} unpacked, ${chosen.size} modules) -> ${out}`,
    );
    return 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

try {
  process.exit(build());
} catch (error) {
  console.error(`building the imaging environment failed: ${error.message}`);
  process.exit(values['allow-missing'] ? 0 : 1);
}
