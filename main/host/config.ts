// The service host's configuration: what `bootbench serve` flags and the app's Start screen set.
import { isIPv4 } from 'node:net';
import { BOOT_CLASS_NAMES, type BootClass } from '../core/index.js';
import { libraryDir } from '../library/index.js';

export const BOOT_CLASSES = BOOT_CLASS_NAMES;
export type BootClassName = BootClass;

export interface ServeConfig {
  /** NIC to serve on; may be omitted when exactly one NIC could serve. */
  interfaceName?: string;
  mode: 'proxy' | 'dhcp';
  /** Full DHCP mode: first and last address handed out. */
  pool?: { first: string; last: string };
  leaseSeconds: number;
  router?: string;
  dns?: string[];
  /** Served read-only by TFTP and HTTP; by default the library folder in the data folder. */
  root: string;
  /** Boot file per client class: a path relative to the root, or a URL (HTTP boot classes). */
  boot: Partial<Record<BootClassName, string>>;
  /**
   * A PXE boot menu (option 43) offered to BIOS firmware on port 67 when it has more than
   * one line; a line without a file means "boot from the local disk".
   */
  menu?: { label: string; file?: string }[];
  menuTimeoutSeconds?: number;
  /** What iPXE clients get over HTTP (path of an iPXE script; relative to the root or absolute). */
  ipxeScript?: string;
  /** UEFI HTTP boot: whether it is answered, and what it boots; undefined = answered, same as UEFI PXE. */
  httpBoot?: HttpBootSetting;
  httpPort: number;
  /** Database folder. */
  dataDir: string;
  /** Full DHCP: start even when another DHCP server answered the probe. */
  force: boolean;
  /**
   * Full DHCP: check (ARP on the NIC) that nobody uses an address before offering it.
   * Undefined = on; false = `--no-address-check`.
   */
  addressCheck?: boolean;
  /**
   * RFC 2090 multicast TFTP: undefined = off (the option is ignored and clients download
   * unicast). `group`: the first session's group (default 239.255.69.1, IPv4 Local Scope),
   * each further session at once takes the next address and port (from 1758).
   * `startDelayMs`: a new session's first block waits this long for the others to join.
   */
  tftpMulticast?: { group?: string; port?: number; startDelayMs?: number };
  /** The cap, in bytes per second, on a deploy's multicast stream (full DHCP mode); default 1 Gbit/s. */
  imagingMaxRate?: number;
  /**
   * Whether a deploy to several PCs is sent as one multicast stream: 'auto' (the default) streams
   * in full DHCP mode only, 'on' streams in proxy mode too, 'off' never.
   */
  imagingMulticast?: ImagingMulticastSetting;
  /** Ports; only tests change them. */
  ports: { dhcp: number; pxe: number; tftp: number; dhcpClient: number };
}

export type ImagingMulticastSetting = 'auto' | 'on' | 'off';

/** Why a deploy to several PCs goes unicast, shown on the Images screen; multicast was an explicit choice in proxy mode. */
export const PROXY_MULTICAST_REASON =
  'multicast on an office network reaches every switch port that asks for it; turn it on only if the network team agrees (Start screen, or bootbench serve --multicast on)';

/**
 * Whether deploys stream by multicast under `config`, or the reason they go unicast: an
 * office network (proxy mode) is someone else's, so there it takes an explicit 'on'.
 */
export function imagingMulticastChoice(config: Pick<ServeConfig, 'mode' | 'imagingMulticast'>): { stream: true } | { stream: false; reason: string } {
  const setting = config.imagingMulticast ?? 'auto';
  if (setting === 'off') return { stream: false, reason: 'multicast is turned off in the serving settings (Start screen, or bootbench serve --multicast)' };
  if (setting === 'auto' && config.mode === 'proxy') return { stream: false, reason: PROXY_MULTICAST_REASON };
  return { stream: true };
}

