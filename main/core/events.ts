// The one event bus of the service host. Every protocol decision and every transfer
// step is published here; the log, the store and the UI subscribe.
//
// `BootEventFields` maps each event type to its fields, so a publisher cannot misspell a
// field and a subscriber reads `event.file` without guessing at other spellings.

/** What every event may say about its client. */
export interface ClientFields {
  /** The client's MAC, lower-case colon form (DHCP always; TFTP/HTTP when its IP was seen in DHCP). */
  mac?: string;
  /** The client's IP address, when known. */
  ip?: string;
}

/** What a DHCP-side event says about the client that sent the message (one decode per packet). */
export interface DhcpClientFields extends ClientFields {
  xid?: number;
  /** Option 97, canonical form. */
  uuid?: string;
  /** Option 93 (RFC 4578 §2.1), the first architecture the client lists. */
  arch?: number;
  /** Option 60, e.g. PXEClient:Arch:00007:UNDI:003016. */
  vendorClass?: string;
  /** Option 77's classes, comma-joined (iPXE sends "iPXE"). */
  userClass?: string;
  /** Option 54 of a REQUEST: the server the client accepts (in proxy mode, the other one). */
  serverIdentifier?: string;
  /** DHCP message type name: DISCOVER, REQUEST, OFFER, ACK ... */
  msgType?: string;
  /** The port the message came in on (67, or 4011 for the boot server). */
  port?: number;
  /** Why we answered as we did (the boot policy's reason), or why not. */
  reason?: string;
  /** The boot class the policy chose, e.g. bios, uefi64. */
  bootClass?: string;
  /** The machine's name, when its assignment has one. */
  machine?: string;
}

/** A client's DHCP message arrived (DISCOVER, REQUEST, INFORM, RELEASE ...), before any decision. */
export interface DhcpReceivedFields extends DhcpClientFields {
  requestedIp?: string;
  ciaddr?: string;
  /** address:port it came from */
  from?: string;
}

/** An answer we sent: proxy offer, boot server ACK, full DHCP offer, lease, NAK. */
export interface DhcpAnswerFields extends DhcpClientFields {
  /** The address given (full DHCP). */
  yiaddr?: string;
  /** The boot file (or URL) offered. */
  file?: string;
  /** Our next-server. */
  siaddr?: string;
  /** Option 43 sent (PXE vendor options). */
  option43?: boolean;
  /** The boot menu's item names, when a menu was sent. */
  menu?: string[];
  bootItem?: number;
  leaseSeconds?: number;
  /** Option 56 (a NAK's reason). */
  message?: string;
  /** address:port the answer went to */
  to?: string;
  /** A proxy offer that the client's firmware may not chain from, in words. */
  warning?: string;
  /** Time spent checking the address was free (ARP/ping) before offering it. */
  addressCheckMs?: number;
  addressesInUse?: number;
}

export interface DhcpIgnoredFields extends DhcpClientFields {
  /** Part of a normal exchange between the client and another server: nothing went unanswered. */
  expected?: true;
  /** Not answered on purpose (the machine boots from its disk). */
  deliberate?: true;
  /** Not answered because the technician turned this boot method off (UEFI HTTP boot). */
  turnedOff?: 'http-boot';
}

export interface DhcpConflictFields extends DhcpClientFields {
  /** `address`, not `ip`: the address belongs to the host that answered, not to this client. */
  address: string;
  heldBy?: string;
  method?: string;
  ms?: number;
}

/** The other DHCP server's ACK to a PC we made a boot offer to (proxy mode). */
export interface DhcpOtherAckFields extends DhcpClientFields {
  server: string;
  /** Its siaddr: the next-server GRUB asks; undefined when 0.0.0.0. */
  nextServer?: string;
  from?: string;
}

export interface DhcpProblemFields extends DhcpClientFields {
  from?: string;
}

/** Per-request DHCP events of one second the DHCP thread did not publish (over its budget). */
export interface DhcpStormFields {
  eventsNotPublished: number;
  budgetPerSecond: number;
}

/**
 * The one shape of every TFTP and HTTP transfer event, from start to end, so the live
 * view, the history and the boot-once check read the same fields whatever served the file.
 */
