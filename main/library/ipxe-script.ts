// Per-machine boot scripts, generated as pure functions of (what the machine should boot,
// where files are served): iPXE scripts for chainloaded clients, and grub.cfg for the
// Secure Boot chain (shim -> signed netboot GRUB). No I/O here: the HTTP route and the
// tests call these with plain data.
//
// iPXE command reference: https://ipxe.org/cmd (kernel/initrd --name, chain, sanboot,
// menu/item/choose, iseq, goto, exit). wimboot: https://ipxe.org/wimboot.
import { posix } from 'node:path';
import type { EntryKind } from '../store/index.js';
import type { IsoLinuxInfo, IsoWindowsInfo } from './detect.js';
import { BOOT_CLASS_FOR_ARCHITECTURE, type LibraryArchitecture } from '../core/index.js';

/** What a script needs to know about an entry (a store BootEntry plus what detection found in an ISO). */
export interface ScriptEntry {
  id: number;
  name: string;
  kind: EntryKind;
  arguments: string;
  files: { arch: string; role: string; path: string }[];
  /** For ISO entries: Linux kernel/initrd or Windows boot files found inside (from detectFile). */
  iso?: { linux?: IsoLinuxInfo; windows?: IsoWindowsInfo };
  /**
   * This machine's answer file (main/library/answer-files.ts): kernel arguments that point the
   * installer at it and files wimboot injects, or why the machine cannot have it (then the
   * entry does not boot: an installer without its answers would wait at its first question).
   */
  answers?: { kernelArguments: string; inject: { name: string; url: string }[] } | { refusal: string };
}

export interface ScriptContext {
  /** e.g. http://192.0.2.1:8080 (no trailing slash needed). */
  httpBaseUrl: string;
  /** The client's firmware family (from iPXE's ${platform} and ${buildarch}). */
  architecture: LibraryArchitecture;
  /** URL of wimboot, when the user has provided it (Debian does not package wimboot). */
  wimbootUrl?: string;
  mac?: string;
  machineName?: string;
}

export type BootRequest =
  | { action: 'entry'; entry: ScriptEntry; bootOnce?: boolean }
  | { action: 'local-disk'; reason?: string }
  | {
      action: 'menu';
      entries: ScriptEntry[];
      /** Entry id chosen when the timeout runs out; default local disk. */
      defaultChoice?: number | 'local-disk';
      timeoutSeconds: number;
    };

const MENU_LABEL_LOCAL = 'bb-local';
const MENU_LABEL_SHELL = 'bb-shell';

// ---------------------------------------------------------------------------------------
// URLs. Entry files: /library/e<id>/<file name>; files inside an entry's ISO:
// /library/e<id>/iso/<path inside the ISO>. The HTTP route (http-route.ts) serves both.
// ---------------------------------------------------------------------------------------
function base(url: string): string {
  return url.replace(/\/+$/, '');
}

function encodePath(path: string): string {
  return path.split('/').filter(Boolean).map(encodeURIComponent).join('/');
}

export function entryFileUrl(httpBaseUrl: string, entryId: number, filePath: string): string {
  return `${base(httpBaseUrl)}/library/e${entryId}/${encodeURIComponent(posix.basename(filePath.split('\\').join('/')))}`;
}

export function isoInnerUrl(httpBaseUrl: string, entryId: number, innerPath: string): string {
  return `${base(httpBaseUrl)}/library/e${entryId}/iso/${encodePath(innerPath)}`;
}

/** The iPXE bootstrap every iPXE client gets first: it reports who it is, then chains its own script. */
export function buildIpxeBootstrap(httpBaseUrl: string): string {
  // ${netX/mac} is the NIC iPXE booted from; ${platform} pcbios|efi, ${buildarch} i386|x86_64|arm64.
  return [
    '#!ipxe',
    `chain ${base(httpBaseUrl)}/ipxe/machine.ipxe?mac=\${netX/mac}&uuid=\${uuid}&platform=\${platform}&buildarch=\${buildarch} || goto failed`,
    ':failed',
    "echo Bootbench: could not fetch this machine's boot script; booting from the local disk in 10 s",
    'sleep 10',
    'exit',
    '',
  ].join('\n');
}

