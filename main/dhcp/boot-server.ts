// PXE boot server on UDP 4011 (PXE 2.1 §2.2.5 "Boot Server Discovery"): the client asks
// with an extended DHCPREQUEST (or DHCPINFORM) carrying option 43 sub-option 71, the
// boot item it wants; we answer with a DHCPACK naming the file, sent back to the
// request's source address and port. EDK2 sends from port 4011 rather than 68, so the
// source port is used as is. Every architecture is accepted here, BIOS included.
import { DhcpMessageType, isPxeVendorClass, messageTypeName } from './options.js';
import { BOOTREQUEST, type DhcpPacket } from './packet.js';
import { PXE_LAYER_CREDENTIALS } from './pxe-vendor-options.js';
import { addBootFields, echoClientUuid, ignore, replyFrame, type Destination, type ReplyPlan } from './reply.js';
import { describeBootClient } from './boot-client.js';
import { chooseBootFile, type BootClient, type BootPolicyConfig, type MachineBootAssignment } from '../pxe/index.js';

export interface BootServerContext {
  serverAddress: string;
  policy: BootPolicyConfig;
}

/**
 * Pure: (request, where it came from, config, the client as described and its assignment)
 * -> reply plan. The service passes the description it made on receipt; callers without
 * one (tests) get it made here.
 */
export function decideBootServerReply(
  request: DhcpPacket,
  source: Destination,
  ctx: BootServerContext,
  client: BootClient = describeBootClient(request),
  assignment?: MachineBootAssignment,
): ReplyPlan {
  if (request.op !== BOOTREQUEST) return ignore('not a client request (BOOTREPLY)');
  const type = request.options.messageType;
  if (type !== DhcpMessageType.REQUEST && type !== DhcpMessageType.INFORM) {
    return ignore(`${messageTypeName(type)} on the boot server port; it answers only REQUEST and INFORM`);
  }
  if (!isPxeVendorClass(client.vendorClass)) {
    return ignore(`not a PXE or HTTP-boot client (option 60 is ${client.vendorClass === undefined ? 'missing' : JSON.stringify(client.vendorClass)})`);
  }
  const bootItem = request.options.pxe?.bootItem;
  if (bootItem && bootItem.layer & PXE_LAYER_CREDENTIALS) {
    return ignore(`boot item ${bootItem.type} asks for Boot Integrity Services credentials (layer ${bootItem.layer}), which Bootbench does not serve`);
  }

  const decision = chooseBootFile(client, ctx.policy, assignment);
  if (decision.kind === 'ignore') return ignore(decision.reason, decision);

  const reply = replyFrame(request, DhcpMessageType.ACK, ctx.serverAddress);
  reply.ciaddr = request.ciaddr;
  echoClientUuid(request, reply);
  addBootFields(request, reply, decision, {
    vendorClass: true,
    bootItem: bootItem ? { type: bootItem.type, layer: bootItem.layer } : undefined,
    serverAddress: ctx.serverAddress,
  });
  // A client without an address yet cannot be reached by unicast: broadcast to its port.
  const to = source.address === '0.0.0.0' ? { address: '255.255.255.255', port: source.port } : source;
  return { action: 'reply', reply, to, decision };
}