export interface TransferFields extends ClientFields {
  /** The serving run's id for this transfer; absent on refusals and one-shot answers. */
  transferId?: string;
  /** The served path (as resolved), e.g. /ipxe.efi or /library/e3/vmlinuz. */
  file: string;
  /** What the client asked for, when it differs in spelling (TFTP: backslashes, case). */
  requested?: string;
  /** The client's port (TFTP). */
  port?: number;
  /** The file's size in bytes. */
  size?: number;
  /** Bytes sent so far (progress) or in all (end). */
  bytes?: number;
  /** Bytes a second. */
  rate?: number;
  retransmits?: number;
  durationMs?: number;
  /** Negotiated TFTP options (RFC 2347), or what an HTTP answer sent. */
  options?: Record<string, number>;
  /** Why it failed, was aborted or was refused, in plain words. */
  reason?: string;
  /** TFTP error code (RFC 1350 §5) the client or we sent. */
  errorCode?: number;
  /** HTTP status. */
  status?: number;
  /** HTTP: bytes of this answer. */
  length?: number;
  /** HTTP: read in byte ranges (a sanbooted ISO), never whole. */
  ranged?: boolean;
  /** HTTP: the first range asked for. */
  range?: { start: number; end: number };
  /** HTTP range session: requests in it so far, and how many of them failed. */
  requests?: number;
  failedRequests?: number;
  /** Made for this client (an iPXE script), not read from a file. */
  generated?: boolean;
  /** The library entry served by the library's own route. */
  entryId?: number;
}

/** A request refused before any transfer started; a malformed one names no file. */
export type TransferRefusedFields = Omit<TransferFields, 'file'> & { file?: string };

/** One RFC 2090 multicast TFTP session (several clients, one stream); its members' transfers are tftp.* events. */
export interface TftpMulticastFields extends ClientFields {
  sessionId: string;
  /** The served path, as in the members' tftp.* events. */
  file: string;
  group: string;
  groupPort: number;
  size: number;
  blksize: number;
  /** tftp-multicast.master: the new master (ip/port/mac) and why the role moved. */
  port?: number;
  reason?: string;
  /** progress and end: what went to the group so far (DATA datagrams, payload bytes, blocks sent again). */
  dataPackets?: number;
  dataBytes?: number;
  repeats?: number;
  clients?: number;
  highestBlock?: number;
  clientsDone?: number;
  clientsFailed?: number;
  handOvers?: number;
  durationMs?: number;
}

export interface ImagingProgressFields extends ClientFields {
  job: number;
  kind: string;
  image: string;
  phase: string;
  reason?: string;
}

/** Magic packets sent to wake one PC (Wake-on-LAN); whether it then asked to boot is read from its DHCP events. */
export interface WakeSentFields extends ClientFields {
  /** The NIC they left through. */
  interfaceName?: string;
  /** Where they went: the NIC's directed broadcasts and 255.255.255.255. */
  addresses: string[];
  /** Datagrams that left. */
  packets: number;
  /** The machine's name in the list, when it has one. */
  machine?: string;
  /** Why some did not leave. */
  reason?: string;
}

export interface HostWarningFields extends ClientFields {
  message: string;
  interfaceName?: string;
  /** 'completed': a machine's boot once was used (the warning belongs to its timeline). */
  bootOnce?: 'completed';
  entryId?: number;
  /** Extraction progress of a file from an ISO. */
  progress?: { bytes: number; size: number };
}

/** An answer file served to its machine, or a request for one refused (the serving rule's log). */
export interface AnswerFileFields extends ClientFields {
  /** The path asked for, e.g. /answers/e3/525400000001/preseed.cfg. */
  file: string;
  entryId?: number;
  /** The machine the file belongs to (name, else MAC). */
  machine?: string;
  dialect?: string;
  /** Why it was refused: another machine asked, or the PC cannot have its answers. */
  reason?: string;
}

/** An installer called back: it read its answers (with the hostname it runs under), or it finished. */
export interface InstallFields extends ClientFields {
  entryId?: number;
  machine?: string;
  hostname?: string;
}

export interface StoreDegradedFields {
  message: string;
  source: 'store';
  code: string;
  kind: string;
  fix: string;
  path: string;
  folder: string;
}

