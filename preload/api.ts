// The one contract between the renderer and the service host.
//
// Every call the renderer can make and every event the host pushes is declared here,
// once. Main (IPC handlers, the WebSocket server, the API implementation) and the
// renderer import it type-only; the only runtime values are the name lists, which the
// preload script and both servers use to refuse unknown channels.
//
// Two transports carry the same messages:
//   Electron: ipcRenderer.invoke(call, request) -> ApiEnvelope; events on webContents.send
//   Web mode: one WebSocket, JSON frames WireRequest / WireResponse / WirePush (below)
// Keep this file free of imports: it is compiled into main, bundled into the sandboxed
// preload and read by Vite for the renderer.
import type { BootClass } from '../main/core/boot-classes.js';

// ---------------------------------------------------------------------------------------
// Data shapes (plain JSON: they cross a process or network boundary)

export type ServiceName = 'proxy-dhcp' | 'dhcp' | 'pxe' | 'tftp' | 'http';
export type ServiceState = 'stopped' | 'starting' | 'running' | 'failed';
export type ServeMode = 'proxy' | 'dhcp';
// The boot classes come from the one registry (main/core/boot-classes.ts); type-only, so the renderer bundles nothing of main.
export type { BootClass };

export interface ServiceStatus {
  name: ServiceName;
  port: number;
  state: ServiceState;
  /** Plain-language reason when `state` is 'failed'. */
  error?: string;
}

export interface ServicesStatus {
  running: boolean;
  interfaceName?: string;
  address?: string;
  mode: ServeMode;
  services: ServiceStatus[];
  /** Problems in plain words, each with what to do about it. */
  problems: string[];
}

export interface AddressRange {
  first: string;
  last: string;
}

/** What the Start screen sends; anything left out keeps the host's current setting. */
export interface StartRequest {
  interfaceName?: string;
  mode?: ServeMode;
  pool?: AddressRange;
  /** The folder TFTP and HTTP serve (a path on the host); the host checks it at Start. */
  root?: string;
  /** Full DHCP: start even when another DHCP server answered the probe. */
  force?: boolean;
  /** UEFI HTTP boot: answered or not, and what x64 HTTP-boot PCs get. */
  httpBoot?: HttpBootSetting;
  /** A deploy to several PCs as one multicast stream. */
  imagingMulticast?: ImagingMulticastSetting;
}

/**
 * Whether a deploy to several PCs is sent once as a multicast stream: 'auto' streams in full
 * DHCP mode (a bench network) and not in proxy mode (an office network, where it needs the
 * network team's agreement); 'on' streams in both; 'off' sends every PC its own copy by HTTP.
 */
export type ImagingMulticastSetting = 'auto' | 'on' | 'off';

/**
 * UEFI HTTP boot (firmware asking with vendor class HTTPClient): answered or not. `file`, a
 * path in the served folder or an http:// URL, is what x64 HTTP-boot PCs without an entry of
 * their own get; without it they get the same program as UEFI PXE PCs, over HTTP.
 */
export interface HttpBootSetting {
  answer: boolean;
  file?: string;
}

/**
 * What a PC with no entry of its own and none from its group boots:
 *   menu        iPXE shows every library entry; with no key pressed, the local disk after the timeout
 *   local-disk  Bootbench does not answer it, so its firmware goes on to its own disk
 *   entry       that library entry
 */
export type DefaultBoot = { kind: 'menu'; timeoutSeconds: number } | { kind: 'local-disk' } | { kind: 'entry'; entryId: number; name: string };

/** What the Start screen sends to change the default (the menu's timeout is the host's). */
export type DefaultBootChoice = { kind: 'menu' } | { kind: 'local-disk' } | { kind: 'entry'; entryId: number };

