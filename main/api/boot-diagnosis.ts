// Turns one machine's boot events into sentences a technician can act on: a one-line
// summary per event, and a diagnosis of where the last boot attempt stopped.
// Pure functions over BootEvent lists; the Timeline screen and the API call them.
import { isDhcpEvent, isTransferEvent, type BootEvent, type BootEventOf, type TransferEvent } from '../core/index.js';
import { IMAGING_PHASE_WORDS, type Diagnosis, type ImagingPhase, type TimelineEntry } from '../../preload/api.js';
import { samePath } from '../library/index.js';

// DHCP option 93 (RFC 4578 §2.1, IANA "Processor Architecture Types").
const ARCH_NAMES: Record<number, string> = {
  0: 'BIOS',
  6: 'UEFI 32-bit',
  7: 'UEFI 64-bit',
  9: 'UEFI 64-bit',
  10: 'ARM 32-bit UEFI',
  11: 'ARM 64-bit UEFI',
  15: 'UEFI 32-bit HTTP',
  16: 'UEFI 64-bit HTTP',
  18: 'ARM 32-bit UEFI HTTP',
  19: 'ARM 64-bit UEFI HTTP',
};

type Firmware = 'bios' | 'uefi' | undefined;

/** BIOS or UEFI from the boot class the policy chose, else the client's option 93. */
export function firmwareOf(event: BootEvent): Firmware {
  if (!isDhcpEvent(event)) return undefined;
  if (event.bootClass) return event.bootClass === 'bios' ? 'bios' : 'uefi';
  const arch = event.arch;
  if (arch === undefined) return undefined;
  return arch === 0 ? 'bios' : arch in ARCH_NAMES ? 'uefi' : undefined;
}

export function archLabel(arch: number | undefined): string | undefined {
  return arch === undefined ? undefined : (ARCH_NAMES[arch] ?? `architecture ${arch}`);
}

/** BIOS network boot programs vs UEFI ones, by the conventions every distribution uses. */
export function fileFirmware(file: string): Firmware {
  const name = file.toLowerCase().split(/[/\\]/).pop() ?? '';
  if (/\.efi$/.test(name)) return 'uefi';
  if (/\.(kpxe|kkpxe|pxe|0|com|n12)$/.test(name) || name === 'pxelinux.0' || name === 'lpxelinux.0') return 'bios';
  return undefined;
}

export function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '?';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 9.95 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The file (or URL) a DHCP answer offered, or a transfer served. */
function bootFileOf(event: BootEvent): string | undefined {
  return 'file' in event ? str(event.file) : undefined;
}

/** Why, in words: the event's reason, else its message (a NAK's option 56, a warning). */
function reasonOf(event: BootEvent): string | undefined {
  return str('reason' in event ? event.reason : undefined) ?? str('message' in event ? event.message : undefined);
}