/** iPXE's ${platform} and ${buildarch} -> firmware family. */
export function architectureFromIpxe(platform: string | undefined, buildarch: string | undefined): LibraryArchitecture {
  if (platform === 'pcbios') return 'bios';
  if (buildarch === 'arm64') return 'arm64';
  if (buildarch === 'i386') return platform === 'efi' ? 'ia32' : 'bios';
  return 'x64';
}

/** Files of the entry for this architecture, in fetch order (the class's own, else 'any'). */
export function filesForArchitecture(entry: Pick<ScriptEntry, 'files'>, architecture: LibraryArchitecture): ScriptEntry['files'] {
  const own = entry.files.filter((f) => f.arch === BOOT_CLASS_FOR_ARCHITECTURE[architecture]);
  return own.length > 0 ? own : entry.files.filter((f) => f.arch === 'any');
}

function safeText(text: string): string {
  // Script text on one line, without iPXE/GRUB variable expansion.
  return text.replace(/[\r\n]+/g, ' ').replace(/\$/g, '');
}

function joinArgs(...parts: (string | undefined)[]): string {
  return parts
    .map((p) => (p ?? '').trim())
    .filter(Boolean)
    .join(' ');
}

/*
 * Kernel arguments that let a Linux live system fetch its root over HTTP from the same ISO,
 * served file by file by the HTTP route:
 *   Ubuntu casper (20.04+)  boot=casper netboot=url url=<ISO>   (casper downloads the whole ISO into RAM)
 *   Debian live / Clonezilla  boot=live fetch=<live/filesystem.squashfs>  (live-boot, 'fetch=')
 *   SystemRescue / Arch     archisobasedir=<dir> archiso_http_srv=<ISO root URL>/ (archiso_pxe_http hook)
 *   Fedora live             root=live:<LiveOS/squashfs.img> rd.live.image (dracut dmsquash-live)
 *   Fedora/RHEL installer   inst.repo=<ISO root URL> (anaconda)
 * All with ip=dhcp where the initrd needs to be told to bring the network up.
 */
export function liveKernelArguments(linux: IsoLinuxInfo, urls: { iso: string; isoRoot: string; inner: (path: string) => string }): string {
  switch (linux.flavour) {
    case 'ubuntu-casper':
      return `boot=casper netboot=url url=${urls.iso} ip=dhcp`;
    case 'debian-live':
      return linux.rootImage ? `boot=live components fetch=${urls.inner(linux.rootImage)}` : 'boot=live components';
    case 'clonezilla':
      return `boot=live union=overlay username=user config components noswap${linux.rootImage ? ` fetch=${urls.inner(linux.rootImage)}` : ''}`;
    case 'systemrescue':
      return `archisobasedir=sysresccd archiso_http_srv=${urls.isoRoot}/ ip=dhcp`;
    case 'arch':
      return `archisobasedir=arch archiso_http_srv=${urls.isoRoot}/ ip=dhcp`;
    case 'fedora':
      return linux.rootImage ? `root=live:${urls.inner(linux.rootImage)} rd.live.image ip=dhcp` : `inst.repo=${urls.isoRoot} ip=dhcp`;
    default:
      return '';
  }
}

// ---------------------------------------------------------------------------------------
// iPXE
// ---------------------------------------------------------------------------------------

/** The per-machine iPXE script. */
export function buildIpxeScript(request: BootRequest, ctx: ScriptContext): string {
  const who = ctx.machineName ? `${safeText(ctx.machineName)} (${ctx.mac ?? 'unknown MAC'})` : (ctx.mac ?? 'this machine');
  const lines = ['#!ipxe', `# Bootbench script for ${safeText(who)}, ${ctx.architecture}`];
  if (request.action === 'local-disk') {
    lines.push(`echo Bootbench: ${safeText(who)} boots from its local disk${request.reason ? ` (${safeText(request.reason)})` : ''}`, ...localDiskLines());
  } else if (request.action === 'entry') {
    lines.push(`echo Bootbench: ${safeText(who)} boots ${safeText(request.entry.name)}${request.bootOnce ? ' (once, then local disk)' : ''}`);
    lines.push(
      ...entryLines(request.entry, ctx),
      ':failed',
      `echo Bootbench: booting ${safeText(request.entry.name)} failed; local disk in 10 s`,
      'sleep 10',
      ...localDiskLines(),
    );
  } else {
    lines.push(...menuLines(request, ctx));
  }
  return lines.join('\n') + '\n';
}

