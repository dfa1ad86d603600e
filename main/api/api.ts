// The contract of preload/api.ts implemented on top of the service host and the store.
// Both transports (Electron IPC in main/app, the WebSocket in main/web) hand every call
// to `HostApi.handle` and forward what `connectApiEvents` emits; neither knows a call.
//
// This is the host's edge: every request is validated here (zod), every answer is an
// envelope, and errors become plain-language messages, never stack traces.
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import {
  isTransferEvent,
  transferIdKey,
  transferOutcomeOf,
  transferProtocolOf,
  type BootEvent,
  systemClock,
  type Clock,
  type TimerHandle,
} from '../core/index.js';
import { defaultServedFolder } from '../host/index.js';
import { diagnoseBoot, summarizeEvent, type BootExpectation } from './boot-diagnosis.js';
import { offeredForServing } from '../net/index.js';
import type {
  AnswerTemplateInfo,
  AnswerTemplateSet,
  ApiCallName,
  ApiCalls,
  ApiEnvelope,
  ApiErrorCode,
  ApiEvents,
  AppInfo,
  BootEntry,
  BootProgramStatus,
  CsvImportResult,
  DefaultBoot,
  DefaultBootChoice,
  EntryPairRequest,
  EntryRemoveRequest,
  EntryRemoveResult,
  EntryUpdate,
  EntryUpdateResult,
  ImageCaptureRequest,
  ImageDeleteResult,
  ImageDeployRequest,
  ImageInfo,
  ImageVerifyResult,
  ImagingJob,
  ImportFilesResult,
  InterfacesList,
  Machine,
  MachineGroup,
  MachineUpdate,
  NetInterfaceInfo,
  ServeMode,
  ServeSettings,
  ServicesStatus,
  Timeline,
  TransferRecord,
  TransferRow,
} from '../../preload/api.js';

// ---------------------------------------------------------------------------------------
// What the API needs from the rest of the host (ports). ServiceHost satisfies the first
// one as is; the store is adapted in api-store.ts.

export interface ApiServiceHost {
  readonly bus: { subscribe(listener: (event: BootEvent) => void): () => void };
  start(overrides?: {
    interfaceName?: string;
    mode?: ServeMode;
    pool?: { first: string; last: string };
    root?: string;
    force?: boolean;
  }): Promise<ServicesStatus>;
  stop(): Promise<ServicesStatus>;
  status(): ServicesStatus;
  config(): Pick<ServeSettings, 'interfaceName' | 'mode' | 'pool' | 'root' | 'httpPort' | 'boot'> & { dataDir: string };
  /** The bundled iPXE chain's programs, found or missing (ServiceHost.bootPrograms). */
  bootPrograms?(): BootProgramStatus[];
  activeTransfers(): TransferRow[];
}

export interface ApiStore {
  machines: {
    list(): Machine[];
    get(id: number): Machine | undefined;
    findByMac(mac: string): Machine | undefined;
    update(update: MachineUpdate): Machine;
    groups(): MachineGroup[];
    assignGroup(group: string, entryId: number | null): MachineGroup;
    importCsv(csv: string): CsvImportResult;
    exportCsv(): string;
  };
  entries: { list(): BootEntry[] };
  /** What PCs with no assignment of their own or of their group boot. */
  defaults: { boot(): DefaultBoot; setBoot(choice: DefaultBootChoice): DefaultBoot };
  /** Boot events, oldest first, at most `limit` (the most recent ones). */
  timeline: {
    forMachine(id: number, limit: number): BootEvent[];
    forMac(mac: string, limit: number): BootEvent[];
    /** What the machine's entry needs fetched before its boot counts as complete. */
    expectation?(machineId: number): Promise<BootExpectation | undefined>;
  };
  transfers: { recent(limit: number): TransferRecord[] };
  /** Why this entry cannot be given to a machine (nothing in it boots), or undefined. */
  unassignable?(entryId: number): Promise<string | undefined>;
  /** Images and imaging jobs of the data folder (api-imaging.ts). */
  imaging?: ImagingApi;
  /** Entries' answer-file templates (api-answers.ts). */
  answers?: AnswerFilesApi;
}

