// Machines of the bench: who they are (MACs, SMBIOS UUID, name, group, seat) and what they boot.
import type Database from 'better-sqlite3';
import { isPlaceholderUuid, normalizeMac, normalizeUuid } from '../core/index.js';

export interface Machine {
  id: number;
  macs: string[];
  uuid: string | null;
  name: string;
  group: string;
  seat: string;
  notes: string;
  /** Boot entry assigned to this machine itself (not the group's or the default). */
  entryId: number | null;
  /** After one complete boot of `entryId` the assignment is cleared (falls back to group/default). */
  bootOnce: boolean;
  /** Recorded automatically when an unknown client showed up; cleared once someone edits it. */
  discovered: boolean;
  firstSeen: number | null;
  lastSeen: number | null;
  lastArch: string | null;
  lastVendorClass: string | null;
  lastIp: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface SeenClient {
  mac: string;
  uuid?: string;
  arch?: string | number;
  vendorClass?: string;
  ip?: string;
  time: number;
}

export interface NewMachine {
  macs: string[];
  uuid?: string | null;
  name?: string;
  group?: string;
  seat?: string;
  notes?: string;
  entryId?: number | null;
  bootOnce?: boolean;
}

export type MachinePatch = Partial<Omit<NewMachine, 'macs'>> & { macs?: string[] };

export interface MachineGroup {
  name: string;
  entryId: number | null;
  notes: string;
}

interface MachineRow {
  id: number;
  uuid: string | null;
  name: string;
  group_name: string;
  seat: string;
  notes: string;
  entry_id: number | null;
  boot_once: number;
  discovered: number;
  first_seen: number | null;
  last_seen: number | null;
  last_arch: string | null;
  last_vendor_class: string | null;
  last_ip: string | null;
  created_at: number;
  updated_at: number;
  macs: string | null;
}

/** A MAC or UUID that cannot be stored; message says which value and what is accepted. */
export class MachineInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MachineInputError';
  }
}

const SELECT_MACHINE = `
  SELECT m.*, (SELECT group_concat(mac, ' ') FROM (SELECT mac FROM machine_macs WHERE machine_id = m.id ORDER BY rowid)) AS macs
  FROM machines m`;

