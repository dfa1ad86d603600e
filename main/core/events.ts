// The one event bus of the service host. Every protocol decision and every transfer
// step is published here; the log, the store (issue 5) and the UI (issue 6) subscribe.

/** Every event type the services publish. Names are `<service>.<what>`. */
export type BootEventType =
  // DHCP side (main/dhcp, main/pxe)
  | 'dhcp.discover' // a DISCOVER/REQUEST/INFORM arrived (before any decision)
  | 'proxy.offer' // Proxy DHCP offer sent (no address)
  | 'pxe.ack' // boot server (4011) ACK sent
  | 'dhcp.offer' // full DHCP: OFFER sent with an address
  | 'dhcp.lease' // full DHCP: ACK sent, address leased
  | 'dhcp.nak'
  | 'dhcp.release'
  | 'dhcp.decline'
  | 'dhcp.conflict' // full DHCP: an address answered our check (ARP) before an OFFER; kept out of the pool
  | 'dhcp.ignored' // a packet we saw and chose not to answer, with `reason`
  | 'dhcp.error' // malformed packet or send failure (logged once, loop goes on)
  | 'dhcp.other-ack' // proxy mode: the other DHCP server's ACK to a PC we made a boot offer to (its next-server)
  | 'dhcp.storm' // per-request DHCP events of one second beyond the DHCP thread's budget, counted (`eventsNotPublished`), not published
  // TFTP (main/tftp)
  | 'tftp.start'
  | 'tftp.progress'
  | 'tftp.done'
  | 'tftp.probe' // firmware size probe: RRQ with tsize, OACK, then ERROR 8 from the client
  | 'tftp.failed'
  | 'tftp.aborted' // client sent an ERROR other than a size probe
  | 'tftp.refused' // path refused, file not found, WRQ, malformed request
  // HTTP (main/http)
  | 'http.start'
  | 'http.progress'
  | 'http.done'
  | 'http.failed'
  | 'http.refused'
  // imaging (main/imaging): a PC's capture or deploy changed phase
  | 'imaging.progress'
  // service host (main/host)
  | 'service.state'
  | 'host.warning'
  // store (main/store): history off after a failed write (full disk), and back on
  | 'store.degraded'
  | 'store.recovered';

/**
 * One event. `mac` is the client's MAC in lower-case colon form when known
 * (DHCP always; TFTP/HTTP when the client's IP was seen in a DHCP exchange).
 * The remaining fields are event-specific details, JSON-serialisable.
 */
export interface BootEvent {
  type: BootEventType;
  /** milliseconds since the epoch */
  time: number;
  mac?: string;
  /** client IP address, when known */
  ip?: string;
  [detail: string]: unknown;
}

export type EventListener = (event: BootEvent) => void;

/** What a service is given to report events: type + details; the bus stamps the time. */
export type Publish = (type: BootEventType, details?: Omit<BootEvent, 'type' | 'time'>) => void;

export class EventBus {
  private readonly listeners = new Set<EventListener>();

  constructor(private readonly now: () => number = Date.now) {}

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  readonly publish: Publish = (type, details = {}) => this.publishAt(type, this.now(), details);

  /** publish() for an event that happened at `time` (ms since the epoch): one that another thread reports. */
  readonly publishAt = (type: BootEventType, time: number, details: Omit<BootEvent, 'type' | 'time'> = {}): void => {
    const event: BootEvent = { ...details, type, time };
    for (const listener of this.listeners) {
      // A failing subscriber (say, a full disk under the store) must never stop boot service.
      try {
        listener(event);
      } catch (err) {
        if (type !== 'host.warning') this.publish('host.warning', { message: `event listener failed: ${(err as Error).message}` });
      }
    }
  };
}

/**
 * One event per DHCP packet or answer: in a DISCOVER storm (thousands a second) these are
 * budgeted (the DHCP thread, the log and the history each keep a number a second and count
 * the rest). Leases, NAKs, conflicts and errors are rare and always kept.
 */
export function isPerRequestDhcpEvent(type: BootEventType): boolean {
  switch (type) {
    case 'dhcp.discover':
    case 'proxy.offer':
    case 'pxe.ack':
    case 'dhcp.offer':
    case 'dhcp.ignored':
      return true;
    default:
      return false;
  }
}