/** The Library screen's view of answer files: templates per entry and what refuses them. */
export interface AnswerFilesApi {
  list(): AnswerTemplateInfo[];
  get(entryId: number): AnswerTemplateInfo;
  set(request: AnswerTemplateSet): AnswerTemplateInfo;
  remove(entryId: number): AnswerTemplateInfo;
  /** Why these machines would not get their answers from this entry (each line names machine and variable); empty when fine. */
  refusalsFor(entryId: number, machineIds: number[]): string[];
}

/** The Images screen's view of main/imaging: requests already validated in shape, checked here against the data. */
export interface ImagingApi {
  list(): ImageInfo[];
  capture(request: ImageCaptureRequest): ImagingJob;
  deploy(request: ImageDeployRequest): ImagingJob;
  remove(name: string): ImageDeleteResult;
  verify(name: string): Promise<ImageVerifyResult>;
  jobs(): ImagingJob[];
  job(id: number): ImagingJob | undefined;
}

/** The library: import (detects what each file is, records entries) and managing entries (api-library.ts). */
export interface LibraryImporter {
  importFiles(paths: string[]): Promise<ImportFilesResult>;
  /** Files the web UI uploaded (main/web/upload.ts), by upload id, imported together. */
  importUploads(ids: string[]): Promise<ImportFilesResult>;
  update(update: EntryUpdate): Promise<EntryUpdateResult>;
  pair(request: EntryPairRequest): Promise<BootEntry>;
  remove(request: EntryRemoveRequest): Promise<EntryRemoveResult>;
}

/** For a host that has no library to add to (no store): refuses in words, never pretends. */
export function unavailableLibraryImporter(reason: string): LibraryImporter {
  const refuse = async (): Promise<never> => {
    throw new ApiError('unavailable', reason);
  };
  return { importFiles: refuse, importUploads: refuse, update: refuse, pair: refuse, remove: refuse };
}

/** An error whose message is meant for the technician as is. */
export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface HostApiOptions {
  host: ApiServiceHost;
  store?: ApiStore;
  library?: LibraryImporter;
  listInterfaces: () => NetInterfaceInfo[];
  shell: AppInfo['shell'];
  version?: string;
  fileDialogs?: boolean;
  /** Shown in the UI's banner (e.g. the database could not be opened). */
  notices?: () => string[];
  /** Called after a successful start (the shells save the settings used). */
  afterStart?: (status: ServicesStatus) => void;
}

// ---------------------------------------------------------------------------------------
// Request schemas: the only shapes a call accepts. Unknown keys are refused so a typo in
// a client shows up as an error instead of being silently ignored.

const ipv4 = z.ipv4({ message: 'must be an IPv4 address such as 192.0.2.100' });
const mac = z
  .string()
  .trim()
  .regex(/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/, 'must be a MAC address such as 52:54:00:12:34:56')
  .transform((s) => s.toLowerCase().replace(/-/g, ':'));
const id = z.number().int().positive();
const none = z
  .undefined()
  .or(z.null())
  .or(z.object({}).strict())
  .transform(() => undefined);
/** What main/web/upload.ts names an upload (random hex). */
export const UPLOAD_ID = /^[0-9a-f]{32}$/;
const boundedText = (max: number) => z.string().trim().max(max, `must be at most ${max} characters`);
// The image-name rule itself (letters, digits, . _ -) is main/imaging's, checked in api-imaging.ts.
const imageName = z.string().trim().min(1, 'must not be empty: give the image a name').max(64, 'must be at most 64 characters');
const diskSelector = boundedText(128)
  .regex(/^[A-Za-z0-9._:/+@ -]*$/, "must be the disk's serial or model as the PC reports it (letters, digits, . _ : / + @ -)")
  .optional();
