// Interface-scoped UDP sockets: receive only what arrived on the chosen NIC, send only
// through it. DHCP clients have no address yet, so they broadcast to 255.255.255.255; a
// socket on 0.0.0.0:67 would hear (and answer) every network the host is on, the office
// one included. Node's dgram cannot tie a socket to a device (no SO_BINDTODEVICE, no
// IP_PKTINFO), see PXE-NOTES "Sockets on a machine with several network interfaces".
//
// Linux: the socket is made outside dgram (socket, setsockopt SO_BINDTODEVICE, bind)
// and its descriptor handed to Node with `dgram.createSocket('udp4').bind({ fd })`, so
// the rest of the program sees an ordinary dgram.Socket.
// macOS: the same with IP_BOUND_IF (the interface index). Written from the man pages
// and xnu headers; NOT tested here (no macOS machine in this project's CI yet).
// Windows: a socket bound to the NIC's own IPv4 address receives the broadcasts that
// arrive on that NIC and sends through it, which plain dgram can do.
//
// The libc calls are libc.ts's.
import dgram from 'node:dgram';
import os from 'node:os';
import type { UdpSocketFactory, UdpSocketOptions } from './udp-socket-factory.js';
import { explainBindFailure, explainDeviceBindFailure, explainNodeBindError } from './bind-errors.js';
import { listInterfaces } from './interfaces.js';
import { loadLibc, type Libc } from './libc.js';

export interface ScopedUdpSocketFactoryOptions {
  /** Defaults to process.platform; lets tests exercise the plain path. */
  platform?: NodeJS.Platform;
}

/**
 * SO_REUSEADDR is NOT set unless a caller asks for it (`reuseAddress`). With it, Linux
 * lets two UDP sockets share 0.0.0.0:67 when both set it: we would start silently beside a
 * running dnsmasq and the kernel would hand each DHCP broadcast to one of us at random.
 * Without it, bind() fails with EADDRINUSE and the user is told who holds the port. UDP has
 * no TIME_WAIT, so a quick restart does not need the option either.
 * Two sockets on the same port that are each tied to a different device do not
 * conflict on Linux, so Bootbench can still run beside a DHCP server that is itself
 * tied to another NIC. (dnsmasq, even with --interface, listens on 0.0.0.0:67 untied and
 * so blocks every NIC: test/integration/net-port-in-use.test.ts.)
 */
export function createScopedUdpSocketFactory(factoryOptions: ScopedUdpSocketFactoryOptions = {}): UdpSocketFactory {
  const platform = factoryOptions.platform ?? process.platform;
  return async (options: UdpSocketOptions) => {
    if (options.interfaceName === undefined) return openPlainSocket(options);
    switch (platform) {
      case 'linux':
      case 'darwin':
        return openDeviceBoundSocket(options, options.interfaceName, platform);
      case 'win32':
        return openAddressBoundSocket(options, options.interfaceName);
      default:
        throw new Error(`Interface-scoped sockets are not implemented on ${platform}; run without --interface only on an isolated network.`);
    }
  };
}

/** Plain dgram socket; failures explained the same way as scoped ones. */
export async function openPlainSocket(options: UdpSocketOptions): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: options.reuseAddress === true });
  try {
    await bindSocket(socket, { port: options.port, address: options.address ?? '0.0.0.0', exclusive: true });
  } catch (error) {
    socket.close();
    throw explainNodeBindError(error, 'udp', options.port, options.address);
  }
  if (options.broadcast) socket.setBroadcast(true);
  return socket;
}

async function openAddressBoundSocket(options: UdpSocketOptions, interfaceName: string): Promise<dgram.Socket> {
  const nic = listInterfaces().find((n) => n.name === interfaceName);
  if (!nic) throw explainDeviceBindFailure(interfaceName, 'ENODEV');
  const address = options.address && options.address !== '0.0.0.0' ? options.address : nic.ipv4[0]?.address;
  if (!address) throw new Error(`Interface ${interfaceName} has no IPv4 address; Bootbench binds to it to stay on that NIC.`);
  return openPlainSocket({ ...options, address });
}

// Constants from <sys/socket.h>, <netinet/in.h>, <asm-generic/socket.h> (Linux: x86,
// arm, arm64, riscv; mips/sparc/alpha differ and are not targets) and xnu's headers.
const AF_INET = 2;
const SOCK_DGRAM = 2;
const IPPROTO_IP = 0;
const LINUX = { SOL_SOCKET: 1, SO_REUSEADDR: 2, SO_BROADCAST: 6, SO_BINDTODEVICE: 25, SOCK_CLOEXEC: 0o2000000 };
const DARWIN = { SOL_SOCKET: 0xffff, SO_REUSEADDR: 0x0004, SO_BROADCAST: 0x0020, IP_BOUND_IF: 25 };

