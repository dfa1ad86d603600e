// The DHCP side as one service for the host: Proxy DHCP or full DHCP on UDP 67 and the
// PXE boot server on UDP 4011. The loops are thin: receive, decode, describe the client
// (once), look up its assignment (the one hook), decide (pure functions in proxy.ts,
// full-dhcp.ts, boot-server.ts over the boot policy), send, publish. A malformed packet
// is reported and the loop goes on; only a socket error changes the service.
import type { Socket, RemoteInfo } from 'node:dgram';
import { type Publish, type BootEventType, type Clock, type Logger, systemClock } from '../core/index.js';
import { type UdpSocketFactory, openArpProber, openIcmpProber, DEFAULT_ADDRESS_PROBE_MS, openWindowsIcmpProber, listInterfaces } from '../net/index.js';
import { DhcpDecodeError } from './errors.js';
import { DhcpMessageType, messageTypeName } from './options.js';
import { BOOTREQUEST, clientMac, decodeDhcpPacket, encodeDhcpPacket, type DhcpPacket } from './packet.js';
import { decideProxyReply, proxyChainWarning } from './proxy.js';
import { clientDetails, type DhcpBootConfig, type PlannedReply, type ReplyPlan } from './reply.js';
import { decideBootServerReply } from './boot-server.js';
import { describeBootClient, wantsBootFile } from './boot-client.js';
import type { BootClient, MachineBootAssignment } from '../pxe/index.js';
import { LeasePool, type PoolConfig } from './lease-pool.js';
import { clientKey, decideFullDhcpReply } from './full-dhcp.js';
import { probeForDhcpServers } from './probe.js';
import { readOtherServerAck, RecentBootOffers } from './other-server-ack.js';
import { addressCheckTarget, checkRequestedAddress, reserveCheckedAddress, type AddressConflict, type AddressInUseProber } from './address-check.js';

export interface DhcpServiceOptions {
  mode: 'proxy' | 'dhcp';
  /** Our IPv4 on the chosen NIC, e.g. 192.0.2.1. */
  serverAddress: string;
  /** Passed to socketFactory for 67 and 4011 (and 68 for the probe). */
  interfaceName?: string;
  socketFactory: UdpSocketFactory;
  /** Defaults 67, 4011, 68; tests use others (0 = any, for server and pxe). */
  ports?: { server?: number; pxe?: number; client?: number };
  /** The boot policy's settings, and `lookupMachine`: the one hook that finds a client's assignment. */
  policy: DhcpBootConfig;
  /** Full DHCP mode. */
  pool?: PoolConfig;
  /** Full DHCP mode: leases kept across restarts. */
  leaseFile?: string;
  /** Full DHCP mode: start even if another DHCP server answered the probe. */
  force?: boolean;
  /**
   * Full DHCP mode: how long to listen for another DHCP server before starting. Default
   * 4500: dnsmasq (and ISC dhcpd) ping an address before offering it, which delays their
   * first OFFER by about 3 s (seen in test/integration/dhcp-netns.test.ts), so 3 s misses them.
   */
  probeMs?: number;
  /**
   * Full DHCP mode: check that nobody answers for an address before offering it to a
   * client for the first time (default true; `--no-address-check` turns it off).
   */
  addressCheck?: boolean;
  /** How long the check waits for an answer (default 300 ms). */
  addressCheckMs?: number;
  /** The check; default: ARP probes on `interfaceName` (Linux, CAP_NET_RAW), else ICMP echo. Tests inject a fake. */
  addressProber?: AddressInUseProber;
  publish: Publish;
  logger: Logger;
  clock?: Clock;
}

type PortKind = 'server' | 'pxe';

/** A client message as the service carries it: the packet and what it says about the client, read once. */
interface Incoming {
  request: DhcpPacket;
  client: BootClient;
  msgType: string;
}

export const DEFAULT_PROBE_MS = 4500;

const RECEIVE_BUFFER_BYTES = 1024 * 1024;

/** Same malformed sender reported at most this often. */
const ERROR_REPORT_INTERVAL_MS = 60_000;