/**
 * UEFI HTTP boot (firmware asking with vendor class HTTPClient). `file` is what x64
 * HTTP-boot PCs without an entry of their own get: a path under the served folder or a
 * URL. Without it they get the http64 boot file, else the same program as UEFI PXE PCs.
 */
export interface HttpBootSetting {
  answer: boolean;
  file?: string;
}

/** The boot files the policy hands out, with the HTTP boot setting's file in the http64 place. */
export function bootFilesWithHttpBoot(
  boot: Partial<Record<BootClassName, string>>,
  httpBoot: HttpBootSetting | undefined,
): Partial<Record<BootClassName, string>> {
  return httpBoot?.file ? { ...boot, http64: httpBoot.file } : boot;
}

/** An HTTP boot file is a path inside the served folder or an http(s) URL. */
export function isAllowedHttpBootFile(file: string): boolean {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(file)) return /^https?:\/\//i.test(file);
  return !file.startsWith('/') && !file.split(/[\\/]/).includes('..');
}

export function checkHttpBootFile(file: string, setting = '--http-boot-file'): void {
  if (!isAllowedHttpBootFile(file)) {
    throw new ConfigError(setting, `${setting} "${file}" is not allowed: give a path inside the served folder (e.g. ipxe.efi) or an http:// URL`);
  }
}

export const DEFAULT_PORTS = { dhcp: 67, pxe: 4011, tftp: 69, dhcpClient: 68 } as const;

export function defaultServeConfig(dataDir: string): ServeConfig {
  return {
    mode: 'proxy',
    leaseSeconds: 3600,
    // A first start needs no folder chosen: the library's own folder always exists to serve.
    root: defaultServedFolder(dataDir),
    boot: {},
    httpPort: 8080,
    dataDir,
    force: false,
    ports: { ...DEFAULT_PORTS },
  };
}

/** The served folder when none was chosen: the library folder in the data folder. */
export function defaultServedFolder(dataDir: string): string {
  return libraryDir(dataDir);
}

/** A configuration problem, phrased for the user: which setting, what is wrong, what is allowed. */
export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

export function numberToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/** Parses `FIRST-LAST` into an ordered pool. */
export function parsePool(value: string, setting = '--pool'): { first: string; last: string } {
  const match = /^\s*([\d.]+)\s*-\s*([\d.]+)\s*$/.exec(value);
  if (!match || !isIPv4(match[1]) || !isIPv4(match[2])) {
    throw new ConfigError(setting, `${setting} "${value}" is not a range: write FIRST-LAST, e.g. 192.0.2.100-192.0.2.150`);
  }
  const [first, last] = [match[1], match[2]];
  if (ipv4ToNumber(first) > ipv4ToNumber(last)) {
    throw new ConfigError(setting, `${setting} "${value}": the first address is after the last; write the lower address first`);
  }
  return { first, last };
}

/** Checks that the pool lies inside the NIC's subnet and does not contain the NIC's own address. */
export function checkPoolAgainstInterface(pool: { first: string; last: string }, address: string, prefixLength: number, nic: string): void {
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  const net = (ipv4ToNumber(address) & mask) >>> 0;
  for (const end of [pool.first, pool.last]) {
    if ((ipv4ToNumber(end) & mask) >>> 0 !== net) {
      throw new ConfigError(
        '--pool',
        `--pool ${pool.first}-${pool.last} is outside ${nic}'s network ${numberToIpv4(net)}/${prefixLength}: choose addresses in that network`,
      );
    }
  }
  const own = ipv4ToNumber(address);
  if (own >= ipv4ToNumber(pool.first) && own <= ipv4ToNumber(pool.last)) {
    throw new ConfigError('--pool', `--pool ${pool.first}-${pool.last} contains ${nic}'s own address ${address}: leave it out of the pool`);
  }
}

export function prefixToNetmask(prefixLength: number): string {
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  return numberToIpv4(mask);
}
