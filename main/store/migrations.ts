// The database schema as a numbered, append-only list of steps. PRAGMA user_version holds the
// number of the last step applied. A released step is never edited: a change to the schema is
// a new step at the end, so every database in the field can reach the latest schema from where
// it is, and the migration tests replay every earlier version.
import type Database from 'better-sqlite3';

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'machines, groups, boot entries and their files, settings',
    sql: `
      CREATE TABLE entries (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL COLLATE NOCASE UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('nbp','kernel','initrd','iso','wim','ipxe-script','local-disk','secure-boot-chain')),
        arguments TEXT NOT NULL DEFAULT '',
        notes TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE entry_files (
        entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        arch TEXT NOT NULL,
        position INTEGER NOT NULL,
        role TEXT NOT NULL,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (entry_id, arch, position)
      );
      CREATE TABLE machine_groups (
        name TEXT PRIMARY KEY COLLATE NOCASE,
        entry_id INTEGER REFERENCES entries(id) ON DELETE SET NULL,
        notes TEXT NOT NULL DEFAULT ''
      );
      CREATE TABLE machines (
        id INTEGER PRIMARY KEY,
        uuid TEXT,
        name TEXT NOT NULL DEFAULT '',
        group_name TEXT NOT NULL DEFAULT '',
        seat TEXT NOT NULL DEFAULT '',
        notes TEXT NOT NULL DEFAULT '',
        entry_id INTEGER REFERENCES entries(id) ON DELETE SET NULL,
        boot_once INTEGER NOT NULL DEFAULT 0,
        discovered INTEGER NOT NULL DEFAULT 0,
        first_seen INTEGER,
        last_seen INTEGER,
        last_arch TEXT,
        last_vendor_class TEXT,
        last_ip TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      -- Not unique: cloned boards and cheap firmware share SMBIOS UUIDs.
      CREATE INDEX machines_uuid ON machines(uuid);
      CREATE INDEX machines_group ON machines(group_name);
      CREATE TABLE machine_macs (
        mac TEXT PRIMARY KEY,
        machine_id INTEGER NOT NULL REFERENCES machines(id) ON DELETE CASCADE
      );
      CREATE INDEX machine_macs_machine ON machine_macs(machine_id);
      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    description: 'transfers and the per-machine boot timeline',
    sql: `
      CREATE TABLE transfers (
        id INTEGER PRIMARY KEY,
        transfer_key TEXT,
        machine_id INTEGER REFERENCES machines(id) ON DELETE SET NULL,
        mac TEXT,
        ip TEXT,
        protocol TEXT NOT NULL CHECK (protocol IN ('tftp','http')),
        file TEXT NOT NULL,
        options TEXT NOT NULL DEFAULT '{}',
        size INTEGER,
        bytes_sent INTEGER NOT NULL DEFAULT 0,
        retransmits INTEGER NOT NULL DEFAULT 0,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        outcome TEXT NOT NULL CHECK (outcome IN ('running','done','failed','probe','aborted','interrupted')),
        reason TEXT
      );
      CREATE INDEX transfers_machine ON transfers(machine_id, started_at);
      CREATE INDEX transfers_started ON transfers(started_at);
      CREATE INDEX transfers_running ON transfers(outcome) WHERE outcome = 'running';
      CREATE TABLE boot_events (
        id INTEGER PRIMARY KEY,
        machine_id INTEGER REFERENCES machines(id) ON DELETE CASCADE,
        mac TEXT,
        ip TEXT,
        time INTEGER NOT NULL,
        type TEXT NOT NULL,
        transfer_id INTEGER REFERENCES transfers(id) ON DELETE SET NULL,
        details TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX boot_events_machine ON boot_events(machine_id, time);
      CREATE INDEX boot_events_time ON boot_events(time);
    `,
  },
  {
    version: 3,
    description: 'full-DHCP leases kept across restarts',
    sql: `
      CREATE TABLE leases (
        mac TEXT PRIMARY KEY,
        ip TEXT NOT NULL UNIQUE,
        hostname TEXT,
        expires_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX leases_expiry ON leases(expires_at);
    `,
  },
  {
    version: 4,
    description: "imaging jobs (capture, deploy) and each PC's progress and result",
    sql: `
      CREATE TABLE image_jobs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('capture', 'deploy')),
        image TEXT NOT NULL,
        disk TEXT,
        then_action TEXT NOT NULL CHECK (then_action IN ('disk', 'poweroff')),
        created_at INTEGER NOT NULL
      );
      CREATE TABLE image_job_machines (
        job_id INTEGER NOT NULL REFERENCES image_jobs(id) ON DELETE CASCADE,
        mac TEXT NOT NULL,
        phase TEXT NOT NULL,
        bytes INTEGER NOT NULL DEFAULT 0,
        total INTEGER NOT NULL DEFAULT 0,
        rate REAL NOT NULL DEFAULT 0,
        result TEXT CHECK (result IN ('done', 'failed')),
        reason TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (job_id, mac)
      );
      CREATE INDEX image_job_machines_mac ON image_job_machines(mac);
    `,
  },
  {
    version: 5,
    description: 'the event for every client DHCP message is named dhcp.received (it was dhcp.discover, whatever the message type)',
    sql: `
      UPDATE boot_events SET type = 'dhcp.received' WHERE type = 'dhcp.discover';
    `,
  },
  {
    version: 6,
    description: 'the partition an imaging PC is reading, writing or verifying (0 = the boot area), shown in its row',
    sql: `
      ALTER TABLE image_job_machines ADD COLUMN part INTEGER;
    `,
  },
  {
    version: 7,
    description: "each machine's seat in its room (row and column), for the room view",
    sql: `
      CREATE TABLE room_seats (
        machine_id INTEGER PRIMARY KEY REFERENCES machines(id) ON DELETE CASCADE,
        seat_row INTEGER NOT NULL CHECK (seat_row BETWEEN 1 AND 100),
        seat_column INTEGER NOT NULL CHECK (seat_column BETWEEN 1 AND 100)
      );
    `,
  },
  {
    version: 8,
    description: "a machine's extra CSV columns (room, locale, key ...), the values its answer files are rendered with",
    sql: `
      CREATE TABLE machine_fields (
        machine_id INTEGER NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (machine_id, name)
      );
    `,
  },
  {
    version: 9,
    description: 'how much of a deploy each PC got from the multicast stream and how much by HTTP repair (bytes), kept when the stream ends',
    sql: `
      ALTER TABLE image_job_machines ADD COLUMN streamed INTEGER;
      ALTER TABLE image_job_machines ADD COLUMN repaired INTEGER;
    `,
  },
  {
    version: 10,
    description:
      "when a deploy's multicast stream starts: on Go only, or when a number of its PCs are ready (NULL: all) or seconds after the first (NULL: no timer); when Go was given and the stream started",
    sql: `
      ALTER TABLE image_jobs ADD COLUMN start_manual INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE image_jobs ADD COLUMN start_count INTEGER;
      ALTER TABLE image_jobs ADD COLUMN start_after INTEGER DEFAULT 60;
      ALTER TABLE image_jobs ADD COLUMN go_at INTEGER;
      ALTER TABLE image_jobs ADD COLUMN stream_started_at INTEGER;
    `,
  },
  {
    version: 11,
    description:
      "where a deploy's waiting stream stands, as the host that holds it records it: its process id, when, the timer's deadline, and when each PC was heard ready",
    sql: `
      ALTER TABLE image_jobs ADD COLUMN stream_host_pid INTEGER;
      ALTER TABLE image_jobs ADD COLUMN stream_heard_at INTEGER;
      ALTER TABLE image_jobs ADD COLUMN stream_deadline INTEGER;
      ALTER TABLE image_job_machines ADD COLUMN ready_at INTEGER;
    `,
  },
  {
    version: 12,
    description: "what the running host's IGMP listener heard on its NIC (the last other querier and when), for bootbench doctor in another process",
    sql: `
      CREATE TABLE igmp_listen (
        interface TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        since INTEGER NOT NULL,
        querier TEXT,
        heard_at INTEGER
      );
    `,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Marks the file as ours ('BBch'), so a foreign SQLite file is refused instead of being altered. */
export const BOOTBENCH_APPLICATION_ID = 0x42426368;

export function readSchemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Applies the steps after the database's version up to `target`, each in its own transaction
 * together with the version bump, so a crash between steps leaves a consistent older version.
 */
export function migrate(db: Database.Database, target = LATEST_SCHEMA_VERSION): number[] {
  const applied: number[] = [];
  for (const step of MIGRATIONS) {
    if (step.version > target) break;
    const apply = db.transaction(() => {
      if (readSchemaVersion(db) >= step.version) return false;
      db.exec(step.sql);
      db.pragma(`user_version = ${step.version}`);
      db.pragma(`application_id = ${BOOTBENCH_APPLICATION_ID}`);
      return true;
    });
    // IMMEDIATE: a second process opening the same file waits instead of migrating twice.
    if (apply.immediate()) applied.push(step.version);
  }
  return applied;
}