export class DhcpService {
  private serverSocket?: Socket;
  private pxeSocket?: Socket;
  /** Proxy mode: the client port, shared, to see the other DHCP server's ACKs. */
  private clientSocket?: Socket;
  private readonly recentOffers = new RecentBootOffers();
  private leases?: LeasePool;
  private readonly clock: Clock;
  private readonly lastErrorReport = new Map<string, number>();
  private boundPorts = { server: 0, pxe: 0 };
  private prober?: AddressInUseProber;
  /** Clients whose DISCOVER waits for an address check: the newest request is answered. */
  private readonly pendingChecks = new Map<string, { incoming: Incoming }>();

  constructor(private readonly options: DhcpServiceOptions) {
    this.clock = options.clock ?? systemClock;
  }

  /** Bound ports (useful when 0 was asked for). */
  get ports(): { server: number; pxe: number; client: number } {
    return { ...this.boundPorts, client: this.clientPort };
  }

  /** Current leases (full DHCP mode), for the UI. */
  leaseSnapshot() {
    return this.leases?.snapshot() ?? [];
  }

  private get clientPort(): number {
    return this.options.ports?.client ?? 68;
  }

  async start(): Promise<void> {
    const o = this.options;
    if (o.mode === 'dhcp') {
      if (!o.pool) throw new Error('full DHCP mode needs an address pool (--pool FIRST-LAST)');
      this.leases = new LeasePool(o.pool, o.serverAddress, this.clock, o.leaseFile, o.logger);
      await this.leases.load();
      await this.probe();
      if (o.addressCheck !== false) this.prober = this.openAddressProber();
    }
    try {
      this.serverSocket = await o.socketFactory({ port: o.ports?.server ?? 67, address: '0.0.0.0', interfaceName: o.interfaceName, broadcast: true });
      this.attach(this.serverSocket, 'server');
      this.pxeSocket = await o.socketFactory({ port: o.ports?.pxe ?? 4011, address: '0.0.0.0', interfaceName: o.interfaceName, broadcast: true });
      this.attach(this.pxeSocket, 'pxe');
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.boundPorts = { server: this.serverSocket.address().port, pxe: this.pxeSocket.address().port };
    if (o.mode === 'proxy') await this.watchOtherServerAcks();
    o.logger.info(
      `${o.mode === 'proxy' ? 'Proxy DHCP' : 'DHCP'} listening on ${o.interfaceName ?? 'all interfaces'} port ${this.boundPorts.server}, boot server on ${this.boundPorts.pxe}`,
    );
  }

  async stop(): Promise<void> {
    const sockets = [this.serverSocket, this.pxeSocket, this.clientSocket].filter((s): s is Socket => !!s);
    this.serverSocket = this.pxeSocket = this.clientSocket = undefined;
    this.prober?.close();
    this.prober = undefined;
    this.pendingChecks.clear();
    await Promise.all(
      sockets.map(
        (s) =>
          new Promise<void>((resolve) => {
            try {
              s.close(() => resolve());
            } catch {
              resolve(); // already closed
            }
          }),
      ),
    );
    await this.leases?.flush();
  }

  /**
   * Proxy mode: GRUB 2.06 takes its TFTP server from the other DHCP server's ACK, not from
   * our offer, so that ACK (broadcast to the client port) is recorded for the PCs we offered
   * to. The port is shared with the OS's DHCP client (SO_REUSEADDR); when it cannot be had,
   * proxy mode works as before and the Timeline lacks that server's address.
   */
  private async watchOtherServerAcks(): Promise<void> {
    const o = this.options;
    try {
      // Bound to the broadcast address, so only broadcast answers reach it: a unicast
      // renewal for this computer's own DHCP client on the NIC must never land here.
      this.clientSocket = await o.socketFactory({
        port: this.clientPort,
        address: '255.255.255.255',
        interfaceName: o.interfaceName,
        broadcast: true,
        reuseAddress: true,
      });
    } catch (err) {
      o.logger.warn(
        `cannot listen on the DHCP client port ${this.clientPort} (${(err as Error).message}): the other DHCP server's next-server will not be shown for PCs booting GRUB`,
      );
      return;
    }
    this.clientSocket.on('message', (msg, rinfo) => {
      // Our own broadcast offers come back here too: skipped before decoding.
      if (rinfo.address === o.serverAddress) return;
      let packet: DhcpPacket;
      try {
        packet = decodeDhcpPacket(msg);
      } catch {
        return; // not ours to report: only other servers' ACKs are read here
      }
      const ack = readOtherServerAck(packet, rinfo.address, o.serverAddress);
      if (ack && this.recentOffers.shouldReport(ack, this.clock.now())) o.publish('dhcp.other-ack', { ...ack });
    });
    this.clientSocket.on('error', (err) => o.logger.warn(`DHCP client port ${this.clientPort}: ${err.message}`));
  }

  /** Full DHCP only: refuse to start beside another DHCP server unless forced. */
  private async probe(): Promise<void> {
    const o = this.options;
    const result = await probeForDhcpServers({
      socketFactory: o.socketFactory,
      interfaceName: o.interfaceName,
      serverPort: o.ports?.server ?? 67,
      clientPort: this.clientPort,
      ownAddress: o.serverAddress,
      listenMs: o.probeMs ?? DEFAULT_PROBE_MS,
      clock: this.clock,
    });
    if (result.error) {
      o.logger.warn(`could not probe for another DHCP server: ${result.error}`);
      o.publish('host.warning', { message: `could not probe for another DHCP server: ${result.error}` });
    }
    if (result.servers.length === 0) return;
    const names = result.servers
      .map((s) => (s.serverIdentifier && s.serverIdentifier !== s.address ? `${s.serverIdentifier} (via ${s.address})` : s.address))
      .join(', ');
    const message = `another DHCP server answers on ${o.interfaceName ?? 'this network'}: ${names}. Two DHCP servers hand out conflicting addresses; use --mode proxy beside it, or --force if you are sure`;
    if (!o.force) throw new Error(message);
    o.logger.warn(`${message} (--force given: starting anyway)`);
    o.publish('host.warning', { message: `${message} (--force given: starting anyway)` });
  }

  /**
   * The host's address check on the chosen NIC: ARP where it can be had (Linux with
   * CAP_NET_RAW), else ICMP echo (macOS and Linux ping sockets; Windows' IcmpSendEcho2Ex). Without either (no NIC given,
   * no rights) addresses are offered unchecked, with a warning that says why, as the
   * DHCP-server probe above does when it cannot listen.
   */
  private openAddressProber(): AddressInUseProber | undefined {
    const o = this.options;
    if (o.addressProber) return o.addressProber;
    const reasons: string[] = [];
    if (!o.interfaceName) {
      reasons.push('it needs the NIC to probe on (--interface)');
    } else {
      const options = { interfaceName: o.interfaceName, timeoutMs: o.addressCheckMs ?? DEFAULT_ADDRESS_PROBE_MS, clock: this.clock };
      const openers: [string, () => AddressInUseProber & { onError?: (reason: string) => void }][] =
        process.platform === 'win32'
          ? [['ICMP echo', () => openWindowsIcmpProber({ sourceAddress: o.serverAddress, timeoutMs: options.timeoutMs })]]
          : [
              ['ARP', () => openArpProber({ ...options, mac: listInterfaces().find((n) => n.name === o.interfaceName)?.mac ?? '' })],
              ['ICMP echo', () => openIcmpProber(options)],
            ];
      for (const [name, open] of openers) {
        try {
          const prober = open();
          prober.onError = (error) => this.warnOnce('address-check', `address check on ${o.interfaceName}: ${error}`);
          o.logger.info(`addresses are checked by ${name} on ${o.interfaceName} before they are offered${reasons.length ? ` (${reasons.join('; ')})` : ''}`);
          return prober;
        } catch (err) {
          reasons.push(`${name}: ${(err as Error).message}`);
        }
      }
    }
    const message = `addresses are offered without checking that nobody uses them: ${reasons.join('; ')}. Run serve as root (or with CAP_NET_RAW) to check, or pass --no-address-check to say it is not wanted`;
    o.logger.warn(message);
    o.publish('host.warning', { message });
    return undefined;
  }

  private readonly warned = new Set<string>();

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.options.logger.warn(message);
    this.options.publish('host.warning', { message });
  }