const then = z.enum(['disk', 'poweroff'], { message: 'must be "disk" (boot the PC\'s own disk afterwards) or "poweroff"' }).optional();

const requestSchemas: { [C in ApiCallName]: z.ZodType<ApiCalls[C]['request'], any> } = {
  'app:info': none,
  'services:status': none,
  'services:settings': none,
  'services:start': z
    .object({
      interfaceName: z.string().min(1).max(64).optional(),
      mode: z.enum(['proxy', 'dhcp']).optional(),
      pool: z.object({ first: ipv4, last: ipv4 }).strict().optional(),
      root: z
        .string()
        .trim()
        .min(1, 'must not be empty: give the folder to serve')
        .max(4096)
        .refine((p) => isAbsolute(p), 'must be a full path on the host, e.g. /srv/boot')
        .optional(),
      force: z.boolean().optional(),
    })
    .strict(),
  'services:stop': none,
  'services:set-default-boot': z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('menu') }).strict(),
    z.object({ kind: z.literal('local-disk') }).strict(),
    z.object({ kind: z.literal('entry'), entryId: id }).strict(),
  ]),
  'interfaces:list': none,
  'machines:list': none,
  'machines:update': z
    .object({
      id,
      name: boundedText(128).optional(),
      group: boundedText(64).optional(),
      seat: boundedText(64).optional(),
      entryId: id.nullable().optional(),
      bootOnce: z.boolean().optional(),
    })
    .strict(),
  'machines:groups': none,
  'machines:assign-group': z.object({ group: boundedText(64).min(1, 'must not be empty'), entryId: id.nullable() }).strict(),
  'machines:import-csv': z.object({ csv: z.string().max(5_000_000, 'is too large (5 MB at most)') }).strict(),
  'machines:export-csv': none,
  'entries:list': none,
  'entries:import': z.object({ paths: z.array(z.string().min(1).max(4096)).min(1, 'needs at least one file').max(500) }).strict(),
  'entries:import-uploads': z
    .object({ uploads: z.array(z.string().regex(UPLOAD_ID, 'must be an upload id the host gave')).min(1, 'needs at least one upload').max(500) })
    .strict(),
  'entries:update': z
    .object({
      id,
      name: boundedText(128).min(1, 'must not be empty').optional(),
      arguments: boundedText(4096).optional(),
      secureBoot: z.boolean().optional(),
    })
    .strict(),
  'entries:pair': z
    .object({ kernelId: id, initrdId: id })
    .strict()
    .refine((r) => r.kernelId !== r.initrdId, 'needs two different entries'),
  'entries:remove': z.object({ id, force: z.boolean().optional() }).strict(),
  'answers:list': none,
  'answers:get': z.object({ entryId: id }).strict(),
  'answers:set': z
    .object({
      entryId: id,
      dialect: z.enum(['preseed', 'autoinstall', 'kickstart', 'autounattend'], {
        message: 'must be preseed, autoinstall, kickstart or autounattend',
      }),
      text: z.string().max(1024 * 1024, 'must be at most 1 MiB'),
    })
    .strict(),
  'answers:remove': z.object({ entryId: id }).strict(),
  'transfers:active': none,
  'transfers:history': z
    .object({ limit: z.number().int().min(1).max(5000).optional() })
    .strict()
    .or(none)
    .transform((r) => r ?? {}),
  'timeline:get': z
    .object({ machineId: id.optional(), mac: mac.optional(), limit: z.number().int().min(1).max(5000).optional() })
    .strict()
    .refine((r) => r.machineId !== undefined || r.mac !== undefined, 'needs machineId or mac'),
  'images:list': none,
  'images:capture': z
    .object({ machineId: id.optional(), mac: mac.optional(), name: imageName, disk: diskSelector, then })
    .strict()
    .refine((r) => (r.machineId !== undefined) !== (r.mac !== undefined), 'needs one machine: pick the machine to capture'),
  'images:deploy': z
    .object({
      image: imageName,
      machineIds: z.array(id).max(1000).optional(),
      macs: z.array(mac).max(1000).optional(),
      group: boundedText(64).min(1, 'must not be empty').optional(),
      disk: diskSelector,
      then,
    })
    .strict()
    .refine(
      (r) => (r.group !== undefined) !== (r.machineIds?.length ?? 0) + (r.macs?.length ?? 0) > 0,
      'needs machines or a group (not both): pick the machines to deploy to, or a group',
    ),
  'images:delete': z.object({ name: imageName }).strict(),
  'images:verify': z.object({ name: imageName }).strict(),
  'imaging:jobs': none,
};