/**
 * Local disk: BIOS iPXE can hand over to the first hard disk's boot sector directly;
 * UEFI iPXE exits so the firmware tries its next boot option (the disk).
 */
function localDiskLines(): string[] {
  return ['iseq ${platform} pcbios && sanboot --no-describe --drive 0x80 ||', 'exit'];
}

/** Lines that boot one entry; on failure they `goto failed` (the caller defines the label). */
function entryLines(entry: ScriptEntry, ctx: ScriptContext): string[] {
  const files = filesForArchitecture(entry, ctx.architecture);
  const url = (f: { path: string }) => entryFileUrl(ctx.httpBaseUrl, entry.id, f.path);
  const name = (f: { path: string }) => posix.basename(f.path.split('\\').join('/'));
  const missing = (what: string) => [`echo Bootbench: ${safeText(entry.name)} has no ${what} for ${ctx.architecture} clients`, 'goto failed'];
  if (entry.answers && 'refusal' in entry.answers) return [`echo Bootbench: ${safeText(entry.answers.refusal)}`, 'goto failed'];
  const answerArgs = entry.answers?.kernelArguments;
  const inject = entry.answers?.inject ?? [];
  switch (entry.kind) {
    case 'local-disk':
      return localDiskLines();
    case 'nbp': {
      const nbp = files.find((f) => f.role === 'nbp');
      return nbp ? [`chain ${url(nbp)} || goto failed`] : missing('boot program');
    }
    case 'ipxe-script': {
      const script = files.find((f) => f.role === 'script');
      return script ? [`chain ${url(script)} || goto failed`] : missing('script');
    }
    case 'kernel':
    case 'secure-boot-chain': {
      // A Secure Boot chain reached by iPXE (Secure Boot off) boots its kernel directly.
      const kernel = files.find((f) => f.role === 'kernel');
      if (!kernel) return missing('kernel');
      const initrds = files.filter((f) => f.role === 'initrd');
      return kernelLines(
        url(kernel),
        initrds.map((i) => ({ url: url(i), name: name(i) })),
        joinArgs(entry.arguments, answerArgs),
      );
    }
    case 'initrd':
      return [`echo Bootbench: ${safeText(entry.name)} is an initrd on its own; give it a kernel (import both together)`, 'goto failed'];
    case 'wim': {
      const parts = ['bootmgr', 'bcd', 'boot-sdi', 'wim'].map((role) => files.find((f) => f.role === role));
      return wimbootLines(
        ctx,
        entry.name,
        {
          bootmgr: parts[0] && url(parts[0]),
          bcd: parts[1] && url(parts[1]),
          bootSdi: parts[2] && url(parts[2]),
          bootWim: parts[3] && url(parts[3]),
        },
        inject,
      );
    }
    case 'iso': {
      const iso = files.find((f) => f.role === 'iso');
      if (!iso) return missing('ISO file');
      const linux = entry.iso?.linux;
      if (linux) {
        const inner = (p: string) => isoInnerUrl(ctx.httpBaseUrl, entry.id, p);
        const isoRoot = `${base(ctx.httpBaseUrl)}/library/e${entry.id}/iso`;
        const live = liveKernelArguments(linux, { iso: url(iso), isoRoot, inner });
        return kernelLines(
          inner(linux.kernel),
          linux.initrds.map((p) => ({ url: inner(p), name: posix.basename(p) })),
          joinArgs(live, entry.arguments, answerArgs),
        );
      }
      const windows = entry.iso?.windows;
      if (windows && windows.bcd && windows.bootSdi && windows.bootWim) {
        const inner = (p?: string) => p && isoInnerUrl(ctx.httpBaseUrl, entry.id, p);
        return wimbootLines(
          ctx,
          entry.name,
          {
            bootmgr: inner(windows.bootmgr),
            bcd: inner(windows.bcd),
            bootSdi: inner(windows.bootSdi),
            bootWim: inner(windows.bootWim),
          },
          inject,
        );
      }
      // Anything else boots as a virtual CD: iPXE reads it by HTTP range requests.
      return [`sanboot ${url(iso)} || goto failed`];
    }
    default:
      return missing('boot method');
  }
}

