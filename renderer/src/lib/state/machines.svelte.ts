// Machines of the bench: the stored list plus the live ones as they send DISCOVERs.
import type { ApiClient } from '../transport.js';
import type { BootEntry, CsvImportResult, Machine, MachineGroup, MachineUpdate, WakeRequest, WakeResult } from '../../../../preload/api.js';

export function machineLabel(m: Pick<Machine, 'name' | 'macs' | 'id'>): string {
  return m.name || m.macs[0] || `machine ${m.id}`;
}

export function matchesFilter(m: Machine, filter: string): boolean {
  const f = filter.trim().toLowerCase();
  if (!f) return true;
  return [m.name, m.group, m.seat, m.uuid, m.lastIp, ...m.macs].some((v) => v?.toLowerCase().includes(f.replace(/-/g, ':')) || v?.toLowerCase().includes(f));
}

/** Unknown (auto-discovered) machines first, then by name; the newest sighting breaks ties. */
export function sortMachines(list: Machine[]): Machine[] {
  return [...list].sort(
    (a, b) =>
      Number(b.discovered) - Number(a.discovered) ||
      (a.discovered ? (b.lastSeen ?? 0) - (a.lastSeen ?? 0) : 0) ||
      machineLabel(a).localeCompare(machineLabel(b), undefined, { numeric: true }),
  );
}

/**
 * What a group assignment really changes. A machine's own entry comes before its group's, so
 * members that have one keep it; the message names them rather than claiming the whole group.
 */
export function groupAssignmentMessage(
  group: string,
  entryName: string,
  members: Machine[],
  entryNameOf: (id: number) => string | undefined,
): { kind: 'ok' | 'warn'; text: string } {
  if (members.length === 0) {
    return {
      kind: 'warn',
      text: `No machine is in group ${group}: check the spelling (groups come from the machines' Group column); machines put in it will boot ${entryName}. Remove it with × if it was a typo.`,
    };
  }
  const own = members.filter((m) => m.entryId !== undefined);
  if (own.length === 0)
    return { kind: 'ok', text: `Group ${group} now boots ${entryName} (${members.length === 1 ? 'its 1 machine' : `all ${members.length} machines`}).` };
  const keeping = own.map((m) => `${machineLabel(m)} (${entryNameOf(m.entryId!) ?? `entry ${m.entryId}`})`).join(', ');
  const following = members.length - own.length;
  // The Boots column's first choice clears a machine's own entry; it is labelled with what follows.
  const option = entryName === 'the default' ? 'default' : `group: ${entryName}`;
  return {
    kind: 'warn',
    text: `Group ${group}: ${following} of ${members.length} machines now boot ${entryName}; ${keeping} ${own.length === 1 ? 'keeps its' : 'keep their'} own entry, which comes before the group's. To have ${own.length === 1 ? 'it' : 'them'} follow the group, choose "${option}" in ${own.length === 1 ? 'its' : 'their'} Boots column.`,
  };
}

/** What a wake did, in one sentence: who got packets, through which NIC, and what to watch next. */
export function wakeMessage(result: WakeResult): { kind: 'ok' | 'warn'; text: string } {
  const label = (m: WakeResult['machines'][number]) => m.name || m.mac;
  const failed = result.machines.filter((m) => m.error || m.sent === 0);
  const woken = result.machines.filter((m) => !failed.includes(m));
  const names = woken.length > 6 ? `${woken.slice(0, 5).map(label).join(', ')} and ${woken.length - 5} more` : woken.map(label).join(', ');
  const parts: string[] = [];
  if (woken.length) {
    parts.push(
      `Woke ${names}: ${result.repeat} rounds of magic packets through ${result.interfaceName} (to ${result.addresses.join(' and ')}). The Timeline shows whether each asked to boot within ${Math.round(result.answerWithinMs / 1000)} s.`,
    );
  }
  for (const m of failed) parts.push(`${label(m)}: ${m.error ?? 'no packet left'}.`);
  return { kind: failed.length ? 'warn' : 'ok', text: parts.join(' ') };
}

export class MachinesState {
  list = $state.raw<Machine[]>([]);
  groups = $state.raw<MachineGroup[]>([]);
  entries = $state.raw<BootEntry[]>([]);
  filter = $state('');
  /** id -> time of the last live sighting (highlights rows that just showed up). */
  lastSeenLive = $state.raw<Record<number, number>>({});
  visible = $derived(sortMachines(this.list.filter((m) => matchesFilter(m, this.filter))));
  unknownCount = $derived(this.list.filter((m) => m.discovered).length);
  error = $state<string | undefined>(undefined);
  lastImport = $state.raw<CsvImportResult | undefined>(undefined);