/** A boot program the bundled iPXE chain hands to PXE firmware, and whether it is there. */
export interface BootProgramStatus {
  firmware: 'BIOS' | 'UEFI';
  /** Its path below the bundled boot folder, e.g. ipxe/snponly.efi. */
  file: string;
  /** Where it was found; absent when it is missing. */
  path?: string;
  /** When missing: what that means and the one fix. */
  problem?: string;
}

/** The host's current serving settings, to fill the Start screen. */
export interface ServeSettings {
  interfaceName?: string;
  mode: ServeMode;
  pool?: AddressRange;
  root: string;
  /** The served folder when none is chosen (the library folder in the data folder). */
  defaultRoot: string;
  httpPort: number;
  boot: Partial<Record<BootClass, string>>;
  /** Undefined: answered, with the same program as UEFI PXE PCs (never set otherwise). */
  httpBoot?: HttpBootSetting;
  /** Undefined: 'auto'. */
  imagingMulticast?: ImagingMulticastSetting;
  /** Undefined when the host has no library (the machine database is not open). */
  defaultBoot?: DefaultBoot;
  /**
   * The boot programs PXE firmware gets when no boot file is set (the bundled iPXE chain);
   * empty when boot files are set per class, which then come from the served folder.
   */
  bootPrograms: BootProgramStatus[];
}

export type InterfaceKind = 'wired' | 'wifi' | 'virtual' | 'loopback';

export interface NetInterfaceInfo {
  name: string;
  mac: string;
  ipv4: { address: string; prefixLength: number }[];
  up: boolean;
  kind: InterfaceKind;
  mtu: number;
  /** The bridge or bond this NIC is a port of (such NICs are not offered). */
  portOf?: string;
  /** A tun/tap device (offered only when it has an address of its own). */
  tunTap?: boolean;
}

export interface InterfacesList {
  interfaces: NetInterfaceInfo[];
  /** The NIC most likely wired to the bench switch, with why, when one stands out. */
  suggested?: { name: string; reason: string };
}

export interface Machine {
  id: number;
  /** Lower-case aa:bb:cc:dd:ee:ff; a machine may have several NICs. */
  macs: string[];
  uuid?: string;
  name: string;
  group: string;
  seat?: string;
  /** Boot entry assigned to this machine itself (else its group's, else the default). */
  entryId?: number;
  /** The assignment applies to the next complete boot only, then falls back. */
  bootOnce: boolean;
  /** Recorded automatically when it showed up; nobody has named it yet. */
  discovered: boolean;
  /** Firmware architecture last reported (DHCP option 93). */
  arch?: string;
  vendorClass?: string;
  lastIp?: string;
  firstSeen?: number;
  lastSeen?: number;
  /** Its unattended install, as the installer reported through its answer file's callbacks. */
  install?: { state: 'installing' | 'installed'; time: number; hostname?: string };
}

export interface MachineUpdate {
  id: number;
  name?: string;
  group?: string;
  seat?: string;
  /** null clears the assignment. */
  entryId?: number | null;
  bootOnce?: boolean;
}

export interface GroupAssignment {
  group: string;
  /** null clears the group's assignment (and removes a group that has no machines). */
  entryId: number | null;
}

export interface MachineGroup {
  name: string;
  entryId?: number;
  /** Machines in the group. */
  count: number;
  /** Answer to clearing a group that has no machines: it no longer exists. */
  removed?: boolean;
}

export interface CsvImportResult {
  added: number;
  updated: number;
  /** One line per refused row: row number and why. */
  problems: string[];
}

/** Wake-on-LAN: machines by id, bare MACs, or every machine of a group (one of the three kinds at least). */
export interface WakeRequest {
  machineIds?: number[];
  macs?: string[];
  group?: string;
  /** The NIC to send through; default: the one the services use (or last used). */
  interfaceName?: string;
}

export interface WakeResult {
  interfaceName: string;
  /** Where each packet went: the NIC's directed broadcasts and 255.255.255.255. */
  addresses: string[];
  /** Rounds sent to every address. */
  repeat: number;
  machines: { mac: string; machineId?: number; name?: string; sent: number; error?: string }[];
  /** How long the Timeline waits for a woken PC to ask to boot before it flags it. */
  answerWithinMs: number;
}