// The host's configuration errors name command-line flags (`bootbench serve` shares them);
// the UI names the setting on screen instead.
const FLAG_WORDING: [RegExp, string][] = [
  [/^--pool (?=\d)/, 'The address pool '],
  [/^--root is required/, 'A served folder is required'],
  [/^--root (?=\S)/, 'The served folder '],
  [/^--mode dhcp needs --pool FIRST-LAST/, 'Full DHCP mode needs an address pool (first and last address)'],
  [/\(--pool FIRST-LAST\)/, '(first and last address)'],
  [/--interface NAME/, 'the network card'],
  [/use --mode proxy beside it, or --force if you are sure/, 'switch to Proxy DHCP mode beside it, or choose "Start anyway" if you are sure'],
  // The imaging agent's refusals name the CLI's option for the disk to use.
  [/\(--disk\)/, '(the Disk field of the Images screen)'],
];

export function uiWording(message: string): string {
  const text = FLAG_WORDING.reduce((t, [pattern, replacement]) => t.replace(pattern, replacement), message);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function withUiWording(status: ServicesStatus): ServicesStatus {
  return {
    ...status,
    problems: status.problems.map(uiWording),
    services: status.services.map((s) => (s.error ? { ...s, error: uiWording(s.error) } : s)),
  };
}

function describeZodError(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const where = issue.path.length ? issue.path.join('.') : 'request';
      return `${where} ${issue.message}`;
    })
    .join('; ');
}

// ---------------------------------------------------------------------------------------

type Handlers = { [C in ApiCallName]: (request: ApiCalls[C]['request']) => ApiCalls[C]['response'] | Promise<ApiCalls[C]['response']> };

export class HostApi {
  private readonly handlers: Handlers;

