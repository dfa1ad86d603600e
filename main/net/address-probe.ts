// The shared part of the address check's probers (main/net/arp-probe.ts, icmp-probe.ts):
// one non-blocking socket per DHCP service, any number of probes waiting on it at once,
// read on a short timer only while one waits, so the event loop never blocks and other
// clients' DISCOVERs are answered meanwhile.
import { systemClock, type Clock, type TimerHandle } from '../core/index.js';

export interface AddressProbeResult {
  inUse: boolean;
  /** MAC (lower-case aa:bb:...) of the host that answered, when the method tells (ARP). */
  by?: string;
  method: 'arp' | 'icmp';
  /** Time from the first probe to the answer (or to the deadline). */
  ms: number;
}

/** What a prober needs from its socket. */
export interface ProbeSocket {
  readonly method: 'arp' | 'icmp';
  /** Sends one probe for `ip`; returns the errno name when it could not be sent. */
  send(ip: string): string | undefined;
  /** Reads what is queued, calling `claim` for every address someone answered for; returns the errno name when reading failed. */
  drain(claim: (ip: string, by?: string) => void): string | undefined;
  close(): void;
}

export const DEFAULT_ADDRESS_PROBE_MS = 300;
/** How often the socket is read while a probe waits. */
const READ_INTERVAL_MS = 10;

interface Waiting {
  ip: string;
  started: number;
  deadline: number;
  resendAt?: number;
  resolve: (result: AddressProbeResult) => void;
}

export class PolledAddressProber {
  private readonly waiting = new Set<Waiting>();
  private timer?: TimerHandle;
  private closed = false;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  /** Called when reading the socket fails (the DHCP service reports it). */
  onError?: (reason: string) => void;

  constructor(
    private readonly socket: ProbeSocket,
    options: { timeoutMs?: number; clock?: Clock } = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_ADDRESS_PROBE_MS;
  }

  get method(): 'arp' | 'icmp' {
    return this.socket.method;
  }

  /**
   * Probes `ip`: one probe at once and another halfway through the wait (one lost frame
   * must not hide a host); resolves at the first answer or at the deadline.
   */
  probe(ip: string): Promise<AddressProbeResult> {
    if (this.closed) return Promise.reject(new Error('the address prober is closed'));
    return new Promise((resolve, reject) => {
      const now = this.clock.now();
      const error = this.socket.send(ip);
      if (error) return reject(new Error(`${this.socket.method.toUpperCase()} probe for ${ip} could not be sent: ${error}`));
      this.waiting.add({ ip, started: now, deadline: now + this.timeoutMs, resendAt: now + this.timeoutMs / 2, resolve });
      this.schedule();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.settleAll();
    this.socket.close();
  }

  private schedule(): void {
    if (this.timer || this.waiting.size === 0) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      const error = this.socket.drain((ip, by) => this.claimed(ip, by));
      if (error) {
        // An unreadable socket must not hold offers forever: each waiting probe ends "not seen".
        this.settleAll();
        this.onError?.(`reading ${this.socket.method.toUpperCase()} answers failed: ${error}`);
        return;
      }
      this.expire();
      this.schedule();
    }, READ_INTERVAL_MS);
  }

  private claimed(ip: string, by?: string): void {
    for (const w of this.waiting) {
      if (w.ip !== ip) continue;
      this.waiting.delete(w);
      w.resolve({ inUse: true, by, method: this.socket.method, ms: this.clock.now() - w.started });
    }
  }

  private expire(): void {
    const now = this.clock.now();
    for (const w of this.waiting) {
      if (now >= w.deadline) {
        this.waiting.delete(w);
        w.resolve({ inUse: false, method: this.socket.method, ms: now - w.started });
      } else if (w.resendAt !== undefined && now >= w.resendAt) {
        w.resendAt = undefined;
        this.socket.send(w.ip);
      }
    }
  }

  private settleAll(): void {
    for (const w of this.waiting) w.resolve({ inUse: false, method: this.socket.method, ms: this.clock.now() - w.started });
    this.waiting.clear();
  }
}
