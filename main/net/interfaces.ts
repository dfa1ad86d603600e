// Network interfaces as the UI and `bootbench serve --interface` see them.
//
// On Linux the truth about a NIC lives in /sys/class/net/<name>: link state, carrier,
// MTU, MAC, whether it is a radio and whether there is hardware behind it at all.
// os.networkInterfaces() only reports addresses, and only for interfaces that are up and
// running (libuv skips the rest), so a NIC with its cable unplugged would vanish from
// the list; /sys keeps it visible with `up: false`.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import os from 'node:os';

export type InterfaceKind = 'wired' | 'wifi' | 'virtual' | 'loopback';

export interface Ipv4Address {
  address: string;
  netmask: string;
  prefixLength: number;
}

export interface NetInterface {
  name: string;
  /** Lower-case aa:bb:cc:dd:ee:ff; empty when the interface has none (loopback, tun). */
  mac: string;
  ipv4: Ipv4Address[];
  ipv6: string[];
  /** Link is usable: administratively up and carrier present. */
  up: boolean;
  kind: InterfaceKind;
  mtu: number;
  /**
   * Kernel interface index (Linux; absent elsewhere). It changes when a USB NIC is
   * unplugged and plugged back, and a socket tied to the old index then stays deaf.
   */
  index?: number;
  /** Linux: the bridge or bond this NIC is a port of; its traffic is the bridge's (or bond's). */
  portOf?: string;
  /** Linux: a tun/tap device (a VM's or a VPN's end of a link). */
  tunTap?: boolean;
}

/** Where the facts come from; tests replace both with a fake /sys tree and fixed addresses. */
export interface InterfaceSources {
  platform?: NodeJS.Platform;
  /** Defaults to /sys/class/net (Linux only). */
  sysClassNet?: string;
  /** Defaults to os.networkInterfaces(). */
  addresses?: NodeJS.Dict<os.NetworkInterfaceInfo[]>;
  /**
   * Linux: addresses configured on NICs whose link is down, which os.networkInterfaces()
   * leaves out. Defaults to `ip -j addr show` (iproute2), only called when a NIC is down.
   */
  linkDownAddresses?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
  /** Only the NIC of this name (Linux: the others' /sys files are not read): a watcher's reading. */
  only?: string;
}

export function listInterfaces(sources: InterfaceSources = {}): NetInterface[] {
  const platform = sources.platform ?? process.platform;
  const addresses = sources.addresses ?? os.networkInterfaces();
  const sysClassNet = sources.sysClassNet ?? '/sys/class/net';
  if (platform === 'linux' && existsSync(sysClassNet)) {
    return listLinuxInterfaces(sysClassNet, addresses, sources.linkDownAddresses ?? addressesFromIproute2, sources.only);
  }
  const all = listFromAddresses(addresses, platform);
  return sources.only === undefined ? all : all.filter((nic) => nic.name === sources.only);
}

function listLinuxInterfaces(
  sysClassNet: string,
  addresses: NodeJS.Dict<os.NetworkInterfaceInfo[]>,
  linkDownAddresses: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>,
  only: string | undefined,
): NetInterface[] {
  const names = readdirSync(sysClassNet).filter((name) => !name.startsWith('.') && name !== 'bonding_masters' && (only === undefined || name === only));
  let downAddresses: NodeJS.Dict<os.NetworkInterfaceInfo[]> | undefined;
  return names.sort(compareInterfaceNames).map((name) => {
    const dir = join(sysClassNet, name);
    const up = linkIsUp(readSysFile(dir, 'operstate'), readSysFile(dir, 'carrier'));
    let infos = addresses[name];
    if (!infos?.length && !up) infos = (downAddresses ??= linkDownAddresses())[name];
    const { ipv4, ipv6 } = splitAddresses(infos ?? []);
    const mac = normaliseMac(readSysFile(dir, 'address') ?? '');
    return {
      name,
      mac: mac === '00:00:00:00:00:00' ? '' : mac,
      ipv4,
      ipv6,
      up,
      kind: classifyLinuxInterface(dir, name),
      mtu: Number(readSysFile(dir, 'mtu') ?? 0) || 0,
      index: Number(readSysFile(dir, 'ifindex') ?? 0) || 0,
      ...linuxPortAndTap(dir),
    };
  });
}

