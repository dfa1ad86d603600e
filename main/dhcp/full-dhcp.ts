// Full DHCP mode for an isolated bench switch (RFC 2131 §4.3, server behaviour), with
// the PXE fields in the same reply. Deterministic: (request, config, pool, now) -> plan;
// the pool is the only state and it is passed in.
//
// Option 60 is sent only to HTTP-boot clients, which need `HTTPClient` to accept the
// URL. A PXE client given `PXEClient` by the server that also hands it an address goes
// on to ask that server's port 4011 (PXE 2.1 §2.2.1), and some firmware then ignores
// the file name (PXE-NOTES); without it, firmware simply downloads the file it is given.
import { DhcpMessageType, messageTypeName } from './options.js';
import { BOOTREQUEST, clientMac, type DhcpPacket } from './packet.js';
import { addBootFields, echoClientUuid, ignore, replyDestination, replyFrame, type ReplyPlan } from './reply.js';
import { IN_USE_KEY_PREFIX, type LeasePool } from './lease-pool.js';
import { describeBootClient, wantsBootFile } from './boot-client.js';
import { chooseBootFile, type BootClient, type BootDecision, type BootPolicyConfig, type MachineBootAssignment } from '../pxe/index.js';

export interface FullDhcpContext {
  serverAddress: string;
  policy: BootPolicyConfig;
  ports: { server: number; client: number };
  leases: LeasePool;
  now: number;
}

/** RFC 2131 §4.2: a client is known by its client identifier (61) if it sends one, else by chaddr. */
export function clientKey(request: DhcpPacket): string {
  const id = request.options.clientId;
  return id && id.length > 0 ? `id:${id.toString('hex')}` : `mac:${clientMac(request)}`;
}

/** What addBoot needs besides the request: the client as described and its assignment. */
interface BootFacts {
  client: BootClient;
  assignment: MachineBootAssignment | undefined;
}

/** `client` and `assignment` as for decideBootServerReply (boot-server.ts). */
export function decideFullDhcpReply(
  request: DhcpPacket,
  ctx: FullDhcpContext,
  client: BootClient = describeBootClient(request),
  assignment?: MachineBootAssignment,
): ReplyPlan {
  if (request.op !== BOOTREQUEST) return ignore('not a client request (BOOTREPLY)');
  const o = request.options;
  const key = clientKey(request);
  const mac = client.mac;
  const { leases, now } = ctx;
  const type = o.messageType;
  const boot: BootFacts = { client, assignment };

  switch (type) {
    case undefined:
      return bootpReply(request, ctx, boot, key, mac);
    case DhcpMessageType.DISCOVER: {
      // A boot method turned off gets no offer at all: the address would only be for that boot.
      const off = turnedOffBoot(request, ctx, boot);
      if (off) return ignore(off.reason, off);
      const ip = leases.offer(key, mac, o.requestedIp, now);
      if (!ip) return ignore(`address pool ${leases.config.first}-${leases.config.last} is exhausted`);
      return addressReply(request, ctx, boot, DhcpMessageType.OFFER, ip);
    }
    case DhcpMessageType.REQUEST: {
      // SELECTING (RFC 2131 §4.3.2): server identifier present.
      if (o.serverIdentifier !== undefined && o.serverIdentifier !== ctx.serverAddress) {
        const dropped = leases.release(key);
        return ignore(`client chose DHCP server ${o.serverIdentifier}${dropped ? `; offer of ${dropped.ip} withdrawn` : ''}`);
      }
      const selecting = o.serverIdentifier !== undefined;
      const wanted = request.ciaddr !== '0.0.0.0' ? request.ciaddr : o.requestedIp;
      if (!wanted) return nak(request, ctx, 'REQUEST names no address (neither option 50 nor ciaddr)');
      // INIT-REBOOT: an address from another network means the client moved.
      if (!selecting && !leases.onOurSubnet(wanted)) return nak(request, ctx, `${wanted} is not on this network`);
      const bound = leases.commit(key, mac, wanted, now, leases.leaseSeconds, o.hostName);
      if (!bound) {
        const holder = leases.holderOf(wanted, now);
        const why = !holder
          ? `${wanted} is outside the pool ${leases.config.first}-${leases.config.last}`
          : holder.key.startsWith(IN_USE_KEY_PREFIX)
            ? `${wanted} is in use by another host${holder.mac ? ` (${holder.mac})` : ''}`
            : `${wanted} is leased to ${holder.mac}`;
        return nak(request, ctx, why);
      }
      return addressReply(request, ctx, boot, DhcpMessageType.ACK, wanted);
    }
    case DhcpMessageType.DECLINE: {
      const ip = o.requestedIp;
      if (!ip || !leases.decline(key, mac, ip, now)) return ignore(`DECLINE of ${ip ?? 'no address'}, which is not ours`);
      return { action: 'record', event: 'dhcp.decline', details: { mac, ip, reason: `client found ${ip} in use; kept out of the pool for a while` } };
    }
    case DhcpMessageType.RELEASE: {
      const lease = leases.release(key, request.ciaddr !== '0.0.0.0' ? request.ciaddr : undefined);
      if (!lease) return ignore(`RELEASE of ${request.ciaddr}, which this client does not hold`);
      return { action: 'record', event: 'dhcp.release', details: { mac, ip: lease.ip } };
    }
    case DhcpMessageType.INFORM: {
      // RFC 2131 §4.3.5: configuration only, no address and no lease time.
      const reply = replyFrame(request, DhcpMessageType.ACK, ctx.serverAddress);
      reply.ciaddr = request.ciaddr;
      addNetworkOptions(reply, ctx, false);
      const decision = addBoot(request, reply, ctx, boot);
      return { action: 'reply', reply, to: replyDestination(request, ctx.ports), decision };
    }
    default:
      return ignore(`${messageTypeName(type)} is not a message a DHCP server answers`);
  }
}

