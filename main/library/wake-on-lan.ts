// Wake-on-LAN: the classroom flow is "wake the room, boot once into the installer, back to
// the local disk". Magic packets go out as UDP broadcasts through the chosen NIC only (the
// socket factory scopes them), never through whatever interface the OS would pick.
//
// Magic packet (AMD "Magic Packet Technology" white paper, 1995):
//
//   +-------------------+-----------------------------+-------------------+
//   | FF FF FF FF FF FF | target MAC, 16 times (96 B) | SecureOn password |
//   +-------------------+-----------------------------+ (0, 4 or 6 bytes) +
//
// Carried in a UDP datagram to port 9 (discard) by convention; NICs look for the pattern
// anywhere in the frame, so the port does not matter to them.
import type { UdpSocketFactory } from '../net/udp-socket-factory.js';

export const WAKE_ON_LAN_PORT = 9;

function macBytes(mac: string): Buffer {
  const hex = mac.toLowerCase().replace(/[^0-9a-f]/g, '');
  if (hex.length !== 12) throw new Error(`"${mac}" is not a MAC address (write it like 52:54:00:12:34:56)`);
  return Buffer.from(hex, 'hex');
}

export function buildMagicPacket(mac: string, password?: string): Buffer {
  const target = macBytes(mac);
  let secureOn = Buffer.alloc(0);
  if (password !== undefined) {
    const hex = password.replace(/[:-]/g, '');
    if (!/^([0-9a-f]{8}|[0-9a-f]{12})$/i.test(hex)) throw new Error('a SecureOn password is 4 or 6 bytes in hex, e.g. 01:02:03:04:05:06');
    secureOn = Buffer.from(hex, 'hex');
  }
  return Buffer.concat([Buffer.alloc(6, 0xff), ...Array.from({ length: 16 }, () => target), secureOn]);
}

export interface WakeOptions {
  socketFactory: UdpSocketFactory;
  /** The NIC the bench is on; the packet leaves through it only. */
  interfaceName?: string;
  /** Directed broadcast of the bench subnet (e.g. 192.0.2.255) or 255.255.255.255. */
  broadcastAddress: string;
  port?: number;
  /** Packets per machine (UDP has no delivery guarantee; 3 is customary). */
  repeat?: number;
}

/** Sends magic packets for each MAC; returns per-MAC results (a bad MAC does not stop the rest). */
export async function wakeMachines(macs: string[], options: WakeOptions): Promise<{ mac: string; sent: number; error?: string }[]> {
  const socket = await options.socketFactory({ port: 0, interfaceName: options.interfaceName, broadcast: true });
  const results: { mac: string; sent: number; error?: string }[] = [];
  try {
    socket.setBroadcast(true);
    for (const mac of macs) {
      let packet: Buffer;
      try {
        packet = buildMagicPacket(mac);
      } catch (err) {
        results.push({ mac, sent: 0, error: (err as Error).message });
        continue;
      }
      let sent = 0;
      for (let i = 0; i < (options.repeat ?? 3); i++) {
        await new Promise<void>((resolve, reject) => socket.send(packet, options.port ?? WAKE_ON_LAN_PORT, options.broadcastAddress, (err) => (err ? reject(err) : resolve())));
        sent++;
      }
      results.push({ mac, sent });
    }
  } finally {
    socket.close();
  }
  return results;
}
