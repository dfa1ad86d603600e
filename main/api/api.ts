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
  type BootEventOf,
  type Publish,
  systemClock,
  type Clock,
  type TimerHandle,
} from '../core/index.js';
import { defaultServedFolder, isAllowedHttpBootFile } from '../host/index.js';
import { diagnoseBoot, summarizeEvent, wakeFollowUp, wakeFollowUps, WAKE_ANSWER_MS, type BootExpectation } from './boot-diagnosis.js';
import { createScopedUdpSocketFactory, offeredForServing, type UdpSocketFactory } from '../net/index.js';
import { WakeRefusal, wakeRequested } from './wake.js';
import { layoutRoom, roomTileState, type TileImaging } from './room.js';
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
  HttpBootSetting,
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
  RoomSeatsRequest,
  RoomStartRequest,
  RoomStartResult,
  RoomTask,
  RoomTile,
  RoomView,
  ServeMode,
  ServeSettings,
  ImagingMulticastSetting,
  ServicesStatus,
  Timeline,
  TransferRecord,
  TransferRow,
  WakeRequest,
  WakeResult,
} from '../../preload/api.js';

// ---------------------------------------------------------------------------------------
// What the API needs from the rest of the host (ports). ServiceHost satisfies the first
// one as is; the store is adapted in api-store.ts.

export interface ApiServiceHost {
  /** `publish` records what the API itself does (a wake); ServiceHost's bus has it. */
  readonly bus: { subscribe(listener: (event: BootEvent) => void): () => void; publish?: Publish };
  start(overrides?: {
    interfaceName?: string;
    mode?: ServeMode;
    pool?: { first: string; last: string };
    root?: string;
    force?: boolean;
    httpBoot?: HttpBootSetting;
    imagingMulticast?: ImagingMulticastSetting;
  }): Promise<ServicesStatus>;
  stop(): Promise<ServicesStatus>;
  status(): ServicesStatus;
  config(): Pick<ServeSettings, 'interfaceName' | 'mode' | 'pool' | 'root' | 'httpPort' | 'boot' | 'httpBoot' | 'imagingMulticast'> & { dataDir: string };
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
  /** Where each PC sits in its room (the room view). */
  seats?: {
    list(machineIds: number[]): { machineId: number; row: number; column: number }[];
    set(seats: { machineId: number; row: number; column: number }[], clear: number[]): void;
  };
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
  /** Go for a deploy's stream. */
  go(jobId: number): ImagingJob;
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
  /** Judges how long ago a PC was woken (default: the system clock). */
  clock?: Clock;
  /** Magic packets leave through sockets from here (default: tied to the chosen NIC). */
  wakeSocketFactory?: UdpSocketFactory;
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
const streamStart = z
  .object({
    manual: z.boolean().optional(),
    count: z.number().int().min(1, 'must be 1 or more PCs').max(1000).optional(),
    afterSeconds: z.number().int().min(0).max(86_400, 'must be at most a day (86400 s)').nullable().optional(),
  })
  .strict()
  .refine((r) => !r.manual || (r.count === undefined && (r.afterSeconds ?? null) === null), 'a stream started by Go alone takes no number of PCs nor seconds')
  .optional();

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
      httpBoot: z
        .object({
          answer: z.boolean(),
          file: z
            .string()
            .trim()
            .min(1, 'must not be empty: give a file in the served folder or an http:// URL, or leave it out for the UEFI PXE program')
            .max(4096)
            .refine(isAllowedHttpBootFile, 'must be a path inside the served folder (e.g. ipxe.efi) or an http:// URL')
            .optional(),
        })
        .strict()
        .optional(),
      imagingMulticast: z.enum(['auto', 'on', 'off']).optional(),
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
  'machines:wake': z
    .object({
      machineIds: z.array(id).max(1000).optional(),
      macs: z.array(mac).max(1000).optional(),
      group: boundedText(64).min(1, 'must not be empty').optional(),
      interfaceName: z.string().min(1).max(64).optional(),
    })
    .strict()
    .refine((r) => r.group !== undefined || (r.machineIds?.length ?? 0) + (r.macs?.length ?? 0) > 0, 'needs machines or a group: pick the machines to wake'),
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
  'room:get': z.object({ group: boundedText(64).min(1, 'must not be empty: pick a group') }).strict(),
  'room:seat': z
    .object({
      group: boundedText(64).min(1, 'must not be empty: pick a group'),
      seats: z
        .array(
          z
            .object({
              machineId: id,
              row: z.number().int().min(1).max(100, 'must be 100 at most').nullable(),
              column: z.number().int().min(1).max(100, 'must be 100 at most').nullable(),
            })
            .strict()
            .refine((s) => (s.row === null) === (s.column === null), 'needs a row and a column, or neither'),
        )
        .max(1000),
    })
    .strict(),
  'room:start': z
    .object({
      group: boundedText(64).min(1, 'must not be empty: pick a group'),
      what: z.discriminatedUnion('kind', [
        z.object({ kind: z.literal('entry'), entryId: id }).strict(),
        z.object({ kind: z.literal('image'), image: imageName, disk: diskSelector }).strict(),
      ]),
      at: z.number().int().positive().optional(),
    })
    .strict(),
  'room:cancel': z.object({ group: boundedText(64).min(1, 'must not be empty: pick a group') }).strict(),
  'images:list': none,
  'images:capture': z
    .object({ machineId: id.optional(), mac: mac.optional(), nextMachine: z.literal(true).optional(), name: imageName, disk: diskSelector, then })
    .strict()
    .refine(
      (r) => [r.machineId !== undefined, r.mac !== undefined, r.nextMachine === true].filter(Boolean).length === 1,
      'needs one machine: pick the machine to capture, or the next machine that boots',
    ),
  'images:deploy': z
    .object({
      image: imageName,
      machineIds: z.array(id).max(1000).optional(),
      macs: z.array(mac).max(1000).optional(),
      group: boundedText(64).min(1, 'must not be empty').optional(),
      disk: diskSelector,
      then,
      start: streamStart,
    })
    .strict()
    .refine(
      (r) => (r.group !== undefined) !== (r.machineIds?.length ?? 0) + (r.macs?.length ?? 0) > 0,
      'needs machines or a group (not both): pick the machines to deploy to, or a group',
    ),
  'images:delete': z.object({ name: imageName }).strict(),
  'images:verify': z.object({ name: imageName }).strict(),
  'images:go': z.object({ jobId: id }).strict(),
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

/** A start is for today's class or tomorrow's; further ahead, the host is unlikely to be running. */
const ROOM_START_AHEAD_MS = 7 * 24 * 3600_000;

export class HostApi {
  private readonly handlers: Handlers;
  /** Group (lower case) -> a room start waiting for its time. */
  private readonly scheduledStarts = new Map<string, { at: number; what: string; timer: TimerHandle }>();

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
      'machines:wake': (request) => this.wake(request),
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
      'room:get': (request) => this.room(request.group),
      'room:seat': (request) => this.seatRoom(request),
      'room:start': (request) => this.startRoom(request),
      'room:cancel': (request) => {
        const group = this.roomMachines(request.group)[0]!.group;
        const pending = this.scheduledStarts.get(group.toLowerCase());
        if (pending) (this.options.clock ?? systemClock).clearTimeout(pending.timer);
        this.scheduledStarts.delete(group.toLowerCase());
        return this.room(group);
      },
      'images:list': () => imaging().list(),
      'images:capture': (request) => imaging().capture(request),
      'images:deploy': (request) => imaging().deploy(request),
      'images:delete': (request) => imaging().remove(request.name),
      'images:verify': (request) => imaging().verify(request.name),
      'images:go': (request) => imaging().go(request.jobId),
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