  constructor(private readonly api: ApiClient) {}

  async load(): Promise<void> {
    try {
      const [list, groups, entries] = await Promise.all([this.api.call('machines:list'), this.api.call('machines:groups'), this.api.call('entries:list')]);
      this.list = list;
      this.groups = groups;
      this.entries = entries;
      this.error = undefined;
    } catch (err) {
      this.error = (err as Error).message;
    }
  }

  /** Machines whose boot once finished while this screen was open (shown as such). */
  bootOnceUsed = $state.raw<Record<number, true>>({});

  /** A pushed 'machine:seen' (or the answer to an update): insert or replace by id. */
  upsert(machine: Machine, live = false): void {
    const index = this.list.findIndex((m) => m.id === machine.id);
    const before = index < 0 ? undefined : this.list[index];
    this.list = index < 0 ? [...this.list, machine] : this.list.map((m, i) => (i === index ? machine : m));
    if (live) this.lastSeenLive = { ...this.lastSeenLive, [machine.id]: Date.now() };
    if (before?.bootOnce && !machine.bootOnce && before.entryId !== machine.entryId) this.bootOnceUsed = { ...this.bootOnceUsed, [machine.id]: true };
    else if (machine.bootOnce && this.bootOnceUsed[machine.id]) {
      const { [machine.id]: _, ...rest } = this.bootOnceUsed;
      this.bootOnceUsed = rest;
    }
    // An entry made meanwhile (the built-in Local disk a finished boot once falls back to)
    // must be among the choices, or the machine's dropdown would show nothing.
    if (machine.entryId !== undefined && !this.entries.some((e) => e.id === machine.entryId)) void this.reloadEntries();
  }

  private async reloadEntries(): Promise<void> {
    try {
      this.entries = await this.api.call('entries:list');
    } catch (err) {
      this.error = (err as Error).message;
    }
  }

  /** What a machine's own assignment reads as in its dropdown. */
  assignmentLabel(m: Machine, entry: BootEntry): string {
    if (entry.builtIn) return this.bootOnceUsed[m.id] && m.entryId === entry.id ? 'Local disk (boot once used)' : 'Local disk (no network boot)';
    return entry.name;
  }

  byMac(mac: string): Machine | undefined {
    return this.list.find((m) => m.macs.includes(mac));
  }

  entryName(id: number | undefined): string | undefined {
    return id === undefined ? undefined : (this.entries.find((e) => e.id === id)?.name ?? `entry ${id}`);
  }

  async update(update: MachineUpdate): Promise<Machine> {
    const machine = await this.api.call('machines:update', update);
    this.upsert(machine);
    // Group member counts change when a machine moves between groups.
    if (update.group !== undefined) this.groups = await this.api.call('machines:groups');
    return machine;
  }

  /** Assigns the group's entry; returns what it changed, in words. */
  async assignGroup(group: string, entryId: number | null): Promise<{ kind: 'ok' | 'warn'; text: string }> {
    const updated = await this.api.call('machines:assign-group', { group, entryId });
    if (updated.removed) {
      this.groups = this.groups.filter((g) => g.name.toLowerCase() !== updated.name.toLowerCase());
      return { kind: 'ok', text: `Group ${updated.name} had no machines and nothing assigned any more: it is gone.` };
    }
    const index = this.groups.findIndex((g) => g.name === updated.name);
    this.groups = index < 0 ? [...this.groups, updated] : this.groups.map((g, i) => (i === index ? updated : g));
    const members = this.list.filter((m) => m.group.toLowerCase() === updated.name.toLowerCase());
    return groupAssignmentMessage(updated.name, this.entryName(entryId ?? undefined) ?? 'the default', members, (id) => this.entryName(id));
  }

  async importCsv(csv: string): Promise<CsvImportResult> {
    const result = await this.api.call('machines:import-csv', { csv });
    this.lastImport = result;
    await this.load();
    return result;
  }

  /** Machines ticked on the Machines screen (for "Wake selected"). */
  selected = $state.raw<Record<number, true>>({});

  toggleSelected(id: number, on: boolean): void {
    const { [id]: _, ...rest } = this.selected;
    this.selected = on ? { ...rest, [id]: true } : rest;
  }

  wake(request: WakeRequest): Promise<WakeResult> {
    return this.api.call('machines:wake', request);
  }

  exportCsv() {
    return this.api.call('machines:export-csv');
  }
}