  constructor(private readonly options: HostApiOptions) {
    const { host } = options;
    const library = options.library ?? unavailableLibraryImporter('This host has no boot library to add files to (the machine database is not open).');
    const store = (): ApiStore => {
      if (!options.store) throw new ApiError('unavailable', 'The machine database is not open, so machines, entries and history are not available.');
      return options.store;
    };
    const answers = (): AnswerFilesApi => {
      const found = store().answers;
      if (!found) throw new ApiError('unavailable', 'This host has no data folder to keep answer files in.');
      return found;
    };
    const imaging = (): ImagingApi => {
      const found = store().imaging;
      if (!found) throw new ApiError('unavailable', 'This host has no imaging (no data folder for images).');
      return found;
    };
    this.handlers = {
      'app:info': () => ({
        version: options.version ?? '0.0.0',
        shell: options.shell,
        fileDialogs: options.fileDialogs ?? false,
        notices: options.notices?.() ?? [],
      }),
      'services:status': () => withUiWording(host.status()),
      'services:settings': () => this.settings(),
      'services:set-default-boot': (choice) => {
        store().defaults.setBoot(choice);
        return this.settings();
      },
      'services:start': async (request) => {
        if (request.mode === 'dhcp' && !request.pool && !host.config().pool) {
          throw new ApiError('invalid-request', 'Full DHCP mode needs a pool: the first and last address to hand out, e.g. 192.0.2.100 to 192.0.2.150.');
        }
        const status = await host.start(request);
        options.afterStart?.(status);
        return withUiWording(status);
      },
      'services:stop': async () => withUiWording(await host.stop()),
      'interfaces:list': () => this.interfaces(),
      'machines:list': () => store().machines.list(),
      'machines:update': async (request) => {
        if (!store().machines.get(request.id)) throw new ApiError('not-found', `There is no machine number ${request.id} (it may have been removed).`);
        await this.refuseUnbootable(request.entryId);
        this.refuseWithoutAnswers(request.entryId, [request.id]);
        return store().machines.update(request);
      },
      'machines:groups': () => store().machines.groups(),
      'machines:assign-group': async (request) => {
        await this.refuseUnbootable(request.entryId);
        const members = store()
          .machines.list()
          // Members with an entry of their own do not boot the group's.
          .filter((m) => m.group.toLowerCase() === request.group.toLowerCase() && m.entryId === undefined);
        this.refuseWithoutAnswers(
          request.entryId,
          members.map((m) => m.id),
        );
        return store().machines.assignGroup(request.group, request.entryId);
      },
      'machines:import-csv': (request) => store().machines.importCsv(request.csv),
      'machines:export-csv': () => ({ filename: `bootbench-machines-${new Date().toISOString().slice(0, 10)}.csv`, csv: store().machines.exportCsv() }),
      'entries:list': () => store().entries.list(),
      'entries:import': (request) => library.importFiles(request.paths),
      'entries:import-uploads': (request) => library.importUploads(request.uploads),
      'entries:update': (request) => library.update(request),
      'entries:pair': (request) => library.pair(request),
      'entries:remove': (request) => library.remove(request),
      'answers:list': () => answers().list(),
      'answers:get': (request) => answers().get(request.entryId),
      'answers:set': (request) => answers().set(request),
      'answers:remove': (request) => answers().remove(request.entryId),
      'transfers:active': () => host.activeTransfers(),
      'transfers:history': (request) => store().transfers.recent(request?.limit ?? 200),
      'timeline:get': (request) => this.timeline(request.machineId, request.mac, request.limit ?? 200),
      'images:list': () => imaging().list(),
      'images:capture': (request) => imaging().capture(request),
      'images:deploy': (request) => imaging().deploy(request),
      'images:delete': (request) => imaging().remove(request.name),
      'images:verify': (request) => imaging().verify(request.name),
      'imaging:jobs': () => imaging().jobs(),
    };
  }

  /** Validates and runs one call; never throws. */
  async handle(call: string, request: unknown): Promise<ApiEnvelope<unknown>> {
    if (!Object.hasOwn(this.handlers, call)) return { error: { code: 'unknown-call', message: `Unknown call "${call}".` } };
    const name = call as ApiCallName;
    const parsed = requestSchemas[name].safeParse(request);
    if (!parsed.success) return { error: { code: 'invalid-request', message: `${call}: ${describeZodError(parsed.error)}` } };
    try {
      const handler = this.handlers[name] as (r: unknown) => unknown;
      return { result: await handler(parsed.data) };
    } catch (err) {
      if (err instanceof ApiError) return { error: { code: err.code, message: err.message } };
      // Host and store errors (ConfigError, InterfaceChoiceError, MachineInputError ...) are
      // written for the user; anything else still says what failed rather than vanishing.
      return { error: { code: 'failed', message: uiWording((err as Error)?.message || String(err)) } };
    }
  }

  private settings(): ServeSettings {
    const c = this.options.host.config();
    return {
      interfaceName: c.interfaceName,
      mode: c.mode,
      pool: c.pool,
      root: c.root,
      defaultRoot: defaultServedFolder(c.dataDir),
      httpPort: c.httpPort,
      boot: c.boot,
      defaultBoot: this.options.store?.defaults.boot(),
      bootPrograms: this.options.host.bootPrograms?.() ?? [],
    };
  }