  private async wake(request: WakeRequest): Promise<WakeResult> {
    const { host } = this.options;
    if (!this.options.store && (request.machineIds?.length || request.group !== undefined)) {
      throw new ApiError('unavailable', 'The machine database is not open, so machines and groups are not known: wake by MAC address.');
    }
    try {
      return await wakeRequested(request, {
        machines: this.options.store?.machines.list() ?? [],
        interfaces: this.options.listInterfaces(),
        storedInterface: host.status().interfaceName ?? host.config().interfaceName,
        socketFactory: this.options.wakeSocketFactory ?? createScopedUdpSocketFactory(),
        publish: host.bus.publish,
      });
    } catch (err) {
      if (err instanceof WakeRefusal) throw new ApiError(err.code, uiWording(err.message.replace(/ \(--interface NAME\)/, ' on the Start screen')));
      throw err;
    }
  }

  private roomMachines(group: string): Machine[] {
    const store = this.options.store;
    if (!store) throw new ApiError('unavailable', 'The machine database is not open, so there are no groups to show.');
    const wanted = group.trim().toLowerCase();
    const members = store.machines.list().filter((m) => m.group.toLowerCase() === wanted);
    if (members.length === 0) {
      const groups = [
        ...new Set(
          store.machines
            .list()
            .map((m) => m.group)
            .filter(Boolean),
        ),
      ].sort();
      throw new ApiError(
        'not-found',
        `No machine is in group "${group}": ${groups.length ? `the groups are ${groups.join(', ')}` : 'give machines a group on the Machines screen (or import a CSV)'}.`,
      );
    }
    return members;
  }