/** One line in plain words for one event. */
export function summarizeEvent(event: BootEvent): TimelineEntry {
  const base = { time: event.time, type: event.type, mac: event.mac, ip: event.ip };
  const file = bootFileOf(event);
  const reason = reasonOf(event);
  const arch = isDhcpEvent(event) ? archLabel(event.arch) : undefined;
  const transfer = isTransferEvent(event) ? event : undefined;
  const size = transfer?.size;
  const bytes = transfer?.bytes;
  const seconds = transfer?.durationMs !== undefined ? ` in ${(transfer.durationMs / 1000).toFixed(1)} s` : '';
  const info = (summary: string): TimelineEntry => ({ ...base, summary, level: 'info' });
  const warning = (summary: string): TimelineEntry => ({ ...base, summary, level: 'warning' });
  const problem = (summary: string): TimelineEntry => ({ ...base, summary, level: 'problem' });
  switch (event.type) {
    case 'dhcp.received': {
      const what = str(event.msgType) ?? 'DHCP message';
      const port = event.port === 4011 ? ' to the boot server (4011)' : '';
      return info(`${what}${port}${arch ? ` from ${arch} firmware` : ''}${str(event.vendorClass) ? ` (${event.vendorClass})` : ''}`);
    }
    case 'proxy.offer':
      return info(`Proxy offer sent${file ? `: boot file ${file}` : ''} (no address; the other DHCP server gives that)`);
    case 'pxe.ack':
      return info(`Boot server answered${file ? `: boot file ${file}` : ''}`);
    case 'dhcp.offer':
      return info(`Offered address ${str(event.yiaddr) ?? event.ip ?? '?'}${file ? ` with boot file ${file}` : ''}`);
    case 'dhcp.lease':
      return info(`Leased address ${str(event.yiaddr) ?? event.ip ?? '?'}${file ? `, boot file ${file}` : ''}`);
    case 'dhcp.nak':
      return warning(`Refused the address the machine asked for${reason ? `: ${reason}` : ''}`);
    case 'dhcp.release':
      return info('Machine released its address');
    case 'dhcp.decline':
      return warning('Machine declined the address (it found it already in use on the network)');
    case 'dhcp.conflict':
      return warning(
        `Address ${str(event.address) ?? '?'} is already used by another machine${str(event.heldBy) ? ` (${event.heldBy})` : ''}; kept out of the pool and offering another`,
      );
    case 'dhcp.other-ack': {
      const next = str(event.nextServer);
      return info(
        `The other DHCP server ${str(event.server) ?? '?'} gave it ${event.ip ?? 'an address'}${next ? `; its next-server is ${next}` : '; it names no next-server'}`,
      );
    }
    case 'dhcp.ignored':
      if (event.expected) return info(`Left to the other DHCP server, as proxy mode should${reason ? `: ${reason}` : ''}`);
      if (event.deliberate || event.turnedOff) return info(`Not answered on purpose${reason ? `: ${reason}` : ''}`);
      return warning(`Not answered${reason ? `: ${reason}` : ''}`);
    case 'dhcp.error':
      return problem(`DHCP problem${reason ? `: ${reason}` : ''}`);
    case 'tftp.start':
    case 'http.start':
      return info(
        `${event.type.startsWith('tftp') ? 'TFTP' : 'HTTP'} download of ${file ?? '?'} started${size !== undefined ? ` (${formatBytes(size)})` : ''}`,
      );
    case 'tftp.progress':
    case 'http.progress':
      return info(`${file ?? '?'}: ${formatBytes(bytes)}${size !== undefined ? ` of ${formatBytes(size)}` : ''}`);
    case 'tftp.done':
    case 'http.done':
      return info(`${event.type.startsWith('tftp') ? 'TFTP' : 'HTTP'} sent ${file ?? '?'} (${formatBytes(bytes ?? size)})${seconds}`);
    case 'tftp.probe':
      return info(
        `Firmware asked the size of ${file ?? '?'}${size !== undefined ? ` (${formatBytes(size)})` : ''} and stopped, as firmware does before the real download`,
      );
    case 'tftp.failed':
    case 'http.failed':
      return problem(`Download of ${file ?? '?'} failed${reason ? `: ${reason}` : ''}`);
    case 'tftp.aborted':
      return warning(`The machine stopped the download of ${file ?? '?'}${reason ? `: ${reason}` : ''}`);
    case 'tftp.refused':
    case 'http.refused':
      return problem(`Refused ${file ?? 'a request'}${reason ? `: ${reason}` : ''}`);
    case 'tftp-multicast.master': {
      const why = event.reason === 'first client' ? 'the first to ask' : `the previous master ${String(event.reason).replace(/^master /, '')}`;
      return info(`Leads the multicast TFTP download of ${file ?? '?'} (group ${event.group}): it ACKs for every client, as ${why}`);
    }
    case 'service.state':
      return info('Services changed state');
    case 'imaging.progress': {
      const phase = str(event.phase) ?? '?';
      const words = IMAGING_PHASE_WORDS[phase as ImagingPhase] ?? phase;
      const line = `Imaging: ${str(event.kind) ?? 'job'} of ${str(event.image) ?? '?'} — ${words}${phase === 'failed' && reason ? `: ${reason}` : ''}`;
      return phase === 'failed' ? problem(line) : info(line);
    }
    case 'wake.sent': {
      const through = event.interfaceName ? ` through ${event.interfaceName}` : '';
      const to = event.addresses?.length ? ` to ${event.addresses.join(' and ')}` : '';
      if (!event.packets) return problem(`Not woken: no magic packet left${through}${reason ? `: ${reason}` : ''}`);
      return info(`Woken: ${event.packets} magic packet${event.packets === 1 ? '' : 's'} sent${through}${to}${reason ? ` (${reason})` : ''}`);
    }
    case 'answers.served':
      return info(`Answer file ${event.file.split('/').pop()} sent to ${event.machine ?? 'its machine'}`);
    case 'answers.refused':
      return warning(`Answer file ${event.file.split('/').pop()} not sent (404)${reason ? `: ${reason}` : ''}`);
    case 'install.started':
      return info(`The installer read its answers${event.hostname ? ` and runs as ${event.hostname}` : ''}`);
    case 'install.done':
      return info('The installer reported that it finished: installed');
    case 'host.warning':
      if (event.bootOnce === 'completed') return info(`Boot once used: ${reason ?? 'the assignment ended'}`);
      return warning(reason ?? 'Host warning');
  }
  return info(event.type);
}

