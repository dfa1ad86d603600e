// `bootbench doctor`: what would stop `serve` from working, each finding with a plain fix.
// It also looks for other DHCP/PXE servers on the NIC and reads the firewall state.
import {
  checkPrivileges,
  createScopedUdpSocketFactory,
  findPortOwner,
  listInterfaces,
  resolveServeInterface,
  type NetInterface,
  checkFirewall,
  type UdpSocketFactory,
  type FirewallCheckOptions,
  listenForQueriers,
  DEFAULT_QUERIER_TIMINGS,
} from '../net/index.js';
import { readFileSync } from 'node:fs';
import { listenForOffers, runTestBoot, type HeardOffer } from './test-boot.js';
import { checkDataFolderSpace, readIgmpListening, type IgmpListenRecord } from '../store/index.js';
import { processAlive } from './imaging.js';
import { chainloadBootPrograms } from '../library/index.js';

export interface Finding {
  /** 'unknown': doctor could not tell (a tool missing, output it does not know); not an error. */
  level: 'ok' | 'warn' | 'error' | 'unknown';
  message: string;
  fix?: string;
}

const PORTS: { proto: 'udp' | 'tcp'; port: number; service: string }[] = [
  { proto: 'udp', port: 67, service: 'DHCP / Proxy DHCP' },
  { proto: 'udp', port: 69, service: 'TFTP' },
  { proto: 'udp', port: 4011, service: 'PXE boot server' },
  { proto: 'tcp', port: 8080, service: 'HTTP' },
];

export interface DoctorOptions {
  interfaceName?: string;
  /** Listen for other DHCP/PXE servers on the NIC (default true). */
  probeServers?: boolean;
  probeMs?: number;
  socketFactory?: UdpSocketFactory;
  /** Firewall check (default on); tests inject the platform and the command runner. */
  firewall?: false | Omit<FirewallCheckOptions, 'interfaceName'>;
  /** NIC lookup; tests inject one. */
  resolveInterface?: (name: string | undefined) => NetInterface;
  /** The database folder serve would use: a nearly full disk there means no boot history. */
  dataDir?: string;
  /** Free-space lookup for `dataDir`; tests inject one. */
  dataFolderSpace?: typeof checkDataFolderSpace;
  /** The bundled boot programs' folder (default: resources/boot of this installation); tests inject one. */
  resourcesDir?: string;
  /** How long to listen for IGMP queriers (default 5 s, beside the DHCP listen); 0 skips it. */
  igmpListenMs?: number;
  /** The IGMP listen and /proc/net/igmp; tests inject them. */
  listenForQueriers?: typeof listenForQueriers;
  kernelIgmp?: () => string | undefined;
  /** What a running host's listener recorded for the NIC (default: read from `dataDir`'s store) and whether its process lives; tests inject them. */
  hostIgmp?: (nic: string) => IgmpListenRecord | undefined;
  processAlive?: (pid: number) => boolean;
  now?: () => number;
}