  private room(group: string): RoomView {
    const store = this.options.store!;
    const members = this.roomMachines(group);
    const { rows, columns, places } = layoutRoom(members, store.seats?.list(members.map((m) => m.id)) ?? []);
    // Each MAC's latest imaging row (jobs come newest first; a row's own time decides).
    const imaging = new Map<string, TileImaging>();
    for (const job of store.imaging?.jobs() ?? []) {
      for (const row of job.machines) {
        const known = imaging.get(row.mac);
        if (!known || known.row.updatedAt < row.updatedAt) imaging.set(row.mac, { kind: job.kind, image: job.image, row });
      }
    }
    const now = (this.options.clock ?? systemClock).now();
    const tiles: RoomTile[] = members.map((m) => {
      const place = places.get(m.id)!;
      const rowsOfMachine = m.macs.map((mac) => imaging.get(mac)).filter((x): x is TileImaging => x !== undefined);
      const latest = rowsOfMachine.sort((a, b) => b.row.updatedAt - a.row.updatedAt)[0];
      return {
        machineId: m.id,
        name: m.name || m.macs[0] || `machine ${m.id}`,
        macs: m.macs,
        ...place,
        ...roomTileState(store.timeline.forMachine(m.id, 300), latest, now),
      };
    });
    tiles.sort((a, b) => a.row - b.row || a.column - b.column);
    const scheduled = this.scheduledStarts.get(members[0]!.group.toLowerCase());
    return { group: members[0]!.group, rows, columns, tiles, scheduled: scheduled && { at: scheduled.at, what: scheduled.what } };
  }

  /** What a room task means, in words; refused when the entry or image is not there or boots nothing. */
  private async describeRoomTask(task: RoomTask): Promise<string> {
    const store = this.options.store!;
    if (task.kind === 'entry') {
      const entry = store.entries.list().find((e) => e.id === task.entryId);
      if (!entry)
        throw new ApiError('not-found', `There is no boot entry number ${task.entryId} (it may have been removed): choose one on the Library screen.`);
      if (!entry.bootable.ok) throw new ApiError('invalid-request', `"${entry.name}" cannot be given to the room: ${entry.bootable.reason}.`);
      await this.refuseUnbootable(task.entryId);
      return `${entry.name}, booted once`;
    }
    const imaging = store.imaging;
    if (!imaging) throw new ApiError('unavailable', 'This host has no imaging (no data folder for images).');
    const images = imaging.list();
    if (!images.some((i) => i.name === task.image)) {
      throw new ApiError(
        'not-found',
        `There is no image "${task.image}"${images.length ? `: the images are ${images.map((i) => i.name).join(', ')}` : ': capture one on the Images screen first'}.`,
      );
    }
    return `image ${task.image}`;
  }

  /** One action for a room: its task for every PC, then a wake; now, or at the time asked. */
  private async startRoom(request: RoomStartRequest): Promise<RoomStartResult> {
    const members = this.roomMachines(request.group);
    const group = members[0]!.group;
    const what = await this.describeRoomTask(request.what);
    const clock = this.options.clock ?? systemClock;
    const key = group.toLowerCase();
    const earlier = this.scheduledStarts.get(key);
    if (earlier) clock.clearTimeout(earlier.timer);
    this.scheduledStarts.delete(key);
    const now = clock.now();
    if (request.at !== undefined && request.at > now + 1000) {
      if (request.at > now + ROOM_START_AHEAD_MS) throw new ApiError('invalid-request', 'A start can be set at most a week ahead: choose a nearer time.');
      const timer = clock.setTimeout(() => {
        this.scheduledStarts.delete(key);
        this.runRoomStart(group, request.what, what).catch((err) =>
          this.options.host.bus.publish?.('host.warning', { message: `The scheduled start of room ${group} (${what}) failed: ${(err as Error).message}` }),
        );
      }, request.at - now);
      this.scheduledStarts.set(key, { at: request.at, what, timer });
      return { group, what, scheduledFor: request.at, machines: members.length };
    }
    return this.runRoomStart(group, request.what, what);
  }

  private async runRoomStart(group: string, task: RoomTask, what: string): Promise<RoomStartResult> {
    const store = this.options.store!;
    const members = this.roomMachines(group);
    let job: number | undefined;
    if (task.kind === 'entry') for (const m of members) store.machines.update({ id: m.id, entryId: task.entryId, bootOnce: true });
    else job = store.imaging!.deploy({ image: task.image, group, disk: task.disk }).id;
    // The task stands even when the wake cannot go out: the PCs run it at their next boot.
    try {
      return { group, what, machines: members.length, job, wake: await this.wake({ group }) };
    } catch (err) {
      return { group, what, machines: members.length, job, wakeProblem: (err as Error).message };
    }
  }