const isDhcpSide = (e: BootEvent) => e.type.startsWith('dhcp.') || e.type === 'proxy.offer' || e.type === 'pxe.ack';
const isFileSide = isTransferEvent;

/**
 * The events of the last boot attempt: a machine's boot starts over with a DISCOVER that
 * follows file traffic (it rebooted), or that comes after a long quiet spell.
 */
export function lastBootAttempt(events: BootEvent[], quietMs = 5 * 60_000): BootEvent[] {
  const sorted = [...events].sort((a, b) => a.time - b.time);
  let start = 0;
  for (let i = 1; i < sorted.length; i++) {
    const e = sorted[i]!;
    if (e.type !== 'dhcp.received' || e.msgType !== 'DISCOVER') continue;
    const previous = sorted[i - 1]!;
    if (isFileSide(previous) || e.time - previous.time > quietMs) start = i;
  }
  return sorted.slice(start);
}

/** What the machine's assigned entry needs fetched before its boot is complete. */
export interface BootExpectation {
  entry: string;
  /** Served paths whose complete fetch finishes a boot of the entry (any one of them). */
  paths: string[];
  /** A range read of such a path counts (a sanbooted ISO is read in ranges, never whole). */
  rangeCounts: boolean;
}

/** A finished download that ended short of the file's size (the client stopped reading). */
function cutShort(e: TransferEvent): boolean {
  return e.ranged !== true && e.bytes !== undefined && e.size !== undefined && e.bytes < e.size;
}

