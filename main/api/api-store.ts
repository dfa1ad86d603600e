// Adapts the store's repositories (main/store) to what the UI contract needs (ApiStore in
// api.ts): plain JSON shapes, optional fields instead of nulls, CSV results in sentences,
// and an edit the database cannot take (full disk) answered with the fix, not SQLite's code.
import { dirname } from 'node:path';
import type { BootEvent, BootEventType } from '../core/index.js';
import { storeImaging, type StoreImagingOptions } from './api-imaging.js';
import { storeAnswers } from './api-answers.js';
import {
  entryDiskSize,
  architectureForBootClass,
  resolveEntryFilePath,
  finishingPaths,
  ensureLocalDiskEntry,
  MENU_TIMEOUT_SECONDS,
  detectFile,
  UnusableFileError,
  type IsoDetection,
} from '../library/index.js';
import type { ApiStore } from './api.js';
import type { BootExpectation } from './boot-diagnosis.js';
import {
  resolveBootAssignment,
  exportMachinesCsv,
  defaultBootEntry,
  importMachinesCsv,
  savingTo,
  installStates,
  type Machine as StoredMachine,
  type BootEntry as StoredEntry,
  type StoredBootEvent,
  type Store,
  type Transfer,
} from '../store/index.js';
import type { BootEntry, DefaultBoot, Machine, MachineGroup, TransferRecord } from '../../preload/api.js';

const opt = <T>(value: T | null | undefined): T | undefined => (value === null || value === '' ? undefined : value);

export function toApiMachine(m: StoredMachine): Machine {
  return {
    id: m.id,
    macs: m.macs,
    uuid: opt(m.uuid),
    name: m.name,
    group: m.group,
    seat: opt(m.seat),
    entryId: opt(m.entryId),
    bootOnce: m.bootOnce,
    discovered: m.discovered,
    arch: opt(m.lastArch),
    vendorClass: opt(m.lastVendorClass),
    lastIp: opt(m.lastIp),
    firstSeen: opt(m.firstSeen),
    lastSeen: opt(m.lastSeen),
  };
}

export function toApiEntry(e: StoredEntry): BootEntry {
  const archs = [...new Set(e.files.map((f) => f.arch))];
  return {
    id: e.id,
    name: e.name,
    kind: e.kind,
    archs,
    size: e.files.length ? entryDiskSize(e.files) : undefined,
    sha256: e.files[0]?.sha256,
    files: e.files.map((f) => ({ arch: f.arch, role: f.role, path: f.path, size: f.size, sha256: f.sha256 })),
    arguments: e.arguments,
    detected: e.notes,
    bootable: entryBootability(e, archs),
    builtIn: e.kind === 'local-disk',
    secureBoot: e.kind === 'secure-boot-chain' ? 'on' : e.kind === 'kernel' ? 'off' : undefined,
  };
}

function entryBootability(e: StoredEntry, archs: string[]): BootEntry['bootable'] {
  if (e.kind === 'local-disk') return { ok: true, reason: 'the machine boots from its own disk (no network boot)' };
  if (e.kind === 'initrd') return { ok: false, reason: 'an initrd boots nothing on its own: pair it with its kernel' };
  if (e.files.length === 0) return { ok: false, reason: 'the entry has no files' };
  if (e.kind === 'kernel' && !e.files.some((f) => f.role === 'kernel')) return { ok: false, reason: 'the entry has no kernel file' };
  return { ok: true, reason: archs.includes('any') ? 'boots on any firmware iPXE runs on' : `boots on ${archs.join(', ')}` };
}

/** A stored row as the event it recorded: the details were written from that event's fields. */
export function toBootEvent(e: StoredBootEvent): BootEvent {
  return { ...e.details, type: e.type as BootEventType, time: e.time, mac: e.mac ?? undefined, ip: e.ip ?? undefined } as BootEvent;
}