  private seatRoom(request: RoomSeatsRequest): RoomView {
    const store = this.options.store!;
    const members = this.roomMachines(request.group);
    if (!store.seats) throw new ApiError('unavailable', 'This database cannot keep seats.');
    const byId = new Map(members.map((m) => [m.id, m]));
    for (const s of request.seats) {
      if (!byId.has(s.machineId))
        throw new ApiError('invalid-request', `Machine number ${s.machineId} is not in group "${request.group}": seat only the room's own PCs.`);
    }
    // The room as it will be: the seats given, over the ones stored.
    const final = new Map((store.seats.list(members.map((m) => m.id)) ?? []).map((s) => [s.machineId, s]));
    for (const s of request.seats) {
      if (s.row === null || s.column === null) final.delete(s.machineId);
      else final.set(s.machineId, { machineId: s.machineId, row: s.row, column: s.column });
    }
    const seen = new Map<string, number>();
    for (const s of final.values()) {
      const other = seen.get(`${s.row}:${s.column}`);
      if (other !== undefined) {
        const name = (id: number) => byId.get(id)?.name || byId.get(id)?.macs[0] || `machine ${id}`;
        throw new ApiError(
          'invalid-request',
          `${name(other)} and ${name(s.machineId)} would both sit in row ${s.row}, column ${s.column}: give each its own seat.`,
        );
      }
      seen.set(`${s.row}:${s.column}`, s.machineId);
    }
    store.seats.set(
      request.seats.filter((s) => s.row !== null && s.column !== null).map((s) => ({ machineId: s.machineId, row: s.row!, column: s.column! })),
      request.seats.filter((s) => s.row === null).map((s) => s.machineId),
    );
    return this.room(request.group);
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
      httpBoot: c.httpBoot,
      imagingMulticast: c.imagingMulticast,
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
    const now = (this.options.clock ?? systemClock).now();
    // What came of each wake is read from the events, so a wake sent by `bootbench wake` without a host is judged too.
    const entries = [...visible.map(summarizeEvent), ...wakeFollowUps(events, now)].sort((a, b) => a.time - b.time);
    return {
      machineId: machine?.id,
      mac: mac ?? machine?.macs[0],
      machine,
      events: entries,
      diagnosis: diagnoseBoot(events, machine ? await store.timeline.expectation?.(machine.id) : undefined, now),
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
  /** How long a woken PC has to ask to boot before its timeline says it did not. */
  wakeAnswerMs?: number;
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
  // machine (or MAC) -> its last wake and the timer that flags it; a later wake replaces the earlier.
  const wakeAnswerMs = options.wakeAnswerMs ?? WAKE_ANSWER_MS;
  const wakes = new Map<string, { wake: BootEventOf<'wake.sent'>; timer: TimerHandle }>();
  const wakeKey = (mac: string) => String(store?.machines.findByMac(mac)?.id ?? mac);
  const watchWake = (wake: BootEventOf<'wake.sent'>) => {
    const key = wakeKey(wake.mac!);
    const earlier = wakes.get(key);
    if (earlier) clock.clearTimeout(earlier.timer);
    const timer = clock.setTimeout(
      () => {
        wakes.delete(key);
        const entry = wakeFollowUp({ wake, state: 'no-answer' }, wakeAnswerMs);
        if (entry) sink('timeline:event', entry);
      },
      wake.time + wakeAnswerMs - clock.now(),
    );
    wakes.set(key, { wake, timer });
  };
  const answerWake = (event: BootEvent) => {
    const key = wakeKey(event.mac!);
    const pending = wakes.get(key);
    if (!pending || event.time < pending.wake.time) return;
    clock.clearTimeout(pending.timer);
    wakes.delete(key);
    const entry = wakeFollowUp({ wake: pending.wake, state: 'answered', answeredAt: event.time }, wakeAnswerMs);
    if (entry) sink('timeline:event', { ...entry, mac: event.mac });
  };

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
    if (event.type === 'wake.sent' && event.mac && event.packets > 0) watchWake(event);
    if (event.type === 'dhcp.received' && event.mac && wakes.size) answerWake(event);
  });
  return () => {
    unsubscribe();
    for (const { timer: t } of wakes.values()) clock.clearTimeout(t);
    wakes.clear();
    if (timer) clock.clearTimeout(timer);
    timer = undefined;
  };
}
