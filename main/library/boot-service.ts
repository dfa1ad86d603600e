// The library's part of a running host: turns the store's assignments into what each
// service needs. The host wires four things (see the functions' comments):
//   DHCP policy  lookupMachine(mac, uuid)      -> per-machine boot files / ignore
//   HTTP         httpRoute(req, res, url)      -> iPXE scripts
//   TFTP+HTTP    mountInto(files)              -> iPXE/shim/GRUB binaries, /grub/grub.cfg, entry files
//                locateInto(files)             -> files inside ISOs (read in place), wimboot
//   event bus    onTransferEvent(event)        -> boot-once ends after the entry's last file
// The bytes themselves go out through the shared FileResolver, so the TFTP and HTTP file
// servers are the only ones that send files (HEAD, Range, progress and transfer events).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { BootClass, BootEvent, Publish } from '../core/index.js';
import type { LocateFile } from '../files/index.js';
import {
  defaultBootEntry,
  resolveBootAssignment,
  storeReadCache,
  type BootEntry,
  type Store,
  type StoredBootAssignment,
  type StoreReadCache,
} from '../store/index.js';
import { detectFile, type IsoDetection, type LibraryArchitecture } from './detect.js';
import { IsoImage, extractIsoFile, type IsoDirectoryEntry } from './iso9660.js';
import { UdfFormatError, UdfImage } from './udf.js';
import { architectureForBootClass, libraryDir, resolveEntryFilePath } from './import.js';
import {
  architectureFromIpxe,
  buildGrubConfig,
  buildGrubTaskConfig,
  buildIpxeBootstrap,
  buildIpxeScript,
  entryFileServedPath,
  type BootRequest,
  type ScriptEntry,
  type TaskKernel,
} from './ipxe-script.js';
import { assignOnce, nextAssignmentAfterFetch } from './boot-once.js';
import { mayHaveOwnAssignment } from '../pxe/index.js';
import { BOOT_BINARY_MOUNTS, locateBootBinary, type BootBinaryName } from './boot-binaries.js';

/** Structurally the DHCP policy's MachineBootAssignment (main/pxe/boot-policy.ts). */
export interface LibraryMachineAssignment {
  name?: string;
  ignore?: boolean;
  ignoreReason?: string;
  boot?: Partial<Record<BootClass, string>>;
  ipxeScriptUrl?: string;
}

/** The part of FileResolver (main/files) mountInto uses. */
export interface MountableFiles {
  mount(virtualPath: string, realPath: string): void;
  generate(
    virtualPath: string,
    fn: (request: { protocol: 'tftp' | 'http'; ip?: string; mac?: string; path: string }) => Buffer | string | undefined | Promise<Buffer | string | undefined>,
  ): void;
}

/** The part of FileResolver locateInto uses. */
export interface LocatableFiles {
  locate(virtualPrefix: string, locate: LocateFile): void;
}

export interface LibraryBootServiceOptions {
  store: Store;
  dataDir: string;
  /** e.g. http://192.0.2.1:8080 */
  httpBaseUrl: string;
  serverAddress: string;
  httpPort: number;
  resourcesDir?: string;
  /** Menu for machines without any assignment. */
  menu?: { defaultChoice?: number | 'local-disk'; timeoutSeconds?: number };
  macForIp?: (ip: string) => string | undefined;
  publish?: Publish;
  /** A script that takes precedence over the machine's assignment (an imaging task waiting). */
  taskScript?: (mac: string) => string | undefined;
  /** The same task for GRUB (the Secure Boot chain), which cannot run an iPXE script. */
  taskKernel?: (mac: string) => TaskKernel | undefined;
  /** Adds each PC's answer file to its script (AnswerFileService.decorate). */
  answers?: (request: BootRequest, mac: string | undefined) => BootRequest;
}

export const LOCAL_DISK_ENTRY_NAME = 'Local disk';
/** How long the menu for machines without any assignment waits before the local disk. */
export const MENU_TIMEOUT_SECONDS = 10;

