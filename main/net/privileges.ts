// What this process may do on the network: bind the low service ports (67 DHCP, 69 TFTP,
// 80 HTTP; 4011 is above 1024 and normally free) and tie sockets to one NIC. Used by
// `bootbench doctor` and the app's Start screen to say what is missing before anything
// fails, and by the bind errors for the fix text.
import { readFileSync, realpathSync } from 'node:fs';
import os from 'node:os';
import { serviceNameForPort } from './service-ports.js';

// Bit numbers from <linux/capability.h>.
const CAP_NET_BIND_SERVICE = 10;
const CAP_NET_RAW = 13;

export interface PortPermission {
  port: number;
  service?: string;
  allowed: boolean;
}

export interface PrivilegeProblem {
  /** Plain sentence: what cannot be done and why. */
  message: string;
  /** What to do about it on this OS. */
  fix: string;
}

export interface PrivilegeReport {
  platform: NodeJS.Platform;
  /** Effective uid 0 (always false on Windows, where it is not known). */
  isRoot: boolean;
  /** Linux: effective capabilities that matter here. */
  capabilities?: { netBindService: boolean; netRaw: boolean };
  /** Linux: net.ipv4.ip_unprivileged_port_start (ports from here on need no privilege). */
  unprivilegedPortStart?: number;
  ports: PortPermission[];
  /** SO_BINDTODEVICE / IP_BOUND_IF allowed. */
  bindToDevice: boolean;
  /** Nothing missing. */
  ok: boolean;
  /** One per missing right, each with its fix; empty when all is well. */
  problems: PrivilegeProblem[];
  /** Things we could not check, said honestly (e.g. untested platforms). */
  notes: string[];
}

export interface PrivilegeSources {
  platform?: NodeJS.Platform;
  euid?: number;
  /** Contents of /proc/self/status. */
  procStatus?: string;
  /** Contents of /proc/sys/net/ipv4/ip_unprivileged_port_start. */
  unprivilegedPortStart?: string;
  /** os.release(), e.g. "6.1.0-18-amd64". */
  kernelRelease?: string;
  ports?: number[];
  /** How this process was started (default: read from its environment). */
  packaging?: HostPackaging;
}

export const DEFAULT_SERVICE_PORTS = [67, 69, 4011, 80];

export function checkPrivileges(sources: PrivilegeSources = {}): PrivilegeReport {
  const platform = sources.platform ?? process.platform;
  const ports = sources.ports ?? DEFAULT_SERVICE_PORTS;
  const euid = sources.euid ?? process.geteuid?.();
  const isRoot = euid === 0;
  const notes: string[] = [];

  if (platform !== 'linux') {
    if (platform === 'darwin') {
      // Since macOS 10.14 any user may bind ports below 1024 on the wildcard address,
      // and IP_BOUND_IF needs no privilege. Not verified on a Mac in this project yet.
      notes.push('macOS: low ports and IP_BOUND_IF need no administrator rights since 10.14 (not verified by our tests).');
    } else if (platform === 'win32') {
      notes.push('Windows has no privileged ports; the firewall may still block DHCP/TFTP (checked separately).');
    } else {
      notes.push(`No privilege check for ${platform}.`);
    }
    return {
      platform,
      isRoot,
      ports: ports.map((port) => ({ port, service: serviceNameForPort(port), allowed: true })),
      bindToDevice: true,
      ok: true,
      problems: [],
      notes,
    };
  }

  const status = sources.procStatus ?? readOrEmpty('/proc/self/status');
  const effective = parseCapEff(status);
  const capabilities = {
    netBindService: effective !== undefined ? hasCap(effective, CAP_NET_BIND_SERVICE) : isRoot,
    netRaw: effective !== undefined ? hasCap(effective, CAP_NET_RAW) : isRoot,
  };
  const startText = sources.unprivilegedPortStart ?? readOrEmpty('/proc/sys/net/ipv4/ip_unprivileged_port_start');
  // Kernels before 4.11 have no such sysctl: 1024 was fixed.
  const unprivilegedPortStart = Number.parseInt(startText.trim(), 10);
  const portStart = Number.isFinite(unprivilegedPortStart) ? unprivilegedPortStart : 1024;

  const permissions = ports.map((port) => ({
    port,
    service: serviceNameForPort(port),
    allowed: port >= portStart || capabilities.netBindService,
  }));
  // Linux 5.7 (commit c427bfec18f2) lets any user set SO_BINDTODEVICE on a socket that is
  // not yet tied to a device, which is our case; older kernels want CAP_NET_RAW.
  const kernel = sources.kernelRelease ?? os.release();
  const bindToDevice = capabilities.netRaw || kernelAtLeast(kernel, 5, 7);

  const problems: PrivilegeProblem[] = [];
  const fix = privilegeFix(platform, sources.packaging);
  const blocked = permissions.filter((p) => !p.allowed);
  if (blocked.length) {
    problems.push({
      message:
        `Cannot bind port${blocked.length > 1 ? 's' : ''} ${blocked.map((p) => `${p.port}${p.service ? ` (${p.service})` : ''}`).join(', ')}: ` +
        `ports below ${portStart} need root or CAP_NET_BIND_SERVICE.`,
      fix,
    });
  }
  if (!bindToDevice) {
    problems.push({
      message: `Cannot tie sockets to one NIC (SO_BINDTODEVICE): kernel ${kernel} needs root or CAP_NET_RAW for it.`,
      fix,
    });
  }
  return {
    platform,
    isRoot,
    capabilities,
    unprivilegedPortStart: portStart,
    ports: permissions,
    bindToDevice,
    ok: problems.length === 0,
    problems,
    notes,
  };
}

