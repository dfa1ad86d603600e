// Full-DHCP leases, so a restarted host hands each client the address it had.
import type Database from 'better-sqlite3';
import { normalizeMac } from '../core/index.js';

export interface Lease {
  mac: string;
  ip: string;
  hostname: string | null;
  expiresAt: number;
  updatedAt: number;
}

interface LeaseRow {
  mac: string;
  ip: string;
  hostname: string | null;
  expires_at: number;
  updated_at: number;
}

const toLease = (row: LeaseRow): Lease => ({ mac: row.mac, ip: row.ip, hostname: row.hostname, expiresAt: row.expires_at, updatedAt: row.updated_at });

export class LeaseRepository {
  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {}

  /** Records a lease; an address held by another MAC (expired there, or reassigned) moves to this one. */
  upsert(lease: { mac: string; ip: string; hostname?: string | null; expiresAt: number }): Lease {
    const mac = normalizeMac(lease.mac);
    if (!mac) throw new Error(`"${lease.mac}" is not a MAC address`);
    return this.db.transaction(() => {
      this.db.prepare('DELETE FROM leases WHERE ip = ? AND mac <> ?').run(lease.ip, mac);
      this.db
        .prepare(
          `INSERT INTO leases (mac, ip, hostname, expires_at, updated_at) VALUES (@mac, @ip, @hostname, @expiresAt, @now)
          ON CONFLICT(mac) DO UPDATE SET ip = excluded.ip, hostname = coalesce(excluded.hostname, hostname),
            expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
        )
        .run({ mac, ip: lease.ip, hostname: lease.hostname ?? null, expiresAt: lease.expiresAt, now: this.now() });
      return this.findByMac(mac)!;
    })();
  }

  findByMac(mac: string): Lease | undefined {
    const row = this.db.prepare('SELECT * FROM leases WHERE mac = ?').get(normalizeMac(mac) ?? mac) as LeaseRow | undefined;
    return row && toLease(row);
  }

  findByIp(ip: string): Lease | undefined {
    const row = this.db.prepare('SELECT * FROM leases WHERE ip = ?').get(ip) as LeaseRow | undefined;
    return row && toLease(row);
  }

  list(): Lease[] {
    return (this.db.prepare('SELECT * FROM leases ORDER BY ip').all() as LeaseRow[]).map(toLease);
  }

  release(mac: string): boolean {
    return this.db.prepare('DELETE FROM leases WHERE mac = ?').run(normalizeMac(mac) ?? mac).changes > 0;
  }

  removeExpired(now: number): number {
    return this.db.prepare('DELETE FROM leases WHERE expires_at <= ?').run(now).changes;
  }
}
