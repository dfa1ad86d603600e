// Pieces every reply shares: the header copied from the request (RFC 2131 §4.3.1
// Table 3), where the reply goes (§4.1), and the PXE fields a boot decision adds.
import type { DhcpClientFields } from '../core/index.js';
import { DhcpMessageType, type DhcpOptions } from './options.js';
import { BOOTREPLY, type DhcpPacket } from './packet.js';
import type { PxeVendorOptions } from './pxe-vendor-options.js';
import type { BootClass, BootClient, BootDecision, BootPolicyConfig, MachineBootAssignment } from '../pxe/index.js';
import { buildPxeMenuOptions } from './boot-menu.js';

/**
 * The one lookup hook: what the store says about a client, found by its MAC or UUID. A
 * promise holds the reply until it settles (the DHCP thread asks the main thread this way
 * for a machine that may have an assignment of its own); anything else is used at once.
 */
export type AssignmentLookup = (mac: string, uuid?: string) => MachineBootAssignment | undefined | Promise<MachineBootAssignment | undefined>;

/** The boot policy's settings plus what only the DHCP side uses. */
export interface DhcpBootConfig extends BootPolicyConfig {
  lookupMachine?: AssignmentLookup;
  /**
   * Per class: whether Proxy DHCP offers carry option 43. With it (discovery control 8
   * and the file), BIOS ROMs download at once; UEFI firmware tends to mishandle it and is
   * sent to the boot server on 4011 instead. Default: bios only.
   */
  proxyVendorOptions?: Partial<Record<BootClass, boolean>>;
}

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

/** The name to put in the reply's file field / option 67 for a decision that boots. */
export function bootFileName(decision: BootDecision): string | undefined {
  switch (decision.kind) {
    case 'file':
      return decision.file;
    case 'url':
      return decision.url;
    case 'menu':
      return decision.defaultItem.file;
    case 'ignore':
      return undefined;
  }
}

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
    pxe = decision.kind === 'menu' ? buildPxeMenuOptions(decision.items, decision.prompt, decision.timeoutSeconds, o.serverAddress) : { discoveryControl: 8 }; // PXE 2.1 Table 2-1 bit 3: download the file given, skip discovery
  }
  if (o.bootItem) pxe = { ...pxe, bootItem: o.bootItem };
  if (pxe) reply.options.pxe = pxe;
}

/** Details every DHCP-side event carries about the client. */
export function clientDetails(request: DhcpPacket, client: BootClient): DhcpClientFields & { mac: string } {
  const o = request.options;
  return {
    mac: client.mac,
    xid: request.xid,
    uuid: client.uuid,
    // Option 93 as sent: the event shows what the firmware said, not what was inferred from option 60.
    arch: o.clientArch?.[0],
    vendorClass: client.vendorClass,
    userClass: client.userClass?.join(','),
    // A REQUEST names the server it accepts: in proxy mode, the other DHCP server.
    serverIdentifier: o.serverIdentifier,
  };
}

export { DhcpMessageType };