/** A PC's state as the room view shows it, from its boot events and imaging rows. */
export type RoomTileState = 'asleep' | 'woken' | 'booting' | 'installing' | 'done' | 'failed';

export interface RoomTile {
  machineId: number;
  name: string;
  macs: string[];
  /** 1-based; row 1 is the front of the room (the top of the view). */
  row: number;
  column: number;
  /** The technician put it there (stored); otherwise the view placed it after the seated ones. */
  seated: boolean;
  state: RoomTileState;
  /** The word on the tile: "asleep", "woken", "booting", "writing 42 %", "installing", "done", "failed". */
  word: string;
  /** Progress of the current step (imaging), 0-100. */
  percent?: number;
  /** Why it failed, or what it is doing, in one line. */
  detail?: string;
  /** When the state last changed (ms since the epoch). */
  since?: number;
}

export interface RoomView {
  group: string;
  rows: number;
  columns: number;
  tiles: RoomTile[];
  /** A start waiting for its time (kept by the running host only). */
  scheduled?: { at: number; what: string };
}

/** What a room gets: a library entry booted once, or a disk image written by the imaging environment. */
export type RoomTask = { kind: 'entry'; entryId: number } | { kind: 'image'; image: string; disk?: string };

/** One action for a room: boot once (or a deploy job) for every PC of the group, then wake them. */
export interface RoomStartRequest {
  group: string;
  what: RoomTask;
  /** Start then (ms since the epoch) instead of now; the host must be running at that time. */
  at?: number;
}

export interface RoomStartResult {
  group: string;
  /** What the room gets, in words ("Debian installer, booted once", "image win11"). */
  what: string;
  /** Set when the start waits for its time; nothing is assigned or woken before. */
  scheduledFor?: number;
  /** PCs given the task. */
  machines: number;
  /** The deploy job, for an image. */
  job?: number;
  wake?: WakeResult;
  /** Why the PCs were not woken (the task is assigned all the same: they run it at their next boot). */
  wakeProblem?: string;
}

export interface RoomSeatsRequest {
  group: string;
  /** New seats; a machine given `row: null` goes back among the unplaced. */
  seats: { machineId: number; row: number | null; column: number | null }[];
}

export interface BootEntry {
  id: number;
  name: string;
  /** nbp, kernel, iso, wim, ipxe-script, secure-boot-chain, local-disk ... */
  kind: string;
  /** Boot classes it has files for. */
  archs: string[];
  /** Total size of its files, each file counted once (in bytes). */
  size?: number;
  /** SHA-256 of its first file. */
  sha256?: string;
  /** One row per file and boot class (a file used by two classes appears twice). */
  files: { arch: string; role: string; path: string; size: number; sha256: string }[];
  /** Kernel command line (kernel, Secure Boot chain and Linux ISO entries). */
  arguments: string;
  /** What the library detected when the file was added, in words. */
  detected: string;
  /** Whether it can boot anything as it is, and why not. */
  bootable: { ok: boolean; reason: string };
  /** The "boot from the own disk" choice: always there, not a file, cannot be removed. */
  builtIn: boolean;
  /** Kernel entries: whether the signed shim -> GRUB chain is in front (UEFI x64). */
  secureBoot?: 'on' | 'off';
}

/** Answer-file formats an entry's template can be written in. */
export type AnswerDialect = 'preseed' | 'autoinstall' | 'kickstart' | 'autounattend';

/** An entry's answer-file template and what stops it, per machine, before anything boots. */
export interface AnswerTemplateInfo {
  entryId: number;
  /** Absent when the entry has no template. */
  dialect?: AnswerDialect;
  text?: string;
  /** Variables a template may use: the machine's, the host's, and the machine list's extra CSV columns. */
  variables: string[];
  /** Each line names a machine (or the template) and the variable: these PCs would not get their answers. */
  refusals: string[];
}