  private attach(socket: Socket, kind: PortKind): void {
    try {
      // A burst of DISCOVERs (a whole lab powering on) arrives faster than the loop can take
      // it while it is busy for a moment (the store's write, GC): with the kernel's default
      // ~208 KiB buffer, the storm test lost a quarter of 3,000 DISCOVERs/s to
      // RcvbufErrors. 1 MiB holds a few thousand requests, well under a second of work, so an
      // answer that waited in it is still in time for firmware (4 s for the first offer,
      // PXE 2.1 §2.2.1). The kernel caps this at net.core.rmem_max; the default still works.
      socket.setRecvBufferSize(RECEIVE_BUFFER_BYTES);
    } catch {
      // not supported for this socket: keep the default
    }
    socket.on('message', (msg, rinfo) => {
      try {
        this.handle(socket, kind, msg, rinfo);
      } catch (err) {
        // A bug in a decision must not take the service down; report it like a bad packet.
        this.reportError(rinfo, `internal error handling a packet: ${(err as Error).stack ?? err}`);
      }
    });
    socket.on('error', (err) => {
      this.options.logger.error(`DHCP socket error on port ${kind === 'server' ? this.boundPorts.server : this.boundPorts.pxe}: ${err.message}`);
      this.options.publish('dhcp.error', { reason: `socket error: ${err.message}`, port: kind === 'server' ? this.boundPorts.server : this.boundPorts.pxe });
    });
  }