  /** An entry that cannot boot anything (a data disc taken in before import refused them) is not handed out. */
  /** An installer entry whose answer file some of these machines could not have is not assigned: each line names machine and variable. */
  private refuseWithoutAnswers(entryId: number | null | undefined, machineIds: number[]): void {
    if (typeof entryId !== 'number' || machineIds.length === 0) return;
    const refusals = this.options.store?.answers?.refusalsFor(entryId, machineIds) ?? [];
    if (refusals.length > 0) throw new ApiError('invalid-request', `Not assigned: ${refusals.join(' ')}`);
  }

  private async refuseUnbootable(entryId: number | null | undefined): Promise<void> {
    if (typeof entryId !== 'number') return;
    const why = await this.options.store?.unassignable?.(entryId);
    if (why) throw new ApiError('invalid-request', why);
  }

  private interfaces(): InterfacesList {
    const interfaces = this.options.listInterfaces().filter(offeredForServing);
    const configured = this.options.host.config().interfaceName;
    const current = interfaces.find((n) => n.name === configured);
    if (current) return { interfaces, suggested: { name: current.name, reason: 'the NIC the services were last started on' } };
    return { interfaces, suggested: suggestBenchInterface(interfaces) };
  }

  private async timeline(machineId: number | undefined, mac: string | undefined, limit: number): Promise<Timeline> {
    const store = this.options.store;
    if (!store) throw new ApiError('unavailable', 'The machine database is not open, so there is no timeline to show.');
    const machine = machineId !== undefined ? store.machines.get(machineId) : mac ? store.machines.findByMac(mac) : undefined;
    if (machineId !== undefined && !machine) throw new ApiError('not-found', `There is no machine number ${machineId} (it may have been removed).`);
    const events = machine ? store.timeline.forMachine(machine.id, limit) : store.timeline.forMac(mac!, limit);
    const visible = events.filter((e) => e.type !== 'tftp.progress' && e.type !== 'http.progress');
    return {
      machineId: machine?.id,
      mac: mac ?? machine?.macs[0],
      machine,
      events: visible.map(summarizeEvent),
      diagnosis: diagnoseBoot(events, machine ? await store.timeline.expectation?.(machine.id) : undefined),
    };
  }
}

/**
 * The NIC most likely wired to the bench: wired with link and an address; failing that,
 * the only non-loopback NIC with an address (a VM or a lab namespace has only virtual ones).
 */
