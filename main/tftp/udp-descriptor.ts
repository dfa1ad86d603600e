// Bare UDP descriptors and poll(2) through koffi, for the TFTP worker data path
// (worker-data-path.ts). Node's dgram costs about 10 us of CPU per received datagram
// (RemoteInfo object, callback machinery, libuv's recvmmsg bookkeeping); in lock-step TFTP
// that is paid once per block and was most of the server's time (issue 8). A worker
// thread that polls its transfers' descriptors itself pays a syscall and a koffi call.
//
// Linux only (constants and struct layouts below are Linux x86_64/aarch64); elsewhere
// `loadUdpSyscalls` returns undefined and the server keeps its dgram path.
import { createRequire } from 'node:module';

type Koffi = typeof import('koffi');

// <asm-generic/fcntl.h>, <sys/socket.h>, <asm-generic/socket.h>, <poll.h>, <asm-generic/errno-base.h>
const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const EAGAIN = 11;
export const EINTR = 4;

export interface UdpSyscalls {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
  bind(fd: number, address: Buffer, length: number): number;
  getsockname(fd: number, address: Buffer, length: Buffer): number;
  close(fd: number): number;
  /** recvfrom(2); `address` 16 bytes, `addressLength` a 4-byte in/out length. */
  recvfrom(fd: number, buffer: Buffer, length: number, flags: number, address: Buffer, addressLength: Buffer): number;
  sendto(fd: number, buffer: Uint8Array, length: number, flags: number, address: Buffer, addressLength: number): number;
  /** `fds`: an array of struct pollfd (8 bytes each). */
  poll(fds: Buffer, count: number, timeoutMs: number): number;
  /**
   * The same two calls with memory passed by address (from `address`): koffi then converts
   * plain numbers instead of looking up each Buffer's memory, which the worker's lock-step
   * loop does once per block.
   */
  recvfromAt(fd: number, buffer: number, length: number, flags: number, address: number, addressLength: number): number;
  pollAt(fds: number, count: number, timeoutMs: number): number;
  /**
   * Where `buffer`'s bytes live, for the *At calls. Off-heap memory only: a Buffer of 64
   * bytes or less may sit on V8's heap and move; `pinnedBuffer` makes safe ones.
   */
  address(buffer: Uint8Array): number;
  eventfd(initial: number, flags: number): number;
  /**
   * sendfile(2) with the file offset passed by address (an 8-byte off_t that the kernel
   * advances; the descriptor's own position is left alone, so readers can share it). The
   * HTTP server's zero-copy path uses it with `dup`.
   */
  sendfileAt(outFd: number, inFd: number, offset: number, count: number): number;
  dup(fd: number): number;
  read(fd: number, buffer: Buffer, length: number): number;
  write(fd: number, buffer: Buffer, length: number): number;
  errno(): number;
}

let cached: UdpSyscalls | null | undefined;

/** libc through koffi (throws when koffi or libc cannot be loaded; callers fall back). */
export function openLibc(): ReturnType<Koffi['load']> {
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  try {
    return koffi.load('libc.so.6');
  } catch {
    return koffi.load(null as unknown as string); // musl: the calls come with the process
  }
}

/**
 * The libc calls, or undefined where they cannot be had (not Linux x64/arm64, no koffi).
 * `platform` lets tests take the path of a machine without them.
 */
export function loadUdpSyscalls(platform: NodeJS.Platform = process.platform): UdpSyscalls | undefined {
  if (platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) return undefined;
  if (cached !== undefined) return cached ?? undefined;
  cached = null;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as Koffi;
    const lib = openLibc();
    cached = {
      socket: lib.func('int socket(int domain, int type, int protocol)'),
      setsockopt: lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t length)'),
      bind: lib.func('int bind(int fd, const void *address, uint32_t length)'),
      getsockname: lib.func('int getsockname(int fd, void *address, void *length)'),
      close: lib.func('int close(int fd)'),
      recvfrom: lib.func('long recvfrom(int fd, void *buffer, unsigned long length, int flags, void *address, void *addressLength)'),
      sendto: lib.func('long sendto(int fd, const void *buffer, unsigned long length, int flags, const void *address, uint32_t addressLength)'),
      poll: lib.func('int poll(void *fds, unsigned long count, int timeout)'),
      recvfromAt: lib.func('long recvfrom(int fd, intptr_t buffer, unsigned long length, int flags, intptr_t address, intptr_t addressLength)'),
      pollAt: lib.func('int poll(intptr_t fds, unsigned long count, int timeout)'),
      address: (buffer: Uint8Array) => Number(koffi.address(buffer)),
      eventfd: lib.func('int eventfd(unsigned int initial, int flags)'),
      sendfileAt: lib.func('long sendfile(int outFd, int inFd, intptr_t offset, unsigned long count)'),
      dup: lib.func('int dup(int fd)'),
      read: lib.func('long read(int fd, void *buffer, unsigned long length)'),
      write: lib.func('long write(int fd, const void *buffer, unsigned long length)'),
      errno: () => koffi.errno(),
    } as UdpSyscalls;
  } catch {
    cached = null;
  }
  return cached ?? undefined;
}

/**
 * A zeroed Buffer whose memory never moves, for calls that take addresses: V8 may keep a
 * small typed array's bytes on its heap, where the garbage collector moves them; reading
 * `.buffer` moves them off the heap for good.
 */
export function pinnedBuffer(size: number): Buffer {
  const buffer = Buffer.alloc(Math.max(size, 128));
  void buffer.buffer;
  return buffer.subarray(0, size);
}

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
export function openTransferDescriptor(sys: UdpSyscalls, address: string | undefined, sendBufferBytes: number, receiveBufferBytes: number): { fd: number; port: number } {
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
export function openEventDescriptor(sys: UdpSyscalls): number {
  const fd = sys.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw new Error(`eventfd() failed: errno ${sys.errno()}`);
  return fd;
}
