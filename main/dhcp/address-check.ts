// Full DHCP mode: before an address is offered for the first time, ask the NIC whether
// somebody already uses it (RFC 2131 §2.2: a server should probe an address before it
// allocates it, for example with an ICMP echo; dnsmasq and ISC dhcpd ping). An address that answers is kept out of the pool for a while and the next free one
// is checked instead. The prober is injected: the host's is an ARP probe on the chosen NIC
// (main/net/arp-probe.ts); unit tests give a fake.
import type { Clock } from '../core/index.js';
import { type LeasePool, IN_USE_HOLD_MS } from './lease-pool.js';
import { DhcpMessageType } from './options.js';
import { clientMac, type DhcpPacket } from './packet.js';
import { clientKey } from './full-dhcp.js';

export interface AddressProbeAnswer {
  inUse: boolean;
  /** MAC of the host that answered, when the method tells. */
  by?: string;
  /** 'arp', 'icmp', or whatever a fake calls itself. */
  method: string;
  ms?: number;
}

export interface AddressInUseProber {
  probe(ip: string): Promise<AddressProbeAnswer>;
  close(): void;
}

/**
 * Addresses checked for one DISCOVER before giving up on it. Each costs one probe wait;
 * the firmware sends its DISCOVER again within seconds, and by then the addresses found in
 * use are remembered, so the next attempt starts past them.
 */
export const MAX_CHECKS_PER_REQUEST = 4;

export interface AddressConflict {
  ip: string;
  by?: string;
  method: string;
  ms?: number;
  /** Until when the address is kept out of the pool (ms since the epoch). */
  heldUntil: number;
}

export type CheckedOffer =
  | { kind: 'ready'; ip: string; conflicts: AddressConflict[]; probes: number }
  | { kind: 'exhausted'; conflicts: AddressConflict[]; probes: number }
  | { kind: 'gave-up'; conflicts: AddressConflict[]; probes: number }
  | { kind: 'probe-failed'; ip: string; error: string; conflicts: AddressConflict[]; probes: number };

/**
 * What must be checked before this message can be answered: 'offer' for a DISCOVER or
 * BOOTP request whose address (chosen and reserved here, as decideFullDhcpReply would) is
 * new to the client; an address for a REQUEST naming one the client does not hold with us
 * yet; undefined when it can be answered at once (a client keeping its address, a checked
 * offer, a NAK to come, any other message).
 */
export function addressCheckTarget(request: DhcpPacket, leases: LeasePool, serverAddress: string, now: number): 'offer' | string | undefined {
  const o = request.options;
  const key = clientKey(request);
  if (o.messageType === DhcpMessageType.DISCOVER || o.messageType === undefined) {
    const ip = leases.offer(key, clientMac(request), o.requestedIp, now);
    return ip && leases.needsCheck(key, ip, now) ? 'offer' : undefined;
  }
  if (o.messageType !== DhcpMessageType.REQUEST) return undefined;
  if (o.serverIdentifier !== undefined && o.serverIdentifier !== serverAddress) return undefined;
  const wanted = request.ciaddr !== '0.0.0.0' ? request.ciaddr : o.requestedIp;
  if (!wanted || !leases.isFreeFor(wanted, key, now) || !leases.needsCheck(key, wanted, now)) return undefined;
  return wanted;
}

/**
 * Reserves an address for the client's OFFER and checks it when it needs checking,
 * moving on past addresses that answer. On 'ready' the pool holds a checked reservation
 * for the client, so the OFFER decision (decideFullDhcpReply) picks the same address.
 */
export async function reserveCheckedAddress(args: {
  leases: LeasePool;
  prober: AddressInUseProber;
  clock: Clock;
  key: string;
  mac: string;
  requestedIp?: string;
  onConflict?: (conflict: AddressConflict) => void;
}): Promise<CheckedOffer> {
  const { leases, clock, key, mac } = args;
  const conflicts: AddressConflict[] = [];
  let probes = 0;
  for (;;) {
    const ip = leases.offer(key, mac, args.requestedIp, clock.now());
    if (!ip) return { kind: 'exhausted', conflicts, probes };
    if (!leases.needsCheck(key, ip, clock.now())) return { kind: 'ready', ip, conflicts, probes };
    if (probes >= MAX_CHECKS_PER_REQUEST) {
      // Leave the unchecked reservation to lapse rather than offer it unchecked.
      leases.release(key, ip);
      return { kind: 'gave-up', conflicts, probes };
    }
    probes++;
    let answer: AddressProbeAnswer;
    try {
      answer = await args.prober.probe(ip);
    } catch (err) {
      return { kind: 'probe-failed', ip, error: (err as Error).message, conflicts, probes };
    }
    const now = clock.now();
    // The client itself answering (an OS that kept its old address while it asks again)
    // is no conflict: the address is its own.
    if (answer.inUse && answer.by !== mac) {
      leases.markInUse(ip, now, answer.by);
      const conflict: AddressConflict = { ip, by: answer.by, method: answer.method, ms: answer.ms, heldUntil: now + IN_USE_HOLD_MS };
      conflicts.push(conflict);
      args.onConflict?.(conflict);
      continue;
    }
    // The reservation may have gone meanwhile (the client chose another server, RELEASE):
    // then start again, which re-reserves and, if needed, re-checks.
    if (leases.markChecked(key, ip, now)) return { kind: 'ready', ip, conflicts, probes };
  }
}

export type CheckedRequest =
  | { kind: 'free'; probes: number; conflicts: AddressConflict[] }
  | { kind: 'in-use'; probes: number; conflicts: AddressConflict[] }
  | { kind: 'probe-failed'; ip: string; error: string; probes: number; conflicts: AddressConflict[] };

/**
 * A REQUEST for an address the client does not hold with us (INIT-REBOOT after our lease
 * file was lost, a client that moved in from another network): checked like an offer. An
 * answer from the client's own MAC is the client itself and does not count. When free, the
 * address is reserved for the client, checked, so the ACK binds it.
 */
export async function checkRequestedAddress(args: {
  leases: LeasePool;
  prober: AddressInUseProber;
  clock: Clock;
  key: string;
  mac: string;
  ip: string;
  onConflict?: (conflict: AddressConflict) => void;
}): Promise<CheckedRequest> {
  const { leases, clock, key, mac, ip } = args;
  let answer: AddressProbeAnswer;
  try {
    answer = await args.prober.probe(ip);
  } catch (err) {
    return { kind: 'probe-failed', ip, error: (err as Error).message, probes: 1, conflicts: [] };
  }
  const now = clock.now();
  if (answer.inUse && answer.by !== mac) {
    leases.markInUse(ip, now, answer.by);
    const conflict: AddressConflict = { ip, by: answer.by, method: answer.method, ms: answer.ms, heldUntil: now + IN_USE_HOLD_MS };
    args.onConflict?.(conflict);
    return { kind: 'in-use', probes: 1, conflicts: [conflict] };
  }
  leases.reserveChecked(key, mac, ip, now);
  return { kind: 'free', probes: 1, conflicts: [] };
}
