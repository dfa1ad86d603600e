// Bare UDP descriptors and eventfds, for threads that poll their own descriptors (the TFTP
// worker data path): Node's dgram pays a RemoteInfo object, callback machinery and libuv's
// bookkeeping per received datagram, which in lock-step TFTP is paid once per block.
//
// Linux only (constants and struct layouts below are Linux x86_64/aarch64), through the
// calls of libc.ts.
import type { LinuxSyscalls } from './libc.js';

// <asm-generic/fcntl.h>, <sys/socket.h>, <asm-generic/socket.h>, <sys/eventfd.h>
const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;

/**
 * struct sockaddr_in (Linux, 16 bytes):
 *
 *   | family u16 (host order) | port u16 (network) | addr 4 bytes | zero 8 |
 */
export function encodeSockaddr(address: string, port: number, into: Buffer = Buffer.alloc(16)): Buffer {
  const octets = address.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) throw new Error(`not an IPv4 address: ${address}`);
  into.fill(0, 0, 16);
  into.writeUInt16LE(AF_INET, 0); // LE: the targets above are little-endian
  into.writeUInt16BE(port, 2);
  for (let i = 0; i < 4; i++) into[4 + i] = octets[i];
  return into;
}

/** Non-blocking UDP socket bound to `address`:0 (a fresh TID, RFC 1350 §4); returns fd and port. */
export function openTransferDescriptor(
  sys: LinuxSyscalls,
  address: string | undefined,
  sendBufferBytes: number,
  receiveBufferBytes: number,
): { fd: number; port: number } {
  const fd = sys.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`socket() failed: errno ${sys.errno()}`);
  try {
    const value = Buffer.alloc(4);
    // The kernel caps these (net.core.wmem_max); the defaults still work, so failures are ignored.
    value.writeInt32LE(sendBufferBytes);
    sys.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, value, 4);
    value.writeInt32LE(receiveBufferBytes);
    sys.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, value, 4);
    const sockaddr = encodeSockaddr(address ?? '0.0.0.0', 0);
    if (sys.bind(fd, sockaddr, 16) !== 0) throw new Error(`bind(${address ?? '0.0.0.0'}:0) failed: errno ${sys.errno()}`);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(16);
    if (sys.getsockname(fd, sockaddr, length) !== 0) throw new Error(`getsockname failed: errno ${sys.errno()}`);
    return { fd, port: sockaddr.readUInt16BE(2) };
  } catch (err) {
    sys.close(fd);
    throw err;
  }
}

/** A non-blocking eventfd, the worker's doorbell. */
export function openEventDescriptor(sys: LinuxSyscalls): number {
  const fd = sys.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw new Error(`eventfd() failed: errno ${sys.errno()}`);
  return fd;
}