export interface StoreRecoveredFields {
  message: string;
  source: 'store';
  path: string;
  offForMs: number;
  eventsDropped: number;
}

/** Every event type the services publish, with its fields. Names are `<service>.<what>`. */
export interface BootEventFields {
  // DHCP side (main/dhcp, main/pxe)
  /** A client's DHCP message arrived (any message type), before any decision. */
  'dhcp.received': DhcpReceivedFields;
  /** Proxy DHCP offer sent (no address). */
  'proxy.offer': DhcpAnswerFields;
  /** Boot server (4011) ACK sent. */
  'pxe.ack': DhcpAnswerFields;
  /** Full DHCP: OFFER sent with an address. */
  'dhcp.offer': DhcpAnswerFields;
  /** Full DHCP: ACK sent, address leased. */
  'dhcp.lease': DhcpAnswerFields;
  'dhcp.nak': DhcpAnswerFields;
  'dhcp.release': DhcpClientFields;
  'dhcp.decline': DhcpClientFields;
  /** Full DHCP: an address answered our check (ARP) before an OFFER; kept out of the pool. */
  'dhcp.conflict': DhcpConflictFields;
  /** A packet we saw and chose not to answer, with `reason`. */
  'dhcp.ignored': DhcpIgnoredFields;
  /** Malformed packet or send failure (logged once, the loop goes on). */
  'dhcp.error': DhcpProblemFields;
  /** Proxy mode: the other DHCP server's ACK to a PC we made a boot offer to (its next-server). */
  'dhcp.other-ack': DhcpOtherAckFields;
  'dhcp.storm': DhcpStormFields;
  // TFTP (main/tftp)
  'tftp.start': TransferFields;
  'tftp.progress': TransferFields;
  'tftp.done': TransferFields;
  /** Firmware size probe: RRQ with tsize, OACK, then ERROR 8 from the client. */
  'tftp.probe': TransferFields;
  'tftp.failed': TransferFields;
  /** The client sent an ERROR other than a size probe. */
  'tftp.aborted': TransferFields;
  /** Path refused, file not found, WRQ, malformed request. */
  'tftp.refused': TransferRefusedFields;
  // RFC 2090 sessions (main/tftp); not transfer events: each member also has its tftp.* transfer
  'tftp-multicast.start': TftpMulticastFields;
  /** The master role moved (first client, the master finished, left or went silent). */
  'tftp-multicast.master': TftpMulticastFields;
  /** At most once a second while the stream runs. */
  'tftp-multicast.progress': TftpMulticastFields;
  'tftp-multicast.end': TftpMulticastFields;
  // HTTP (main/http, the library's own route)
  'http.start': TransferFields;
  'http.progress': TransferFields;
  'http.done': TransferFields;
  'http.failed': TransferFields;
  'http.refused': TransferRefusedFields;
  // answer files (main/library): served only to their own machine; the installers' callbacks
  'answers.served': AnswerFileFields;
  'answers.refused': AnswerFileFields;
  'install.started': InstallFields;
  'install.done': InstallFields;
  /** A PC's capture or deploy changed phase (main/imaging). */
  'imaging.progress': ImagingProgressFields;
  /** Wake-on-LAN packets sent for one PC (the API or `bootbench wake`). */
  'wake.sent': WakeSentFields;
  // service host (main/host); `status` is the host's ServicesStatus (preload/api.ts), opaque here
  'service.state': { status: unknown };
  'host.warning': HostWarningFields;
  // store (main/store): history off after a failed write (full disk), and back on
  'store.degraded': StoreDegradedFields;
  'store.recovered': StoreRecoveredFields;
}

export type BootEventType = keyof BootEventFields;

/** One event of type `T` (one of each, for a union): its fields, the type, and when it happened (ms since the epoch). */
export type BootEventOf<T extends BootEventType> = T extends BootEventType ? BootEventFields[T] & ClientFields & { type: T; time: number } : never;

/** Any event; narrowing on `type` gives that event's fields. */
export type BootEvent = BootEventOf<BootEventType>;

export type EventListener = (event: BootEvent) => void;