export class LibraryBootService {
  private readonly isoInfo = new Map<string, Promise<ScriptEntry['iso']>>();
  /** Last architecture each MAC's iPXE reported, so boot-once matches the right files. */
  private readonly architectureByMac = new Map<string, LibraryArchitecture>();
  private readonly extractions = new Map<string, Promise<void>>();
  /** MAC an iPXE client reported from an IP (fallback when DHCP did not teach the host). */
  private readonly macByIp = new Map<string, string>();

  constructor(private readonly options: LibraryBootServiceOptions) {}

  // ---------------------------------------------------------------------- DHCP policy
  /**
   * Per-machine override for the DHCP policy (BootPolicyConfig.lookupMachine). Undefined
   * means "use the defaults" (chainload iPXE, whose script then comes from httpRoute):
   *   - an NBP entry: that NBP, straight by TFTP, for the classes it has;
   *   - a Secure Boot chain: shim for UEFI x64 (GRUB then reads /grub/grub.cfg);
   *   - a local-disk entry: no answer at all, so the firmware goes on to its disk.
   */
  lookupMachine = (mac: string, uuid?: string): LibraryMachineAssignment | undefined => {
    // Asked for every DHCP request: answered from memory until the store changes. A client
    // that can only boot the default (a new MAC, a discovered machine) shares one answer,
    // so a DISCOVER storm of new MACs costs no query and no cache entry per packet.
    const cache = storeReadCache(this.options.store);
    const view = cache.get('dhcp-assignment-view', () => ({
      assigned: this.options.store.machines.identifiersWithOwnAssignment(),
      defaultAssignment: this.readDefaultAssignment(cache),
    }));
    if (!mayHaveOwnAssignment(view.assigned, mac, uuid)) return view.defaultAssignment;
    return cache.get(`machine-assignment ${mac} ${uuid ?? ''}`, () => this.readMachineAssignment(mac, uuid, cache));
  };

  /**
   * What lookupMachine answers without a query: the identities that may have an assignment of
   * their own (canonical MACs and UUIDs) and the one answer for every other client. The DHCP
   * thread keeps a copy, so it answers default clients without asking this thread.
   */
  assignmentView(): { macs: string[]; uuids: string[]; defaultAssignment: LibraryMachineAssignment | undefined } {
    const cache = storeReadCache(this.options.store);
    const view = cache.get('dhcp-assignment-view', () => ({
      assigned: this.options.store.machines.identifiersWithOwnAssignment(),
      defaultAssignment: this.readDefaultAssignment(cache),
    }));
    return { macs: [...view.assigned.macs], uuids: [...view.assigned.uuids], defaultAssignment: view.defaultAssignment };
  }

  private readMachineAssignment(mac: string, uuid: string | undefined, cache: StoreReadCache): LibraryMachineAssignment | undefined {
    const store = this.options.store;
    return this.toMachineAssignment(resolveBootAssignment(store, mac, uuid, () => this.cachedDefaultEntry(cache)));
  }

  private readDefaultAssignment(cache: StoreReadCache): LibraryMachineAssignment | undefined {
    const entry = this.cachedDefaultEntry(cache);
    return this.toMachineAssignment(entry && { machine: undefined, entry, source: 'default', bootOnce: false });
  }

  private cachedDefaultEntry(cache: StoreReadCache): BootEntry | undefined {
    return cache.get('default-boot-entry', () => defaultBootEntry(this.options.store));
  }

  private toMachineAssignment(assigned: StoredBootAssignment | undefined): LibraryMachineAssignment | undefined {
    if (!assigned) return undefined;
    const { entry } = assigned;
    const name = `${entry.name}${assigned.bootOnce ? ' (once)' : ''}`;
    if (entry.kind === 'local-disk') return { name, ignore: true, ignoreReason: `boots from its local disk (assigned entry "${entry.name}")` };
    if (entry.kind === 'secure-boot-chain') return { name, boot: { uefi64: BOOT_BINARY_MOUNTS.shim.slice(1) } };
    if (entry.kind === 'nbp') {
      const boot: LibraryMachineAssignment['boot'] = {};
      for (const f of entry.files) {
        if (f.role !== 'nbp') continue;
        const cls = f.arch as keyof NonNullable<LibraryMachineAssignment['boot']>;
        if (architectureForBootClass(cls)) boot[cls] = entryFileServedPath(entry.id, f.path).slice(1);
      }
      return { name, boot };
    }
    return { name };
  }