function kernelLines(kernelUrl: string, initrds: { url: string; name: string }[], args: string): string[] {
  // initrd=<name> lets an EFI-stub kernel find the initrd in iPXE's image list (iPXE releases
  // before LoadFile2 support, like Debian's 2019 build, need it); BIOS kernels ignore it.
  const initrdArgs = initrds.map((i) => `initrd=${i.name}`).join(' ');
  return [
    `kernel ${kernelUrl} ${joinArgs(initrdArgs, args)}`.trimEnd() + ' || goto failed',
    ...initrds.map((i) => `initrd --name ${i.name} ${i.url} || goto failed`),
    'boot || goto failed',
  ];
}

function wimbootLines(
  ctx: ScriptContext,
  name: string,
  files: { bootmgr?: string; bcd?: string; bootSdi?: string; bootWim?: string },
  inject: { name: string; url: string }[] = [],
): string[] {
  if (!ctx.wimbootUrl) {
    return [
      `echo Bootbench: ${safeText(name)} needs wimboot, which Debian does not package.`,
      'echo Put wimboot (https://ipxe.org/wimboot) into the data folder boot/ and try again.',
      'goto failed',
    ];
  }
  if (!files.bcd || !files.bootSdi || !files.bootWim) {
    const lacking = [!files.bcd && 'boot/BCD', !files.bootSdi && 'boot/boot.sdi', !files.bootWim && 'sources/boot.wim'].filter(Boolean).join(', ');
    return [`echo Bootbench: ${safeText(name)} lacks ${lacking}; wimboot needs BCD, boot.sdi and boot.wim`, 'goto failed'];
  }
  // wimboot finds files by name; without bootmgr it extracts bootmgr from boot.wim. The name
  // goes twice: --name for UEFI (iPXE's virtual file system), and as the image argument, which
  // BIOS iPXE turns into the cpio file name wimboot reads (iPXE builds before 2021 only wrap an
  // initrd in cpio when it has an argument).
  const initrd = (name: string, url: string) => `initrd --name ${name} ${url} ${name} || goto failed`;
  return [
    `kernel ${ctx.wimbootUrl} || goto failed`,
    ...(files.bootmgr ? [initrd('bootmgr', files.bootmgr)] : []),
    initrd('BCD', files.bcd),
    initrd('boot.sdi', files.bootSdi),
    initrd('boot.wim', files.bootWim),
    // Answer files: wimboot puts every other file it is given into X:\Windows\System32.
    ...inject.map((f) => initrd(f.name, f.url)),
    'boot || goto failed',
  ];
}

/** True when the entry has something this architecture can boot. */
export function entryBootsOn(entry: ScriptEntry, architecture: LibraryArchitecture): boolean {
  if (entry.kind === 'local-disk') return true;
  return filesForArchitecture(entry, architecture).length > 0;
}

function menuLines(request: Extract<BootRequest, { action: 'menu' }>, ctx: ScriptContext): string[] {
  const usable = request.entries.filter((e) => entryBootsOn(e, ctx.architecture));
  const others = request.entries.filter((e) => !entryBootsOn(e, ctx.architecture));
  const label = (e: ScriptEntry) => `bb-e${e.id}`;
  const defaultLabel =
    typeof request.defaultChoice === 'number' && usable.some((e) => e.id === request.defaultChoice) ? `bb-e${request.defaultChoice}` : MENU_LABEL_LOCAL;
  const lines = [
    ':menu',
    `menu Bootbench: choose what ${safeText(ctx.machineName ?? ctx.mac ?? 'this PC')} boots`,
    'item --gap -- Boot entries',
    ...usable.map((e) => `item ${label(e)} ${safeText(e.name)} (${e.kind})`),
    ...(others.length > 0 ? ["item --gap -- Not for this machine's firmware:", ...others.map((e) => `item --gap --   ${safeText(e.name)}`)] : []),
    'item --gap --',
    `item ${MENU_LABEL_LOCAL} Local disk`,
    `item ${MENU_LABEL_SHELL} iPXE shell`,
    `choose --default ${defaultLabel} --timeout ${Math.max(0, Math.round(request.timeoutSeconds * 1000))} target || goto ${MENU_LABEL_LOCAL}`,
    'goto ${target}',
  ];
  for (const entry of usable) {
    lines.push(`:${label(entry)}`, `echo Bootbench: booting ${safeText(entry.name)}`, ...entryLines(entry, ctx));
  }
  lines.push(
    `:${MENU_LABEL_SHELL}`,
    'shell',
    'goto menu',
    ':failed',
    'echo Bootbench: that entry did not boot; back to the menu in 5 s',
    'sleep 5',
    'goto menu',
    `:${MENU_LABEL_LOCAL}`,
    ...localDiskLines(),
  );
  return lines;
}