/** What a service is given to report events: type + fields; the bus stamps the time. */
export type Publish = <T extends BootEventType>(type: T, fields: BootEventFields[T]) => void;

/** publish() for an event that happened at `time` (ms since the epoch): one that another thread reports. */
export type PublishAt = <T extends BootEventType>(type: T, time: number, fields: BootEventFields[T]) => void;

export class EventBus {
  private readonly listeners = new Set<EventListener>();

  constructor(private readonly now: () => number = Date.now) {}

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  readonly publish: Publish = (type, fields) => this.publishAt(type, this.now(), fields);

  readonly publishAt: PublishAt = (type, time, fields) => {
    const event = { ...fields, type, time } as BootEvent;
    for (const listener of this.listeners) {
      // A failing subscriber (say, a full disk under the store) must never stop boot service.
      try {
        listener(event);
      } catch (err) {
        if (type !== 'host.warning') this.publish('host.warning', { message: `event listener failed: ${(err as Error).message}` });
      }
    }
  };
}

// ---------------------------------------------------------------------------------------
// What kind of event it is: one answer for every subscriber.

export type TransferEventType =
  | 'tftp.start'
  | 'tftp.progress'
  | 'tftp.done'
  | 'tftp.probe'
  | 'tftp.failed'
  | 'tftp.aborted'
  | 'tftp.refused'
  | 'http.start'
  | 'http.progress'
  | 'http.done'
  | 'http.failed'
  | 'http.refused';
export type TransferEvent = BootEventOf<TransferEventType>;
export type TransferProtocol = 'tftp' | 'http';

/** How a transfer ended, by its last event. A refusal ends a request before any transfer started. */
export type TransferOutcome = 'done' | 'failed' | 'aborted' | 'probe' | 'refused';

const TRANSFER_OUTCOMES: Partial<Record<TransferEventType, TransferOutcome>> = {
  'tftp.done': 'done',
  'http.done': 'done',
  'tftp.failed': 'failed',
  'http.failed': 'failed',
  'tftp.aborted': 'aborted',
  'tftp.probe': 'probe',
  'tftp.refused': 'refused',
  'http.refused': 'refused',
};

export function isTransferEventType(type: BootEventType): type is TransferEventType {
  return type.startsWith('tftp.') || type.startsWith('http.');
}

export function isTransferEvent(event: BootEvent): event is TransferEvent {
  return isTransferEventType(event.type);
}

export function transferProtocolOf(type: TransferEventType): TransferProtocol {
  return type.startsWith('tftp.') ? 'tftp' : 'http';
}

/** The outcome a transfer's last event stands for; undefined for start and progress. */
export function transferOutcomeOf(type: BootEventType): TransferOutcome | undefined {
  return TRANSFER_OUTCOMES[type as TransferEventType];
}

/** The transfer's own key when the event carries the serving run's id for it. */
export function transferIdKey(event: TransferEvent): string | undefined {
  return event.transferId !== undefined ? `${transferProtocolOf(event.type)}:${event.transferId}` : undefined;
}

/** Events about one client's DHCP message or our answer to it (dhcp.*, proxy.offer, pxe.ack; not dhcp.storm). */
export type DhcpEventType = Exclude<Extract<BootEventType, `dhcp.${string}`>, 'dhcp.storm'> | 'proxy.offer' | 'pxe.ack';
export type DhcpEvent = BootEventOf<DhcpEventType>;

export function isDhcpEvent(event: BootEvent): event is DhcpEvent {
  return (event.type.startsWith('dhcp.') && event.type !== 'dhcp.storm') || event.type === 'proxy.offer' || event.type === 'pxe.ack';
}

/**
 * One event per DHCP packet or answer: in a DISCOVER storm (thousands a second) these are
 * budgeted (the DHCP thread, the log and the history each keep a number a second, with one
 * PerSecondBudget, and count the rest). Leases, NAKs, releases, conflicts and errors are rare
 * or change state, and are always kept.
 */
export function isPerRequestDhcpEvent(type: BootEventType): boolean {
  switch (type) {
    case 'dhcp.received':
    case 'proxy.offer':
    case 'pxe.ack':
    case 'dhcp.offer':
    case 'dhcp.ignored':
      return true;
    default:
      return false;
  }
}