export interface AnswerTemplateSet {
  entryId: number;
  dialect: AnswerDialect;
  text: string;
}

export interface ImportFilesRequest {
  /** Paths on the host's file system (Electron gives them for dropped files). */
  paths: string[];
}

export interface ImportUploadsRequest {
  /** Upload ids the host answered POST /upload with (web mode), imported together. */
  uploads: string[];
}

export interface ImportFilesResult {
  entries: BootEntry[];
  problems: string[];
}

export interface EntryUpdate {
  id: number;
  name?: string;
  arguments?: string;
  /** Kernel entries: put the signed shim -> GRUB chain in front (true) or take it away. */
  secureBoot?: boolean;
}

export interface EntryUpdateResult {
  entry: BootEntry;
  warnings: string[];
}

export interface EntryRemoveRequest {
  id: number;
  /** Remove even though machines or groups boot it (they fall back to group / default). */
  force?: boolean;
}

export interface EntryRemoveResult {
  removed: boolean;
  /** Who boots it: the reason it was not removed, or who fell back. */
  machines: string[];
  groups: string[];
  isDefault: boolean;
  /** The above in words, e.g. "machine bench-07; group row-b" (empty when nobody). */
  who: string;
  filesDeleted: number;
}

export interface EntryPairRequest {
  kernelId: number;
  initrdId: number;
}

/** Web mode: files are sent to the host with POST to this path (see main/web/upload.ts). */
export const WEB_UPLOAD_PATH = '/upload';
/** Header carrying the web UI token on an upload (the WebSocket carries it in its URL). */
export const WEB_TOKEN_HEADER = 'x-bootbench-token';

export type TransferProtocol = 'tftp' | 'http';

/** One transfer in flight. */
export interface TransferRow {
  id: string;
  mac?: string;
  ip: string;
  file: string;
  protocol: TransferProtocol;
  /** Total size when known (tsize / Content-Length). */
  size?: number;
  bytes: number;
  /** Bytes per second, recent average. */
  rate: number;
  blksize?: number;
  windowsize?: number;
  retransmits: number;
  startedAt: number;
}

export type TransferOutcome = 'done' | 'failed' | 'aborted' | 'probe' | 'refused';

/** A transfer that ended. */
export interface TransferRecord {
  /** Unique across host restarts (the history row's id once stored). */
  id: string;
  /**
   * The serving run's key for the transfer, the same in the pushed record and the stored one,
   * so a record pushed live and again loaded from history is shown once.
   */
  transferKey?: string;
  mac?: string;
  ip?: string;
  file: string;
  protocol: TransferProtocol;
  size?: number;
  bytes: number;
  outcome: TransferOutcome;
  finishedAt: number;
  durationMs?: number;
  /** Why it failed or was refused, in plain words. */
  reason?: string;
}

export interface TimelineEntry {
  time: number;
  /** The host's event type, e.g. 'proxy.offer', 'tftp.done'. */
  type: string;
  mac?: string;
  ip?: string;
  /** One line in plain words, e.g. "TFTP sent ipxe.efi (1.0 MB) in 0.4 s". */
  summary: string;
  level: 'info' | 'warning' | 'problem';
}

export interface Diagnosis {
  /** Where the boot got to, e.g. 'dhcp', 'boot-file', 'done'. */
  stage: 'none' | 'dhcp' | 'offer' | 'boot-server' | 'boot-file' | 'kernel' | 'done' | 'failed' | 'local-disk';
  /** 'info': nothing is wrong, and nothing was network-booted either (e.g. sent to its local disk on purpose). */
  level: 'ok' | 'info' | 'warning' | 'problem' | 'unknown';
  /** What happened, in plain words. */
  message: string;
  /** What to try next, when there is something to try. */
  hint?: string;
}