/**
 * struct sockaddr_in (16 bytes):
 *
 *   Linux:  | family u16 (host order) | port u16 (network) | addr 4 bytes | zero 8 |
 *   BSD:    | len u8 = 16 | family u8 | port u16 (network) | addr 4 bytes | zero 8 |
 */
export function encodeSockaddrIn(address: string, port: number, platform: NodeJS.Platform): Buffer {
  const octets = address.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) {
    throw new Error(`not an IPv4 address: ${address}`);
  }
  const buf = Buffer.alloc(16);
  if (platform === 'darwin') {
    buf[0] = 16;
    buf[1] = AF_INET;
  } else if (os.endianness() === 'LE') {
    buf.writeUInt16LE(AF_INET, 0);
  } else {
    buf.writeUInt16BE(AF_INET, 0);
  }
  buf.writeUInt16BE(port, 2);
  Buffer.from(octets).copy(buf, 4);
  return buf;
}

function intOption(value: number): Buffer {
  const buf = Buffer.alloc(4);
  if (os.endianness() === 'LE') buf.writeInt32LE(value);
  else buf.writeInt32BE(value);
  return buf;
}

/**
 * Ties a socket to the NIC: SO_BINDTODEVICE on Linux, IP_BOUND_IF on macOS. Also used for
 * the ICMP socket of the address check (main/net/icmp-probe.ts). Throws the explained error.
 */
export function tieToDevice(c: Libc, fd: number, interfaceName: string, platform: 'linux' | 'darwin'): void {
  let ok: boolean;
  if (platform === 'linux') {
    // The kernel wants the name NUL-terminated within IFNAMSIZ (16).
    const name = Buffer.from(`${interfaceName}\0`, 'latin1');
    ok = c.setsockopt(fd, LINUX.SOL_SOCKET, LINUX.SO_BINDTODEVICE, name, name.length) === 0;
  } else {
    const index = c.if_nametoindex(interfaceName);
    if (index === 0) throw explainDeviceBindFailure(interfaceName, 'ENXIO', platform);
    ok = c.setsockopt(fd, IPPROTO_IP, DARWIN.IP_BOUND_IF, intOption(index), 4) === 0;
  }
  if (!ok) throw explainDeviceBindFailure(interfaceName, c.lastError(), platform);
}

async function openDeviceBoundSocket(options: UdpSocketOptions, interfaceName: string, platform: 'linux' | 'darwin'): Promise<dgram.Socket> {
  const c = loadLibc(platform);
  const consts = platform === 'linux' ? LINUX : DARWIN;
  const address = options.address ?? '0.0.0.0';
  const sockaddr = encodeSockaddrIn(address, options.port, platform);

  // macOS has no SOCK_CLOEXEC; the descriptor is handed to Node right away anyway.
  const fd = c.socket(AF_INET, SOCK_DGRAM | (platform === 'linux' ? LINUX.SOCK_CLOEXEC : 0), 0);
  if (fd < 0) throw new Error(`Cannot create a UDP socket: ${c.lastError()}`);
  let handedToNode = false;
  try {
    const set = (level: number, name: number, value: Buffer, what: string) => {
      if (c.setsockopt(fd, level, name, value, value.length) !== 0) {
        const code = c.lastError();
        throw new Error(`setsockopt ${what} failed: ${code}`);
      }
    };
    if (options.reuseAddress) set(consts.SOL_SOCKET, consts.SO_REUSEADDR, intOption(1), 'SO_REUSEADDR');
    if (options.broadcast) set(consts.SOL_SOCKET, consts.SO_BROADCAST, intOption(1), 'SO_BROADCAST');
    tieToDevice(c, fd, interfaceName, platform);
    if (c.bind(fd, sockaddr, sockaddr.length) !== 0) {
      throw explainBindFailure({ protocol: 'udp', port: options.port, address, interfaceName, code: c.lastError(), platform });
    }
    const socket = dgram.createSocket('udp4');
    handedToNode = true; // from here on, closing the dgram socket closes fd
    try {
      await bindSocket(socket, { fd });
    } catch (error) {
      socket.close();
      throw error;
    }
    return socket;
  } finally {
    if (!handedToNode) c.close(fd);
  }
}

function bindSocket(socket: dgram.Socket, options: dgram.BindOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      socket.off('listening', onListening);
      reject(error);
    };
    const onListening = () => {
      socket.off('error', onError);
      resolve();
    };
    socket.once('error', onError);
    socket.once('listening', onListening);
    socket.bind(options);
  });
}