  /** The MAC an iPXE client at this IP reported in its script request (fallback for macForIp). */
  reportedMacForIp = (ip: string): string | undefined => this.macByIp.get(ip.replace(/^::ffff:/, ''));

  // ---------------------------------------------------------------------- what to boot
  /** What this client boots, as a script request (assignment, else the menu of all entries). */
  async bootRequest(mac: string | undefined, uuid: string | undefined): Promise<BootRequest> {
    const assigned = mac || uuid ? resolveBootAssignment(this.options.store, mac, uuid) : undefined;
    if (assigned) {
      if (assigned.entry.kind === 'local-disk') return { action: 'local-disk' };
      return { action: 'entry', entry: await this.scriptEntry(assigned.entry), bootOnce: assigned.bootOnce };
    }
    // The menu has its own "Local disk" item; the built-in entry would repeat it.
    const choices = this.options.store.entries.list().filter((e) => e.kind !== 'local-disk');
    const entries = await Promise.all(choices.map((e) => this.scriptEntry(e)));
    return {
      action: 'menu',
      entries,
      defaultChoice: this.options.menu?.defaultChoice ?? 'local-disk',
      timeoutSeconds: this.options.menu?.timeoutSeconds ?? MENU_TIMEOUT_SECONDS,
    };
  }

  /** A store entry plus what its ISO carries (detected once per file content). */
  async scriptEntry(entry: BootEntry): Promise<ScriptEntry> {
    const base: ScriptEntry = { id: entry.id, name: entry.name, kind: entry.kind, arguments: entry.arguments, files: entry.files };
    const iso = entry.kind === 'iso' ? entry.files.find((f) => f.role === 'iso') : undefined;
    if (!iso) return base;
    const key = `${iso.sha256}:${iso.path}`;
    if (!this.isoInfo.has(key)) {
      this.isoInfo.set(
        key,
        detectFile(resolveEntryFilePath(iso, this.options.dataDir)).then(
          (d) => {
            const info = d.kind === 'iso' ? { linux: (d as IsoDetection).linux, windows: (d as IsoDetection).windows } : undefined;
            this.resolvedIso.set(key, info);
            return info;
          },
          () => undefined,
        ),
      );
    }
    return { ...base, iso: await this.isoInfo.get(key) };
  }

