// Wake-on-LAN for the UI and `bootbench wake`: which MACs a request means (machines, bare
// MACs, a group), which NIC the packets leave through, and one `wake.sent` event per MAC so
// the Timeline can say "woken" and then whether the PC asked to boot within the minute.
// The same code runs in the host (the API) and in the command line without a host.
import { normalizeMac, type Publish } from '../core/index.js';
import { wakeAddressesOf, wakeMachines, type UdpSocketFactory } from '../net/index.js';
import { WAKE_ANSWER_MS } from './boot-diagnosis.js';
import type { Machine, NetInterfaceInfo, WakeRequest, WakeResult } from '../../preload/api.js';

/** Rounds of packets: UDP may drop one; three is what WoL tools send. */
export const WAKE_REPEAT = 3;
/** Between rounds: a switch port that drops a burst gets the next one. */
export const WAKE_INTERVAL_MS = 100;

/** A request that cannot be carried out as asked; the message names the problem and the fix. */
export class WakeRefusal extends Error {
  constructor(
    readonly code: 'invalid-request' | 'not-found' | 'unavailable',
    message: string,
  ) {
    super(message);
    this.name = 'WakeRefusal';
  }
}

export interface WakeTarget {
  mac: string;
  machineId?: number;
  name?: string;
}

/** The MACs a request means, each once, in the order asked (a group in its machines' name order). */
export function resolveWakeTargets(request: Pick<WakeRequest, 'machineIds' | 'macs' | 'group'>, machines: Machine[]): WakeTarget[] {
  const targets = new Map<string, WakeTarget>();
  const addMachine = (m: Machine) => {
    for (const mac of m.macs) if (!targets.has(mac)) targets.set(mac, { mac, machineId: m.id, name: m.name || undefined });
  };
  for (const id of request.machineIds ?? []) {
    const m = machines.find((x) => x.id === id);
    if (!m) throw new WakeRefusal('not-found', `there is no machine number ${id} (it may have been removed)`);
    addMachine(m);
  }
  for (const given of request.macs ?? []) {
    const mac = normalizeMac(given);
    if (!mac) throw new WakeRefusal('invalid-request', `"${given}" is not a MAC address: write six hex pairs, e.g. 52:54:00:12:34:56`);
    const m = machines.find((x) => x.macs.includes(mac));
    if (!targets.has(mac)) targets.set(mac, { mac, machineId: m?.id, name: m?.name || undefined });
  }
  if (request.group !== undefined) {
    const wanted = request.group.trim().toLowerCase();
    const members = machines
      .filter((m) => m.group.toLowerCase() === wanted)
      .sort((a, b) => (a.name || a.macs[0] || '').localeCompare(b.name || b.macs[0] || '', undefined, { numeric: true }));
    if (members.length === 0) {
      const groups = [...new Set(machines.map((m) => m.group).filter(Boolean))].sort();
      throw new WakeRefusal(
        'not-found',
        `no machine is in group "${request.group}": ${groups.length ? `the groups are ${groups.join(', ')}` : 'no machine has a group yet (import the machine list first)'}`,
      );
    }
    members.forEach(addMachine);
  }
  if (targets.size === 0) throw new WakeRefusal('invalid-request', 'nothing to wake: give MAC addresses, machines or a group');
  return [...targets.values()];
}

/** The NIC named, else the stored one; refused in words when there is none, it is gone or it is down. */
export function chooseWakeInterface(requested: string | undefined, stored: string | undefined, interfaces: NetInterfaceInfo[]): NetInterfaceInfo {
  const name = requested ?? stored;
  if (!name) {
    throw new WakeRefusal(
      'invalid-request',
      'no network card is chosen to send the magic packets through: give one (--interface NAME), or start the services on it once so it is remembered',
    );
  }
  const nic = interfaces.find((n) => n.name === name);
  const others = interfaces.filter((n) => n.kind !== 'loopback' && n.name !== name).map((n) => n.name);
  if (!nic) {
    throw new WakeRefusal(
      'unavailable',
      `the network card "${name}" is not on this computer now (unplugged, renamed or removed): plug it back in or choose another (--interface NAME)${others.length ? `; there are ${others.join(', ')}` : ''}`,
    );
  }
  if (!nic.up) {
    throw new WakeRefusal(
      'unavailable',
      `the network card "${name}" is down (no link: is its cable in the bench switch?): magic packets would not leave; bring it up or choose another`,
    );
  }
  return nic;
}

export interface WakeDeps {
  machines: Machine[];
  interfaces: NetInterfaceInfo[];
  /** The NIC the services use or last used. */
  storedInterface?: string;
  socketFactory: UdpSocketFactory;
  /** Records one `wake.sent` per MAC (the host's bus, or a bus with the store attached). */
  publish?: Publish;
  repeat?: number;
  intervalMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** Sends the magic packets of a request through its NIC and records what left. */
export async function wakeRequested(request: WakeRequest, deps: WakeDeps): Promise<WakeResult> {
  const targets = resolveWakeTargets(request, deps.machines);
  const nic = chooseWakeInterface(request.interfaceName, deps.storedInterface, deps.interfaces);
  const addresses = wakeAddressesOf(nic);
  const repeat = deps.repeat ?? WAKE_REPEAT;
  const sent = await wakeMachines(
    targets.map((t) => t.mac),
    { socketFactory: deps.socketFactory, interfaceName: nic.name, addresses, repeat, intervalMs: deps.intervalMs ?? WAKE_INTERVAL_MS, sleep: deps.sleep },
  );
  const machines = targets.map((t, i) => ({ ...t, sent: sent[i]!.sent, error: sent[i]!.error }));
  for (const m of machines) {
    deps.publish?.('wake.sent', { mac: m.mac, interfaceName: nic.name, addresses, packets: m.sent, machine: m.name, reason: m.error });
  }
  return { interfaceName: nic.name, addresses, repeat, machines, answerWithinMs: WAKE_ANSWER_MS };
}