  private handle(socket: Socket, kind: PortKind, msg: Buffer, rinfo: RemoteInfo): void {
    const o = this.options;
    const port = kind === 'server' ? this.boundPorts.server : this.boundPorts.pxe;
    let request: DhcpPacket;
    try {
      request = decodeDhcpPacket(msg);
    } catch (err) {
      if (!(err instanceof DhcpDecodeError)) throw err;
      this.reportError(rinfo, `malformed packet on port ${port}: ${err.message}`);
      return;
    }
    // Replies (ours coming back, other servers', relays' echoes) are not client messages.
    if (request.op !== BOOTREQUEST) return;

    const client = describeBootClient(request);
    const msgType = messageTypeName(request.options.messageType);
    o.publish('dhcp.received', {
      ...clientDetails(request, client),
      ip: request.ciaddr !== '0.0.0.0' ? request.ciaddr : undefined,
      msgType,
      port,
      requestedIp: request.options.requestedIp,
      ciaddr: request.ciaddr,
      from: `${rinfo.address}:${rinfo.port}`,
    });

    const incoming: Incoming = { request, client, msgType };
    this.withAssignment(incoming, (assignment) => {
      if (kind === 'server' && o.mode === 'dhcp' && this.prober) this.route(socket, incoming, assignment);
      else this.answer(socket, kind, incoming, assignment, rinfo);
    });
  }

  /**
   * Runs `decide` with the client's assignment from the lookup hook: now, or when the hook's
   * promise settles (if the service still runs). Only a client that may get a boot file is looked up.
   */
  private withAssignment(incoming: Incoming, decide: (assignment: MachineBootAssignment | undefined) => void): void {
    const { request, client } = incoming;
    const lookup = this.options.policy.lookupMachine;
    const found = lookup && wantsBootFile(client, request.options.messageType) ? lookup(client.mac, client.uuid) : undefined;
    if (!(found instanceof Promise)) return decide(found);
    found
      .then((assignment) => {
        if (this.serverSocket) decide(assignment);
      })
      .catch((err) => {
        this.options.logger.error(`internal error deciding the reply for ${client.mac}: ${(err as Error).stack ?? err}`);
        this.options.publish('dhcp.error', { mac: client.mac, xid: request.xid, reason: `internal error deciding the reply: ${(err as Error).message}` });
      });
  }

  private route(socket: Socket, incoming: Incoming, assignment: MachineBootAssignment | undefined, extra?: Record<string, unknown>): void {
    const target = addressCheckTarget(incoming.request, this.leases!, this.options.serverAddress, this.clock.now());
    if (target === undefined) this.answer(socket, 'server', incoming, assignment, undefined, extra);
    else this.answerAfterAddressCheck(socket, incoming, target);
  }

