// Turns one machine's boot events into sentences a technician can act on: a one-line
// summary per event, and a diagnosis of where the last boot attempt stopped.
// Pure functions over BootEvent lists; the Timeline screen and the API call them.
import type { BootEvent } from './events.js';
import type { Diagnosis, TimelineEntry } from '../../preload/api.js';

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

/** BIOS or UEFI from whatever the DHCP side put in `arch` / `bootClass`. */
export function firmwareOf(event: BootEvent): Firmware {
  const cls = typeof event.bootClass === 'string' ? event.bootClass : undefined;
  if (cls) return cls === 'bios' ? 'bios' : 'uefi';
  const arch = event.arch;
  if (typeof arch === 'number') return arch === 0 ? 'bios' : arch in ARCH_NAMES ? 'uefi' : undefined;
  if (typeof arch === 'string') {
    if (/^\d+$/.test(arch)) return firmwareOf({ ...event, arch: Number(arch) });
    if (/bios|x86pc|legacy/i.test(arch)) return 'bios';
    if (/uefi|efi|arm|http/i.test(arch)) return 'uefi';
  }
  return undefined;
}

export function archLabel(arch: unknown): string | undefined {
  if (typeof arch === 'number') return ARCH_NAMES[arch] ?? `architecture ${arch}`;
  if (typeof arch === 'string' && /^\d+$/.test(arch)) return archLabel(Number(arch));
  if (typeof arch === 'string' && arch) return arch;
  return undefined;
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
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function bootFileOf(event: BootEvent): string | undefined {
  return str(event.bootFile) ?? str(event.file) ?? str(event.filename) ?? str(event.url);
}

function reasonOf(event: BootEvent): string | undefined {
  return str(event.reason) ?? str(event.error) ?? str(event.message);
}

/** One line in plain words for one event. */
export function summarizeEvent(event: BootEvent): TimelineEntry {
  const base = { time: event.time, type: event.type, mac: event.mac, ip: event.ip };
  const file = bootFileOf(event);
  const reason = reasonOf(event);
  const arch = archLabel(event.arch);
  const size = num(event.size);
  const bytes = num(event.bytes);
  const seconds = num(event.durationMs) !== undefined ? ` in ${(num(event.durationMs)! / 1000).toFixed(1)} s` : '';
  const info = (summary: string): TimelineEntry => ({ ...base, summary, level: 'info' });
  const warning = (summary: string): TimelineEntry => ({ ...base, summary, level: 'warning' });
  const problem = (summary: string): TimelineEntry => ({ ...base, summary, level: 'problem' });
  switch (event.type) {
    case 'dhcp.discover': {
      const what = str(event.msgType) ?? 'DHCP message';
      const port = num(event.port) === 4011 ? ' to the boot server (4011)' : '';
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
      return warning(`Address ${str(event.address) ?? '?'} is already used by another machine${str(event.heldBy) ? ` (${event.heldBy})` : ''}; kept out of the pool and offering another`);
    case 'dhcp.ignored':
      return warning(`Not answered${reason ? `: ${reason}` : ''}`);
    case 'dhcp.error':
      return problem(`DHCP problem${reason ? `: ${reason}` : ''}`);
    case 'tftp.start':
    case 'http.start':
      return info(`${event.type.startsWith('tftp') ? 'TFTP' : 'HTTP'} download of ${file ?? '?'} started${size !== undefined ? ` (${formatBytes(size)})` : ''}`);
    case 'tftp.progress':
    case 'http.progress':
      return info(`${file ?? '?'}: ${formatBytes(bytes)}${size !== undefined ? ` of ${formatBytes(size)}` : ''}`);
    case 'tftp.done':
    case 'http.done':
      return info(`${event.type.startsWith('tftp') ? 'TFTP' : 'HTTP'} sent ${file ?? '?'} (${formatBytes(bytes ?? size)})${seconds}`);
    case 'tftp.probe':
      return info(`Firmware asked the size of ${file ?? '?'}${size !== undefined ? ` (${formatBytes(size)})` : ''} and stopped, as firmware does before the real download`);
    case 'tftp.failed':
    case 'http.failed':
      return problem(`Download of ${file ?? '?'} failed${reason ? `: ${reason}` : ''}`);
    case 'tftp.aborted':
      return warning(`The machine stopped the download of ${file ?? '?'}${reason ? `: ${reason}` : ''}`);
    case 'tftp.refused':
    case 'http.refused':
      return problem(`Refused ${file ?? 'a request'}${reason ? `: ${reason}` : ''}`);
    case 'service.state':
      return info('Services changed state');
    case 'host.warning':
      return warning(reason ?? 'Host warning');
  }
  return info(event.type);
}

const isDhcpSide = (e: BootEvent) => e.type.startsWith('dhcp.') || e.type === 'proxy.offer' || e.type === 'pxe.ack';
const isFileSide = (e: BootEvent) => e.type.startsWith('tftp.') || e.type.startsWith('http.');

/**
 * The events of the last boot attempt: a machine's boot starts over with a DISCOVER that
 * follows file traffic (it rebooted), or that comes after a long quiet spell.
 */
export function lastBootAttempt(events: BootEvent[], quietMs = 5 * 60_000): BootEvent[] {
  const sorted = [...events].sort((a, b) => a.time - b.time);
  let start = 0;
  for (let i = 1; i < sorted.length; i++) {
    const e = sorted[i]!;
    if (e.type !== 'dhcp.discover' || e.msgType !== 'DISCOVER') continue;
    const previous = sorted[i - 1]!;
    if (isFileSide(previous) || e.time - previous.time > quietMs) start = i;
  }
  return sorted.slice(start);
}

/** Where the last boot attempt of one machine stopped, and what to try. */
export function diagnoseBoot(events: BootEvent[]): Diagnosis {
  const attempt = lastBootAttempt(events.filter((e) => e.type !== 'service.state' && e.type !== 'host.warning'));
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
        const count = transfers.filter((e) => e.type === 'tftp.done' || e.type === 'http.done').length;
        return {
          stage: count > 1 ? 'kernel' : 'boot-file',
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
            ? "That is one of Bootbench's own boot programs: the Start screen's \"Boot programs\" list (or the command \"bootbench doctor\") says which is missing and how to install it."
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
  const ignored = [...attempt].reverse().find((e) => e.type === 'dhcp.ignored');
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
