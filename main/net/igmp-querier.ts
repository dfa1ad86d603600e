// Bootbench's IGMP querier on the chosen NIC: it listens for other queriers as long as it
// is open, and sends general queries (igmp.ts) while at least one image stream holds it,
// so a snooping switch with no querier of its own keeps forwarding the stream.
//
// Node has no raw sockets: the socket is made through libc.ts (socket(AF_INET, SOCK_RAW,
// IPPROTO_IGMP), which needs root or CAP_NET_RAW, as the ARP probe does), tied to the NIC
// with SO_BINDTODEVICE, and read without blocking on a short timer. The kernel builds the
// IP header; IP_OPTIONS adds the Router Alert and IP_MULTICAST_TTL 1 keeps it on the link.
// Linux only: elsewhere the status says so and streams run without queries.
import { systemClock, type Clock, type Logger, type TimerHandle } from '../core/index.js';
import { loadLibc, type Libc } from './libc.js';
import { encodeSockaddrIn, tieToDevice } from './scoped-udp.js';
import { EAGAIN_LIKE, SOCK_CLOEXEC, SOCK_NONBLOCK } from './arp-probe.js';
import { ALL_SYSTEMS, IGMP_MEMBERSHIP_QUERY, QuerierElection, ROUTER_ALERT, decodeIgmpDatagram, encodeGeneralQuery, type QuerierTimings } from './igmp.js';

// <sys/socket.h>, <netinet/in.h> (Linux)
const AF_INET = 2;
const SOCK_RAW = 3;
const IPPROTO_IP = 0;
const IPPROTO_IGMP = 2;
const IP_OPTIONS = 4;
const IP_MULTICAST_IF = 32;
const IP_MULTICAST_TTL = 33;
const IP_MULTICAST_LOOP = 34;
/** How often the socket is read for other queriers' queries. */
const READ_INTERVAL_MS = 250;

/** What the raw socket does, so the loop can be tested without one. */
export interface IgmpSocket {
  /** Sends a general query; returns the errno name when it could not. */
  sendQuery(query: Buffer): string | undefined;
  /** Reads what is queued, calling `heard` for each membership query's source; returns the errno name when reading failed. */
  drain(heard: (from: string) => void): string | undefined;
  close(): void;
}

/** Opens the raw IGMP socket on the NIC, or throws the reason it cannot (platform, privileges, NIC). */
export function openIgmpSocket(interfaceName: string, address: string, platform: NodeJS.Platform = process.platform): IgmpSocket {
  if (platform !== 'linux') throw new Error(`IGMP queries are implemented on Linux only (this is ${platform})`);
  const c = loadLibc(platform);
  const fd = c.socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_IGMP);
  if (fd < 0) {
    const code = c.lastError();
    throw new Error(code === 'EPERM' || code === 'EACCES' ? `a raw IGMP socket needs root or CAP_NET_RAW (${code})` : `cannot open a raw IGMP socket: ${code}`);
  }
  try {
    tieToDevice(c, fd, interfaceName, 'linux');
    const set = (name: number, value: Buffer, what: string) => {
      if (c.setsockopt(fd, IPPROTO_IP, name, value, value.length) !== 0) throw new Error(`setsockopt ${what} on the IGMP socket failed: ${c.lastError()}`);
    };
    set(IP_MULTICAST_IF, encodeSockaddrIn(address, 0, 'linux').subarray(4, 8), 'IP_MULTICAST_IF');
    set(IP_MULTICAST_TTL, Buffer.from([1, 0, 0, 0]), 'IP_MULTICAST_TTL');
    set(IP_MULTICAST_LOOP, Buffer.from([0, 0, 0, 0]), 'IP_MULTICAST_LOOP');
    set(IP_OPTIONS, ROUTER_ALERT, 'IP_OPTIONS (Router Alert)');
  } catch (error) {
    c.close(fd);
    throw error;
  }
  return new RawIgmpSocket(c, fd);
}

class RawIgmpSocket implements IgmpSocket {
  private readonly to = encodeSockaddrIn(ALL_SYSTEMS, 0, 'linux');
  private readonly buffer = Buffer.alloc(2048);
  private readonly from = Buffer.alloc(16);
  private readonly fromLength = Buffer.alloc(4);

  constructor(
    private readonly c: Libc,
    private fd: number,
  ) {}

  sendQuery(query: Buffer): string | undefined {
    return this.c.sendto(this.fd, query, query.length, 0, this.to, this.to.length) === query.length ? undefined : this.c.lastError();
  }

  drain(heard: (from: string) => void): string | undefined {
    for (;;) {
      this.fromLength.writeUInt32LE(this.from.length);
      const n = this.c.recvfrom(this.fd, this.buffer, this.buffer.length, 0, this.from, this.fromLength);
      if (n < 0) {
        const code = this.c.lastError();
        return EAGAIN_LIKE.has(code) ? undefined : code;
      }
      const message = decodeIgmpDatagram(this.buffer, n);
      // General queries only: a group-specific one answers a leave and comes from the querier anyway.
      if (message?.type === IGMP_MEMBERSHIP_QUERY && message.group === '0.0.0.0') heard(message.from);
    }
  }

  close(): void {
    if (this.fd >= 0) this.c.close(this.fd);
    this.fd = -1;
  }
}