  // ---------------------------------------------------------------------- HTTP
  /**
   * The HTTP server's `dynamic` hook. Answers:
   *   /ipxe/boot.ipxe           bootstrap (give iPXE clients this URL as ipxeScriptUrl)
   *   /ipxe/machine.ipxe?mac=&uuid=&platform=&buildarch=   the machine's script
   * Returns false for anything else: files are the file server's (mountInto, locateInto).
   */
  httpRoute = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const path = safeDecode(url.pathname);
    if (path === undefined) return false;
    if (path === '/ipxe/boot.ipxe') {
      this.sendText(req, res, buildIpxeBootstrap(this.options.httpBaseUrl), ip, path);
      return true;
    }
    if (path === '/ipxe/machine.ipxe') {
      const mac = normalizeMacParam(url.searchParams.get('mac')) ?? this.options.macForIp?.(ip);
      const uuid = url.searchParams.get('uuid') || undefined;
      const architecture = architectureFromIpxe(url.searchParams.get('platform') ?? undefined, url.searchParams.get('buildarch') ?? undefined);
      if (mac) {
        this.architectureByMac.set(mac, architecture);
        this.macByIp.set(ip, mac);
      }
      const task = mac ? this.options.taskScript?.(mac) : undefined;
      if (task) {
        this.sendText(req, res, task, ip, path, mac);
        return true;
      }
      const machine = mac ? this.options.store.machines.find(mac, uuid) : undefined;
      const request = this.withAnswers(await this.bootRequest(mac, uuid), mac);
      const wimboot = locateBootBinary('wimboot', { dataDir: this.options.dataDir });
      const script = buildIpxeScript(request, {
        httpBaseUrl: this.options.httpBaseUrl,
        architecture,
        mac,
        machineName: machine?.name || undefined,
        wimbootUrl: wimboot.path ? `${this.options.httpBaseUrl.replace(/\/+$/, '')}${BOOT_BINARY_MOUNTS.wimboot}` : undefined,
      });
      this.sendText(req, res, script, ip, path, mac);
      return true;
    }
    return false;
  };

  private withAnswers(request: BootRequest, mac: string | undefined): BootRequest {
    return this.options.answers ? this.options.answers(request, mac) : request;
  }

  /** Where the bytes of /library/e<id>/<rest> are: a file, or a stretch of an ISO. */
  async locateServed(entryId: number, rest: string): Promise<{ path: string; offset: number; size: number } | { missing: string }> {
    const entry = this.options.store.entries.get(entryId);
    if (!entry) return { missing: `no entry ${entryId}` };
    const isoPrefix = /^iso\/(.+)$/i.exec(rest);
    if (isoPrefix && entry.kind === 'iso') {
      const iso = entry.files.find((f) => f.role === 'iso');
      if (!iso) return { missing: `entry ${entryId} has no ISO file` };
      const isoPath = resolveEntryFilePath(iso, this.options.dataDir);
      const image = await IsoImage.open(isoPath);
      try {
        // Windows install media keep their files in UDF only (the ISO 9660 tree has a README).
        const onIso = await image.stat(isoPrefix[1]);
        const inner = onIso ?? (await statInUdf(isoPath, isoPrefix[1]));
        if (!inner || inner.isDirectory) return { missing: `${isoPrefix[1]} is not a file in ${basename(isoPath)}` };
        const contiguous = inner.extents.every((e, i) => i === 0 || e.offset === inner.extents[i - 1].offset + inner.extents[i - 1].size);
        if (contiguous) return { path: isoPath, offset: inner.offset, size: inner.size };
        if (!onIso) return { missing: `${isoPrefix[1]} is stored in pieces in the ISO's UDF file system and cannot be served in place` };
        // A >4 GiB file in separate pieces: extracted once into the data folder, then served from there.
        const extracted = join(
          libraryDir(this.options.dataDir),
          '.extracted',
          `e${entryId}-${iso.sha256.slice(0, 12)}`,
          ...isoPrefix[1].toLowerCase().split('/').filter(Boolean),
        );
        if (!existsSync(extracted)) {
          // One extraction per file, however many clients ask at once.
          let running = this.extractions.get(extracted);
          if (!running) {
            running = mkdir(dirname(extracted), { recursive: true })
              .then(() =>
                extractIsoFile(isoPath, isoPrefix[1], extracted, (p) =>
                  this.options.publish?.('host.warning', {
                    message: `extracting ${onIso.name} from ${basename(isoPath)}: ${p.bytes} of ${p.size} bytes`,
                    entryId,
                    progress: p,
                  }),
                ),
              )
              .then(() => undefined)
              .finally(() => this.extractions.delete(extracted));
            this.extractions.set(extracted, running);
          }
          await running;
        }
        return { path: extracted, offset: 0, size: statSync(extracted).size };
      } finally {
        await image.close();
      }
    }
    const wanted = rest.toLowerCase();
    const file = entry.files.find((f) => basename(f.path).toLowerCase() === wanted);
    if (!file) return { missing: `entry ${entryId} has no file ${rest}` };
    const path = resolveEntryFilePath(file, this.options.dataDir);
    try {
      return { path, offset: 0, size: statSync(path).size };
    } catch {
      return { missing: `${path} (file of entry "${entry.name}") is gone` };
    }
  }

  private sendText(req: IncomingMessage, res: ServerResponse, text: string, ip: string, path: string, mac?: string): void {
    const body = Buffer.from(text, 'utf8');
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
    this.options.publish?.('http.done', { mac: mac ?? this.options.macForIp?.(ip), ip, file: path, bytes: body.length, size: body.length, generated: true });
  }

  // ---------------------------------------------------------------------- TFTP + HTTP files
  /**
   * Mounts the boot binaries and the per-machine grub.cfg into the FileResolver TFTP and HTTP
   * share, plus every entry's files at /library/e<id>/<name> (for TFTP clients: direct NBPs,
   * GRUB). Call again after entries change. Returns what could not be mounted (missing binaries).
   */
  mountInto(files: MountableFiles): string[] {
    const problems: string[] = [];
    for (const name of Object.keys(BOOT_BINARY_MOUNTS) as BootBinaryName[]) {
      if (name === 'wimboot') continue;
      const found = locateBootBinary(name, { dataDir: this.options.dataDir, resourcesDir: this.options.resourcesDir });
      if (found.path) files.mount(BOOT_BINARY_MOUNTS[name], found.path);
      else problems.push(`${BOOT_BINARY_MOUNTS[name]}: ${found.hint}`);
    }
    const grubLists = locateBootBinary('grub', { dataDir: this.options.dataDir, resourcesDir: this.options.resourcesDir }).path;
    if (grubLists) files.mount('/grub/x86_64-efi', grubLists.replace(/grubx64\.efi$/, 'grub/x86_64-efi'));
    files.generate('/grub/grub.cfg', async (request) => {
      const mac = request.mac ?? (request.ip ? this.options.macForIp?.(request.ip) : undefined);
      const grubContext = {
        serverAddress: this.options.serverAddress,
        httpPort: this.options.httpPort,
        mac,
        machineName: mac ? this.options.store.machines.find(mac)?.name || undefined : undefined,
      };
      const task = mac ? this.options.taskKernel?.(mac) : undefined;
      if (task) return buildGrubTaskConfig(task, grubContext);
      // Machines with an assignment get a grub.cfg for it; unassigned ones fall through to
      // the root, so a technician's own GRUB set-up (shim + GRUB + grub.cfg) keeps working.
      const bootRequest = this.withAnswers(await this.bootRequest(mac, undefined), mac);
      if (bootRequest.action === 'menu') return undefined;
      if (mac) this.architectureByMac.set(mac, 'x64');
      return buildGrubConfig(bootRequest, grubContext);
    });
    for (const entry of this.options.store.entries.list()) {
      for (const file of entry.files) {
        const real = resolveEntryFilePath(file, this.options.dataDir);
        try {
          files.mount(entryFileServedPath(entry.id, file.path), real);
        } catch (err) {
          problems.push(`${entry.name}: ${(err as Error).message}`);
        }
      }
    }
    return problems;
  }

  /**
   * Files found per request, for TFTP and HTTP clients alike: below /library/e<id>/ an entry's
   * files (also those mounted after mountInto ran) and the files inside its ISO, read in place
   * (the kernel and initrds of a live ISO for GRUB and iPXE, Windows boot files for wimboot);
   * and the user's wimboot, which may be put into the data folder while serving.
   */
  locateInto(files: LocatableFiles): void {
    files.locate('/library', async (rest) => {
      const match = /^e(\d+)\/(.+)$/i.exec(rest);
      return match ? this.locateServed(Number(match[1]), match[2]) : undefined;
    });
    files.locate(BOOT_BINARY_MOUNTS.wimboot, async (rest) => {
      if (rest !== '') return undefined;
      const wimboot = locateBootBinary('wimboot', { dataDir: this.options.dataDir });
      return wimboot.path ? { path: wimboot.path, offset: 0, size: statSync(wimboot.path).size } : { missing: wimboot.hint! };
    });
  }

  // ---------------------------------------------------------------------- boot once
  /**
   * Bus subscriber: a finished TFTP/HTTP transfer of an entry's last file ends that
   * machine's boot-once assignment; it gets the local-disk entry from then on.
   */
  onTransferEvent = (event: BootEvent): void => {
    if (event.type !== 'tftp.done' && event.type !== 'http.done') return;
    if (!event.mac || event.generated || event.file === undefined) return;
    if (event.type === 'tftp.done') return this.noteFetched(event.mac, event.file, true, false);
    // The HTTP file server reports a range session (sanboot) as one transfer with `ranged`.
    const ranged = event.ranged === true;
    const complete = !ranged && event.bytes !== undefined && event.size !== undefined && event.bytes >= event.size;
    this.noteFetched(event.mac, event.file, complete, ranged);
  };

  private noteFetched(mac: string, path: string, complete: boolean, range: boolean): void {
    const store = this.options.store;
    const machine = store.machines.findByMac(mac);
    if (!machine || !machine.bootOnce || machine.entryId === null) return;
    const entry = store.entries.get(machine.entryId);
    if (!entry) return;
    const architecture = this.architectureByMac.get(mac) ?? architectureForBootClass(machine.lastArch ?? '') ?? 'x64';
    const scriptEntry: ScriptEntry = {
      id: entry.id,
      name: entry.name,
      kind: entry.kind,
      arguments: entry.arguments,
      files: entry.files,
      iso: this.cachedIso(entry),
    };
    const transition = nextAssignmentAfterFetch({ entryId: machine.entryId, bootOnce: true }, scriptEntry, architecture, { path, complete, range });
    if (!transition.changed) return;
    const localDisk = ensureLocalDiskEntry(store);
    store.machines.update(machine.id, { entryId: localDisk.id, bootOnce: false });
    this.options.publish?.('host.warning', { mac, message: transition.reason, bootOnce: 'completed', entryId: entry.id });
  }

  private cachedIso(entry: BootEntry): ScriptEntry['iso'] {
    // What scriptEntry() resolved already: a machine fetches its script before its files.
    const iso = entry.files.find((f) => f.role === 'iso');
    return iso ? this.resolvedIso.get(`${iso.sha256}:${iso.path}`) : undefined;
  }

  private readonly resolvedIso = new Map<string, ScriptEntry['iso']>();

  /** Resolves and remembers ISO details for boot-once matching (await before serving files). */
  async preload(): Promise<void> {
    for (const entry of this.options.store.entries.list()) if (entry.kind === 'iso') await this.scriptEntry(entry);
  }
}

