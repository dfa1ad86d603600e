// electron-builder `beforePack` hook: runs once per target platform and architecture, before
// the app is copied. It stops the build when something the packaged app loads at run time is
// missing for that target, instead of producing an installer that fails on the user's machine:
//  - koffi's prebuilt binary comes from an optional dependency per platform/arch
//    (@koromix/koffi-<platform>-<arch>); npm installs only the build machine's one.
//  - Linux: compiles build/linux/bootbench-host.c for the target (see build/linux/README.md).
//  - The RunAsNode fuse stays on only where bootbench-host needs it (Linux); see fusesFor.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync, mkdirSync, readdirSync, statSync } = require('node:fs');
const path = require('node:path');

const projectDir = path.resolve(__dirname, '..', '..');

// electron-builder's Arch enum (builder-util): ia32, x64, armv7l, arm64, universal.
const ARCH_NAMES = ['ia32', 'x64', 'armv7l', 'arm64', 'universal'];

/** The koffi package whose koffi.node the loader picks on this platform/arch. */
function koffiPackageFor(platform, arch) {
  // koffi names 32-bit ARM "arm"; electron-builder says armv7l.
  return `@koromix/koffi-${platform}-${arch === 'armv7l' ? 'arm' : arch}`;
}

function findNodeFiles(dir) {
  const found = [];
  if (!existsSync(dir)) return found;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findNodeFiles(full));
    else if (entry.name.endsWith('.node')) found.push(full);
  }
  return found;
}

/** undefined when the target's koffi binary is installed, else what to do. */
function missingKoffiNative(root, platform, arch) {
  if (arch === 'universal') {
    // A universal app is merged from the x64 and arm64 builds, each checked on its own.
    return undefined;
  }
  const pkg = koffiPackageFor(platform, arch);
  if (findNodeFiles(path.join(root, 'node_modules', pkg)).length > 0) return undefined;
  let version = '';
  try {
    version = `@${require(path.join(root, 'node_modules', 'koffi', 'package.json')).version}`;
  } catch {}
  return (
    `koffi's native binary for ${platform}/${arch} is not installed (${pkg}); the packaged app could not ` +
    `tie sockets to one network interface. Build on a ${platform}/${arch} machine (the CI workflow does), ` +
    `or install it for this build: npm install --no-save --force ${pkg}${version}`
  );
}

/** Which C compiler builds the launcher for targetArch on this machine, or why none. */
function launcherCompiler(targetArch, { hostArch = process.arch, env = process.env, onPath = commandOnPath } = {}) {
  const override = env[`BOOTBENCH_CC_${targetArch.toUpperCase()}`];
  if (override) return { command: override };
  if (targetArch === hostArch) return { command: env.CC || 'cc' };
  const cross = { x64: 'x86_64-linux-gnu-gcc', arm64: 'aarch64-linux-gnu-gcc', armv7l: 'arm-linux-gnueabihf-gcc' }[targetArch];
  if (cross && onPath(cross)) return { command: cross };
  return {
    reason:
      `cannot compile bootbench-host for linux/${targetArch} on a ${hostArch} machine: install ${cross ?? 'a cross compiler'} ` +
      `(Debian: apt-get install gcc-${targetArch === 'arm64' ? 'aarch64' : targetArch === 'x64' ? 'x86-64' : 'arm'}-linux-gnu${targetArch === 'armv7l' ? 'eabihf' : ''}), ` +
      `set BOOTBENCH_CC_${targetArch.toUpperCase()}, or build on a ${targetArch} machine`,
  };
}

function commandOnPath(command) {
  return (process.env.PATH || '').split(path.delimiter).some((dir) => {
    try {
      return statSync(path.join(dir, command)).isFile();
    } catch {
      return false;
    }
  });
}

/** Compiles the launcher into build/linux/out/<arch>/bootbench-host; returns its path. */
function compileLauncher(root, targetArch, options) {
  const compiler = launcherCompiler(targetArch, options);
  if (!compiler.command) throw new Error(compiler.reason);
  const outDir = path.join(root, 'build', 'linux', 'out', targetArch);
  mkdirSync(outDir, { recursive: true });
  const output = path.join(outDir, 'bootbench-host');
  // Static: the same file runs on every glibc the .deb and AppImage may meet, and it calls
  // nothing (no NSS) that static glibc handles badly.
  execFileSync(
    compiler.command,
    ['-O2', '-Wall', '-Wextra', '-Werror', '-static', '-s', '-o', output, path.join(root, 'build', 'linux', 'bootbench-host.c')],
    { stdio: 'inherit' },
  );
  return output;
}

/**
 * electron-builder has one `electronFuses` for every platform. Only Linux runs the Electron
 * binary in Node mode (bootbench-host); on macOS and Windows that mode would only let other
 * programs borrow the app's identity (on macOS, its Local Network permission), so it is off.
 */
function fusesFor(platform, fuses) {
  if (!fuses) return fuses;
  return { ...fuses, runAsNode: platform === 'linux' ? fuses.runAsNode : false };
}

async function beforePack(context) {
  const platform = context.electronPlatformName;
  const arch = typeof context.arch === 'number' ? ARCH_NAMES[context.arch] : String(context.arch);
  const problem = missingKoffiNative(projectDir, platform, arch);
  if (problem) throw new Error(problem);
  if (platform === 'linux') compileLauncher(projectDir, arch);
  // Read by electron-builder when it flips the fuses, after this hook (platformPackager.js).
  const config = context.packager.config;
  if (config.electronFuses) config.electronFuses = fusesFor(platform, config.electronFuses);
}

module.exports = beforePack;
module.exports.default = beforePack;
module.exports.koffiPackageFor = koffiPackageFor;
module.exports.missingKoffiNative = missingKoffiNative;
module.exports.launcherCompiler = launcherCompiler;
module.exports.compileLauncher = compileLauncher;
module.exports.fusesFor = fusesFor;