/**
 * How this host process was started on Linux, which decides what can grant it the rights:
 * - `node`: `bootbench serve` under a Node of the user's (from npm or a checkout);
 * - `launcher`: the installed app's service host, started through bootbench-host
 *   (build/linux/bootbench-host.c), the one file the .deb gives capabilities to;
 * - `appimage`: the same launcher inside an AppImage, whose files sit on a read-only
 *   squashfs mount that cannot carry file capabilities at all;
 * - `electron`: the Electron binary in Node mode without the launcher (a development
 *   checkout): capabilities on it would reach every Chromium process it starts.
 */
export type HostPackaging =
  { kind: 'node'; program: string } | { kind: 'launcher'; launcher: string } | { kind: 'appimage'; appImage: string } | { kind: 'electron'; program: string };

/** Reads the variables bootbench-host sets for the process it starts (and nothing else can). */
export function detectPackaging(
  env: NodeJS.ProcessEnv = process.env,
  program = executablePath(),
  versions: NodeJS.ProcessVersions = process.versions,
): HostPackaging {
  if (env.BOOTBENCH_APPIMAGE) return { kind: 'appimage', appImage: env.BOOTBENCH_APPIMAGE };
  if (env.BOOTBENCH_LAUNCHER) return { kind: 'launcher', launcher: env.BOOTBENCH_LAUNCHER };
  if (versions.electron) return { kind: 'electron', program };
  return { kind: 'node', program };
}

/** Lowering this sysctl is the one change that helps an AppImage: see privilegeFix. */
export const UNPRIVILEGED_PORTS_COMMAND = "echo 'net.ipv4.ip_unprivileged_port_start=67' | sudo tee /etc/sysctl.d/60-bootbench.conf && sudo sysctl --system";

/** How to get the right to bind low ports / bind to a device, per OS and, on Linux, per packaging. */
export function privilegeFix(platform: NodeJS.Platform = process.platform, packaging: HostPackaging = detectPackaging()): string {
  switch (platform) {
    case 'linux':
      return linuxPrivilegeFix(packaging);
    case 'darwin':
      return 'run Bootbench with sudo (or from the app, which asks for an administrator password)';
    case 'win32':
      return (
        'run Bootbench as Administrator; if it still fails the port may be reserved by Windows ' +
        '(see `netsh interface ipv4 show excludedportrange protocol=udp`)'
      );
    default:
      return 'run Bootbench as root';
  }
}

function linuxPrivilegeFix(packaging: HostPackaging): string {
  switch (packaging.kind) {
    case 'launcher':
      // The same grant as the .deb's post-install (build/linux/after-install.sh): permitted
      // set only, on the launcher, never on the Electron binary beside it.
      return (
        `the service host launcher ${packaging.launcher} has lost the network capabilities the package gave it: ` +
        'reinstall the package (sudo apt install --reinstall bootbench), or grant them again: ' +
        `sudo setcap cap_net_bind_service,cap_net_raw=p ${packaging.launcher}` +
        ' (the desktop app offers to do this, with your administrator password)'
      );
    case 'appimage':
      // setcap cannot write to the AppImage's read-only squashfs, and running the host as
      // root would give it every right instead of two. The sysctl lets any program of this
      // computer open ports from 67 up; the .deb grants them to Bootbench alone.
      return (
        'an AppImage cannot hold network capabilities (its files are read-only): let programs open ports from 67 up, once for this computer: ' +
        `${UNPRIVILEGED_PORTS_COMMAND}` +
        ' (or install the .deb package, which grants them to Bootbench alone; on kernels before 5.7 only the .deb can tie sockets to one NIC)'
      );
    case 'electron':
      return (
        'this Electron binary must not be given capabilities (its browser processes would inherit them): ' +
        `build the installers (bootbench-host holds them there), run \`bootbench serve\` with sudo, or lower the port limit: ${UNPRIVILEGED_PORTS_COMMAND}`
      );
    case 'node':
      return (
        'run Bootbench as root, or give this program the two network capabilities once: ' +
        `sudo setcap 'cap_net_bind_service,cap_net_raw=+ep' ${packaging.program}` +
        ' (every script this Node runs then has them; the packaged app has a helper that holds them instead)'
      );
  }
}

/** setcap refuses symlinks (/usr/bin/node is often one), so name the real file. */
function executablePath(): string {
  try {
    return realpathSync(process.execPath);
  } catch {
    return process.execPath;
  }
}

/** The CapEff line of /proc/PID/status: 64 bits in hex. */
export function parseCapEff(status: string): bigint | undefined {
  const match = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status);
  return match ? BigInt(`0x${match[1]}`) : undefined;
}

function hasCap(mask: bigint, bit: number): boolean {
  return (mask & (1n << BigInt(bit))) !== 0n;
}

export function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const match = /^(\d+)\.(\d+)/.exec(release);
  if (!match) return false;
  const [maj, min] = [Number(match[1]), Number(match[2])];
  return maj > major || (maj === major && min >= minor);
}

/** The sysctl as a number, for messages; 1024 when unknown. */
export function unprivilegedPortStart(): number {
  const value = Number.parseInt(readOrEmpty('/proc/sys/net/ipv4/ip_unprivileged_port_start').trim(), 10);
  return Number.isFinite(value) ? value : 1024;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