export function toTransferRecord(t: Transfer): TransferRecord | undefined {
  if (t.outcome === 'running') return undefined;
  return {
    // The row id is unique for good; keys written before keys carried the serving run repeat.
    id: `stored-${t.id}`,
    transferKey: opt(t.transferKey),
    mac: opt(t.mac),
    ip: opt(t.ip),
    file: t.file,
    protocol: t.protocol,
    size: opt(t.size),
    bytes: t.bytesSent,
    outcome: t.outcome === 'interrupted' ? 'failed' : t.outcome,
    finishedAt: t.endedAt ?? t.startedAt,
    durationMs: t.endedAt !== null ? t.endedAt - t.startedAt : undefined,
    reason: opt(t.reason) ?? (t.outcome === 'interrupted' ? 'the serving process ended during the transfer' : undefined),
  };
}

/**
 * What a machine's assigned entry needs fetched for a complete boot, so the Timeline is green
 * only once it came. Undefined when the library cannot tell (no assignment, an ISO it cannot read).
 */
export async function bootExpectation(store: Store, machineId: number, dataDir: string | undefined): Promise<BootExpectation | undefined> {
  const machine = store.machines.get(machineId);
  if (!machine) return undefined;
  const assigned = resolveBootAssignment(store, machine.macs[0], machine.uuid ?? undefined);
  if (!assigned) return undefined;
  const { entry } = assigned;
  const isoFile = entry.kind === 'iso' ? entry.files.find((f) => f.role === 'iso') : undefined;
  let iso: { linux: IsoDetection['linux']; windows: IsoDetection['windows'] } | undefined;
  if (isoFile) {
    if (dataDir === undefined) return undefined;
    const detected = await detectFile(resolveEntryFilePath(isoFile, dataDir)).catch(() => undefined);
    if (detected?.kind === 'iso') iso = { linux: detected.linux, windows: detected.windows };
  }
  const architecture = architectureForBootClass(machine.lastArch ?? '') ?? 'x64';
  const { paths, rangeCounts } = finishingPaths(
    { id: entry.id, name: entry.name, kind: entry.kind, arguments: entry.arguments, files: entry.files, iso },
    architecture,
  );
  return paths.length > 0 ? { entry: entry.name, paths, rangeCounts } : undefined;
}

/** Why a stored ISO entry boots nothing, as import says it today; undefined when it boots or cannot be checked. */
export async function whyEntryIsUnassignable(store: Store, entryId: number, dataDir: string | undefined): Promise<string | undefined> {
  const entry = store.entries.get(entryId);
  const iso = entry?.kind === 'iso' ? entry.files.find((f) => f.role === 'iso') : undefined;
  if (!entry || !iso || dataDir === undefined) return undefined;
  try {
    await detectFile(resolveEntryFilePath(iso, dataDir));
    return undefined;
  } catch (err) {
    // A missing or unreadable file is another problem, reported when it is served.
    if (!(err instanceof UnusableFileError) || !/not bootable/.test(err.reason)) return undefined;
    return `"${entry.name}" cannot be assigned: ${err.reason}; choose another entry.`;
  }
}