/** Where the last boot attempt of one machine stopped, and what to try (any boot method). */
function diagnoseBootSteps(events: BootEvent[], expected?: BootExpectation): Diagnosis {
  // The office server's own exchange in proxy mode is not a step of ours.
  const ours = (e: BootEvent) => e.type !== 'service.state' && e.type !== 'host.warning' && !(e.type === 'dhcp.ignored' && e.expected);
  const attempt = lastBootAttempt(events.filter(ours));
  if (attempt.length === 0) {
    return {
      stage: 'none',
      level: 'unknown',
      message: 'No boot traffic from this machine yet.',
      hint: 'Check it is plugged into the bench switch and that network boot (PXE) is enabled and first in its firmware boot order.',
    };
  }
  const last = attempt[attempt.length - 1]!;
  const firmware = attempt.map(firmwareOf).find((f) => f !== undefined);
  const offered = [...attempt].reverse().find((e) => e.type === 'proxy.offer' || e.type === 'pxe.ack' || e.type === 'dhcp.offer' || e.type === 'dhcp.lease');
  const offeredFile = offered ? bootFileOf(offered) : undefined;
  const transfers = attempt.filter(isFileSide);
  const lastFile = [...transfers].reverse().find((e) => e.type !== 'tftp.progress' && e.type !== 'http.progress');

  // A firmware/file mismatch explains most "it downloads, then nothing" cases: check it first.
  const servedFile = lastFile ? bootFileOf(lastFile) : offeredFile;
  const servedFirmware = servedFile ? fileFirmware(servedFile) : undefined;
  if (firmware && servedFirmware && firmware !== servedFirmware && !(lastFile && lastFile.type.startsWith('http.'))) {
    const [client, got] = firmware === 'uefi' ? ['UEFI', 'BIOS'] : ['BIOS', 'UEFI'];
    return {
      stage: lastFile ? 'boot-file' : 'offer',
      level: 'problem',
      message: `${client} client got a ${got} file (${servedFile}).`,
      hint: `Set the ${client === 'UEFI' ? 'uefi64 (or uefi32/arm64)' : 'bios'} boot file to a ${client} program, e.g. ${client === 'UEFI' ? 'ipxe.efi' : 'undionly.kpxe'}, or switch the machine's firmware to ${got} mode.`,
    };
  }

  if (lastFile) {
    const file = bootFileOf(lastFile) ?? '?';
    const reason = reasonOf(lastFile);
    switch (lastFile.type) {
      case 'tftp.done':
      case 'http.done': {
        const done = transfers.filter((e) => e.type === 'tftp.done' || e.type === 'http.done');
        // Only the latest fetch of each file counts: a retry that got the whole file fixes a short one.
        const latest = new Map<string, TransferEvent>();
        for (const e of done) latest.set((bootFileOf(e) ?? '?').toLowerCase(), e);
        const short = [...latest.values()].find(cutShort);
        if (short) {
          return {
            stage: 'failed',
            level: 'problem',
            message: `Download of ${bootFileOf(short) ?? '?'} stopped after ${formatBytes(short.bytes)} of ${formatBytes(short.size)}: the machine did not get the whole file.`,
            hint: 'The program on the machine gave up reading it: check its screen for the reason (a file it cannot use, too little memory), or retry the boot.',
          };
        }
        const count = done.length;
        const stage = count > 1 ? 'kernel' : 'boot-file';
        if (expected) {
          const finished = done.some((e) => (e.ranged !== true || expected.rangeCounts) && expected.paths.some((p) => samePath(p, bootFileOf(e) ?? '')));
          if (!finished) {
            const missing = expected.paths.map((p) => p.split('/').pop()).join(' or ');
            return {
              stage,
              level: 'warning',
              message: `Got ${file}${count > 1 ? ` (${count} files this boot)` : ''}, but not yet everything ${expected.entry} needs: ${missing || 'its files'} never came.`,
              hint: 'If the machine stopped here, read its screen: the boot program could not load the next file. Check the entry on the Library screen.',
            };
          }
          return {
            stage: 'done',
            level: 'ok',
            message: `Downloaded ${file}, the last file ${expected.entry} needs${count > 1 ? ` (${count} files this boot)` : ''}; the system it starts took over from there.`,
          };
        }
        return {
          stage,
          level: 'ok',
          message: `Downloaded ${file}${count > 1 ? ` (${count} files this boot)` : ''}; the boot program took over from there.`,
          hint: count > 1 ? undefined : 'If the screen stops here, the boot program itself has a problem: check its own messages on the machine.',
        };
      }
      case 'tftp.probe':
        return {
          stage: 'boot-file',
          level: 'warning',
          message: `TFTP size probe for ${file}, then nothing: the firmware asked how big the file is and never came back for it.`,
          hint: 'The firmware likely rejected the file (wrong architecture, too large for its memory) or lost the server address; check the boot file matches the client (BIOS vs UEFI) and try a smaller boot program such as iPXE.',
        };
      case 'tftp.failed':
      case 'http.failed':
        return {
          stage: 'failed',
          level: 'problem',
          message: `Download of ${file} failed${reason ? `: ${reason}` : '.'}`,
          hint: /timeout|timed out|retr/i.test(reason ?? '')
            ? 'Packets are being lost: check the cable and switch, and try a smaller block size (some firmware mishandles large TFTP blocks).'
            : 'Retry the boot; if it fails the same way, check the file and the network between server and machine.',
        };
      case 'tftp.aborted':
        return {
          stage: 'boot-file',
          level: 'warning',
          message: `The machine gave up the download of ${file}${reason ? ` ("${reason}")` : ''}.`,
          hint: 'The firmware did not like the file or the transfer options; check the boot file fits this machine (BIOS vs UEFI).',
        };
      case 'tftp.refused':
      case 'http.refused':
        return {
          stage: 'boot-file',
          level: 'problem',
          message: `The machine asked for ${file} and we refused${reason ? `: ${reason}` : '.'}`,
          // Files under /bootbench/ are the bundled boot programs, not the technician's files.
          hint: /^\/?bootbench\//i.test(file)
            ? 'That is one of Bootbench\'s own boot programs: the Start screen\'s "Boot programs" list (or the command "bootbench doctor") says which is missing and how to install it.'
            : 'Put that file in the served folder shown on the Start screen, or give this machine another boot entry on the Machines screen.',
        };
      case 'tftp.start':
      case 'http.start':
        return {
          stage: 'boot-file',
          level: 'warning',
          message: `Download of ${file} started and has not finished.`,
          hint: 'If it stays like this, the machine stopped answering mid-transfer: check the Live screen for retransmits.',
        };
    }
  }

  if (last.type === 'proxy.offer') {
    return {
      stage: 'offer',
      level: 'warning',
      message: 'Offer sent, no request came: this firmware may ignore proxy offers.',
      hint: 'Try full DHCP mode on an isolated bench switch, or check that the other DHCP server does not already send its own boot file.',
    };
  }
  if (last.type === 'pxe.ack' || last.type === 'dhcp.lease') {
    return {
      stage: 'boot-server',
      level: 'warning',
      message: `Boot file ${offeredFile ?? ''} was handed out, but the machine never asked for it.`.replace('  ', ' '),
      hint: 'Check nothing blocks TFTP (UDP 69) on this computer (firewall), and that the machine reaches our address.',
    };
  }
  if (last.type === 'dhcp.offer') {
    return {
      stage: 'offer',
      level: 'warning',
      message: 'Address offered, but the machine never asked for it.',
      hint: 'Another DHCP server may be answering faster on this network; use proxy mode beside it, or unplug it from the bench switch.',
    };
  }
  if (last.type === 'dhcp.nak') {
    return {
      stage: 'dhcp',
      level: 'warning',
      message: 'The machine asked for an address we could not give it; it should start over with a new request.',
      hint: 'If this repeats, widen the pool or clear old leases.',
    };
  }
  const ignored = [...attempt].reverse().find((e): e is BootEventOf<'dhcp.ignored'> => e.type === 'dhcp.ignored');
  if (ignored?.turnedOff === 'http-boot') {
    return {
      stage: 'dhcp',
      level: 'info',
      message: 'not answered, because UEFI HTTP boot is turned off in the serving settings.',
      hint: 'To boot this PC over HTTP, turn "UEFI HTTP boot" on on the Start screen (bootbench serve --http-boot on); otherwise put UEFI PXE before HTTP boot in its firmware boot order.',
    };
  }
  if (ignored?.deliberate) return localDiskDiagnosis(ignored, events);
  if (ignored) {
    return {
      stage: 'dhcp',
      level: 'warning',
      message: `We saw its requests but did not answer${reasonOf(ignored) ? `: ${reasonOf(ignored)}` : '.'}`,
      hint: 'Usually the machine is not asking for a network boot (no PXEClient); enable PXE in its firmware setup.',
    };
  }
  if (attempt.every(isDhcpSide)) {
    return {
      stage: 'dhcp',
      level: 'warning',
      message: 'The machine sent DHCP requests and got no answer from us.',
      hint: 'Check the services are running on the NIC wired to this machine (Start screen).',
    };
  }
  return { stage: 'dhcp', level: 'unknown', message: `Last step: ${summarizeEvent(last).summary}.` };
}