export async function runDoctor(options: DoctorOptions): Promise<Finding[]> {
  const findings: Finding[] = [];

  const privileges = checkPrivileges();
  if (privileges.ok) findings.push({ level: 'ok', message: 'privileges: can bind ports 67, 69 and 4011 and scope sockets to a NIC' });
  else for (const problem of privileges.problems) findings.push({ level: 'error', message: problem.message, fix: problem.fix });

  for (const { proto, port, service } of PORTS) {
    const owner = findPortOwner(proto, port);
    if (owner) {
      findings.push({
        level: 'error',
        message: `${proto.toUpperCase()} port ${port} (${service}) is in use by ${owner.command ?? 'another process'}${owner.pid ? ` (pid ${owner.pid})` : ''}`,
        fix: `stop that service (e.g. \`systemctl stop ${owner.command ?? 'it'}\`) or${port === 8080 ? ' choose another --http-port' : ' run Bootbench on another machine'}`,
      });
    } else {
      findings.push({ level: 'ok', message: `${proto.toUpperCase()} port ${port} (${service}) is free` });
    }
  }

  let servedNic: string | undefined = options.interfaceName;
  try {
    const nic = (options.resolveInterface ?? resolveServeInterface)(options.interfaceName);
    servedNic = nic.name;
    findings.push({ level: 'ok', message: `interface: ${nic.name} (${nic.ipv4.map((a) => a.address).join(', ')}) would serve` });
    if (!nic.up) findings.push({ level: 'error', message: `${nic.name} has no link`, fix: 'plug in the bench switch cable, or choose another --interface' });
    if (nic.kind === 'wifi')
      findings.push({
        level: 'warn',
        message: `${nic.name} is Wi-Fi: PXE clients are wired, and many access points drop DHCP broadcasts between clients`,
        fix: 'use a wired NIC connected to the bench switch',
      });
    if (nic.kind === 'virtual')
      findings.push({
        level: 'warn',
        message: `${nic.name} is a virtual NIC (bridge, VPN, container or VM network)`,
        fix: 'use it only if the bench PCs are really on it (e.g. a lab bridge)',
      });
    const address = nic.ipv4[0]?.address;
    const listenMs = options.igmpListenMs ?? 5000;
    // Both listens at once: doctor takes no longer for the second.
    const [servers, querier] = await Promise.all([
      options.probeServers !== false && nic.up
        ? otherServerFindings(
            nic.name,
            nic.ipv4.map((a) => a.address),
            options,
          )
        : [],
      nic.up && address && listenMs > 0 ? querierFinding(nic.name, address, listenMs, options) : undefined,
    ]);
    findings.push(...servers);
    if (querier) findings.push(querier);
  } catch (err) {
    const names = listInterfaces()
      .filter((n) => n.kind !== 'loopback')
      .map((n) => n.name);
    findings.push({
      level: 'error',
      message: (err as Error).message,
      fix: names.length ? `pass --interface with one of: ${names.join(', ')}` : 'connect a network interface',
    });
  }
  if (options.dataDir !== undefined) findings.push(dataFolderFinding(options.dataDir, options.dataFolderSpace ?? checkDataFolderSpace));
  findings.push(...bootProgramFindings(options));
  const httpPort = PORTS.find((p) => p.proto === 'tcp')?.port;
  if (options.firewall !== false) findings.push(...(await checkFirewall({ httpPort, ...options.firewall, interfaceName: servedNic })));
  return findings;
}

/**
 * Whether an IGMP querier is heard on the NIC: a switch with IGMP snooping needs one to keep
 * forwarding a multicast stream for more than a few minutes. Queriers ask about every 125 s,
 * so a few seconds of listening can miss one; the kernel's own record (/proc/net/igmp: the
 * version of the last querier heard, V1 or V2 within the last few minutes) covers part of that.
 */
async function querierFinding(nic: string, address: string, ms: number, options: DoctorOptions): Promise<Finding> {
  // A running host listens the whole time it serves: its word is worth more than a few seconds here.
  const host = (options.hostIgmp ?? ((name: string) => (options.dataDir !== undefined ? readIgmpListening(options.dataDir, name) : undefined)))(nic);
  if (host && (options.processAlive ?? processAlive)(host.pid)) return hostQuerierFinding(nic, host, (options.now ?? Date.now)());
  const heard = await (options.listenForQueriers ?? listenForQueriers)(nic, address, ms);
  const seconds = Math.round(ms / 1000);
  if (heard.heard.length) {
    return {
      level: 'ok',
      message: `IGMP querier ${heard.heard.join(', ')} heard on ${nic} in doctor's own ${seconds} s listen (no running Bootbench host listens there): snooping switches keep forwarding an image stream; Bootbench will send no queries`,
    };
  }
  const kernel = kernelQuerierVersion(nic, options.kernelIgmp);
  if (kernel) {
    return {
      level: 'ok',
      message: `this computer's kernel heard an IGMP${kernel} querier on ${nic} in the last few minutes: snooping switches keep forwarding an image stream; Bootbench sends queries only while none is heard`,
    };
  }
  if (heard.error) {
    return {
      level: 'unknown',
      message: `could not listen for IGMP queriers on ${nic}: ${heard.error}; a switch with IGMP snooping and no querier may cut an image stream after a few minutes`,
      fix: 'run doctor and serve as root (or with CAP_NET_RAW) on Linux, so Bootbench can hear and send IGMP queries',
    };
  }
  return {
    level: 'ok',
    message: `no IGMP querier heard on ${nic} in doctor's own ${seconds} s listen (no running Bootbench host listens there): Bootbench will send queries while it streams, so snooping switches keep forwarding (a querier that asks every two minutes may still be there)`,
  };
}