export function storeApi(
  store: Store,
  options: { dataDir?: () => string; imagingStream?: StoreImagingOptions['liveStream']; imagingUnicastReason?: StoreImagingOptions['unicastReason'] } = {},
): ApiStore {
  const groups = (): MachineGroup[] => {
    const machines = store.machines.list();
    return store.machines.listGroups().map((g) => ({
      name: g.name,
      entryId: opt(g.entryId),
      count: machines.filter((m) => m.group.toLowerCase() === g.name.toLowerCase()).length,
    }));
  };
  return {
    machines: {
      list: () => {
        // The install each PC's installer reported (answer-file callbacks), from the timeline.
        const installs = installStates(store);
        return store.machines.list().map((m) => {
          const install = installs.get(m.id);
          return install ? { ...toApiMachine(m), install } : toApiMachine(m);
        });
      },
      get: (id) => {
        const m = store.machines.get(id);
        return m && toApiMachine(m);
      },
      findByMac: (mac) => {
        const m = store.machines.findByMac(mac);
        return m && toApiMachine(m);
      },
      update: ({ id, ...patch }) => {
        if (typeof patch.entryId === 'number' && !store.entries.get(patch.entryId))
          throw new Error(`There is no boot entry number ${patch.entryId} (it may have been removed).`);
        const clean = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
        return toApiMachine(savingTo(store.path, () => store.machines.update(id, clean)));
      },
      groups,
      assignGroup: (name, entryId) => {
        if (entryId !== null && !store.entries.get(entryId)) throw new Error(`There is no boot entry number ${entryId} (it may have been removed).`);
        // A group with no machine and nothing assigned is only a name (often a typo): it goes.
        const members = store.machines.list().filter((m) => m.group.toLowerCase() === name.toLowerCase()).length;
        if (entryId === null && members === 0) {
          const existing = store.machines.listGroups().find((g) => g.name.toLowerCase() === name.toLowerCase());
          if (existing) savingTo(store.path, () => store.machines.removeGroup(existing.name));
          return { name: existing?.name ?? name, count: 0, removed: true };
        }
        const saved = savingTo(store.path, () => store.machines.setGroup({ name, entryId, notes: store.machines.getGroup(name)?.notes ?? '' }));
        return groups().find((g) => g.name.toLowerCase() === saved.name.toLowerCase()) ?? { name: saved.name, entryId: opt(saved.entryId), count: 0 };
      },
      importCsv: (csv) => {
        // One transaction: a full disk saves none of the rows, and says so.
        const result = savingTo(store.path, () => importMachinesCsv(store, csv));
        return {
          added: result.created,
          updated: result.updated,
          problems: result.problems.map((p) => `line ${p.line}: ${p.problem} (${p.fix})`),
        };
      },
      exportCsv: () => exportMachinesCsv(store),
    },
    entries: { list: () => store.entries.list().map(toApiEntry) },
    defaults: {
      boot: () => defaultBoot(store),
      setBoot: (choice) => {
        savingTo(store.path, () =>
          store.transaction(() => {
            let entryId: number | null = null;
            if (choice.kind === 'local-disk') entryId = ensureLocalDiskEntry(store).id;
            if (choice.kind === 'entry') {
              if (!store.entries.get(choice.entryId)) throw new Error(`There is no boot entry number ${choice.entryId} (it may have been removed).`);
              entryId = choice.entryId;
            }
            store.settings.set('defaults', { ...(store.settings.get('defaults') ?? {}), entryId });
          }),
        );
        return defaultBoot(store);
      },
    },
    timeline: {
      forMachine: (id, limit) => store.bootEvents.listForMachine(id, { limit }).map(toBootEvent),
      forMac: (mac, limit) => store.bootEvents.listForMac(mac, { limit }).map(toBootEvent),
      expectation: (machineId) => bootExpectation(store, machineId, options.dataDir?.()),
    },
    unassignable: (entryId) => whyEntryIsUnassignable(store, entryId, options.dataDir?.()),
    // Images live beside the database when no data folder is given (tests open the store alone);
    // a database in memory has no folder to keep images in.
    seats: {
      list: (machineIds) => store.seats.list(machineIds),
      set: (seats, clear) => savingTo(store.path, () => store.seats.set(seats, clear)),
    },
    imaging:
      options.dataDir || store.path !== ':memory:'
        ? storeImaging({
            store,
            dataDir: options.dataDir ?? (() => dirname(store.path)),
            liveStream: options.imagingStream,
            unicastReason: options.imagingUnicastReason,
          })
        : undefined,
    answers: options.dataDir || store.path !== ':memory:' ? storeAnswers({ store, dataDir: options.dataDir ?? (() => dirname(store.path)) }) : undefined,
    transfers: {
      recent: (limit) =>
        store.transfers
          .listRecent({ limit })
          .map(toTransferRecord)
          .filter((r): r is TransferRecord => r !== undefined),
    },
  };
}

/** The stored default as the Start screen shows it; a removed entry reads as the menu, as the DHCP path treats it. */
function defaultBoot(store: Store): DefaultBoot {
  const entry = defaultBootEntry(store);
  if (!entry) return { kind: 'menu', timeoutSeconds: MENU_TIMEOUT_SECONDS };
  if (entry.kind === 'local-disk') return { kind: 'local-disk' };
  return { kind: 'entry', entryId: entry.id, name: entry.name };
}
