// Watching the served NIC: cable pulled, cable back, address changed, USB NIC replugged.
// The UI shows the state; the host decides what to do. What a scoped socket survives:
//  - link down/up (same ifindex): the socket keeps working once the link is back
//    (sends fail meanwhile with ENETDOWN/ENETUNREACH; the loop must log and go on);
//  - the NIC removed and re-created (USB replug, new ifindex): the socket stays tied to the
//    old index and is deaf; the host must reopen its sockets ('replaced').
// Polling /sys every 2 s is cheap and portable; netlink would be faster but needs a
// native addon or a raw socket and is not worth it for a human-scale event.
import { type Clock, type TimerHandle, systemClock } from '../core/index.js';
import { listInterfaces, type NetInterface } from './interfaces.js';

export type InterfaceChangeKind = 'appeared' | 'gone' | 'link-up' | 'link-down' | 'addresses' | 'replaced';

export interface InterfaceChange {
  name: string;
  kinds: InterfaceChangeKind[];
  previous?: NetInterface;
  current?: NetInterface;
  /** True when sockets tied to this NIC must be reopened (it is new or was re-created). */
  reopenSockets: boolean;
}

/** What changed between two readings of one NIC; [] when nothing that matters did. */
export function diffInterface(previous: NetInterface | undefined, current: NetInterface | undefined): InterfaceChangeKind[] {
  if (!previous && !current) return [];
  if (!previous) return ['appeared'];
  if (!current) return ['gone'];
  const kinds: InterfaceChangeKind[] = [];
  if (previous.index !== undefined && current.index !== undefined && previous.index !== current.index) kinds.push('replaced');
  if (previous.up !== current.up) kinds.push(current.up ? 'link-up' : 'link-down');
  const addresses = (nic: NetInterface) =>
    nic.ipv4
      .map((a) => `${a.address}/${a.prefixLength}`)
      .sort()
      .join(',');
  if (addresses(previous) !== addresses(current)) kinds.push('addresses');
  return kinds;
}

export interface InterfaceWatch {
  stop(): void;
  /** The last reading (undefined while the NIC does not exist). */
  current(): NetInterface | undefined;
}

export interface WatchOptions {
  intervalMs?: number;
  clock?: Clock;
  list?: () => NetInterface[];
}

/** Calls `onChange` whenever the NIC called `name` changes; first reading is taken now. */
export function watchInterface(name: string, onChange: (change: InterfaceChange) => void, options: WatchOptions = {}): InterfaceWatch {
  const clock = options.clock ?? systemClock;
  const interval = options.intervalMs ?? 2000;
  const list = options.list ?? (() => listInterfaces({ only: name }));
  const read = () => {
    try {
      return list().find((nic) => nic.name === name);
    } catch {
      return undefined;
    }
  };
  let last = read();
  let timer: TimerHandle | undefined;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    const now = read();
    const kinds = diffInterface(last, now);
    const previous = last;
    last = now;
    if (kinds.length) {
      onChange({ name, kinds, previous, current: now, reopenSockets: kinds.includes('replaced') || kinds.includes('appeared') });
    }
    if (!stopped) timer = clock.setTimeout(tick, interval);
  };
  timer = clock.setTimeout(tick, interval);
  return {
    stop() {
      stopped = true;
      if (timer) clock.clearTimeout(timer);
    },
    current: () => last,
  };
}
