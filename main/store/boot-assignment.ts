// Which entry a machine boots (its own, else its group's, else the default) and the end of a
// "boot once" assignment, for the boot policy to call.
import type { BootEntry } from './entries.js';
import type { Machine } from './machines.js';
import type { Store } from './open-store.js';

export type AssignmentSource = 'machine' | 'group' | 'default';

export interface StoredBootAssignment {
  machine: Machine | undefined;
  entry: BootEntry;
  source: AssignmentSource;
  /** True when this is the machine's own boot-once assignment: it ends after one complete boot. */
  bootOnce: boolean;
}

/** The entry the `defaults` setting names, when it still exists. */
export function defaultBootEntry(store: Store): BootEntry | undefined {
  const defaultEntryId = store.settings.get('defaults')?.entryId;
  return defaultEntryId != null ? store.entries.get(defaultEntryId) : undefined;
}

/**
 * The entry to boot for this client, or undefined when nothing is assigned anywhere.
 * `readDefaultEntry` lets a caller that keeps the default entry (the DHCP path's read cache)
 * skip reading and checking the setting again.
 */
export function resolveBootAssignment(
  store: Store,
  mac?: string,
  uuid?: string,
  readDefaultEntry: () => BootEntry | undefined = () => defaultBootEntry(store),
): StoredBootAssignment | undefined {
  const machine = store.machines.find(mac, uuid);
  if (machine?.entryId != null) {
    const entry = store.entries.get(machine.entryId);
    if (entry) return { machine, entry, source: 'machine', bootOnce: machine.bootOnce };
  }
  const groupEntryId = machine?.group ? store.machines.getGroup(machine.group)?.entryId : undefined;
  if (groupEntryId != null) {
    const entry = store.entries.get(groupEntryId);
    if (entry) return { machine, entry, source: 'group', bootOnce: false };
  }
  const entry = readDefaultEntry();
  return entry ? { machine, entry, source: 'default', bootOnce: false } : undefined;
}

/**
 * Ends a boot-once assignment: the machine's own entry is cleared, so its next boot falls back
 * to its group's or the default entry. Recorded in the machine's timeline. Returns what the
 * machine boots from now on (undefined: nothing assigned), or `cleared: false` if it had no
 * boot-once assignment.
 */
export function completeBootOnce(store: Store, machineId: number, time = store.clock.now()): { cleared: boolean; next: StoredBootAssignment | undefined } {
  return store.transaction(() => {
    const machine = store.machines.get(machineId);
    if (!machine || !machine.bootOnce || machine.entryId === null) {
      return { cleared: false, next: machine ? resolveBootAssignment(store, machine.macs[0], machine.uuid ?? undefined) : undefined };
    }
    store.machines.clearAssignment(machineId);
    const next = resolveBootAssignment(store, machine.macs[0], machine.uuid ?? undefined);
    store.bootEvents.add({
      machineId,
      mac: machine.macs[0] ?? null,
      time,
      type: 'boot-once.cleared',
      details: { entryId: machine.entryId, nextEntryId: next?.entry.id ?? null, nextSource: next?.source ?? null },
    });
    return { cleared: true, next };
  });
}

/**
 * For the transfer-done path: if `file` is the last file of the machine's boot-once entry
 * (for `arch` when known), the boot is complete and the assignment ends.
 */
export function completeBootOnceIfLastFile(
  store: Store,
  client: { mac: string; file: string; arch?: string; time?: number },
): { cleared: boolean; next: StoredBootAssignment | undefined } {
  const machine = store.machines.findByMac(client.mac);
  if (!machine || !machine.bootOnce || machine.entryId === null) return { cleared: false, next: undefined };
  const requested = client.file.replace(/^\/+/, '').toLowerCase();
  const finishes = store.entries
    .lastFiles(machine.entryId, client.arch)
    .some((f) => f.path.replace(/^\/+/, '').toLowerCase() === requested || requested.endsWith(`/${f.path.replace(/^\/+/, '').toLowerCase()}`));
  if (!finishes) return { cleared: false, next: undefined };
  return completeBootOnce(store, machine.id, client.time);
}