function addNetworkOptions(reply: DhcpPacket, ctx: FullDhcpContext, withLease: boolean): void {
  const pool = ctx.leases.config;
  reply.options.subnetMask = pool.subnetMask;
  if (pool.router) reply.options.routers = [pool.router];
  if (pool.dns?.length) reply.options.dnsServers = pool.dns;
  if (withLease) {
    const seconds = ctx.leases.leaseSeconds;
    reply.options.leaseTime = seconds;
    // RFC 2131 §4.4.5 defaults: T1 = 0.5, T2 = 0.875 of the lease.
    reply.options.renewalTime = Math.floor(seconds * 0.5);
    reply.options.rebindingTime = Math.floor(seconds * 0.875);
  }
}

function turnedOffBoot(request: DhcpPacket, ctx: FullDhcpContext, boot: BootFacts): BootDecision | undefined {
  if (!wantsBootFile(boot.client, request.options.messageType)) return undefined;
  const decision = chooseBootFile(boot.client, ctx.policy, boot.assignment);
  return decision.kind === 'ignore' && decision.turnedOff ? decision : undefined;
}

function addBoot(request: DhcpPacket, reply: DhcpPacket, ctx: FullDhcpContext, boot: BootFacts): BootDecision | undefined {
  if (!wantsBootFile(boot.client, request.options.messageType)) return undefined;
  const decision = chooseBootFile(boot.client, ctx.policy, boot.assignment);
  if (decision.kind === 'ignore') return decision;
  echoClientUuid(request, reply);
  addBootFields(request, reply, decision, { vendorClass: decision.vendorClass === 'HTTPClient', serverAddress: ctx.serverAddress });
  return decision;
}

function addressReply(request: DhcpPacket, ctx: FullDhcpContext, boot: BootFacts, type: number, ip: string): ReplyPlan {
  const reply = replyFrame(request, type, ctx.serverAddress);
  reply.yiaddr = ip;
  if (type === DhcpMessageType.ACK) reply.ciaddr = request.ciaddr;
  addNetworkOptions(reply, ctx, true);
  const decision = addBoot(request, reply, ctx, boot);
  return { action: 'reply', reply, to: replyDestination(request, ctx.ports), decision };
}

function nak(request: DhcpPacket, ctx: FullDhcpContext, reason: string): ReplyPlan {
  const reply = replyFrame(request, DhcpMessageType.NAK, ctx.serverAddress);
  reply.siaddr = '0.0.0.0';
  reply.options.message = reason;
  // RFC 2131 §4.3.2: a NAK goes by broadcast unless relayed, the client's address being in doubt.
  const to = request.giaddr !== '0.0.0.0' ? { address: request.giaddr, port: ctx.ports.server } : { address: '255.255.255.255', port: ctx.ports.client };
  return { action: 'reply', reply, to, decision: { kind: 'ignore', reason } };
}

/** RFC 951 / RFC 1534 §2: a BOOTP client gets a permanent address and no DHCP-only options. */
function bootpReply(request: DhcpPacket, ctx: FullDhcpContext, boot: BootFacts, key: string, mac: string): ReplyPlan {
  const { leases, now } = ctx;
  const ip = leases.leaseOf(key, now)?.ip ?? leases.offer(key, mac, undefined, now);
  if (!ip || !leases.commit(key, mac, ip, now, null)) return ignore(`BOOTP request: address pool ${leases.config.first}-${leases.config.last} is exhausted`);
  const reply = replyFrame(request, DhcpMessageType.ACK, ctx.serverAddress);
  delete reply.options.messageType;
  delete reply.options.serverIdentifier;
  reply.yiaddr = ip;
  addNetworkOptions(reply, ctx, false);
  const decision = addBoot(request, reply, ctx, boot);
  return { action: 'reply', reply, to: replyDestination(request, ctx.ports), decision };
}