/** A machine by id (all its MACs), or a MAC not recorded as a machine. */
export interface TimelineRequest {
  machineId?: number;
  mac?: string;
  /** Most recent N events (default 200). */
  limit?: number;
}

export interface Timeline {
  machineId?: number;
  mac?: string;
  machine?: Machine;
  events: TimelineEntry[];
  diagnosis: Diagnosis;
}

export interface AppInfo {
  version: string;
  /** Which shell runs the UI. */
  shell: 'electron' | 'web';
  /** Electron only: native file dialogs exist. */
  fileDialogs: boolean;
  /** Things the technician should know that are not a service problem (e.g. history is off). */
  notices: string[];
}

export interface CsvExport {
  filename: string;
  csv: string;
}

export type ImagingPhase = 'waiting' | 'booting' | 'checking' | 'partitioning' | 'reading' | 'writing' | 'verifying' | 'naming' | 'done' | 'failed';
export type ImagingThen = 'disk' | 'poweroff';

/** Each phase in plain words, the same on the Images screen and in a machine's timeline. */
export const IMAGING_PHASE_WORDS: Record<ImagingPhase, string> = {
  waiting: 'waiting to boot',
  booting: 'booting the imaging environment',
  checking: 'checking the disk',
  partitioning: 'partitioning',
  reading: 'reading the disk',
  writing: 'writing',
  verifying: 'verifying',
  naming: 'naming the PC',
  done: 'done',
  failed: 'failed',
};

/** A captured disk image in the data folder. */
export interface ImageInfo {
  name: string;
  createdAt: number;
  /** The PC it was captured from: its MAC, its name in the machine list then, its disk. */
  source: { mac: string; machine?: string; disk: string; model?: string; serial?: string };
  /** Size of the source disk. */
  diskBytes: number;
  /** Data that was in use on it (what a deploy writes). */
  usedBytes: number;
  /** What its chunks take in the data folder (chunks shared with other images counted in full). */
  storedBytes: number;
  partitions: number;
  /** Unfinished deploy jobs writing it (it cannot be deleted meanwhile). */
  deployingJobs: number[];
}

/** One PC of an imaging job, as its agent last reported. */
export interface ImagingMachineRow {
  /** The PC's MAC; empty while a capture waits for the next machine that boots (`anyMachine`). */
  mac: string;
  /** A capture for whichever PC network-boots next, not claimed by one yet. */
  anyMachine?: boolean;
  machineId?: number;
  /** Its name in the machine list, when it has one. */
  machine?: string;
  phase: ImagingPhase;
  /** Bytes of the current phase done, of `total` (0 when the phase has no size). */
  bytes: number;
  total: number;
  /** Bytes per second over the last report interval. */
  rate: number;
  /** The partition being read, written or verified (0 = the boot area: MBR code and the gap before the first partition). */
  part?: number;
  result?: 'done' | 'failed';
  /** Why it failed, as the agent or the host said it. */
  reason?: string;
  updatedAt: number;
  /** Of a deploy sent as one stream: bytes this PC got from the stream, and by HTTP repair. */
  streamed?: number;
  repaired?: number;
  /** Its receiver is ready and waits for the deploy's stream to start (see the job's `stream.start`). */
  waitingForStream?: boolean;
}

/**
 * When a deploy's multicast stream starts: on Go only (`manual`), or once `count` of its PCs
 * are ready (absent: all of them) or `afterSeconds` after the first one is (absent: no timer),
 * whichever comes first. Go starts it in any case; a PC that comes later joins it.
 */
export interface ImagingStartRule {
  manual: boolean;
  count?: number;
  afterSeconds?: number;
}

/** Where a deploy's stream stands on its start. */
export interface ImagingStreamStart {
  started: boolean;
  startedAt?: number;
  /** PCs whose receiver is ready, of the PCs the stream is for */
  ready: number;
  of: number;
  /** when the timer starts it (ms since the epoch), once a first PC is ready */
  deadline?: number;
}

