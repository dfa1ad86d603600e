// Errors from opening sockets, worded for the person at the bench: which port, which
// service, why, and the fix on this operating system. Services pass the message on
// unchanged (start() rejects with it), so it must stand on its own.
import { describePortOwners, findPortOwners, type PortOwner, type PortProtocol } from './port-owner.js';
import { privilegeFix, unprivilegedPortStart } from './privileges.js';
import { serviceNameForPort } from './service-ports.js';

export { serviceNameForPort };

/** Program name (/proc/PID/comm) to the Debian/Fedora service that usually runs it. */
const SYSTEMD_UNITS: Record<string, string> = {
  dnsmasq: 'dnsmasq',
  dhcpd: 'isc-dhcp-server',
  'kea-dhcp4': 'kea-dhcp4-server',
  'in.tftpd': 'tftpd-hpa',
  atftpd: 'atftpd',
  nginx: 'nginx',
  apache2: 'apache2',
  httpd: 'httpd',
  lighttpd: 'lighttpd',
};

function portLabel(protocol: PortProtocol, port: number): string {
  const service = serviceNameForPort(port);
  return `${protocol.toUpperCase()} port ${port}${service ? ` (${service})` : ''}`;
}

export type PortBindReason = 'permission' | 'in-use' | 'address-not-available' | 'other';

/** Binding a port failed; `message` says which port, why, and what to do. */
export class PortBindError extends Error {
  override readonly name = 'PortBindError';
  constructor(
    message: string,
    readonly port: number,
    /** errno name from the OS: EACCES, EPERM, EADDRINUSE, EADDRNOTAVAIL... */
    readonly code: string,
    readonly protocol: PortProtocol,
    readonly reason: PortBindReason,
    readonly owners: PortOwner[] = [],
  ) {
    super(message);
  }
}

/** Scoping a socket to a NIC failed (no such NIC, or no right to do it). */
export class DeviceBindError extends Error {
  override readonly name = 'DeviceBindError';
  constructor(
    message: string,
    readonly interfaceName: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export interface BindFailure {
  protocol: PortProtocol;
  port: number;
  address?: string;
  interfaceName?: string;
  /** errno name (EACCES...) */
  code: string;
  platform?: NodeJS.Platform;
  /** Linux sysctl value, for the message (read from /proc when absent). */
  unprivilegedPortStart?: number;
  /** Replaceable for tests. */
  findOwners?: (protocol: PortProtocol, port: number) => PortOwner[];
}

/** Turns an errno from bind() into a PortBindError with a message for humans. */
export function explainBindFailure(failure: BindFailure): PortBindError {
  const { protocol, port, code } = failure;
  const platform = failure.platform ?? process.platform;
  const label = portLabel(protocol, port);
  const where = failure.interfaceName ? ` on ${failure.interfaceName}` : failure.address && failure.address !== '0.0.0.0' ? ` on ${failure.address}` : '';
  switch (code) {
    case 'EACCES':
    case 'EPERM': {
      const why =
        platform === 'linux'
          ? `ports below ${failure.unprivilegedPortStart ?? unprivilegedPortStart()} (net.ipv4.ip_unprivileged_port_start) need root or the CAP_NET_BIND_SERVICE capability`
          : platform === 'win32'
            ? 'Windows refused access to it'
            : 'ports below 1024 need administrator rights here';
      return new PortBindError(`Cannot open ${label}${where}: ${why}. Fix: ${privilegeFix(platform)}.`, port, code, protocol, 'permission');
    }
    case 'EADDRINUSE': {
      const owners = platform === 'linux' ? (failure.findOwners ?? findPortOwners)(protocol, port) : [];
      const who = describePortOwners(owners);
      const holder = who ? `by ${who}` : owners.length ? 'by a process of another user (run as root to see which)' : 'by another program';
      const unit = owners.map((o) => SYSTEMD_UNITS[o.command ?? '']).find(Boolean);
      const stopHint = unit && platform === 'linux' ? ` (\`sudo systemctl stop ${unit}\`)` : '';
      const alternative = port === 67 || port === 4011 ? 'or configure it not to listen on the bench NIC, then start Bootbench again' : 'or pick another port';
      return new PortBindError(`${label}${where} is already in use ${holder}: stop it${stopHint}, ${alternative}.`, port, code, protocol, 'in-use', owners);
    }
    case 'EADDRNOTAVAIL':
      return new PortBindError(
        `Cannot open ${label}: address ${failure.address ?? '?'} is not configured on this machine` +
          `${failure.interfaceName ? ` (or not on ${failure.interfaceName})` : ''}. Check the NIC's address, or choose another interface.`,
        port,
        code,
        protocol,
        'address-not-available',
      );
    default:
      return new PortBindError(`Cannot open ${label}${where}: ${code}.`, port, code, protocol, 'other');
  }
}

/** Explains a failed SO_BINDTODEVICE / IP_BOUND_IF. */
export function explainDeviceBindFailure(interfaceName: string, code: string, platform: NodeJS.Platform = process.platform): DeviceBindError {
  if (code === 'ENODEV' || code === 'ENXIO') {
    return new DeviceBindError(
      `There is no network interface called "${interfaceName}" (it may have been unplugged or renamed). Choose another with --interface.`,
      interfaceName,
      code,
    );
  }
  if (code === 'EPERM' || code === 'EACCES') {
    const why =
      platform === 'linux'
        ? 'tying a socket to one network interface (SO_BINDTODEVICE) needs root or the CAP_NET_RAW capability on this kernel'
        : 'tying a socket to one network interface needs administrator rights';
    return new DeviceBindError(`Cannot limit the DHCP/TFTP sockets to ${interfaceName}: ${why}. Fix: ${privilegeFix(platform)}.`, interfaceName, code);
  }
  return new DeviceBindError(`Cannot limit sockets to interface ${interfaceName}: ${code}.`, interfaceName, code);
}

/** For services that open sockets themselves (HTTP on TCP): wraps a Node bind error. */
export function explainNodeBindError(error: unknown, protocol: PortProtocol, port: number, address?: string): Error {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string') return error instanceof Error ? error : new Error(String(error));
  return explainBindFailure({ protocol, port, address, code });
}