function toMachine(row: MachineRow): Machine {
  return {
    id: row.id,
    macs: row.macs ? row.macs.split(' ') : [],
    uuid: row.uuid,
    name: row.name,
    group: row.group_name,
    seat: row.seat,
    notes: row.notes,
    entryId: row.entry_id,
    bootOnce: row.boot_once === 1,
    discovered: row.discovered === 1,
    firstSeen: row.first_seen,
    lastSeen: row.last_seen,
    lastArch: row.last_arch,
    lastVendorClass: row.last_vendor_class,
    lastIp: row.last_ip,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function requireMac(value: string): string {
  const mac = normalizeMac(value);
  if (!mac) throw new MachineInputError(`"${value}" is not a MAC address: write six hex pairs, e.g. 52:54:00:12:34:56`);
  return mac;
}

function optionalUuid(value: string | null | undefined): string | null | undefined {
  if (value === undefined || value === null) return value;
  if (value.trim() === '') return null;
  const uuid = normalizeUuid(value);
  if (!uuid) throw new MachineInputError(`"${value}" is not a UUID: write 32 hex digits as 8-4-4-4-12, e.g. 4c4c4544-0042-3510-8052-b4c04f4e4a31`);
  return uuid;
}

export class MachineRepository {
  private readonly byId: Database.Statement<[number], MachineRow>;
  private readonly byMac: Database.Statement<[string], MachineRow>;
  private readonly byUuid: Database.Statement<[string], MachineRow>;
  private readonly insertMachine: Database.Statement;
  private readonly insertMac: Database.Statement;
  private readonly macOwner: Database.Statement<[string], { machine_id: number }>;
  private readonly touchSeen: Database.Statement;
  private readonly idExists: Database.Statement<[number], { id: number }>;
  private readonly recordSeenInTransaction: (client: SeenClient) => { id: number; created: boolean };

  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {
    this.byId = db.prepare(`${SELECT_MACHINE} WHERE m.id = ?`);
    this.byMac = db.prepare(`${SELECT_MACHINE} WHERE m.id = (SELECT machine_id FROM machine_macs WHERE mac = ?)`);
    this.byUuid = db.prepare(`${SELECT_MACHINE} WHERE m.uuid = ? LIMIT 2`);
    this.insertMachine = db.prepare(`INSERT INTO machines
      (uuid, name, group_name, seat, notes, entry_id, boot_once, discovered, first_seen, last_seen, last_arch, last_vendor_class, last_ip, created_at, updated_at)
      VALUES (@uuid, @name, @group, @seat, @notes, @entryId, @bootOnce, @discovered, @firstSeen, @lastSeen, @lastArch, @lastVendorClass, @lastIp, @now, @now)`);
    this.insertMac = db.prepare('INSERT INTO machine_macs (mac, machine_id) VALUES (?, ?)');
    this.macOwner = db.prepare('SELECT machine_id FROM machine_macs WHERE mac = ?');
    this.touchSeen = db.prepare(`UPDATE machines SET
        first_seen = coalesce(first_seen, @time),
        last_seen = max(coalesce(last_seen, 0), @time),
        last_arch = coalesce(@arch, last_arch),
        last_vendor_class = coalesce(@vendorClass, last_vendor_class),
        last_ip = coalesce(@ip, last_ip),
        uuid = coalesce(uuid, @uuid)
      WHERE id = @id`);
    this.idExists = db.prepare('SELECT id FROM machines WHERE id = ?');
    // Built once: db.transaction() makes a new wrapper each call, which showed in the
    // per-DISCOVER profile.
    this.recordSeenInTransaction = db.transaction((client: SeenClient) => this.recordSeenRows(client));
  }

  /** True while machine `id` exists; cheaper than get() when only that matters. */
  exists(id: number): boolean {
    return this.idExists.get(id) !== undefined;
  }

  get(id: number): Machine | undefined {
    const row = this.byId.get(id);
    return row && toMachine(row);
  }

  findByMac(mac: string): Machine | undefined {
    const normalized = normalizeMac(mac);
    if (!normalized) return undefined;
    const row = this.byMac.get(normalized);
    return row && toMachine(row);
  }

  /** The one machine with this UUID; undefined when none, when several share it, or for placeholder UUIDs. */
  findByUuid(uuid: string): Machine | undefined {
    const normalized = normalizeUuid(uuid);
    if (!normalized || isPlaceholderUuid(normalized)) return undefined;
    const rows = this.byUuid.all(normalized);
    return rows.length === 1 ? toMachine(rows[0]) : undefined;
  }

  /**
   * MACs and UUIDs of the machines that may boot something other than the default entry:
   * those with an entry of their own or in a group (whose entry may be set). A client found
   * in neither boots the default whatever find() would return, so the DHCP path can answer
   * it without a query per client (a DISCOVER storm brings a new MAC per packet, and every
   * discovered machine is in neither). One query for all of them: cheap while only a bench's
   * worth of machines carry assignments.
   */
  identifiersWithOwnAssignment(): { macs: Set<string>; uuids: Set<string> } {
    const rows = this.db
      .prepare(
        `SELECT mm.mac AS mac, m.uuid AS uuid FROM machines m LEFT JOIN machine_macs mm ON mm.machine_id = m.id
        WHERE m.entry_id IS NOT NULL OR m.group_name <> ''`,
      )
      .all() as { mac: string | null; uuid: string | null }[];
    const macs = new Set<string>();
    const uuids = new Set<string>();
    for (const row of rows) {
      if (row.mac) macs.add(row.mac);
      if (row.uuid) uuids.add(row.uuid);
    }
    return { macs, uuids };
  }

  /** By MAC first (what PXE identifies by), then by a UUID that identifies exactly one machine. */
  find(mac?: string, uuid?: string): Machine | undefined {
    return (mac ? this.findByMac(mac) : undefined) ?? (uuid ? this.findByUuid(uuid) : undefined);
  }

  list(filter: { group?: string; discovered?: boolean } = {}): Machine[] {
    const where: string[] = [];
    const params: Record<string, unknown> = {};
    if (filter.group !== undefined) {
      where.push('m.group_name = @group COLLATE NOCASE');
      params.group = filter.group;
    }
    if (filter.discovered !== undefined) {
      where.push('m.discovered = @discovered');
      params.discovered = filter.discovered ? 1 : 0;
    }
    const sql = `${SELECT_MACHINE} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY m.group_name, m.name, m.id`;
    return (this.db.prepare(sql).all(params) as MachineRow[]).map(toMachine);
  }

  create(input: NewMachine): Machine {
    const macs = input.macs.map(requireMac);
    const uuid = optionalUuid(input.uuid) ?? null;
    if (macs.length === 0 && !uuid) throw new MachineInputError('a machine needs a MAC address or a UUID to be recognised');
    return this.db.transaction(() => {
      for (const mac of macs) this.assertMacFree(mac, undefined);
      const now = this.now();
      const id = Number(
        this.insertMachine.run({
          uuid,
          name: input.name ?? '',
          group: input.group ?? '',
          seat: input.seat ?? '',
          notes: input.notes ?? '',
          entryId: input.entryId ?? null,
          bootOnce: input.bootOnce ? 1 : 0,
          discovered: 0,
          firstSeen: null,
          lastSeen: null,
          lastArch: null,
          lastVendorClass: null,
          lastIp: null,
          now,
        }).lastInsertRowid,
      );
      for (const mac of new Set(macs)) this.insertMac.run(mac, id);
      return this.get(id)!;
    })();
  }

  /** Changes what is given; `macs` replaces the machine's MAC list. Editing a machine makes it no longer "discovered". */
  update(id: number, patch: MachinePatch): Machine {
    return this.db.transaction(() => {
      const current = this.get(id);
      if (!current) throw new MachineInputError(`machine ${id} does not exist (deleted meanwhile?)`);
      const uuid = optionalUuid(patch.uuid);
      this.db
        .prepare(
          `UPDATE machines SET uuid = @uuid, name = @name, group_name = @group, seat = @seat, notes = @notes,
          entry_id = @entryId, boot_once = @bootOnce, discovered = 0, updated_at = @now WHERE id = @id`,
        )
        .run({
          id,
          uuid: uuid === undefined ? current.uuid : uuid,
          name: patch.name ?? current.name,
          group: patch.group ?? current.group,
          seat: patch.seat ?? current.seat,
          notes: patch.notes ?? current.notes,
          entryId: patch.entryId === undefined ? current.entryId : patch.entryId,
          bootOnce: (patch.bootOnce ?? current.bootOnce) ? 1 : 0,
          now: this.now(),
        });
      if (patch.macs) {
        const macs = [...new Set(patch.macs.map(requireMac))];
        if (macs.length === 0 && !(uuid === undefined ? current.uuid : uuid)) {
          throw new MachineInputError('a machine needs a MAC address or a UUID to be recognised');
        }
        for (const mac of macs) this.assertMacFree(mac, id);
        this.db.prepare('DELETE FROM machine_macs WHERE machine_id = ?').run(id);
        for (const mac of macs) this.insertMac.run(mac, id);
      }
      return this.get(id)!;
    })();
  }

  /** Adds one more MAC (a second NIC, a USB adapter) to a machine. */
  addMac(id: number, mac: string): Machine {
    const normalized = requireMac(mac);
    return this.db.transaction(() => {
      this.assertMacFree(normalized, id);
      this.db.prepare('INSERT OR IGNORE INTO machine_macs (mac, machine_id) VALUES (?, ?)').run(normalized, id);
      return this.get(id)!;
    })();
  }

  remove(id: number): boolean {
    return this.db.prepare('DELETE FROM machines WHERE id = ?').run(id).changes > 0;
  }

  /**
   * Records that a client was seen (a DHCP message, a transfer). An unknown MAC becomes a
   * discovered machine, or a new MAC of the machine its (non-placeholder) UUID names.
   */
  upsertSeen(client: SeenClient): { machine: Machine; created: boolean } {
    const { id, created } = this.recordSeen(client);
    return { machine: this.get(id)!, created };
  }

  /**
   * upsertSeen() without reading the machine back: for the event recorder, which needs only
   * its id. Inside a caller's transaction (the recorder's flush) it joins it instead of
   * opening a savepoint of its own: a caller that catches an error from it and goes on
   * would keep half a record, which the recorder never does (it rolls the flush back).
   */
  recordSeen(client: SeenClient): { id: number; created: boolean } {
    return this.db.inTransaction ? this.recordSeenRows(client) : this.recordSeenInTransaction(client);
  }

  /**
   * For a machine whose id the caller just learnt from recordSeen() in the same transaction:
   * the same update recordSeen() makes for a known MAC, without looking the MAC up again.
   */
  touchSeenById(id: number, client: Omit<SeenClient, 'mac'>): void {
    const uuid = client.uuid ? normalizeUuid(client.uuid) : undefined;
    const arch = client.arch === undefined || client.arch === null ? null : String(client.arch);
    this.touchSeen.run({ id, time: client.time, arch, vendorClass: client.vendorClass ?? null, ip: client.ip ?? null, uuid: uuid ?? null });
  }

  private recordSeenRows(client: SeenClient): { id: number; created: boolean } {
    const mac = requireMac(client.mac);
    const uuid = client.uuid ? normalizeUuid(client.uuid) : undefined;
    const arch = client.arch === undefined || client.arch === null ? null : String(client.arch);
    let created = false;
    let id = this.macOwner.get(mac)?.machine_id;
    if (id === undefined && uuid) {
      const sameBoard = this.findByUuid(uuid);
      if (sameBoard) {
        id = sameBoard.id;
        this.insertMac.run(mac, id);
      }
    }
    if (id === undefined) {
      id = Number(
        this.insertMachine.run({
          uuid: uuid ?? null,
          name: '',
          group: '',
          seat: '',
          notes: '',
          entryId: null,
          bootOnce: 0,
          discovered: 1,
          firstSeen: client.time,
          lastSeen: client.time,
          lastArch: arch,
          lastVendorClass: client.vendorClass ?? null,
          lastIp: client.ip ?? null,
          now: this.now(),
        }).lastInsertRowid,
      );
      this.insertMac.run(mac, id);
      created = true;
    } else {
      this.touchSeen.run({ id, time: client.time, arch, vendorClass: client.vendorClass ?? null, ip: client.ip ?? null, uuid: uuid ?? null });
    }
    return { id, created };
  }

  /** Clears a machine's own assignment and boot-once flag (see boot-assignment.ts for when). */
  clearAssignment(id: number): boolean {
    return this.db.prepare('UPDATE machines SET entry_id = NULL, boot_once = 0, updated_at = ? WHERE id = ?').run(this.now(), id).changes > 0;
  }

  // Groups: a bench or classroom; its entry is what members boot when they have none of their own.

  getGroup(name: string): MachineGroup | undefined {
    const row = this.db.prepare('SELECT name, entry_id, notes FROM machine_groups WHERE name = ?').get(name) as
      { name: string; entry_id: number | null; notes: string } | undefined;
    return row && { name: row.name, entryId: row.entry_id, notes: row.notes };
  }

  setGroup(group: MachineGroup): MachineGroup {
    this.db
      .prepare(
        `INSERT INTO machine_groups (name, entry_id, notes) VALUES (@name, @entryId, @notes)
        ON CONFLICT(name) DO UPDATE SET entry_id = excluded.entry_id, notes = excluded.notes`,
      )
      .run(group);
    return this.getGroup(group.name)!;
  }

  /** Every group name in use, whether or not it has settings of its own, with its member count. */
  listGroups(): (MachineGroup & { count: number })[] {
    const rows = this.db
      .prepare(
        `SELECT g.name AS name, mg.entry_id AS entry_id, coalesce(mg.notes, '') AS notes,
          (SELECT count(*) FROM machines m WHERE m.group_name = g.name COLLATE NOCASE) AS count FROM
        (SELECT name FROM machine_groups UNION SELECT group_name FROM machines WHERE group_name <> '') g
        LEFT JOIN machine_groups mg ON mg.name = g.name ORDER BY g.name`,
      )
      .all() as { name: string; entry_id: number | null; notes: string; count: number }[];
    return rows.map((row) => ({ name: row.name, entryId: row.entry_id, notes: row.notes, count: row.count }));
  }

  removeGroup(name: string): boolean {
    return this.db.prepare('DELETE FROM machine_groups WHERE name = ?').run(name).changes > 0;
  }

  private assertMacFree(mac: string, allowedOwner: number | undefined): void {
    const owner = this.macOwner.get(mac)?.machine_id;
    if (owner !== undefined && owner !== allowedOwner) {
      throw new MachineInputError(`MAC ${mac} already belongs to machine ${owner}: remove it there first or edit that machine`);
    }
  }
}