/** A deploy's multicast stream while the host sends it. */
export interface ImagingStreamInfo {
  /** group:port on the chosen NIC */
  group: string;
  /** bytes per second now */
  rate: number;
  chunks: number;
  /** chunks sent so far, over all passes */
  chunksSent: number;
  /** passes after the first (a later pass sends what PCs still lack) */
  passes: number;
  bytesSent: number;
  /** The NIC's IGMP querier: what was heard, and whether Bootbench sends queries to keep snooping switches forwarding. */
  querier?: string;
  start: ImagingStreamStart;
}

export interface ImagingJob {
  id: number;
  kind: 'capture' | 'deploy';
  image: string;
  /** Disk selector (serial or model); absent: the PC's one internal disk. */
  disk?: string;
  then: ImagingThen;
  createdAt: number;
  machines: ImagingMachineRow[];
  /** Present while the running host sends this deploy as one multicast stream. */
  stream?: ImagingStreamInfo;
  /** A deploy to several PCs the running host sends by unicast HTTP, with the reason (the multicast setting). */
  unicast?: string;
  /** Of a deploy: when its stream starts (a deploy to one PC has none). */
  start?: ImagingStartRule;
  /** When the technician said Go. */
  goAt?: number;
  /** When the running host started the stream. */
  streamStartedAt?: number;
}

/** Capture one machine's disk into a new image at its next network boot. */
export interface ImageCaptureRequest {
  /** The machine, by its id in the machine list or by MAC, or `nextMachine`: whichever PC network-boots next (one of the three). */
  machineId?: number;
  mac?: string;
  nextMachine?: boolean;
  name: string;
  disk?: string;
  then?: ImagingThen;
}

/** Deploy an image to machines (ids or MACs) or to every machine of a group, at their next boot. */
export interface ImageDeployRequest {
  image: string;
  machineIds?: number[];
  macs?: string[];
  group?: string;
  disk?: string;
  then?: ImagingThen;
  /** When the stream (two PCs or more) starts; absent: when every PC is ready or 60 s after the first. `afterSeconds: null` = no timer. */
  start?: { manual?: boolean; count?: number; afterSeconds?: number | null };
}

export interface ImageDeleteResult {
  name: string;
  /** Chunks no other image used, removed with it, and their size. */
  chunks: number;
  bytes: number;
}

export interface ImageVerifyResult {
  name: string;
  chunks: number;
  /** Chunks whose bytes no longer hash to their name, and chunks that are gone. */
  bad: string[];
  missing: string[];
  ok: boolean;
}

/** Pushed when PCs of imaging jobs report: each changed job in full (a snapshot, not a delta). */
export interface ImagingProgress {
  jobs: ImagingJob[];
}

// ---------------------------------------------------------------------------------------
// Calls: name -> request and response. `void` request = the call takes no argument.