// ---------------------------------------------------------------------------------------
// GRUB (Secure Boot chain: shim -> Debian's signed grubnetx64). The signed netboot GRUB
// reads /grub/grub.cfg from the server it booted from (its built-in prefix; see
// PXE-NOTES "Secure Boot"). In lockdown it only boots kernels signed by a key shim trusts.
// GRUB 2.06 cannot give a port in (http,server), so HTTP is used only on port 80; otherwise
// files come by TFTP from the same paths (/library/e<id>/...).
// ---------------------------------------------------------------------------------------
export interface GrubContext {
  /** The boot server's IPv4 (TFTP and HTTP). */
  serverAddress: string;
  httpPort: number;
  mac?: string;
  machineName?: string;
}

function grubQuote(text: string): string {
  return `'${safeText(text).replace(/'/g, `'\\''`)}'`;
}

function grubDevice(ctx: GrubContext): string {
  return ctx.httpPort === 80 ? `(http,${ctx.serverAddress})` : `(tftp,${ctx.serverAddress})`;
}

/** Path (not URL) of an entry file as served over TFTP/HTTP. */
export function entryFileServedPath(entryId: number, filePath: string): string {
  return `/library/e${entryId}/${posix.basename(filePath.split('\\').join('/'))}`;
}

export function isoInnerServedPath(entryId: number, innerPath: string): string {
  return `/library/e${entryId}/iso/${innerPath.split('/').filter(Boolean).join('/')}`;
}

/** Answer-file arguments for GRUB's linux line: quoted, since `;` (autoinstall's ds=) separates GRUB commands. */
function grubAnswerArgs(entry: ScriptEntry): string {
  const answers = entry.answers && 'kernelArguments' in entry.answers ? entry.answers.kernelArguments : '';
  return answers
    .split(' ')
    .filter(Boolean)
    .map((arg) => (/[;'"\\\s]/.test(arg) ? grubQuote(arg) : safeText(arg)))
    .join(' ');
}

function grubEntryBody(entry: ScriptEntry, ctx: GrubContext): string[] {
  const dev = grubDevice(ctx);
  if (entry.answers && 'refusal' in entry.answers) return [`  echo ${grubQuote(`Bootbench: ${entry.answers.refusal}`)}`, '  sleep 30', '  exit'];
  const files = filesForArchitecture(entry, 'x64');
  const kernel = files.find((f) => f.role === 'kernel');
  if ((entry.kind === 'kernel' || entry.kind === 'secure-boot-chain') && kernel) {
    const initrds = files.filter((f) => f.role === 'initrd');
    return [
      `  echo ${grubQuote(`Loading ${entry.name} ...`)}`,
      `  linux ${dev}${entryFileServedPath(entry.id, kernel.path)} ${joinArgs(safeText(entry.arguments), grubAnswerArgs(entry))}`.trimEnd(),
      ...(initrds.length > 0 ? [`  initrd ${initrds.map((i) => `${dev}${entryFileServedPath(entry.id, i.path)}`).join(' ')}`] : []),
    ];
  }
  const linux = entry.kind === 'iso' ? entry.iso?.linux : undefined;
  if (linux) {
    const httpRoot = `http://${ctx.serverAddress}${ctx.httpPort === 80 ? '' : `:${ctx.httpPort}`}/library/e${entry.id}`;
    const iso = files.find((f) => f.role === 'iso');
    const live = liveKernelArguments(linux, {
      iso: iso ? `${httpRoot}/${encodeURIComponent(posix.basename(iso.path))}` : '',
      isoRoot: `${httpRoot}/iso`,
      inner: (p) => `${httpRoot}/iso/${encodePath(p)}`,
    });
    return [
      `  echo ${grubQuote(`Loading ${entry.name} ...`)}`,
      `  linux ${dev}${isoInnerServedPath(entry.id, linux.kernel)} ${joinArgs(live, safeText(entry.arguments), grubAnswerArgs(entry))}`.trimEnd(),
      `  initrd ${linux.initrds.map((p) => `${dev}${isoInnerServedPath(entry.id, p)}`).join(' ')}`,
    ];
  }
  const nbp = files.find((f) => f.role === 'nbp');
  if (entry.kind === 'nbp' && nbp) return [`  chainloader ${dev}${entryFileServedPath(entry.id, nbp.path)}`];
  if (entry.kind === 'local-disk') return ['  exit'];
  return [
    `  echo ${grubQuote(`${entry.name} (${entry.kind}) cannot boot through GRUB under Secure Boot; use an iPXE entry with Secure Boot off`)}`,
    '  sleep 10',
    '  exit',
  ];
}

