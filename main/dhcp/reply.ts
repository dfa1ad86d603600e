// Pieces every reply shares: the header copied from the request (RFC 2131 §4.3.1
// Table 3), where the reply goes (§4.1), and the PXE fields a boot decision adds.
import type { DhcpClientFields } from '../core/events.js';
import { canonicalUuid, DhcpMessageType, type DhcpOptions } from './options.js';
import { BOOTREPLY, clientMac, type DhcpPacket } from './packet.js';
import type { PxeVendorOptions } from './pxe-vendor-options.js';
import { bootFileName, type BootDecision } from '../pxe/boot-policy.js';
import { buildPxeMenuOptions } from '../pxe/boot-menu.js';

export interface Destination {
  address: string;
  port: number;
}

/** A decision to answer: the packet and where it goes. */
export interface PlannedReply {
  action: 'reply';
  reply: DhcpPacket;
  to: Destination;
  decision?: BootDecision;
}

export interface Ignored {
  action: 'ignore';
  reason: string;
  decision?: BootDecision;
  /** Part of a normal exchange between the client and another server: nothing went unanswered. */
  expected?: true;
}

/** No reply is due, but something happened worth an event (RELEASE, DECLINE). */
export interface Recorded {
  action: 'record';
  event: 'dhcp.release' | 'dhcp.decline';
  details: DhcpClientFields;
}

export type ReplyPlan = PlannedReply | Ignored | Recorded;

export function ignore(reason: string, decision?: BootDecision, expected?: true): Ignored {
  return expected ? { action: 'ignore', reason, decision, expected } : { action: 'ignore', reason, decision };
}

export function replyFrame(request: DhcpPacket, messageType: number, serverAddress: string): DhcpPacket {
  const options: DhcpOptions = { messageType, serverIdentifier: serverAddress };
  // RFC 3046 §2.2: the relay agent information comes back unchanged.
  if (request.options.relayAgentInfo) options.relayAgentInfo = request.options.relayAgentInfo;
  return {
    op: BOOTREPLY,
    htype: request.htype,
    hlen: request.hlen,
    hops: 0,
    xid: request.xid,
    secs: 0,
    flags: request.flags,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: serverAddress,
    giaddr: request.giaddr,
    chaddr: Buffer.from(request.chaddr),
    sname: '',
    file: '',
    options,
  };
}

/**
 * RFC 2131 §4.1: relayed -> the relay's server port; a client with an address -> unicast
 * to it; otherwise broadcast (we cannot unicast to an address the client does not have
 * yet without writing the ARP table, which dgram cannot).
 */
export function replyDestination(request: DhcpPacket, ports: { server: number; client: number }): Destination {
  if (request.giaddr !== '0.0.0.0') return { address: request.giaddr, port: ports.server };
  if (request.ciaddr !== '0.0.0.0') return { address: request.ciaddr, port: ports.client };
  return { address: '255.255.255.255', port: ports.client };
}

/** RFC 4578 §2.3 / PXE-NOTES: option 97 goes back exactly as it came, when it came. */
export function echoClientUuid(request: DhcpPacket, reply: DhcpPacket): void {
  if (request.options.clientUuid) reply.options.clientUuid = request.options.clientUuid;
  const raw = request.options.other?.get(97);
  if (raw) (reply.options.other ??= new Map()).set(97, raw);
}

const FILE_FIELD_MAX = 127;

export interface BootFieldsOptions {
  /** Put option 60 in the reply (PXEClient/HTTPClient). */
  vendorClass: boolean;
  /** Proxy offer option 43: discovery control 8, or the menu. */
  vendorOptions?: boolean;
  /** Echo the boot item (4011 ACK). */
  bootItem?: PxeVendorOptions['bootItem'];
  serverAddress: string;
}

/**
 * Adds the boot file (file field; option 67 too when the client asked for it or the name
 * does not fit the 128-byte field) and the PXE options a decision calls for.
 */
export function addBootFields(request: DhcpPacket, reply: DhcpPacket, decision: Exclude<BootDecision, { kind: 'ignore' }>, o: BootFieldsOptions): void {
  const name = decision.kind === 'menu' && o.vendorOptions ? undefined : bootFileName(decision);
  if (name !== undefined) {
    const fits = Buffer.byteLength(name, 'latin1') <= FILE_FIELD_MAX && !name.includes('\0');
    if (fits) reply.file = name;
    if (!fits || request.options.parameterRequestList?.includes(67) || decision.vendorClass === 'HTTPClient') reply.options.bootFileName = name;
  }
  if (o.vendorClass) reply.options.vendorClassId = decision.vendorClass;
  let pxe: PxeVendorOptions | undefined;
  if (o.vendorOptions) {
    pxe = decision.kind === 'menu'
      ? buildPxeMenuOptions(decision.items, decision.prompt, decision.timeoutSeconds, o.serverAddress)
      : { discoveryControl: 8 }; // PXE 2.1 Table 2-1 bit 3: download the file given, skip discovery
  }
  if (o.bootItem) pxe = { ...pxe, bootItem: o.bootItem };
  if (pxe) reply.options.pxe = pxe;
}

/** Details every DHCP-side event carries about the client. */
export function clientDetails(request: DhcpPacket): DhcpClientFields & { mac: string } {
  const o = request.options;
  return {
    mac: clientMac(request),
    xid: request.xid,
    uuid: canonicalUuid(o.clientUuid?.guid),
    arch: o.clientArch?.[0],
    vendorClass: o.vendorClassId,
    userClass: o.userClass?.classes.join(','),
    // A REQUEST names the server it accepts: in proxy mode, the other DHCP server.
    serverIdentifier: o.serverIdentifier,
  };
}

export { DhcpMessageType };
