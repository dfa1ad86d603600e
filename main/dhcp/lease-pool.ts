// Full DHCP mode's address pool and leases (RFC 2131 §4.3). In memory, written to a JSON
// file shortly after every change so a restart keeps every client on its address
// (RFC 2131 §4.2: "the server SHOULD ... reuse the previously allocated address").
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock, TimerHandle, Logger } from '../core/index.js';
import { ipv4ToNumber, numberToIpv4 } from './wire.js';

export interface PoolConfig {
  first: string;
  last: string;
  subnetMask: string;
  router?: string;
  dns?: string[];
  /** Default 3600. */
  leaseSeconds?: number;
}

export interface Lease {
  /** Client identifier (option 61, hex) or MAC: who holds the address (RFC 2131 §4.2). */
  key: string;
  mac: string;
  ip: string;
  /** 'offered' reservations lapse quickly; 'bound' leases run to `expires`; BOOTP leases never expire (null). */
  state: 'offered' | 'bound' | 'declined';
  /** ms since the epoch; null = never (BOOTP). */
  expires: number | null;
  hostName?: string;
  /** An 'offered' reservation whose address nobody answered for (ARP probe before the OFFER). */
  checked?: boolean;
}

/** How long an OFFER keeps its address for the client (RFC 2131 §4.3.1 leaves it to us). */
export const OFFER_HOLD_MS = 60_000;
/** How long an address a client DECLINEd (someone else uses it) stays out of the pool. */
export const DECLINE_HOLD_MS = 10 * 60_000;
/**
 * How long an address that answered our own check stays out of the pool. Shorter than a
 * DECLINE: the host that answered may be a bench PC booted once with a static address,
 * and after this the address is checked again before anyone gets it.
 */
export const IN_USE_HOLD_MS = 5 * 60_000;
/** Key of the pool entry that keeps an address answered for by another host out of the pool. */
export const IN_USE_KEY_PREFIX = 'in-use:';

const FILE_VERSION = 1;

