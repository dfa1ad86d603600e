// "Is this IPv4 address already in use on the NIC?" by ARP probe (RFC 5227 §2.1.1), for
// full DHCP mode: an address configured by hand on a bench PC, a printer or a forgotten
// static box must not be offered to a PXE client. dnsmasq and ISC dhcpd
// ask the same question by ICMP echo; ARP is better on a bench switch: every IPv4 host
// answers ARP for its own address, while many (Windows' default firewall) drop pings,
// and a probe with sender address 0.0.0.0 leaves nobody's ARP cache changed.
//
// Linux only: an AF_PACKET socket (SOCK_DGRAM, so the kernel builds the Ethernet header)
// bound to the chosen NIC's interface index, which is the packet-socket form of
// SO_BINDTODEVICE: it sends and hears ARP on that NIC alone. It needs CAP_NET_RAW (root
// has it, and so does the packaged bootbench-host). Node has no packet sockets, so the
// calls go through libc.ts like the scoped UDP sockets; the waiting (non-blocking
// reads on a short timer) is address-probe.ts's.
import type { Clock } from '../core/index.js';
import { loadLibc, type Libc } from './libc.js';
import { PolledAddressProber, type ProbeSocket } from './address-probe.js';

export interface ArpProberOptions {
  interfaceName: string;
  /** Our MAC on that NIC: the probe's sender hardware address (RFC 5227 §2.1.1). */
  mac: string;
  /** How long to wait for an answer. Default 300 ms. */
  timeoutMs?: number;
  clock?: Clock;
}

// <linux/if_ether.h>, <linux/if_packet.h>, <bits/socket.h> (x86, arm, arm64, riscv).
const AF_PACKET = 17;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
const ETH_P_ARP = 0x0806;
const ETH_P_IP = 0x0800;
const PACKET_OUTGOING = 4;
export const EAGAIN_LIKE = new Set(['EAGAIN', 'EWOULDBLOCK', 'EINTR']);

const htons = (n: number) => ((n & 0xff) << 8) | (n >> 8);

/**
 * struct sockaddr_ll (<linux/if_packet.h>, 20 bytes):
 *
 *   0       2          4           8          10        11       12            20
 *   | family | protocol | ifindex   | hatype   | pkttype | halen  | addr[8]      |
 *   | u16 LE | u16 BE   | i32 LE    | u16      | u8      | u8     |              |
 */
export function encodeSockaddrLl(ifindex: number, destinationMac?: Buffer): Buffer {
  const buf = Buffer.alloc(20);
  buf.writeUInt16LE(AF_PACKET, 0);
  buf.writeUInt16BE(ETH_P_ARP, 2);
  buf.writeInt32LE(ifindex, 4);
  if (destinationMac) {
    buf[11] = 6;
    destinationMac.copy(buf, 12);
  }
  return buf;
}

/**
 * An ARP probe (RFC 826 packet, RFC 5227 §2.1.1 addressing), Ethernet/IPv4, 28 bytes:
 *
 *   0        2        4    5    6        8             14        18             24        28
 *   | htype=1 | ptype=0x0800 | hlen=6 | plen=4 | oper=1 | sender MAC | sender IP | target MAC | target IP |
 *                                                        (ours)      0.0.0.0     00:..:00     candidate
 */
export function encodeArpProbe(ourMac: Buffer, targetIp: string): Buffer {
  const buf = Buffer.alloc(28);
  buf.writeUInt16BE(1, 0);
  buf.writeUInt16BE(ETH_P_IP, 2);
  buf[4] = 6;
  buf[5] = 4;
  buf.writeUInt16BE(1, 6);
  ourMac.copy(buf, 8);
  // sender IP stays 0.0.0.0 and target MAC zero (RFC 5227: "probe").
  Buffer.from(targetIp.split('.').map(Number)).copy(buf, 24);
  return buf;
}

export interface ArpSighting {
  /** The sender's protocol address: the IP this host claims. */
  ip: string;
  mac: string;
}

