// The address check by ICMP echo (RFC 792), what dnsmasq and ISC dhcpd do: the fallback
// where ARP cannot be had. macOS has no packet sockets for us, and a Linux host without
// CAP_NET_RAW may still ping through an unprivileged "ping socket" (SOCK_DGRAM,
// IPPROTO_ICMP; allowed by net.ipv4.ping_group_range, which systemd opens to all groups).
// Weaker than ARP: a host whose firewall drops pings (Windows by default) looks free.
//
// The socket is tied to the NIC like the DHCP sockets (SO_BINDTODEVICE / IP_BOUND_IF,
// main/net/scoped-udp.ts), so the echo leaves and is heard on the chosen NIC only.
import type { Clock } from '../core/index.js';
import { loadLibc, type Libc } from './libc.js';
import { encodeSockaddrIn, tieToDevice } from './scoped-udp.js';
import { PolledAddressProber, type ProbeSocket } from './address-probe.js';
import { EAGAIN_LIKE, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK } from './arp-probe.js';

const AF_INET = 2;
const IPPROTO_ICMP = 1;
const DARWIN_MSG_DONTWAIT = 0x80;
const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;
/**
 * Errors a ping socket reports for an earlier echo that found nobody (the neighbour
 * never answered ARP): that is "free", not a broken socket.
 */
const NOBODY_THERE = new Set(['EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ECONNREFUSED']);
const PAYLOAD = Buffer.from('bootbench address check', 'latin1');

/**
 * ICMP echo request (RFC 792):
 *
 *   0      1      2             4             6             8
 *   | type | code | checksum    | identifier  | sequence    | data ...
 *   | 8    | 0    | RFC 1071    |             |             |
 *
 * Linux ping sockets put their own identifier and checksum in; macOS sends what it is given.
 */
export function encodeEchoRequest(identifier: number, sequence: number, payload: Buffer = PAYLOAD): Buffer {
  const buf = Buffer.alloc(8 + payload.length);
  buf[0] = ICMP_ECHO_REQUEST;
  buf.writeUInt16BE(identifier & 0xffff, 4);
  buf.writeUInt16BE(sequence & 0xffff, 6);
  payload.copy(buf, 8);
  buf.writeUInt16BE(internetChecksum(buf), 2);
  return buf;
}

/** RFC 1071: ones' complement of the ones' complement sum of 16-bit words. */
export function internetChecksum(data: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < data.length; i += 2) sum += data.readUInt16BE(i);
  if (data.length % 2) sum += data[data.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * Whether a datagram read from the ICMP socket is an echo reply. Linux hands over the ICMP
 * message alone; macOS puts the IPv4 header in front (version nibble 4, which no ICMP type
 * we read starts with), so it is skipped by its own length.
 */
export function isEchoReply(datagram: Buffer, length = datagram.length): boolean {
  let offset = 0;
  if (length >= 20 && datagram[0] >> 4 === 4) offset = (datagram[0] & 0x0f) * 4;
  return length - offset >= 8 && datagram[offset] === ICMP_ECHO_REPLY;
}

export interface IcmpProberOptions {
  interfaceName: string;
  timeoutMs?: number;
  clock?: Clock;
  platform?: NodeJS.Platform;
}

/** Opens the ICMP prober on the NIC; throws the reason (ping sockets not allowed, no such NIC) when it cannot. */
export function openIcmpProber(options: IcmpProberOptions): PolledAddressProber {
  return new PolledAddressProber(new IcmpSocket(options.interfaceName, options.platform ?? process.platform), options);
}

class IcmpSocket implements ProbeSocket {
  readonly method = 'icmp';
  private readonly c: Libc;
  private fd: number;
  private sequence = 0;
  private readonly identifier = process.pid & 0xffff;
  private readonly buffer = Buffer.alloc(1500);
  private readonly from = Buffer.alloc(16);
  private readonly fromLength = Buffer.alloc(4);
  private readonly recvFlags: number;

  constructor(
    interfaceName: string,
    private readonly platform: NodeJS.Platform,
  ) {
    if (platform !== 'linux' && platform !== 'darwin') throw new Error(`the ICMP check is implemented on Linux and macOS only (this is ${platform})`);
    this.c = loadLibc(platform);
    // macOS has no SOCK_NONBLOCK: each read asks not to wait instead.
    this.fd = this.c.socket(AF_INET, SOCK_DGRAM | (platform === 'linux' ? SOCK_NONBLOCK | SOCK_CLOEXEC : 0), IPPROTO_ICMP);
    this.recvFlags = platform === 'linux' ? 0 : DARWIN_MSG_DONTWAIT;
    if (this.fd < 0) {
      const code = this.c.lastError();
      throw new Error(
        code === 'EACCES' || code === 'EPERM'
          ? `ping sockets are not allowed for this user (net.ipv4.ping_group_range; ${code})`
          : `cannot open an ICMP socket: ${code}`,
      );
    }
    try {
      tieToDevice(this.c, this.fd, interfaceName, platform);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  send(ip: string): string | undefined {
    const packet = encodeEchoRequest(this.identifier, ++this.sequence);
    const to = encodeSockaddrIn(ip, 0, this.platform);
    if (this.c.sendto(this.fd, packet, packet.length, 0, to, to.length) >= 0) return undefined;
    const code = this.c.lastError();
    return NOBODY_THERE.has(code) ? undefined : code;
  }

  drain(claim: (ip: string) => void): string | undefined {
    for (;;) {
      this.fromLength.writeUInt32LE(this.from.length);
      const n = this.c.recvfrom(this.fd, this.buffer, this.buffer.length, this.recvFlags, this.from, this.fromLength);
      if (n < 0) {
        const code = this.c.lastError();
        if (NOBODY_THERE.has(code)) continue;
        return EAGAIN_LIKE.has(code) ? undefined : code;
      }
      // sockaddr_in: the address sits at bytes 4-7 in both the Linux and the BSD layout.
      if (isEchoReply(this.buffer, n)) claim(`${this.from[4]}.${this.from[5]}.${this.from[6]}.${this.from[7]}`);
    }
  }

  close(): void {
    if (this.fd >= 0) this.c.close(this.fd);
    this.fd = -1;
  }
}