  /**
   * A message whose address needs checking is answered when the check is done; the loop
   * goes on meanwhile, so other clients are not kept waiting. A client that sends again
   * while its check runs gets one answer, to its newest message (routed again, so a
   * REQUEST that overtook a DISCOVER is checked for its own address).
   */
  private answerAfterAddressCheck(socket: Socket, incoming: Incoming, target: string): void {
    const { request } = incoming;
    const key = clientKey(request);
    const pending = this.pendingChecks.get(key);
    if (pending) {
      pending.incoming = incoming;
      return;
    }
    const entry = { incoming };
    this.pendingChecks.set(key, entry);
    const mac = incoming.client.mac;
    const started = this.clock.now();
    const args = {
      leases: this.leases!,
      prober: this.prober!,
      clock: this.clock,
      key,
      mac,
      onConflict: (conflict: AddressConflict) => this.reportConflict(entry.incoming.request, conflict),
    };
    const check =
      target === 'offer' ? reserveCheckedAddress({ ...args, requestedIp: request.options.requestedIp }) : checkRequestedAddress({ ...args, ip: target });
    check
      .then((result) => {
        if (this.pendingChecks.get(key) !== entry) return; // stopped meanwhile
        this.pendingChecks.delete(key);
        this.leases!.persistSoon();
        const latest = entry.incoming;
        if (result.kind === 'probe-failed') {
          this.warnOnce('address-check', `could not check ${result.ip} before handing it out: ${result.error}; addresses go out unchecked`);
        } else if (result.kind === 'gave-up') {
          const taken = result.conflicts.map((c) => c.ip).join(', ');
          this.options.publish('dhcp.ignored', {
            mac,
            xid: latest.request.xid,
            msgType: latest.msgType,
            port: this.boundPorts.server,
            reason: `${taken} answered for themselves: kept out of the pool; the client's next DISCOVER goes on with the next addresses`,
          });
          return;
        }
        const extra = result.probes > 0 ? { addressCheckMs: this.clock.now() - started, addressesInUse: result.conflicts.length || undefined } : undefined;
        // A check that failed must not loop: answer as things are.
        this.withAssignment(latest, (assignment) => {
          if (result.kind === 'probe-failed') this.answer(socket, 'server', latest, assignment, undefined, extra);
          else this.route(socket, latest, assignment, extra);
        });
      })
      .catch((err) => {
        this.pendingChecks.delete(key);
        this.options.logger.error(`internal error checking an address for ${mac}: ${(err as Error).stack ?? err}`);
        this.options.publish('dhcp.error', { mac, xid: request.xid, reason: `internal error checking an address: ${(err as Error).message}` });
      });
  }

  private reportConflict(request: DhcpPacket, conflict: AddressConflict): void {
    const minutes = Math.round((conflict.heldUntil - this.clock.now()) / 60_000);
    const reason = `${conflict.ip} is in use: it answered ${conflict.method.toUpperCase()}${conflict.by ? ` from ${conflict.by}` : ''}; kept out of the pool for ${minutes} min, the next free address is checked instead`;
    this.options.logger.warn(`${reason} (was going to ${clientMac(request)})`);
    this.options.publish('dhcp.conflict', {
      mac: clientMac(request),
      xid: request.xid,
      // `address`, not `ip`: the address belongs to the host that answered, not to this client.
      address: conflict.ip,
      heldBy: conflict.by,
      method: conflict.method,
      ms: conflict.ms,
      reason,
    });
  }

  private answer(
    socket: Socket,
    kind: PortKind,
    incoming: Incoming,
    assignment: MachineBootAssignment | undefined,
    rinfo: RemoteInfo | undefined,
    extra?: Record<string, unknown>,
  ): void {
    const o = this.options;
    const { request, client, msgType } = incoming;
    const mac = client.mac;
    const port = kind === 'server' ? this.boundPorts.server : this.boundPorts.pxe;
    let plan: ReplyPlan;
    // Relays listen on the standard server port; 0 (tests) means "like ours".
    const ports = { server: o.ports?.server || this.boundPorts.server || 67, client: this.clientPort };
    if (kind === 'pxe' && rinfo) {
      plan = decideBootServerReply(
        request,
        { address: rinfo.address, port: rinfo.port },
        { serverAddress: o.serverAddress, policy: o.policy },
        client,
        assignment,
      );
    } else if (o.mode === 'proxy') {
      plan = decideProxyReply(request, { serverAddress: o.serverAddress, policy: o.policy, ports }, client, assignment);
    } else {
      plan = decideFullDhcpReply(
        request,
        { serverAddress: o.serverAddress, policy: o.policy, ports, leases: this.leases!, now: this.clock.now() },
        client,
        assignment,
      );
      this.leases!.persistSoon();
    }

    if (plan.action === 'record') {
      o.publish(plan.event, { ...plan.details, xid: request.xid });
      return;
    }
    if (plan.action === 'ignore') {
      const deliberate = plan.decision?.kind === 'ignore' && plan.decision.deliberate ? true : undefined;
      const turnedOff = plan.decision?.kind === 'ignore' ? plan.decision.turnedOff : undefined;
      o.publish('dhcp.ignored', {
        mac,
        xid: request.xid,
        msgType,
        port,
        reason: plan.reason,
        bootClass: plan.decision?.bootClass,
        machine: plan.decision?.machine,
        expected: plan.expected,
        deliberate,
        turnedOff,
      });
      o.logger.debug(`ignored ${msgType} from ${mac}: ${plan.reason}`);
      return;
    }
    this.send(socket, request, plan, kind, extra, mac);
  }