const ago = (ms: number) =>
  ms < 120_000 ? `${Math.round(ms / 1000)} s` : ms < 7_200_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 3_600_000)} h`;
const clock = (ms: number) => new Date(ms).toLocaleTimeString();

/**
 * What the running host heard on the NIC. A querier counts as present for the other-querier
 * interval after its last query (RFC 2236 section 8.5), as in the host's own election.
 */
function hostQuerierFinding(nic: string, host: IgmpListenRecord, now: number): Finding {
  const by = `the running Bootbench host (process ${host.pid}), listening on ${nic} for ${ago(now - host.since)} (since ${clock(host.since)})`;
  if (host.querier !== undefined && host.heardAt !== undefined) {
    const when = `${ago(now - host.heardAt)} ago (${clock(host.heardAt)})`;
    if (now - host.heardAt < DEFAULT_QUERIER_TIMINGS.otherQuerierPresentMs)
      return {
        level: 'ok',
        message: `IGMP querier ${host.querier} heard on ${nic} ${when} by ${by}: snooping switches keep forwarding an image stream; Bootbench sends no queries while it is heard`,
      };
    return {
      level: 'ok',
      message: `IGMP querier ${host.querier} last heard on ${nic} ${when} by ${by}: it seems gone, so Bootbench sends queries while it streams and snooping switches keep forwarding`,
    };
  }
  const young = now - host.since < DEFAULT_QUERIER_TIMINGS.otherQuerierPresentMs ? ' (a querier that asks every two minutes may not have asked yet)' : '';
  return {
    level: 'ok',
    message: `no IGMP querier heard on ${nic} by ${by}${young}: Bootbench sends queries while it streams, so snooping switches keep forwarding`,
  };
}

/** 'v1' or 'v2' when /proc/net/igmp says the kernel heard such a querier on the NIC lately (v3 is its default, so says nothing). */
function kernelQuerierVersion(nic: string, read: (() => string | undefined) | undefined): string | undefined {
  let text: string | undefined;
  try {
    text = read ? read() : readFileSync('/proc/net/igmp', 'latin1');
  } catch {
    return undefined;
  }
  // "3026	eth0      :     1      V2": index, device, group count, querier version.
  for (const line of (text ?? '').split('\n')) {
    const m = /^\d+\s+(\S+)\s*:\s*\d+\s+V([123])/.exec(line);
    if (m && m[1] === nic && m[2] !== '3') return `v${m[2]}`;
  }
  return undefined;
}

/** The iPXE builds PCs are handed when no boot file is set: without one, a whole firmware family cannot boot. */
function bootProgramFindings(options: DoctorOptions): Finding[] {
  return chainloadBootPrograms({ dataDir: options.dataDir, resourcesDir: options.resourcesDir }).map((p): Finding => {
    if (p.path) return { level: 'ok', message: `boot program for ${p.firmware} PCs: ${p.path}` };
    return { level: 'error', message: p.missing!, fix: p.fix };
  });
}

function dataFolderFinding(dataDir: string, space: typeof checkDataFolderSpace): Finding {
  const found = space(dataDir);
  if (found.problem) return { level: 'warn', message: found.problem, fix: found.fix };
  // A folder that does not exist yet is created by serve; its disk cannot be asked about.
  if (found.freeBytes === undefined)
    return { level: 'unknown', message: `free space under the data folder ${dataDir} could not be read (the folder may not exist yet)` };
  return { level: 'ok', message: `data folder ${dataDir}: ${Math.floor(found.freeBytes / (1024 * 1024))} MiB free for boot history` };
}

/**
 * Other DHCP and PXE servers answering a PXE client on the NIC. An office DHCP server is
 * fine beside proxy mode (that is what proxy mode is for) but rules out `--mode dhcp`;
 * another PXE server (a proxy, WDS, a second Bootbench, a DHCP server with boot options)
 * competes for every client, and the firmware takes whichever answers first.
 */
async function otherServerFindings(interfaceName: string, ownAddresses: string[], options: DoctorOptions): Promise<Finding[]> {
  const heard = await listenForOffers({
    interfaceName,
    socketFactory: options.socketFactory ?? createScopedUdpSocketFactory(),
    listenMs: options.probeMs ?? 4500,
  });
  if (heard.error) {
    return [
      {
        level: 'warn',
        message: `could not listen for other DHCP/PXE servers on ${interfaceName}: ${heard.error}`,
        fix: 'run doctor as root (or with the same rights as serve) to check for other servers',
      },
    ];
  }
  if (heard.offers.length === 0) return [{ level: 'ok', message: `no other DHCP or PXE server answered a PXE DISCOVER on ${interfaceName}` }];
  return heard.offers.map((offer) => describeOtherServer(offer, interfaceName, ownAddresses));
}

function describeOtherServer(offer: HeardOffer, interfaceName: string, ownAddresses: string[]): Finding {
  const name = offer.serverIdentifier && offer.serverIdentifier !== offer.from ? `${offer.serverIdentifier} (via ${offer.from})` : offer.from;
  const boot = offer.bootFile ? `, boot file ${offer.bootFile}` : '';
  if (ownAddresses.includes(offer.from) || (offer.serverIdentifier !== undefined && ownAddresses.includes(offer.serverIdentifier))) {
    return { level: 'ok', message: `Bootbench on this machine answers on ${interfaceName} (${offer.proxy ? 'proxy offer' : `offers ${offer.yiaddr}`}${boot})` };
  }
  const givesBootInfo = offer.proxy || offer.pxeOptions || offer.bootFile !== undefined || (offer.vendorClass ?? '').startsWith('PXEClient');
  if (offer.proxy) {
    return {
      level: 'error',
      message: `another PXE/proxy DHCP server answers on ${interfaceName}: ${name}${boot}; PXE clients boot from whichever answers first`,
      fix: 'stop the other PXE service (dnsmasq proxy, WDS, another Bootbench) on this network, or serve on a separate bench switch',
    };
  }
  if (givesBootInfo) {
    return {
      level: 'warn',
      message: `a DHCP server answers on ${interfaceName}: ${name} (offers ${offer.yiaddr})${boot}, with PXE boot information of its own`,
      fix: "remove its boot options (next-server / option 66/67) so PXE clients take Bootbench's proxy offer, or use a separate bench switch",
    };
  }
  return {
    level: 'warn',
    message: `a DHCP server answers on ${interfaceName}: ${name} (offers ${offer.yiaddr})`,
    fix: 'use the default --mode proxy beside it; --mode dhcp would hand out conflicting addresses',
  };
}

/** `bootbench doctor --test-boot`: a BIOS and a UEFI client against the running host. */
export async function runTestBootFindings(options: { interfaceName?: string; socketFactory?: UdpSocketFactory }): Promise<Finding[]> {
  let nic;
  try {
    nic = resolveServeInterface(options.interfaceName);
  } catch (err) {
    return [{ level: 'error', message: (err as Error).message, fix: 'pass --interface with the NIC bootbench serve runs on' }];
  }
  const address = nic.ipv4[0]?.address;
  if (!address) return [{ level: 'error', message: `${nic.name} has no IPv4 address`, fix: 'give it one, or choose another --interface' }];
  const steps = await runTestBoot({ interfaceName: nic.name, clientAddress: address, socketFactory: options.socketFactory ?? createScopedUdpSocketFactory() });
  return steps.map((s) => ({ level: s.ok ? 'ok' : 'error', message: `${s.client.toUpperCase()} ${s.step}: ${s.message} (${s.ms} ms)`, fix: s.fix }));
}
