// Wake-on-LAN: wakes a bench machine so it can PXE boot without walking to it.
import type { Socket } from 'node:dgram';
import type { UdpSocketFactory } from './udp-socket-factory.js';
import { broadcastAddressOf, listInterfaces, type NetInterface } from './interfaces.js';
import { openPlainSocket } from './scoped-udp.js';

/** UDP 9 (discard) is what most tools and NIC firmware expect; 7 (echo) is the other common one. */
export const WAKE_ON_LAN_PORT = 9;

/**
 * Magic packet (AMD "Magic Packet Technology" white paper, 1995):
 *
 *   +-------------------+------------------------------------+-------------------+
 *   | FF FF FF FF FF FF | target MAC, 16 times (96 bytes)    | SecureOn password |
 *   |     6 bytes       |                                    | 0, 4 or 6 bytes   |
 *   +-------------------+------------------------------------+-------------------+
 *
 * The NIC scans any frame for this pattern, so the UDP port and IP addresses do not matter
 * to it; they only need to get the frame onto the right segment.
 */
export function buildMagicPacket(mac: string, password?: string): Buffer {
  const target = parseMac(mac);
  const secret = password === undefined ? Buffer.alloc(0) : parseSecureOnPassword(password);
  const packet = Buffer.alloc(6 + 16 * 6 + secret.length, 0xff);
  for (let i = 0; i < 16; i++) target.copy(packet, 6 + i * 6);
  secret.copy(packet, 6 + 16 * 6);
  return packet;
}

/** Accepts aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff and aabbccddeeff. */
export function parseMac(mac: string): Buffer {
  const hex = mac.trim().replace(/[:.-]/g, '');
  if (!/^[0-9a-fA-F]{12}$/.test(hex)) throw new Error(`not a MAC address: "${mac}" (expected e.g. 52:54:00:12:34:56)`);
  return Buffer.from(hex, 'hex');
}

/**
 * SecureOn passwords are 4 bytes (written as an IPv4 address, or in hex: 01:02:03:04) or
 * 6 bytes (written as a MAC).
 */
function parseSecureOnPassword(password: string): Buffer {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(password)) {
    const octets = password.split('.').map(Number);
    if (octets.every((o) => o <= 255)) return Buffer.from(octets);
  }
  const hex = password.trim().replace(/[:-]/g, '');
  if (/^[0-9a-fA-F]{8}$/.test(hex)) return Buffer.from(hex, 'hex');
  try {
    return parseMac(password);
  } catch {
    throw new Error(`not a SecureOn password: "${password}" (expected 4 bytes like 1.2.3.4 or 6 like 01:02:03:04:05:06)`);
  }
}

export interface MagicPacketOptions {
  /** Send through this NIC only (and to its directed broadcast unless told otherwise). */
  interfaceName?: string;
  /** Default: the NIC's directed broadcast (e.g. 192.0.2.255), else 255.255.255.255. */
  broadcastAddress?: string;
  port?: number;
  password?: string;
  /** Default: plain dgram socket. The host passes its scoped factory. */
  socketFactory?: UdpSocketFactory;
  /** For the default broadcast address; defaults to listInterfaces(). */
  interfaces?: NetInterface[];
}

/** Sends one magic packet; resolves once the datagram has left (not when the machine woke). */
export async function sendMagicPacket(mac: string, options: MagicPacketOptions = {}): Promise<{ address: string; port: number; bytes: number }> {
  const packet = buildMagicPacket(mac, options.password);
  const port = options.port ?? WAKE_ON_LAN_PORT;
  const address = options.broadcastAddress ?? defaultBroadcastAddress(options.interfaceName, options.interfaces);
  const factory = options.socketFactory ?? openPlainSocket;
  const socket = await factory({ port: 0, interfaceName: options.interfaceName, broadcast: true });
  try {
    // Some factories (or a socket handed over by fd) may not have set it: harmless twice.
    socket.setBroadcast(true);
    await send(socket, packet, port, address);
  } finally {
    socket.close();
  }
  return { address, port, bytes: packet.length };
}