  private send(socket: Socket, request: DhcpPacket, plan: PlannedReply, kind: PortKind, extra: Record<string, unknown> | undefined, mac: string): void {
    const o = this.options;
    let bytes: Buffer;
    try {
      bytes = encodeDhcpPacket(plan.reply);
    } catch (err) {
      o.publish('dhcp.error', { mac, xid: request.xid, reason: `could not build the reply: ${(err as Error).message}` });
      o.logger.error(`could not build the reply for ${mac}: ${(err as Error).message}`);
      return;
    }
    const reply = plan.reply;
    const type = reply.options.messageType;
    const eventType: BootEventType =
      kind === 'pxe'
        ? 'pxe.ack'
        : o.mode === 'proxy'
          ? type === DhcpMessageType.OFFER
            ? 'proxy.offer'
            : 'pxe.ack'
          : type === DhcpMessageType.OFFER
            ? 'dhcp.offer'
            : type === DhcpMessageType.NAK
              ? 'dhcp.nak'
              : 'dhcp.lease';
    const decision = plan.decision && plan.decision.kind !== 'ignore' ? plan.decision : undefined;
    const yiaddr = reply.yiaddr !== '0.0.0.0' ? reply.yiaddr : undefined;
    const details = {
      mac,
      ip: yiaddr ?? (request.ciaddr !== '0.0.0.0' ? request.ciaddr : undefined),
      xid: request.xid,
      msgType: messageTypeName(type),
      yiaddr,
      file: reply.options.bootFileName ?? (reply.file || undefined),
      siaddr: reply.siaddr,
      vendorClass: reply.options.vendorClassId,
      option43: reply.options.pxe !== undefined,
      menu: decision?.kind === 'menu' && reply.options.pxe?.bootMenu ? reply.options.pxe.bootMenu.map((m) => m.description) : undefined,
      bootItem: reply.options.pxe?.bootItem?.type,
      bootClass: decision?.bootClass,
      machine: decision?.machine,
      reason: plan.decision?.reason,
      leaseSeconds: reply.options.leaseTime,
      message: reply.options.message,
      to: `${plan.to.address}:${plan.to.port}`,
      warning: eventType === 'proxy.offer' ? proxyChainWarning(reply.options.bootFileName ?? reply.file, o.serverAddress) : undefined,
      ...extra,
    };
    socket.send(bytes, plan.to.port, plan.to.address, (err) => {
      if (err) {
        o.publish('dhcp.error', { mac, xid: request.xid, reason: `send to ${plan.to.address}:${plan.to.port} failed: ${err.message}` });
        o.logger.error(`send to ${plan.to.address}:${plan.to.port} failed: ${err.message}`);
        return;
      }
      o.publish(eventType, details);
      if (o.mode === 'proxy' && decision) this.recentOffers.remember(mac, this.clock.now());
    });
  }

  private reportError(rinfo: RemoteInfo, reason: string): void {
    const key = rinfo.address;
    const now = this.clock.now();
    const last = this.lastErrorReport.get(key);
    if (last !== undefined && now - last < ERROR_REPORT_INTERVAL_MS) return;
    this.lastErrorReport.set(key, now);
    this.options.logger.warn(`${reason} (from ${rinfo.address}:${rinfo.port})`);
    this.options.publish('dhcp.error', { reason, from: `${rinfo.address}:${rinfo.port}` });
  }
}
