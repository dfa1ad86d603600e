// Proxy DHCP (PXE 2.1 §2.2.2 "proxyDHCP"): beside someone else's DHCP server, answer PXE
// and HTTP-boot clients' DISCOVERs on port 67 with boot information and no address.
// Pure: (request, config) -> reply plan.
import { DhcpMessageType, isPxeVendorClass, messageTypeName } from './options.js';
import { BOOTREQUEST, type DhcpPacket } from './packet.js';
import { addBootFields, echoClientUuid, ignore, replyDestination, replyFrame, type DhcpBootConfig, type ReplyPlan } from './reply.js';
import { describeBootClient } from './boot-client.js';
import { decideBootServerReply } from './boot-server.js';
import { chooseBootFile, type BootClass, type BootClient, type MachineBootAssignment } from '../pxe/index.js';

export interface ProxyContext {
  serverAddress: string;
  policy: DhcpBootConfig;
  ports: { server: number; client: number };
}

const DEFAULT_PROXY_VENDOR_OPTIONS: Record<BootClass, boolean> = {
  bios: true,
  uefi32: false,
  uefi64: false,
  arm64: false,
  http64: false,
  httparm64: false,
};

function proxyOffersVendorOptions(config: DhcpBootConfig, bootClass: BootClass): boolean {
  return config.proxyVendorOptions?.[bootClass] ?? DEFAULT_PROXY_VENDOR_OPTIONS[bootClass];
}

/** `client` and `assignment` as for decideBootServerReply (boot-server.ts). */
export function decideProxyReply(
  request: DhcpPacket,
  ctx: ProxyContext,
  client: BootClient = describeBootClient(request),
  assignment?: MachineBootAssignment,
): ReplyPlan {
  if (request.op !== BOOTREQUEST) return ignore('not a client request (BOOTREPLY)');
  const type = request.options.messageType;
  if (!isPxeVendorClass(client.vendorClass)) {
    return ignore(
      `not a PXE or HTTP-boot client (option 60 is ${client.vendorClass === undefined ? 'missing' : JSON.stringify(client.vendorClass)}); proxy mode answers only those`,
    );
  }
  if (type === DhcpMessageType.REQUEST || type === DhcpMessageType.INFORM) {
    // A REQUEST naming us as server is the boot-server step sent to 67 instead of 4011
    // (PXE 2.1 §2.2.5 allows either port); one naming another server is its business.
    if (request.options.serverIdentifier !== ctx.serverAddress && type === DhcpMessageType.REQUEST) {
      return ignore(
        `${messageTypeName(type)} for DHCP server ${request.options.serverIdentifier ?? '(none named)'}; proxy mode hands out no addresses`,
        undefined,
        true,
      );
    }
    const plan = decideBootServerReply(request, { address: request.ciaddr, port: ctx.ports.client }, ctx, client, assignment);
    if (plan.action === 'reply') plan.to = replyDestination(request, ctx.ports);
    return plan;
  }
  if (type !== DhcpMessageType.DISCOVER) return ignore(`${messageTypeName(type)} needs no answer from a proxy`);

  const decision = chooseBootFile(client, ctx.policy, assignment);
  if (decision.kind === 'ignore') return ignore(decision.reason, decision);

  const reply = replyFrame(request, DhcpMessageType.OFFER, ctx.serverAddress);
  echoClientUuid(request, reply);
  addBootFields(request, reply, decision, {
    // PXE-NOTES: firmware drops proxy offers without option 60.
    vendorClass: true,
    vendorOptions: decision.vendorClass === 'PXEClient' && proxyOffersVendorOptions(ctx.policy, decision.bootClass),
    serverAddress: ctx.serverAddress,
  });
  return { action: 'reply', reply, to: replyDestination(request, ctx.ports), decision };
}

/**
 * A known way the chain breaks after a proxy offer, for the event and the log: GRUB 2.06
 * takes its TFTP server from the siaddr of the office DHCP server's ACK, not from the
 * proxy offer, so it asks that server for grub.cfg and gets nothing (PXE-NOTES, Secure Boot).
 */
export function proxyChainWarning(file: string | undefined, serverAddress: string): string | undefined {
  if (!file) return undefined;
  // Asked for every proxy offer, nearly always with the same file: the last answer is kept.
  const last = lastChainWarning;
  if (last && last.file === file && last.serverAddress === serverAddress) return last.warning;
  const warning = chainWarningFor(file, serverAddress);
  lastChainWarning = { file, serverAddress, warning };
  return warning;
}

let lastChainWarning: { file: string; serverAddress: string; warning: string | undefined } | undefined;

function chainWarningFor(file: string, serverAddress: string): string | undefined {
  const name = file.split(/[\\/]/).pop() ?? file;
  if (!/grub|shim/i.test(name)) return undefined;
  // UEFI HTTP boot: the signed network GRUB fetches by TFTP only and has no server to ask.
  if (/^https?:\/\//i.test(file))
    return `${name} leads to GRUB, which after UEFI HTTP boot stops at its prompt: the signed network GRUB fetches grub.cfg by TFTP only; boot this PC by PXE (UEFI PXEv4 first in its boot order)`;
  return `${name} leads to GRUB, which in proxy mode fetches grub.cfg from the office DHCP server's next-server rather than from ${serverAddress}; use --mode dhcp on an isolated bench, or set the office server's next-server to ${serverAddress}`;
}
