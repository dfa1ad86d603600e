// Which process holds a port. Linux only: the kernel lists sockets in /proc/net/{udp,tcp}{,6}
// with their inode, and every process's descriptors show up in /proc/PID/fd as links to
// "socket:[inode]". Other systems return [] (the error message then says "another program").
//
// Processes of other users are only visible to root (or CAP_SYS_PTRACE): without it
// the socket is found but its owner stays unknown, which the message says.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export type PortProtocol = 'udp' | 'tcp';

export interface PortOwner {
  /** Socket inode from /proc/net/*. */
  inode: number;
  /** Local address as the kernel reports it, e.g. 0.0.0.0:67 or [::]:67. */
  localAddress: string;
  /** Undefined when the socket exists but we may not look at the owning process. */
  pid?: number;
  /** /proc/PID/comm: the program name (at most 15 characters). */
  command?: string;
}

/** TCP state 0A in /proc/net/tcp is LISTEN; UDP sockets have no listening state. */
const TCP_LISTEN = '0A';

/**
 * The process holding `port` (UDP: any socket bound to it; TCP: a listening one), or
 * undefined when the port is free. When several hold it, one whose process is known.
 */
export function findPortOwner(proto: PortProtocol, port: number, procRoot = '/proc'): PortOwner | undefined {
  const owners = findPortOwners(proto, port, procRoot);
  return owners.find((o) => o.pid !== undefined) ?? owners[0];
}

/**
 * Every process that holds `port` for `proto` (IPv4 and IPv6 sockets), in this network
 * namespace. One entry per (socket, process); a socket shared by a parent and its
 * children appears once per process.
 */
export function findPortOwners(proto: PortProtocol, port: number, procRoot = '/proc'): PortOwner[] {
  const sockets = new Map<number, string>();
  for (const family of ['', '6'] as const) {
    let table: string;
    try {
      table = readFileSync(join(procRoot, 'net', `${proto}${family}`), 'utf8');
    } catch {
      continue;
    }
    for (const entry of parseProcNetTable(table)) {
      if (entry.port !== port) continue;
      if (proto === 'tcp' && entry.state !== TCP_LISTEN) continue;
      if (entry.inode !== 0) sockets.set(entry.inode, entry.localAddress);
    }
  }
  if (sockets.size === 0) return [];

  const owners: PortOwner[] = [];
  const seen = new Set<number>();
  let pids: string[] = [];
  try {
    pids = readdirSync(procRoot).filter((name) => /^\d+$/.test(name));
  } catch {
    /* no /proc */
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(join(procRoot, pid, 'fd'));
    } catch {
      continue; // process gone, or not ours to look at
    }
    const seenPerProcess = new Set<number>();
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(join(procRoot, pid, 'fd', fd));
      } catch {
        continue;
      }
      const match = /^socket:\[(\d+)\]$/.exec(target);
      if (!match) continue;
      const inode = Number(match[1]);
      const localAddress = sockets.get(inode);
      if (localAddress === undefined || seenPerProcess.has(inode)) continue;
      seenPerProcess.add(inode);
      seen.add(inode);
      owners.push({ inode, localAddress, pid: Number(pid), command: readComm(procRoot, pid) });
    }
  }
  for (const [inode, localAddress] of sockets) {
    if (!seen.has(inode)) owners.push({ inode, localAddress });
  }
  return owners;
}

function readComm(procRoot: string, pid: string): string | undefined {
  try {
    return readFileSync(join(procRoot, pid, 'comm'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export interface ProcNetEntry {
  localAddress: string;
  port: number;
  state: string;
  inode: number;
}

/**
 * /proc/net/udp line (fields separated by spaces; addresses in hex):
 *
 *   sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  timeout inode ...
 *    0: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 23456 ...
 *
 * The IPv4 address is the 32-bit value in host byte order printed as hex (so on x86
 * 0100007F is 127.0.0.1); IPv6 is four such words. The port is plain big hex.
 */
export function parseProcNetTable(text: string): ProcNetEntry[] {
  const entries: ProcNetEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const [addressHex, portHex] = fields[1]!.split(':');
    if (!addressHex || !portHex) continue;
    entries.push({
      localAddress: formatProcAddress(addressHex, parseInt(portHex, 16)),
      port: parseInt(portHex, 16),
      state: fields[3]!,
      inode: Number(fields[9]),
    });
  }
  return entries;
}

function formatProcAddress(hex: string, port: number): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((word) => {
    const value = parseInt(word, 16);
    const b = [(value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
    // Host byte order: /proc prints the in-memory word, so little-endian machines reverse it.
    return isLittleEndian ? b.reverse() : b;
  });
  if (bytes.length === 4) return `${bytes.join('.')}:${port}`;
  const groups: string[] = [];
  for (let i = 0; i < bytes.length; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return `[${groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')}]:${port}`;
}

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** "dnsmasq (pid 1234)", "dnsmasq (pid 1234) and node (pid 99)", or undefined if unknown. */
export function describePortOwners(owners: PortOwner[]): string | undefined {
  const known = owners.filter((o) => o.pid !== undefined);
  if (known.length === 0) return undefined;
  const unique = [...new Map(known.map((o) => [o.pid, o])).values()];
  const parts = unique.slice(0, 3).map((o) => `${o.command ?? 'a process'} (pid ${o.pid})`);
  if (unique.length > 3) parts.push(`${unique.length - 3} more`);
  return parts.length > 1 ? `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}` : parts[0];
}
