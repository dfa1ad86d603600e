// A machine's extra values: the CSV columns beyond mac, uuid, name, group and entry (a room,
// a locale, a product key ...). Answer-file templates use them as variables.
import type { Store } from './open-store.js';

export interface MachineFieldRepository {
  /** One machine's values by column name. */
  get(machineId: number): Record<string, string>;
  /** Every machine's values: machine id -> column -> value. */
  all(): Map<number, Record<string, string>>;
  /** Sets the given columns (an empty value removes one); other columns stay. */
  set(machineId: number, fields: Record<string, string>): void;
  /** Column names any machine has a value for, sorted. */
  names(): string[];
}

/** A CSV column's stored name and template variable: lower case, other characters as one underscore ("Root Password" -> root_password). */
export function machineFieldName(column: string): string {
  return column
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

const repositories = new WeakMap<Store, MachineFieldRepository>();

/** The store's machine_fields table (statements prepared once per store). */
export function machineFields(store: Store): MachineFieldRepository {
  let repository = repositories.get(store);
  if (repository) return repository;
  const db = store.db;
  const byMachine = db.prepare<[number], { name: string; value: string }>('SELECT name, value FROM machine_fields WHERE machine_id = ? ORDER BY name');
  const every = db.prepare<[], { machine_id: number; name: string; value: string }>('SELECT machine_id, name, value FROM machine_fields');
  const upsert = db.prepare(
    'INSERT INTO machine_fields (machine_id, name, value) VALUES (?, ?, ?) ON CONFLICT (machine_id, name) DO UPDATE SET value = excluded.value',
  );
  const remove = db.prepare('DELETE FROM machine_fields WHERE machine_id = ? AND name = ?');
  const distinctNames = db.prepare<[], { name: string }>('SELECT DISTINCT name FROM machine_fields ORDER BY name');
  repository = {
    get: (machineId) => Object.fromEntries(byMachine.all(machineId).map((r) => [r.name, r.value])),
    all: () => {
      const result = new Map<number, Record<string, string>>();
      for (const row of every.all()) {
        const fields = result.get(row.machine_id) ?? {};
        fields[row.name] = row.value;
        result.set(row.machine_id, fields);
      }
      return result;
    },
    set: (machineId, fields) =>
      store.transaction(() => {
        for (const [name, value] of Object.entries(fields)) {
          if (value === '') remove.run(machineId, name);
          else upsert.run(machineId, name, value);
        }
      }),
    names: () => distinctNames.all().map((r) => r.name),
  };
  repositories.set(store, repository);
  return repository;
}