export class LeasePool {
  private readonly byIp = new Map<string, Lease>();
  private readonly firstNum: number;
  private readonly lastNum: number;
  private readonly serverNum: number;
  private dirty = false;
  private timer?: TimerHandle;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    readonly config: PoolConfig,
    readonly serverAddress: string,
    private readonly clock: Clock,
    private readonly file?: string,
    private readonly logger?: Logger,
  ) {
    this.firstNum = ipv4ToNumber(config.first);
    this.lastNum = ipv4ToNumber(config.last);
    if (this.firstNum > this.lastNum) throw new Error(`pool ${config.first}-${config.last} is empty: the first address is after the last`);
    this.serverNum = ipv4ToNumber(serverAddress);
  }

  get leaseSeconds(): number {
    return this.config.leaseSeconds ?? 3600;
  }

  inPool(ip: string): boolean {
    let n: number;
    try {
      n = ipv4ToNumber(ip);
    } catch {
      return false;
    }
    return n >= this.firstNum && n <= this.lastNum && n !== this.serverNum;
  }

  /** Same subnet as the server (for INIT-REBOOT checks, RFC 2131 §4.3.2). */
  onOurSubnet(ip: string): boolean {
    try {
      const mask = ipv4ToNumber(this.config.subnetMask);
      return (ipv4ToNumber(ip) & mask) >>> 0 === (this.serverNum & mask) >>> 0;
    } catch {
      return false;
    }
  }

  private live(lease: Lease | undefined, now: number): Lease | undefined {
    if (!lease) return undefined;
    if (lease.expires !== null && lease.expires <= now) return undefined;
    return lease;
  }

  leaseOf(key: string, now: number): Lease | undefined {
    for (const lease of this.byIp.values()) if (lease.key === key && lease.state !== 'declined' && this.live(lease, now)) return lease;
    return undefined;
  }

  /** Who holds `ip` now, if anyone. */
  holderOf(ip: string, now: number): Lease | undefined {
    return this.live(this.byIp.get(ip), now);
  }

  /**
   * An address for a DISCOVER (RFC 2131 §4.3.1): the client's current or previous
   * address, else the one it asks for if free, else the lowest free one. Reserved for
   * OFFER_HOLD_MS. Undefined when the pool is exhausted.
   */
  offer(key: string, mac: string, requestedIp: string | undefined, now: number): string | undefined {
    const current = this.leaseOf(key, now) ?? this.previousOf(key);
    let ip: string | undefined;
    if (current && this.isFreeFor(current.ip, key, now)) ip = current.ip;
    else if (requestedIp && this.isFreeFor(requestedIp, key, now)) ip = requestedIp;
    else {
      for (let n = this.firstNum; n <= this.lastNum; n++) {
        const candidate = numberToIpv4(n);
        if (this.isFreeFor(candidate, key, now)) {
          ip = candidate;
          break;
        }
      }
    }
    if (!ip) return undefined;
    const existing = this.holderOf(ip, now);
    if (existing?.key === key && existing.state === 'bound') return ip; // keep the running lease as it is
    const checked = existing?.key === key && existing.state === 'offered' && existing.checked === true;
    this.set({ key, mac, ip, state: 'offered', expires: now + OFFER_HOLD_MS, ...(checked ? { checked } : {}) });
    return ip;
  }

  /** An expired lease of this client, whose address is still the natural one to give back. */
  private previousOf(key: string): Lease | undefined {
    for (const lease of this.byIp.values()) if (lease.key === key && lease.state !== 'declined') return lease;
    return undefined;
  }

  isFreeFor(ip: string, key: string, now: number): boolean {
    if (!this.inPool(ip)) return false;
    const holder = this.holderOf(ip, now);
    return !holder || (holder.key === key && holder.state !== 'declined');
  }

  /** Binds `ip` to the client (ACK). `seconds` null = BOOTP, never expires. */
  commit(key: string, mac: string, ip: string, now: number, seconds: number | null, hostName?: string): Lease | undefined {
    if (!this.isFreeFor(ip, key, now)) return undefined;
    // One address per client: drop any other reservation it holds.
    for (const lease of [...this.byIp.values()]) if (lease.key === key && lease.ip !== ip && lease.state !== 'declined') this.byIp.delete(lease.ip);
    const lease: Lease = { key, mac, ip, state: 'bound', expires: seconds === null ? null : now + seconds * 1000, hostName };
    this.set(lease);
    return lease;
  }

  /** Client chose another server's offer or released: the address is free again (RFC 2131 §4.3.4). */
  release(key: string, ip?: string): Lease | undefined {
    for (const lease of this.byIp.values()) {
      if (lease.key === key && (ip === undefined || lease.ip === ip) && lease.state !== 'declined') {
        this.byIp.delete(lease.ip);
        this.dirty = true;
        return lease;
      }
    }
    return undefined;
  }

  /**
   * Whether `ip` must be checked before it is offered to this client: not when the client
   * holds it already (a running lease, or an offer that was checked), as dnsmasq does not
   * ping an address the asking client has a lease on.
   */
  needsCheck(key: string, ip: string, now: number): boolean {
    const holder = this.holderOf(ip, now);
    return !(holder && holder.key === key && (holder.state === 'bound' || holder.checked === true));
  }

  /** Nobody answered for the client's reserved address: offering it needs no new check. */
  markChecked(key: string, ip: string, now: number): boolean {
    const holder = this.holderOf(ip, now);
    if (!holder || holder.key !== key || holder.state !== 'offered') return false;
    holder.checked = true;
    return true;
  }

  /** Reserves `ip` for the client as a checked offer (a REQUEST whose address was just checked). */
  reserveChecked(key: string, mac: string, ip: string, now: number): boolean {
    if (!this.isFreeFor(ip, key, now)) return false;
    const holder = this.holderOf(ip, now);
    if (holder?.state === 'bound') return true;
    this.set({ key, mac, ip, state: 'offered', expires: now + OFFER_HOLD_MS, checked: true });
    return true;
  }

  /**
   * Another host answered for `ip` (ARP): keep it out of the pool for IN_USE_HOLD_MS, under
   * that host's MAC, and withdraw any reservation a client had on it.
   */
  markInUse(ip: string, now: number, heldBy?: string): boolean {
    if (!this.inPool(ip)) return false;
    this.set({ key: `${IN_USE_KEY_PREFIX}${heldBy ?? 'unknown'}`, mac: heldBy ?? '', ip, state: 'declined', expires: now + IN_USE_HOLD_MS });
    return true;
  }

  /** RFC 2131 §4.3.3: the address is in use by someone else; keep it out of the pool a while. */
  decline(key: string, mac: string, ip: string, now: number): boolean {
    if (!this.inPool(ip)) return false;
    this.set({ key, mac, ip, state: 'declined', expires: now + DECLINE_HOLD_MS });
    return true;
  }

  snapshot(): Lease[] {
    const now = this.clock.now();
    return [...this.byIp.values()].filter((l) => this.live(l, now)).map((l) => ({ ...l }));
  }

  private set(lease: Lease): void {
    this.byIp.set(lease.ip, lease);
    this.dirty = true;
  }

  async load(): Promise<void> {
    if (!this.file) return;
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new Error(`cannot read the lease file ${this.file}: ${(err as Error).message}`);
    }
    try {
      const data = JSON.parse(text) as { version?: number; leases?: Lease[] };
      for (const l of data.leases ?? []) {
        if (typeof l.ip === 'string' && typeof l.key === 'string' && (l.state === 'bound' || l.state === 'declined')) {
          this.byIp.set(l.ip, {
            key: l.key,
            mac: String(l.mac ?? ''),
            ip: l.ip,
            state: l.state,
            expires: typeof l.expires === 'number' ? l.expires : null,
            hostName: l.hostName,
          });
        }
      }
    } catch (err) {
      // A damaged file must not stop the bench; the clients simply get fresh addresses.
      this.logger?.warn(`lease file ${this.file} is not valid JSON (${(err as Error).message}); starting with no leases`);
    }
  }

  /** Writes the file a moment after a burst of changes. */
  persistSoon(): void {
    if (!this.file || !this.dirty || this.timer) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, 200);
  }

  async flush(): Promise<void> {
    if (this.timer) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.file || !this.dirty) return this.writing;
    this.dirty = false;
    const file = this.file;
    // Offers are not worth keeping; bound and declined entries are.
    const leases = [...this.byIp.values()].filter((l) => l.state !== 'offered');
    const body = JSON.stringify({ version: FILE_VERSION, leases }, null, 1);
    this.writing = this.writing.then(async () => {
      try {
        await mkdir(dirname(file), { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        await writeFile(tmp, body);
        await rename(tmp, file);
      } catch (err) {
        this.logger?.error(`could not write the lease file ${file}: ${(err as Error).message}`);
      }
    });
    return this.writing;
  }
}