/** Kinds GRUB can start under Secure Boot lockdown (signed kernels, signed EFI programs). */
export function grubCanBoot(entry: ScriptEntry): boolean {
  if (entry.kind === 'iso') return entry.iso?.linux !== undefined;
  return ['kernel', 'secure-boot-chain', 'nbp', 'local-disk'].includes(entry.kind) && entryBootsOn(entry, 'x64');
}

/** grub.cfg for one machine (served as /grub/grub.cfg to that client). */
export function buildGrubConfig(request: BootRequest, ctx: GrubContext): string {
  const who = ctx.machineName ?? ctx.mac ?? 'this machine';
  const lines = [`# Bootbench grub.cfg for ${safeText(who)}`];
  if (request.action === 'local-disk') {
    // GRUB's exit returns to the firmware, which goes on to its next boot option.
    lines.push(`echo ${grubQuote(`Bootbench: ${who} boots from its local disk`)}`, 'exit');
  } else if (request.action === 'entry') {
    lines.push('set timeout=0', 'set default=0', `menuentry ${grubQuote(request.entry.name)} {`, ...grubEntryBody(request.entry, ctx), '}');
  } else {
    const entries = request.entries.filter(grubCanBoot);
    const defaultIndex = typeof request.defaultChoice === 'number' ? entries.findIndex((e) => e.id === request.defaultChoice) : -1;
    lines.push(`set timeout=${Math.max(0, Math.round(request.timeoutSeconds))}`, `set default=${defaultIndex >= 0 ? defaultIndex : entries.length}`);
    for (const entry of entries) lines.push(`menuentry ${grubQuote(entry.name)} {`, ...grubEntryBody(entry, ctx), '}');
    lines.push(`menuentry ${grubQuote('Local disk')} {`, '  exit', '}');
  }
  return lines.join('\n') + '\n';
}

/**
 * A boot that takes precedence over the machine's assignment (an imaging task): a kernel and
 * its initrds at paths of the host's TFTP/HTTP namespace, or why it cannot boot.
 */
export type TaskKernel = { name: string; kernel: string; initrds: string[]; arguments: string } | { name: string; unavailable: string };

/** grub.cfg that boots a task's kernel at once (signed kernels only: GRUB verifies it through shim). */
export function buildGrubTaskConfig(task: TaskKernel, ctx: GrubContext): string {
  const who = ctx.machineName ?? ctx.mac ?? 'this machine';
  const lines = [`# Bootbench grub.cfg for ${safeText(who)}: ${safeText(task.name)}`];
  if ('unavailable' in task) {
    // Back to the firmware after the message, so the PC is not stuck in GRUB.
    lines.push(`echo ${grubQuote(`Bootbench: ${task.name}: ${task.unavailable}`)}`, 'sleep 30', 'exit');
  } else {
    const dev = grubDevice(ctx);
    lines.push(
      `echo ${grubQuote(`Bootbench: ${task.name}`)}`,
      `linux ${dev}${task.kernel} ${safeText(task.arguments)}`.trimEnd(),
      ...(task.initrds.length > 0 ? [`initrd ${task.initrds.map((p) => `${dev}${p}`).join(' ')}`] : []),
      'boot',
      `echo ${grubQuote(`Bootbench: ${task.name} did not start; back to the firmware in 30 s`)}`,
      'sleep 30',
      'exit',
    );
  }
  return lines.join('\n') + '\n';
}

/**
 * A static /grub/grub.cfg for servers that cannot generate per client: it hands over to
 * /grub/machines/<mac>.cfg (GRUB's ${net_default_mac}, lower-case with colons).
 */
export function buildGrubBootstrapConfig(): string {
  return ['# Bootbench: per-machine configuration by MAC', 'configfile /grub/machines/${net_default_mac}.cfg', ''].join('\n');
}