export interface ApiCalls {
  'app:info': { request: void; response: AppInfo };
  'services:status': { request: void; response: ServicesStatus };
  'services:settings': { request: void; response: ServeSettings };
  'services:start': { request: StartRequest; response: ServicesStatus };
  'services:stop': { request: void; response: ServicesStatus };
  'services:set-default-boot': { request: DefaultBootChoice; response: ServeSettings };
  'interfaces:list': { request: void; response: InterfacesList };
  'machines:list': { request: void; response: Machine[] };
  'machines:update': { request: MachineUpdate; response: Machine };
  'machines:groups': { request: void; response: MachineGroup[] };
  'machines:assign-group': { request: GroupAssignment; response: MachineGroup };
  'machines:import-csv': { request: { csv: string }; response: CsvImportResult };
  'machines:export-csv': { request: void; response: CsvExport };
  /** Magic packets through the bench NIC; the Timeline then shows whether each PC asked to boot. */
  'machines:wake': { request: WakeRequest; response: WakeResult };
  'entries:list': { request: void; response: BootEntry[] };
  'entries:import': { request: ImportFilesRequest; response: ImportFilesResult };
  'entries:import-uploads': { request: ImportUploadsRequest; response: ImportFilesResult };
  'entries:update': { request: EntryUpdate; response: EntryUpdateResult };
  'entries:pair': { request: EntryPairRequest; response: BootEntry };
  'entries:remove': { request: EntryRemoveRequest; response: EntryRemoveResult };
  /** Every entry's template (dialect and refusals; the text only through answers:get). */
  'answers:list': { request: void; response: AnswerTemplateInfo[] };
  'answers:get': { request: { entryId: number }; response: AnswerTemplateInfo };
  /** Saves a template; one with an unknown variable or a syntax error is refused with the reason. */
  'answers:set': { request: AnswerTemplateSet; response: AnswerTemplateInfo };
  'answers:remove': { request: { entryId: number }; response: AnswerTemplateInfo };
  'transfers:active': { request: void; response: TransferRow[] };
  'transfers:history': { request: { limit?: number }; response: TransferRecord[] };
  'timeline:get': { request: TimelineRequest; response: Timeline };
  /** Every PC of a group as a tile, with its seat and its state now. */
  'room:get': { request: { group: string }; response: RoomView };
  'room:seat': { request: RoomSeatsRequest; response: RoomView };
  'room:start': { request: RoomStartRequest; response: RoomStartResult };
  /** Drops a start that waits for its time. */
  'room:cancel': { request: { group: string }; response: RoomView };
  'images:list': { request: void; response: ImageInfo[] };
  'images:capture': { request: ImageCaptureRequest; response: ImagingJob };
  'images:deploy': { request: ImageDeployRequest; response: ImagingJob };
  'images:delete': { request: { name: string }; response: ImageDeleteResult };
  'images:verify': { request: { name: string }; response: ImageVerifyResult };
  /** Go: the deploy's stream starts now with the PCs that are ready (the running host acts on it within a moment). */
  'images:go': { request: { jobId: number }; response: ImagingJob };
  /** The 50 most recent imaging jobs, newest first. */
  'imaging:jobs': { request: void; response: ImagingJob[] };
}

export type ApiCallName = keyof ApiCalls;
export type ApiRequest<C extends ApiCallName> = ApiCalls[C]['request'];
export type ApiResponse<C extends ApiCallName> = ApiCalls[C]['response'];
/** Argument list of a call: none for `void` requests, else exactly one object. */
export type ApiArgs<C extends ApiCallName> = ApiRequest<C> extends void ? [] : [ApiRequest<C>];

export const API_CALL_NAMES = [
  'app:info',
  'services:status',
  'services:settings',
  'services:start',
  'services:stop',
  'services:set-default-boot',
  'interfaces:list',
  'machines:list',
  'machines:update',
  'machines:groups',
  'machines:assign-group',
  'machines:import-csv',
  'machines:export-csv',
  'machines:wake',
  'entries:list',
  'entries:import',
  'entries:import-uploads',
  'entries:update',
  'entries:pair',
  'entries:remove',
  'answers:list',
  'answers:get',
  'answers:set',
  'answers:remove',
  'transfers:active',
  'transfers:history',
  'timeline:get',
  'room:get',
  'room:seat',
  'room:start',
  'room:cancel',
  'images:list',
  'images:capture',
  'images:deploy',
  'images:delete',
  'images:verify',
  'images:go',
  'imaging:jobs',
] as const satisfies readonly ApiCallName[];

// Fails to compile when a call is declared above but missing from the list.
type MissingCallNames = Exclude<ApiCallName, (typeof API_CALL_NAMES)[number]>;
const everyCallListed: MissingCallNames extends never ? true : never = true;
void everyCallListed;

// ---------------------------------------------------------------------------------------
// Events the host pushes.

export interface TransferProgress {
  /** Every transfer in flight (a snapshot, not a delta: a missed push loses nothing). */
  active: TransferRow[];
  /** Transfers that ended since the previous push. */
  finished: TransferRecord[];
}