export interface WakeOptions {
  socketFactory: UdpSocketFactory;
  /** The NIC the bench is on; the packets leave through it only. */
  interfaceName?: string;
  /** Directed broadcast of the bench subnet (e.g. 192.0.2.255) or 255.255.255.255; see also `addresses`. */
  broadcastAddress?: string;
  /** Every address each packet goes to (wakeAddressesOf: the NIC's directed broadcasts and 255.255.255.255). */
  addresses?: string[];
  port?: number;
  /** Rounds: each MAC's packet goes to every address once per round (UDP has no delivery guarantee; 3 is customary). */
  repeat?: number;
  /** Pause between rounds, so one lost burst on a busy switch does not take every copy with it. */
  intervalMs?: number;
  /** How the pause is waited (tests pass one that returns at once). */
  sleep?: (ms: number) => Promise<void>;
}

export interface WakeResult {
  mac: string;
  /** Datagrams that left for this MAC (rounds x addresses, less failed sends). */
  sent: number;
  /** A MAC that is not one, or why sends failed (the last failure). */
  error?: string;
}

/**
 * Where magic packets for a bench NIC go: each of its subnets' directed broadcast, then the
 * limited broadcast. The socket is tied to the NIC, so the limited broadcast leaves through it
 * alone; the directed one also reaches a PC whose switch port drops 255.255.255.255.
 */
export function wakeAddressesOf(nic: { ipv4: { address: string; prefixLength: number }[] } | undefined): string[] {
  // A /31 or /32 has no broadcast address (RFC 3021).
  const directed = (nic?.ipv4 ?? []).filter((a) => a.prefixLength < 31).map((a) => directedBroadcast(a.address, a.prefixLength));
  return [...new Set([...directed, '255.255.255.255'])];
}

function directedBroadcast(address: string, prefixLength: number): string {
  const host = prefixLength === 0 ? 0xffffffff : (0xffffffff >>> prefixLength) >>> 0;
  const value = (address.split('.').reduce((n, octet) => (n << 8) + Number(octet), 0) | host) >>> 0;
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join('.');
}

/**
 * Wakes a room: magic packets for each MAC through one socket, `repeat` rounds to every
 * address. A bad MAC is reported and does not stop the rest, nor does a failed send.
 */
export async function wakeMachines(macs: string[], options: WakeOptions): Promise<WakeResult[]> {
  const addresses = options.addresses ?? [options.broadcastAddress ?? '255.255.255.255'];
  const rounds = Math.max(1, options.repeat ?? 3);
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const results: WakeResult[] = [];
  const packets: (Buffer | undefined)[] = [];
  for (const mac of macs) {
    try {
      packets.push(buildMagicPacket(mac));
      results.push({ mac, sent: 0 });
    } catch (err) {
      packets.push(undefined);
      results.push({ mac, sent: 0, error: (err as Error).message });
    }
  }
  if (!packets.some(Boolean)) return results;
  const socket = await options.socketFactory({ port: 0, interfaceName: options.interfaceName, broadcast: true });
  try {
    socket.setBroadcast(true);
    for (let round = 0; round < rounds; round++) {
      if (round > 0 && options.intervalMs) await sleep(options.intervalMs);
      for (let i = 0; i < macs.length; i++) {
        const packet = packets[i];
        if (!packet) continue;
        for (const address of addresses) {
          try {
            await send(socket, packet, options.port ?? WAKE_ON_LAN_PORT, address);
            results[i]!.sent++;
          } catch (err) {
            results[i]!.error = `sending to ${address} failed: ${(err as Error).message}`;
          }
        }
      }
    }
  } finally {
    socket.close();
  }
  return results;
}

function defaultBroadcastAddress(interfaceName: string | undefined, interfaces?: NetInterface[]): string {
  if (!interfaceName) return '255.255.255.255';
  const nic = (interfaces ?? listInterfaces()).find((n) => n.name === interfaceName);
  // A directed broadcast is routed out of the right NIC even on systems where the limited
  // broadcast would follow the default route (macOS, Windows).
  return nic?.ipv4[0] ? broadcastAddressOf(nic.ipv4[0]) : '255.255.255.255';
}

function send(socket: Socket, packet: Buffer, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => socket.send(packet, port, address, (error) => (error ? reject(error) : resolve())));
}