/** `ip -j addr show`, shaped like os.networkInterfaces(); empty if iproute2 is missing. */
function addressesFromIproute2(): NodeJS.Dict<os.NetworkInterfaceInfo[]> {
  let text: string;
  try {
    text = execFileSync('ip', ['-j', 'addr', 'show'], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return {};
  }
  return parseIproute2Addresses(text);
}

interface IprouteLink {
  ifname?: string;
  address?: string;
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

export function parseIproute2Addresses(json: string): NodeJS.Dict<os.NetworkInterfaceInfo[]> {
  let links: IprouteLink[];
  try {
    links = JSON.parse(json) as IprouteLink[];
  } catch {
    return {};
  }
  const result: NodeJS.Dict<os.NetworkInterfaceInfo[]> = {};
  for (const link of Array.isArray(links) ? links : []) {
    if (!link.ifname) continue;
    result[link.ifname] = (link.addr_info ?? []).flatMap((a): os.NetworkInterfaceInfo[] => {
      if (!a.local || a.prefixlen === undefined) return [];
      const base = { address: a.local, mac: link.address ?? '', internal: false };
      if (a.family === 'inet') {
        return [{ ...base, family: 'IPv4', netmask: netmaskOf(a.prefixlen), cidr: `${a.local}/${a.prefixlen}` }];
      }
      if (a.family === 'inet6') return [{ ...base, family: 'IPv6', netmask: '', cidr: `${a.local}/${a.prefixlen}`, scopeid: 0 }];
      return [];
    });
  }
  return result;
}

function netmaskOf(prefixLength: number): string {
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  return [24, 16, 8, 0].map((shift) => (mask >>> shift) & 0xff).join('.');
}

/**
 * operstate is RFC 2863 ifOperStatus. Loopback and some drivers (tun, older Wi-Fi
 * drivers) never report it and say "unknown"; for those the carrier flag decides.
 * Reading `carrier` fails with EINVAL while the interface is administratively down.
 */
export function linkIsUp(operstate: string | undefined, carrier: string | undefined): boolean {
  if (operstate === 'up') return true;
  if (operstate === 'unknown' || operstate === undefined) return carrier === '1';
  return false;
}

/**
 * ARPHRD_LOOPBACK (772) in `type` marks loopback; a `wireless` directory (wireless
 * extensions) or a `phy80211` link (cfg80211) marks a radio; no `device` link means no
 * bus device behind it: veth, bridge, tap, docker0, bond, vlan, wireguard...
 */
export function classifyLinuxInterface(dir: string, name: string): InterfaceKind {
  if (readSysFile(dir, 'type') === '772' || name === 'lo') return 'loopback';
  if (existsSync(join(dir, 'wireless')) || existsSync(join(dir, 'phy80211'))) return 'wifi';
  if (!existsSync(join(dir, 'device'))) return 'virtual';
  // Real /sys: virtual devices live under /sys/devices/virtual even if a driver links `device`.
  try {
    if (realpathSync(dir).includes('/devices/virtual/')) return 'virtual';
  } catch {
    /* fake trees in tests are plain directories */
  }
  return 'wired';
}

/**
 * `brport` (bridge) or `bonding_slave` (bond) marks a port; `master` links to the bridge or
 * bond. `tun_flags` exists only on tun/tap devices.
 */
function linuxPortAndTap(dir: string): Pick<NetInterface, 'portOf' | 'tunTap'> {
  const facts: Pick<NetInterface, 'portOf' | 'tunTap'> = {};
  if (existsSync(join(dir, 'brport')) || existsSync(join(dir, 'bonding_slave'))) {
    let master = '';
    try {
      master = basename(readlinkSync(join(dir, 'master')));
    } catch {
      /* a fake tree may have no link: still a port */
    }
    facts.portOf = master || '(unknown)';
  }
  if (existsSync(join(dir, 'tun_flags'))) facts.tunTap = true;
  return facts;
}

/**
 * Whether to offer a NIC to serve on. A bridge or bond port receives nothing of its own (the
 * bridge does), and a tap without an address is one end of a VM's cable: serving there reaches
 * nobody. A bridge with the address is offered; so is a tap someone gave an address.
 */
export function offeredForServing(nic: { portOf?: string; tunTap?: boolean; ipv4: readonly unknown[] }): boolean {
  if (nic.portOf) return false;
  if (nic.tunTap && nic.ipv4.length === 0) return false;
  return true;
}

function readSysFile(dir: string, file: string): string | undefined {
  try {
    return readFileSync(join(dir, file), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** macOS and Windows: os.networkInterfaces() is all there is; kinds are guessed from names. */
function listFromAddresses(addresses: NodeJS.Dict<os.NetworkInterfaceInfo[]>, platform: NodeJS.Platform): NetInterface[] {
  return Object.keys(addresses)
    .sort(compareInterfaceNames)
    .map((name) => {
      const infos = addresses[name] ?? [];
      const { ipv4, ipv6 } = splitAddresses(infos);
      const mac = normaliseMac(infos.find((i) => i.mac && i.mac !== '00:00:00:00:00:00')?.mac ?? '');
      const internal = infos.some((i) => i.internal);
      return {
        name,
        mac,
        ipv4,
        ipv6,
        // libuv lists only interfaces that are up and running.
        up: true,
        kind: internal ? 'loopback' : guessKindFromName(name, platform),
        mtu: 0, // not reported by Node outside Linux
      };
    });
}

/** Best effort outside Linux: names are the only hint Node gives. */
export function guessKindFromName(name: string, platform: NodeJS.Platform): InterfaceKind {
  const n = name.toLowerCase();
  if (/^(lo\d*|loopback)/.test(n)) return 'loopback';
  if (platform === 'win32') {
    if (/wi-?fi|wlan|wireless/.test(n)) return 'wifi';
    if (/vethernet|virtual|vmware|virtualbox|hyper-v|vpn|tap|tun|loopback|bluetooth|wsl/.test(n)) return 'virtual';
    return 'wired';
  }
  if (/^(wl|wlan|wifi)/.test(n)) return 'wifi';
  // macOS: bridges, tunnels, AirDrop (awdl), low-latency WLAN (llw), VM and VPN adapters.
  if (/^(bridge|utun|tun|tap|awdl|llw|gif|stf|anpi|ap\d|vmnet|vboxnet|docker|veth|br-|virbr|zt|tailscale|wg)/.test(n)) return 'virtual';
  return 'wired';
}

function splitAddresses(infos: os.NetworkInterfaceInfo[]): { ipv4: Ipv4Address[]; ipv6: string[] } {
  const ipv4: Ipv4Address[] = [];
  const ipv6: string[] = [];
  for (const info of infos) {
    // Node 18.0-18.3 reported family as a number; accept both.
    const family = String(info.family);
    if (family === 'IPv4' || family === '4') {
      ipv4.push({ address: info.address, netmask: info.netmask, prefixLength: prefixLengthOf(info.netmask) });
    } else if (family === 'IPv6' || family === '6') {
      ipv6.push(info.address);
    }
  }
  return { ipv4, ipv6 };
}

export function prefixLengthOf(netmask: string): number {
  return netmask.split('.').reduce((bits, octet) => bits + countBits(Number(octet) & 0xff), 0);
}

function countBits(n: number): number {
  let bits = 0;
  for (let v = n; v; v &= v - 1) bits++;
  return bits;
}

/** Directed broadcast address of an IPv4 network (e.g. 192.0.2.255 for 192.0.2.1/24). */
export function broadcastAddressOf(address: Ipv4Address): string {
  const a = address.address.split('.').map(Number);
  const m = address.netmask.split('.').map(Number);
  return a.map((octet, i) => (octet | (~m[i]! & 0xff)) & 0xff).join('.');
}

function normaliseMac(mac: string): string {
  return mac.toLowerCase();
}

// One collator for every sort: localeCompare with options builds a new one per call, which
// was a fifth of the CPU profile of listing the NICs (the watcher lists them every 2 s).
const interfaceNameCollator = new Intl.Collator('en', { numeric: true });

/** eth0 before eth1 before eth10: natural order, so the UI list is stable and readable. */
function compareInterfaceNames(a: string, b: string): number {
  return interfaceNameCollator.compare(a, b);
}

/**
 * The NIC a bench is most likely plugged into: wired, link up, with an IPv4 address.
 * Wi-Fi only when nothing wired qualifies (PXE over Wi-Fi does not exist; a laptop on
 * Wi-Fi is a hint the bench cable is not plugged in). Never loopback or virtual.
 */
export function chooseLikelyBenchInterface(list: NetInterface[]): NetInterface | undefined {
  const usable = list.filter((nic) => nic.up && nic.ipv4.length > 0 && (nic.kind === 'wired' || nic.kind === 'wifi'));
  return usable.find((nic) => nic.kind === 'wired') ?? usable[0];
}

/** Thrown by resolveServeInterface; the message is meant for the user as is. */
export class InterfaceChoiceError extends Error {
  override readonly name = 'InterfaceChoiceError';
  constructor(
    message: string,
    readonly candidates: string[],
  ) {
    super(message);
  }
}

/**
 * The NIC `bootbench serve` runs on. With a name: that NIC, which must exist and carry
 * an IPv4 address. Without: the only NIC that could serve, else an error asking for
 * --interface, because answering DHCP on the wrong network (the office one) is the
 * worst thing this program can do. Physical NICs are considered first; only when there
 * is none (a lab namespace, a VM with veth/bridges only) are virtual ones.
 */
export function resolveServeInterface(name: string | undefined, list: NetInterface[] = listInterfaces()): NetInterface {
  const describe = (nics: NetInterface[]) => nics.map(describeInterface).join(', ');
  const withIpv4 = list.filter((nic) => nic.kind !== 'loopback' && nic.ipv4.length > 0);
  if (name !== undefined) {
    const nic = list.find((n) => n.name === name);
    if (!nic) {
      throw new InterfaceChoiceError(
        `There is no network interface called "${name}". ` +
          (list.length ? `Interfaces on this machine: ${describe(list)}.` : 'This machine reports no network interfaces.'),
        list.map((n) => n.name),
      );
    }
    if (nic.portOf) {
      throw new InterfaceChoiceError(
        `Interface ${name} is a port of ${nic.portOf}: what arrives on it is ${nic.portOf}'s traffic, so serve on ${nic.portOf} (the NIC with the address) instead.`,
        withIpv4.map((n) => n.name),
      );
    }
    if (nic.ipv4.length === 0) {
      throw new InterfaceChoiceError(
        `Interface ${name}${nic.up ? '' : ' (link down)'} has no IPv4 address, and PXE clients need one to reach our TFTP/HTTP server. ` +
          `Give it a static address (e.g. \`sudo ip addr add 192.168.50.1/24 dev ${name}\` on Linux) and try again` +
          (withIpv4.length ? `, or choose one of: ${describe(withIpv4)}.` : '.'),
        withIpv4.map((n) => n.name),
      );
    }
    return nic;
  }
  const physical = withIpv4.filter((nic) => nic.up && (nic.kind === 'wired' || nic.kind === 'wifi'));
  const candidates = physical.length ? physical : withIpv4;
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length === 0) {
    throw new InterfaceChoiceError(
      'No network interface has an IPv4 address, so there is nothing to serve on. ' +
        'Plug in the bench cable, give that NIC an address, then pass --interface NAME' +
        (list.length ? ` (interfaces: ${describe(list)}).` : '.'),
      [],
    );
  }
  throw new InterfaceChoiceError(
    `More than one NIC could serve: pass --interface NAME (one of ${describe(candidates)}). ` +
      'Bootbench never guesses, so it does not answer DHCP on the wrong network.',
    candidates.map((n) => n.name),
  );
}

function describeInterface(nic: NetInterface): string {
  const address = nic.ipv4[0] ? ` ${nic.ipv4[0].address}/${nic.ipv4[0].prefixLength}` : '';
  return `${nic.name} (${nic.kind}${address}${nic.up ? '' : ', link down'})`;
}