/** The one "Local disk" entry boot-once assignments fall back to (created on first use). */
export function ensureLocalDiskEntry(store: Store): BootEntry {
  const existing = store.entries.list().find((e) => e.kind === 'local-disk');
  if (existing) return existing;
  let name = LOCAL_DISK_ENTRY_NAME;
  for (let i = 2; store.entries.findByName(name); i++) name = `${LOCAL_DISK_ENTRY_NAME} (${i})`;
  return store.entries.create({ name, kind: 'local-disk', notes: 'Boots the machine from its own disk (iPXE exit / sanboot 0x80; no answer to plain PXE)' });
}

async function statInUdf(isoPath: string, innerPath: string): Promise<IsoDirectoryEntry | undefined> {
  try {
    const udf = await UdfImage.open(isoPath);
    if (!udf) return undefined;
    try {
      return await udf.stat(innerPath);
    } finally {
      await udf.close();
    }
  } catch (err) {
    if (err instanceof UdfFormatError) return undefined;
    throw err;
  }
}

function safeDecode(path: string): string | undefined {
  try {
    const decoded = decodeURIComponent(path);
    if (decoded.includes('\0') || decoded.split('/').includes('..')) return undefined;
    return decoded;
  } catch {
    return undefined;
  }
}

function normalizeMacParam(value: string | null): string | undefined {
  if (!value) return undefined;
  const hex = value.toLowerCase().replace(/[^0-9a-f]/g, '');
  return hex.length === 12 ? hex.match(/../g)!.join(':') : undefined;
}

/**
 * The group action "reinstall these N machines once": each gets `entryId` as a boot-once
 * assignment, all or none (one transaction). Returns the machines changed.
 */
export function assignOnceInStore(store: Store, machineIds: number[], entryId: number): number {
  const entry = store.entries.get(entryId);
  if (!entry) throw new Error(`entry ${entryId} does not exist (deleted meanwhile?)`);
  const plan = assignOnce(machineIds, entryId);
  return store.transaction(() => {
    for (const { machineId, assignment } of plan) {
      if (!store.machines.get(machineId)) throw new Error(`machine ${machineId} does not exist (deleted meanwhile?); nothing was changed`);
      store.machines.update(machineId, { entryId: assignment.entryId, bootOnce: assignment.bootOnce });
    }
    return plan.length;
  });
}
