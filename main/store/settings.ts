// Settings the app and `bootbench serve` start from next time: NIC, mode, pool, ports, defaults.
// Stored as JSON per key and checked against the key's schema when read, so a value written by
// another version (or by hand) that no longer fits is reported and ignored, never trusted.
import type Database from 'better-sqlite3';
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);

export const SETTING_SCHEMAS = {
  interface: z.string().min(1),
  mode: z.enum(['proxy', 'dhcp']),
  root: z.string(),
  pool: z.object({
    first: z.string(),
    last: z.string(),
    subnetMask: z.string().optional(),
    router: z.string().optional(),
    dns: z.array(z.string()).optional(),
    leaseSeconds: z.number().int().positive().optional(),
  }),
  ports: z.object({ dhcp: port, pxe: port, tftp: port, dhcpClient: port, http: port }).partial(),
  defaults: z.object({
    /** What machines with no entry of their own or of their group boot. */
    entryId: z.number().int().nullable().optional(),
    /** Boot file per boot class when no entry applies. */
    boot: z.record(z.string(), z.string()).optional(),
    ipxeScript: z.string().optional(),
  }),
  /** UEFI HTTP boot: answered or not, and the file x64 HTTP-boot PCs get (else what UEFI PXE PCs get). */
  httpBoot: z.object({ answer: z.boolean(), file: z.string().min(1).optional() }),
  /** A deploy to several PCs as one multicast stream: auto (full DHCP mode only), on, off. */
  imagingMulticast: z.enum(['auto', 'on', 'off']),
  retention: z
    .object({
      maxAgeMs: z.number().int().positive(),
      maxEventsPerMachine: z.number().int().positive(),
      maxUnattributedEvents: z.number().int().positive(),
    })
    .partial(),
} as const;

export type SettingKey = keyof typeof SETTING_SCHEMAS;
export type Settings = { [K in SettingKey]: z.infer<(typeof SETTING_SCHEMAS)[K]> };

export class SettingError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
    this.name = 'SettingError';
  }
}

export class SettingsRepository {
  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
    private readonly warn: (message: string) => void = () => {},
  ) {}

  get<K extends SettingKey>(key: K): Settings[K] | undefined {
    const row = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined;
    if (!row) return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(row.value);
    } catch {
      this.warn(`setting "${key}" is not valid JSON and is ignored; set it again`);
      return undefined;
    }
    const parsed = SETTING_SCHEMAS[key].safeParse(raw);
    if (!parsed.success) {
      this.warn(`setting "${key}" does not fit this version (${parsed.error.issues[0]?.message}) and is ignored; set it again`);
      return undefined;
    }
    return parsed.data as Settings[K];
  }

  set<K extends SettingKey>(key: K, value: Settings[K]): void {
    if (!(key in SETTING_SCHEMAS)) throw new SettingError(key, `"${key}" is not a setting: use one of ${Object.keys(SETTING_SCHEMAS).join(', ')}`);
    const parsed = SETTING_SCHEMAS[key].safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new SettingError(key, `setting "${key}"${issue?.path.length ? `.${issue.path.join('.')}` : ''}: ${issue?.message}`);
    }
    this.db
      .prepare(
        'INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
      )
      .run(key, JSON.stringify(parsed.data), this.now());
  }

  delete(key: SettingKey): boolean {
    return this.db.prepare('DELETE FROM settings WHERE key = ?').run(key).changes > 0;
  }

  /** Every stored setting that is valid for this version. */
  all(): Partial<Settings> {
    const keys = (this.db.prepare('SELECT key FROM settings').all() as { key: string }[]).map((r) => r.key);
    const result: Partial<Record<SettingKey, unknown>> = {};
    for (const key of keys) {
      if (!(key in SETTING_SCHEMAS)) continue;
      const value = this.get(key as SettingKey);
      if (value !== undefined) result[key as SettingKey] = value;
    }
    return result as Partial<Settings>;
  }
}