export interface ApiEvents {
  /** At most a few per second, only while something changes. */
  'transfer:progress': TransferProgress;
  /** A machine sent a DHCP request (new or known). */
  'machine:seen': Machine;
  /** One boot step of one machine. */
  'timeline:event': TimelineEntry;
  'services:state': ServicesStatus;
  /** Imaging jobs whose PCs reported, a few times a second at most. */
  'imaging:progress': ImagingProgress;
}

export type ApiEventName = keyof ApiEvents;

export const API_EVENT_NAMES = [
  'transfer:progress',
  'machine:seen',
  'timeline:event',
  'services:state',
  'imaging:progress',
] as const satisfies readonly ApiEventName[];

type MissingEventNames = Exclude<ApiEventName, (typeof API_EVENT_NAMES)[number]>;
const everyEventListed: MissingEventNames extends never ? true : never = true;
void everyEventListed;

// ---------------------------------------------------------------------------------------
// Results travel in an envelope: errors are data, rebuilt into an Error on the caller's side.

export type ApiErrorCode =
  | 'invalid-request' // the arguments failed validation
  | 'unknown-call'
  | 'not-found'
  | 'unavailable' // the host cannot do this right now (no store, services stopped ...)
  | 'failed'; // the operation ran and failed; message says why

export interface ApiErrorInfo {
  code: ApiErrorCode;
  /** Plain words for the technician. */
  message: string;
}

export type ApiEnvelope<T> = { result: T } | { error: ApiErrorInfo };

/** The Error a client throws for an error envelope. */
export class ApiCallError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly call?: string,
  ) {
    super(message);
    this.name = 'ApiCallError';
  }
}

export function isApiCallName(name: unknown): name is ApiCallName {
  return typeof name === 'string' && (API_CALL_NAMES as readonly string[]).includes(name);
}

export function isApiEventName(name: unknown): name is ApiEventName {
  return typeof name === 'string' && (API_EVENT_NAMES as readonly string[]).includes(name);
}

// ---------------------------------------------------------------------------------------
// Web mode wire frames (JSON text over one WebSocket at /api).
//
//   renderer -> host   { "id": 7, "call": "machines:list", "request": {...} }
//   host -> renderer   { "id": 7, "result": [...] }   or   { "id": 7, "error": {code, message} }
//   host -> renderer   { "event": "transfer:progress", "payload": {...} }

export interface WireRequest {
  id: number;
  call: string;
  request?: unknown;
}

export type WireResponse = { id: number } & ApiEnvelope<unknown>;

export interface WirePush<E extends ApiEventName = ApiEventName> {
  event: E;
  payload: ApiEvents[E];
}

/** The WebSocket path of the contract in web mode. */
export const WEB_API_PATH = '/api';

// ---------------------------------------------------------------------------------------
// What the Electron preload exposes as `window.bootbench` (one function per call).

export type BootbenchCalls = { [C in ApiCallName]: (...args: ApiArgs<C>) => Promise<ApiResponse<C>> };

export interface BootbenchBridge {
  calls: BootbenchCalls;
  subscribe<E extends ApiEventName>(event: E, listener: (payload: ApiEvents[E]) => void): () => void;
  /** Electron only: the host path of a dropped File (webUtils.getPathForFile). */
  pathForFile(file: File): string;
  /** Electron only: native dialogs. */
  dialogs: {
    openFiles(options: { title: string; filters?: { name: string; extensions: string[] }[] }): Promise<string[]>;
    saveText(options: { title: string; defaultPath: string; text: string }): Promise<boolean>;
  };
}

/** Name of the global the preload defines in the renderer. */
export const BRIDGE_GLOBAL = 'bootbench';

/** Electron-only IPC channels (native dialogs); not part of the web contract. */
export const DIALOG_CHANNELS = { openFiles: 'dialog:open-files', saveText: 'dialog:save-text' } as const;