export function suggestBenchInterface(interfaces: NetInterfaceInfo[]): InterfacesList['suggested'] {
  const usable = interfaces.filter((n) => n.up && n.ipv4.length > 0 && n.kind !== 'loopback');
  const wired = usable.filter((n) => n.kind === 'wired');
  if (wired.length === 1) return { name: wired[0]!.name, reason: 'the only wired NIC with a link and an address' };
  if (wired.length > 1) return { name: wired[0]!.name, reason: `one of ${wired.length} wired NICs with a link: check it is the bench one` };
  if (usable.length === 1) return { name: usable[0]!.name, reason: `the only ${usable[0]!.kind} NIC with an address` };
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Pushed events. Progress is coalesced: one 'transfer:progress' snapshot per interval at
// most, only while something changed, so a bench of 50 PCs costs a few messages a second.

export type ApiEventSink = <E extends keyof ApiEvents>(event: E, payload: ApiEvents[E]) => void;

export interface ApiEventOptions {
  host: ApiServiceHost;
  store?: ApiStore;
  sink: ApiEventSink;
  clock?: Clock;
  /** Minimum time between two progress pushes (default 250 ms: four a second). */
  intervalMs?: number;
}

let recordsWithoutKey = 0;

/** The finished-transfer record of a transfer's last event; undefined for any other event. */
export function transferRecordFromEvent(event: BootEvent): TransferRecord | undefined {
  const outcome = transferOutcomeOf(event.type);
  if (!outcome || !isTransferEvent(event)) return undefined;
  const protocol = transferProtocolOf(event.type);
  // The same key the history row gets, so the screen can match the two; a refusal has no transfer id.
  const transferKey = transferIdKey(event);
  return {
    id: transferKey ?? `${protocol}:${event.time}-${event.ip ?? ''}-${++recordsWithoutKey}`,
    transferKey,
    mac: event.mac,
    ip: event.ip,
    file: event.file ?? '',
    protocol,
    size: event.size,
    bytes: event.bytes ?? 0,
    outcome,
    finishedAt: event.time,
    durationMs: event.durationMs,
    reason: event.reason || undefined,
  };
}

/** Subscribes to the host's bus and pushes contract events to `sink`; returns the unsubscribe. */
export function connectApiEvents(options: ApiEventOptions): () => void {
  const { host, store, sink } = options;
  const clock = options.clock ?? systemClock;
  const interval = options.intervalMs ?? 250;
  let finished: TransferRecord[] = [];
  // mac -> when its DHCP message arrived. The store records machines from the same events in
  // its own batches, so a MAC not found yet is looked up again at the next flush, for a while.
  const seenMacs = new Map<string, number>();
  const seenPatienceMs = 5000;
  // The store writes in batches every 250 ms: asking sooner would read the previous sighting.
  const storeLagMs = 300;
  let dirty = false;
  // Imaging jobs whose PCs reported since the last push; the rows are read from the store.
  const imagingJobs = new Set<number>();
  // mac -> job and phase last put on its timeline: the agent reports every second, the timeline wants the steps.
  const imagingSteps = new Map<string, string>();
  let timer: TimerHandle | undefined;
  let lastFlush = -Infinity;

  const flush = () => {
    timer = undefined;
    lastFlush = clock.now();
    if (dirty) {
      dirty = false;
      const batch = finished;
      finished = [];
      sink('transfer:progress', { active: host.activeTransfers(), finished: batch });
    }
    if (imagingJobs.size && store?.imaging) {
      const jobs = [...imagingJobs].map((id) => store.imaging!.job(id)).filter((j): j is ImagingJob => j !== undefined);
      imagingJobs.clear();
      if (jobs.length) sink('imaging:progress', { jobs });
    }
    for (const [mac, since] of seenMacs) {
      if (store && clock.now() - since < storeLagMs) continue;
      const machine = store?.machines.findByMac(mac);
      if (machine) sink('machine:seen', machine);
      if (machine || !store || clock.now() - since > seenPatienceMs) seenMacs.delete(mac);
    }
    if (seenMacs.size) schedule();
  };
  function schedule(): void {
    if (timer) return;
    timer = clock.setTimeout(flush, Math.max(0, lastFlush + interval - clock.now()));
  }

  const unsubscribe = host.bus.subscribe((event) => {
    if (event.type === 'service.state') {
      // The host publishes its own status(); the bus does not know the UI's types.
      const status = (event.status as ServicesStatus | undefined) ?? host.status();
      sink('services:state', withUiWording(status));
      return;
    }
    if (isTransferEvent(event)) {
      const record = transferRecordFromEvent(event);
      if (record) finished.push(record);
      dirty = true;
      schedule();
    }
    // A finished boot once changed the machine's entry: the Machines screen shows it at once.
    if ((event.type === 'dhcp.received' || (event.type === 'host.warning' && event.bootOnce === 'completed')) && event.mac) {
      if (!seenMacs.has(event.mac)) seenMacs.set(event.mac, clock.now());
      schedule();
    }
    if (event.type === 'imaging.progress') {
      imagingJobs.add(event.job);
      schedule();
      const step = `${event.job} ${event.phase}`;
      if (!event.mac || imagingSteps.get(event.mac) === step) return;
      imagingSteps.set(event.mac, step);
      if (imagingSteps.size > 10_000) imagingSteps.delete(imagingSteps.keys().next().value!);
    }
    if (event.mac && event.type !== 'tftp.progress' && event.type !== 'http.progress') sink('timeline:event', summarizeEvent(event));
  });
  return () => {
    unsubscribe();
    if (timer) clock.clearTimeout(timer);
    timer = undefined;
  };
}