/**
 * Who claims an address in a received ARP packet. Any ARP packet whose sender IP is the
 * candidate shows it in use: the reply to our probe, but also that host's own requests
 * or announcements (RFC 5227 §2.1.1, second paragraph). Undefined for anything else.
 */
export function decodeArpSender(packet: Buffer, length = packet.length): ArpSighting | undefined {
  if (length < 28) return undefined;
  if (packet.readUInt16BE(0) !== 1 || packet.readUInt16BE(2) !== ETH_P_IP || packet[4] !== 6 || packet[5] !== 4) return undefined;
  const ip = `${packet[14]}.${packet[15]}.${packet[16]}.${packet[17]}`;
  if (ip === '0.0.0.0') return undefined; // someone else's probe claims nothing
  const mac = [...packet.subarray(8, 14)].map((b) => b.toString(16).padStart(2, '0')).join(':');
  return { ip, mac };
}

/** Opens the ARP prober on the NIC; throws the reason (not Linux, no CAP_NET_RAW, no such NIC) when it cannot. */
export function openArpProber(options: ArpProberOptions): PolledAddressProber {
  return new PolledAddressProber(new ArpSocket(options.interfaceName, options.mac), options);
}

class ArpSocket implements ProbeSocket {
  readonly method = 'arp';
  private readonly c: Libc;
  private fd: number;
  private readonly ifindex: number;
  private readonly ourMac: Buffer;
  private readonly ourMacText: string;
  private readonly broadcast: Buffer;
  private readonly frame = Buffer.alloc(128);
  private readonly from = Buffer.alloc(20);
  private readonly fromLength = Buffer.alloc(4);

  constructor(interfaceName: string, mac: string) {
    if (process.platform !== 'linux') throw new Error(`the ARP check is implemented on Linux only (this is ${process.platform})`);
    this.c = loadLibc('linux');
    this.ourMac = Buffer.from(mac.replace(/[:-]/g, ''), 'hex');
    if (this.ourMac.length !== 6) throw new Error(`${interfaceName} has no Ethernet MAC address to probe from`);
    this.ourMacText = mac.toLowerCase();
    this.ifindex = this.c.if_nametoindex(interfaceName);
    if (this.ifindex === 0) throw new Error(`no network interface named ${interfaceName}`);
    this.broadcast = encodeSockaddrLl(this.ifindex, Buffer.alloc(6, 0xff));
    this.fd = this.c.socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ARP));
    if (this.fd < 0) {
      const code = this.c.lastError();
      throw new Error(
        code === 'EPERM' || code === 'EACCES' ? `ARP needs a raw socket, which needs root or CAP_NET_RAW (${code})` : `cannot open a packet socket: ${code}`,
      );
    }
    const bound = encodeSockaddrLl(this.ifindex);
    if (this.c.bind(this.fd, bound, bound.length) !== 0) {
      const code = this.c.lastError();
      this.close();
      throw new Error(`cannot tie the ARP socket to ${interfaceName}: ${code}`);
    }
  }

  send(ip: string): string | undefined {
    const packet = encodeArpProbe(this.ourMac, ip);
    return this.c.sendto(this.fd, packet, packet.length, 0, this.broadcast, this.broadcast.length) < 0 ? this.c.lastError() : undefined;
  }

  drain(claim: (ip: string, by?: string) => void): string | undefined {
    for (;;) {
      this.fromLength.writeUInt32LE(this.from.length);
      const n = this.c.recvfrom(this.fd, this.frame, this.frame.length, 0, this.from, this.fromLength);
      if (n < 0) {
        const code = this.c.lastError();
        return EAGAIN_LIKE.has(code) ? undefined : code;
      }
      // Our own probes come back as PACKET_OUTGOING; the bind keeps other NICs' frames out,
      // the index check covers frames queued between socket() and bind().
      if (this.from[10] === PACKET_OUTGOING || this.from.readInt32LE(4) !== this.ifindex) continue;
      const sighting = decodeArpSender(this.frame, n);
      if (sighting && sighting.mac !== this.ourMacText) claim(sighting.ip, sighting.mac);
    }
  }

  close(): void {
    if (this.fd >= 0) this.c.close(this.fd);
    this.fd = -1;
  }
}