/** A machine not answered on purpose: it boots from its disk, and why (its boot once was used, or its entry says so). */
function localDiskDiagnosis(ignored: BootEvent, events: BootEvent[]): Diagnosis {
  const used = [...events]
    .sort((a, b) => b.time - a.time)
    .find((e) => (e.type === 'host.warning' && e.bootOnce === 'completed') || (e.type as string) === 'boot-once.cleared');
  const hint = 'Assign an entry to it on the Machines screen to network-boot it again.';
  if (used && used.time <= ignored.time) {
    return {
      stage: 'local-disk',
      level: 'info',
      message: `Boots from its local disk: boot once was used on ${formatWhen(used.time)}; it is not answered on purpose.`,
      hint,
    };
  }
  return { stage: 'local-disk', level: 'info', message: `Not answered on purpose: ${reasonOf(ignored) ?? 'it is set to boot from its local disk'}.`, hint };
}

/** Local date and minute, e.g. 2026-12-07 14:05. */
function formatWhen(time: number): string {
  const d = new Date(time);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

// ---------------------------------------------------------------------------
// UEFI HTTP boot. The firmware asks with vendor class HTTPClient and fetches the URL it is
// offered itself, with no TFTP: the diagnosis names the boot method and points at HTTP.

/** Option 93 values of HTTP-boot firmware (IANA registry: x86, x64, EBC, ARM32, ARM64, RISC-V 64). */
const HTTP_BOOT_ARCHES = new Set([15, 16, 17, 18, 19, 27]);

const isFirmwareRequest = (e: BootEvent): e is BootEventOf<'dhcp.received'> => e.type === 'dhcp.received' && !/(^|,)iPXE(,|$)/.test(e.userClass ?? '');

/**
 * Whether the machine's last boot began as a UEFI HTTP boot: its firmware's last DHCP
 * message (iPXE's own, when the firmware chained to it, do not count) was an HTTP-boot one.
 */
export function bootStartedOverHttp(events: BootEvent[]): boolean {
  const firmware = [...events].sort((a, b) => b.time - a.time).find(isFirmwareRequest);
  if (!firmware) return false;
  return firmware.vendorClass?.startsWith('HTTPClient') === true || (firmware.arch !== undefined && HTTP_BOOT_ARCHES.has(firmware.arch));
}

// ---------------------------------------------------------------------------
// Wake-on-LAN. A woken PC's firmware asks for a network boot within seconds (PXE first in
// its boot order) or it powers on to its disk; either way it sends a DHCP DISCOVER if its
// NIC has PXE enabled. No DHCP message from it within a minute: the packet did not wake it.

/** How long a woken PC has to ask for a network boot before it is flagged. */
export const WAKE_ANSWER_MS = 60_000;
export const WAKE_NO_ANSWER = 'No answer to Wake-on-LAN: check the BIOS setting or the cable';
const WAKE_NO_ANSWER_HINT =
  'Enable Wake-on-LAN in its firmware setup (often "Wake on LAN", "Power on by PCI-E" or "Resume by LAN"; turn "ErP" or "Deep sleep" off), keep it plugged into power, and check its network cable is in the bench switch; or switch it on by hand.';

export interface WakeOutcome {
  wake: BootEventOf<'wake.sent'>;
  /** waiting: within the minute; answered: it asked to boot; no-answer: the minute passed in silence. */
  state: 'waiting' | 'answered' | 'no-answer';
  answeredAt?: number;
}

/**
 * What came of each wake of one machine (its events, any of its MACs), oldest first. A wake
 * followed by another before its minute was up (a second press, another MAC of the same PC)
 * is judged by the later one alone, so one silent PC is flagged once.
 */
export function wakeOutcomes(events: BootEvent[], now: number, windowMs = WAKE_ANSWER_MS): WakeOutcome[] {
  const sorted = [...events].sort((a, b) => a.time - b.time);
  const wakes = sorted.filter((e): e is BootEventOf<'wake.sent'> => e.type === 'wake.sent' && e.packets > 0);
  const asks = sorted.filter((e) => e.type === 'dhcp.received');
  const outcomes: WakeOutcome[] = [];
  wakes.forEach((wake, i) => {
    const deadline = wake.time + windowMs;
    const answer = asks.find((e) => e.time >= wake.time && e.time <= deadline);
    const next = wakes[i + 1];
    if (answer && (!next || answer.time <= next.time)) outcomes.push({ wake, state: 'answered', answeredAt: answer.time });
    else if (next && next.time <= deadline) return;
    else outcomes.push({ wake, state: now >= deadline ? 'no-answer' : 'waiting' });
  });
  return outcomes;
}

/** The Timeline's lines for what came of each wake: when it asked to boot, or the flag. */
export function wakeFollowUps(events: BootEvent[], now: number, windowMs = WAKE_ANSWER_MS): TimelineEntry[] {
  return wakeOutcomes(events, now, windowMs).flatMap((o) => {
    const entry = wakeFollowUp(o, windowMs);
    return entry ? [entry] : [];
  });
}

export function wakeFollowUp(outcome: WakeOutcome, windowMs = WAKE_ANSWER_MS): TimelineEntry | undefined {
  const { wake } = outcome;
  if (outcome.state === 'answered') {
    const seconds = Math.max(0, Math.round((outcome.answeredAt! - wake.time) / 1000));
    return { time: outcome.answeredAt!, type: 'wake.answered', mac: wake.mac, summary: `Asked to boot ${seconds} s after it was woken`, level: 'info' };
  }
  if (outcome.state === 'no-answer') return { time: wake.time + windowMs, type: 'wake.unanswered', mac: wake.mac, summary: WAKE_NO_ANSWER, level: 'problem' };
  return undefined;
}

/** The last wake, when nothing of the PC's own came after it: what the Timeline says instead of the older boot. */
function wakeDiagnosis(events: BootEvent[], now: number): Diagnosis | undefined {
  const last = wakeOutcomes(events, now).at(-1);
  if (!last || last.state === 'answered') return undefined;
  // A boot of its own after the wake (pressed by hand, say) is the story, not the wake.
  if (events.some((e) => e.time > last.wake.time && (isDhcpEvent(e) || isTransferEvent(e)))) return undefined;
  if (last.state === 'waiting') {
    const seconds = Math.max(0, Math.round((now - last.wake.time) / 1000));
    return {
      stage: 'none',
      level: 'info',
      message: `Woken ${seconds} s ago: waiting for it to ask for a network boot (up to a minute).`,
      hint: 'A PC set to boot from the network first asks within seconds of powering on.',
    };
  }
  return { stage: 'none', level: 'problem', message: `${WAKE_NO_ANSWER}.`, hint: WAKE_NO_ANSWER_HINT };
}

/** Where the last boot attempt of one machine stopped, and what to try; `now` judges a recent wake. */
export function diagnoseBoot(events: BootEvent[], expected?: BootExpectation, now = Date.now()): Diagnosis {
  const woken = wakeDiagnosis(events, now);
  if (woken) return woken;
  // What the other DHCP server said is context for GRUB below, not a boot step; nor is a wake.
  events = events.filter((e) => e.type !== 'wake.sent');
  const steps = events.filter((e) => e.type !== 'dhcp.other-ack');
  const diagnosis = diagnoseBootSteps(steps, expected);
  const grub = grubServerDiagnosis(events);
  if (grub) return grub;
  if (!bootStartedOverHttp(steps)) return diagnosis;
  const last = lastBootAttempt(steps.filter((e) => e.type !== 'service.state' && e.type !== 'host.warning')).at(-1);
  const url = last && (last.type === 'proxy.offer' || last.type === 'pxe.ack' || last.type === 'dhcp.lease') ? bootFileOf(last) : undefined;
  if (url && /^https?:\/\//i.test(url)) {
    return {
      stage: 'boot-server',
      level: 'warning',
      message: `UEFI HTTP boot: the firmware was given ${url} and never fetched it.`,
      hint: 'Check that this computer accepts HTTP connections on that port from the bench network (firewall), and that the machine reaches our address.',
    };
  }
  return { ...diagnosis, message: `UEFI HTTP boot: ${diagnosis.message}` };
}

// ---------------------------------------------------------------------------
// GRUB that never comes back to us. Debian's signed network GRUB (the Secure Boot chain:
// shim, then GRUB) asks for its files by TFTP only, from the server in the DHCP ACK the
// firmware kept: after a proxy offer that is the other DHCP server's next-server, and after
// UEFI HTTP boot there is none it can use (it stops at its prompt).

const baseName = (path: string): string => path.split(/[/\\]/).pop() ?? path;

/** The last attempt loaded a GRUB binary and GRUB never asked us for anything of its own. */
function grubNeverCameBack(attempt: BootEvent[]): boolean {
  const downloaded = attempt.filter((e) => e.type === 'tftp.done' || e.type === 'http.done').map((e) => bootFileOf(e) ?? '');
  if (!downloaded.some((f) => /grub[^/\\]*\.efi$/i.test(baseName(f)))) return false;
  // GRUB's own requests: its prefix folder (/grub/...), grub.cfg, module lists.
  return !attempt.some((e) => isFileSide(e) && /(^|[/\\])grub[/\\]|grub\.cfg/i.test(bootFileOf(e) ?? ''));
}

function grubServerDiagnosis(events: BootEvent[]): Diagnosis | undefined {
  const attempt = lastBootAttempt(events.filter((e) => e.type !== 'service.state' && e.type !== 'host.warning'));
  if (!grubNeverCameBack(attempt)) return undefined;
  if (bootStartedOverHttp(attempt)) {
    return {
      stage: 'boot-file',
      level: 'problem',
      message:
        'UEFI HTTP boot: GRUB was loaded over HTTP and stopped at its prompt: the signed network GRUB fetches grub.cfg by TFTP only, and after HTTP boot it has no TFTP server to ask.',
      hint: 'Boot this machine by PXE instead (put "UEFI PXEv4" before HTTP boot in its firmware), in full DHCP mode on an isolated bench switch.',
    };
  }
  const offer = attempt.find((e) => e.type === 'proxy.offer');
  if (!offer) return undefined;
  const ours = str(offer.siaddr);
  const ack = [...attempt].reverse().find((e) => e.type === 'dhcp.other-ack');
  const next = ack ? str(ack.nextServer) : undefined;
  // The other server's next-server is us: GRUB will ask us, so nothing is wrong (yet).
  if (next && next === ours) return undefined;
  const request = [...attempt]
    .reverse()
    .find(
      (e): e is BootEventOf<'dhcp.received'> => e.type === 'dhcp.received' && e.msgType === 'REQUEST' && !!e.serverIdentifier && e.serverIdentifier !== ours,
    );
  const server = str(ack?.server) ?? str(request?.serverIdentifier);
  const serverName = server ? `the other DHCP server (${server})` : 'the other DHCP server';
  const where = !ack
    ? `the next-server in the answer of ${serverName}`
    : next
      ? `${next} (the next-server in the answer of ${serverName})`
      : `nobody: the answer of ${serverName} names no next-server`;
  return {
    stage: 'boot-file',
    level: 'problem',
    message: `GRUB was loaded, but it asks ${where} for grub.cfg, not this computer${ours ? ` (${ours})` : ''}: in proxy mode GRUB takes its TFTP server from that answer, not from our offer.`,
    hint: `Use full DHCP mode on an isolated bench switch, or set the next-server (siaddr) of ${serverName} to ${ours ?? 'this computer'}.`,
  };
}