export interface IgmpQuerierOptions {
  interfaceName: string;
  /** the NIC's IPv4 address: the queries' source, and the side of the election */
  address: string;
  logger: Logger;
  clock?: Clock;
  timings?: QuerierTimings;
  /** 'off' never sends (listens only): for a test that shows a switch cutting the stream */
  mode?: 'auto' | 'off';
  /** tests inject a socket; default the raw IGMP socket */
  openSocket?: (interfaceName: string, address: string) => IgmpSocket;
  /** Each general query heard from another querier (for the host to record what doctor can read). */
  onHeard?: (from: string, at: number) => void;
}

export class IgmpQuerier {
  readonly election: QuerierElection;
  private readonly clock: Clock;
  private socket: IgmpSocket | undefined;
  /** Why there is no socket (platform, privileges), shown in the status. */
  private unavailable: string | undefined;
  private holders = 0;
  private timer: TimerHandle | undefined;
  private closed = false;
  private sendError: string | undefined;

  constructor(private readonly options: IgmpQuerierOptions) {
    this.clock = options.clock ?? systemClock;
    this.election = new QuerierElection(options.address, options.timings);
    try {
      this.socket = (options.openSocket ?? openIgmpSocket)(options.interfaceName, options.address);
    } catch (error) {
      this.unavailable = (error as Error).message;
    }
    this.schedule();
  }

  /** Whether it listens on the NIC (it has its socket: Linux, privileges). */
  get listening(): boolean {
    return this.socket !== undefined;
  }

  /** Keeps queries going while the returned release has not been called (one hold per stream). */
  hold(): () => void {
    if (this.closed) return () => {};
    this.holders += 1;
    if (this.holders === 1 && this.options.mode !== 'off') {
      this.election.start(this.clock.now());
      this.log('info', this.status());
      this.schedule(true);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holders -= 1;
      if (this.holders === 0) {
        this.election.stop();
        if (this.socket && this.election.sent) this.log('info', `IGMP: stream ended, Bootbench stops sending queries on ${this.options.interfaceName}`);
      }
    };
  }

  /** One line for the stream's status and the log: what was heard and what Bootbench does. */
  status(): string {
    const nic = this.options.interfaceName;
    if (this.unavailable) {
      return `Bootbench cannot send IGMP queries on ${nic} (${this.unavailable}): a switch with IGMP snooping and no querier may cut the stream after a few minutes; PCs then finish by HTTP`;
    }
    const role = this.election.role(this.clock.now());
    if ('other' in role && role.other) return `IGMP querier ${role.other} heard on ${nic}: it keeps snooping switches forwarding; Bootbench sends no queries`;
    if (this.options.mode === 'off') return `no IGMP querier heard on ${nic}; Bootbench's own queries are turned off`;
    if (role.role === 'idle') return `no IGMP querier heard on ${nic}: Bootbench will send queries while it streams`;
    return `no IGMP querier heard on ${nic}: Bootbench sends IGMP queries every ${Math.round(this.election.timings.queryIntervalMs / 1000)} s while it streams${this.sendError ? ` (the last failed: ${this.sendError})` : ''}`;
  }

  close(): void {
    this.closed = true;
    this.election.stop();
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.socket?.close();
    this.socket = undefined;
  }

  /** One tick: read queued queries, then send ours if due. */
  private tick(): void {
    this.timer = undefined;
    const socket = this.socket;
    if (this.closed || !socket) return;
    const now = this.clock.now();
    const wasQuiet = this.election.role(now).role === 'quiet';
    const error = socket.drain((from) => {
      this.election.heard(from, now);
      if (from !== this.options.address) this.options.onHeard?.(from, now);
    });
    if (error) this.log('warn', `IGMP: reading queries on ${this.options.interfaceName} failed: ${error}`);
    const role = this.election.role(now);
    if (role.role === 'quiet' && !wasQuiet) this.log('info', this.status());
    if (this.election.due(now)) {
      this.sendError = socket.sendQuery(encodeGeneralQuery(this.election.timings.maxResponseMs));
      if (this.sendError) this.log('warn', `IGMP: sending a query on ${this.options.interfaceName} failed: ${this.sendError}`);
      this.election.queried(now);
    }
    this.schedule();
  }

  private schedule(soon = false): void {
    if (this.closed || !this.socket) return;
    if (this.timer && !soon) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    const wake = this.election.wakeAt(this.clock.now());
    const delay = soon ? 0 : Math.max(0, Math.min(READ_INTERVAL_MS, wake === undefined ? READ_INTERVAL_MS : wake - this.clock.now()));
    this.timer = this.clock.setTimeout(() => this.tick(), delay);
  }

  private log(level: 'info' | 'warn', message: string): void {
    this.options.logger[level](message);
  }
}

/**
 * Listens `ms` on the NIC for other queriers' membership queries (for `bootbench doctor`).
 * Returns the addresses heard, or the reason it could not listen.
 */
export async function listenForQueriers(
  interfaceName: string,
  address: string,
  ms: number,
  openSocket: (interfaceName: string, address: string) => IgmpSocket = openIgmpSocket,
): Promise<{ heard: string[]; error?: string }> {
  let socket: IgmpSocket;
  try {
    socket = openSocket(interfaceName, address);
  } catch (error) {
    return { heard: [], error: (error as Error).message };
  }
  const heard = new Set<string>();
  const end = Date.now() + ms;
  try {
    while (Date.now() < end) {
      const error = socket.drain((from) => {
        if (from !== address) heard.add(from);
      });
      if (error) return { heard: [...heard], error };
      await new Promise((resolve) => setTimeout(resolve, Math.min(READ_INTERVAL_MS, Math.max(1, end - Date.now()))));
    }
    socket.drain((from) => {
      if (from !== address) heard.add(from);
    });
  } finally {
    socket.close();
  }
  return { heard: [...heard] };
}
