// The one binding of the C library, through koffi: the portable calls the interface-scoped
// sockets and address probes need (Linux and macOS), and the Linux calls of the data paths
// that poll their own descriptors (TFTP worker, HTTP zero-copy sender, sendmmsg batches).
//
// Why koffi: it ships prebuilt binaries for each platform inside its npm packages
// (@koromix/koffi-<os>-<arch>), so nothing is compiled at install time (no compiler or
// Python on the technician's machine), and it loads in Electron's main process as well as
// in Node (N-API, no ABI rebuild per Electron version). The alternatives were a
// node-addon-api addon of our own (a build toolchain for every target and an
// electron-rebuild step) or a packet-capture library (raw sockets, more privileges and
// our own IP/UDP framing). Only a handful of plain libc calls are needed.
import { createRequire } from 'node:module';

export type Koffi = typeof import('koffi');
type Library = ReturnType<Koffi['load']>;

// <poll.h>, <asm-generic/errno-base.h>, <asm-generic/errno.h> (Linux)
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const EINTR = 4;
export const EAGAIN = 11;
export const ENOBUFS = 105;

/** koffi itself (throws when its package or its native part does not load here). */
export function loadKoffi(): Koffi {
  return createRequire(import.meta.url)('koffi') as Koffi;
}

const libraries = new Map<string, Library>();

/**
 * The C library of `platform`: libSystem on macOS, libc.so.6 on glibc; on musl (Alpine)
 * the functions come with the process itself, which dlopen(NULL) (koffi.load(null)) exposes.
 */
export function openLibc(koffi: Koffi, platform: NodeJS.Platform): Library {
  const candidates = platform === 'darwin' ? ['/usr/lib/libSystem.B.dylib'] : ['libc.so.6', null];
  const key = candidates.join('|');
  const open = libraries.get(key);
  if (open) return open;
  let lastError: unknown;
  for (const candidate of candidates) {
    try {
      const lib = koffi.load(candidate as string);
      libraries.set(key, lib);
      return lib;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

// ----------------------------------------------------------------- portable (Linux, macOS)

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
  bind(fd: number, address: Buffer, length: number): number;
  close(fd: number): number;
  if_nametoindex(name: string): number;
  /** For main/net/arp-probe.ts's packet socket. */
  sendto(fd: number, buffer: Buffer, length: number, flags: number, address: Buffer, addressLength: number): number;
  recvfrom(fd: number, buffer: Buffer, length: number, flags: number, address: Buffer, addressLength: Buffer): number;
  /** errno of the last call, as a name (EACCES...). */
  lastError(): string;
}

let libc: Libc | undefined;

/** The portable calls; throws an explained error where koffi does not load. */
export function loadLibc(platform: NodeJS.Platform): Libc {
  if (libc) return libc;
  let koffi: Koffi;
  try {
    koffi = loadKoffi();
  } catch (error) {
    throw new Error(
      `Cannot limit sockets to one network interface: the koffi package did not load on ${platform}/${process.arch} ` +
        `(${(error as Error).message}). Reinstall Bootbench; without --interface it would answer on every network.`,
    );
  }
  const lib = openLibc(koffi, platform);
  const errnoNames = new Map(Object.entries(koffi.os.errno).map(([name, value]) => [value, name]));
  const socket = lib.func('int socket(int domain, int type, int protocol)');
  const setsockopt = lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t length)');
  const bind = lib.func('int bind(int fd, const void *address, uint32_t length)');
  const close = lib.func('int close(int fd)');
  const ifNameToIndex = lib.func('unsigned int if_nametoindex(const char *name)');
  const sendto = lib.func('long sendto(int fd, const void *buffer, unsigned long length, int flags, const void *address, uint32_t addressLength)');
  const recvfrom = lib.func('long recvfrom(int fd, void *buffer, unsigned long length, int flags, void *address, void *addressLength)');
  libc = {
    socket: (d, t, p) => socket(d, t, p),
    setsockopt: (fd, level, name, value, length) => setsockopt(fd, level, name, value, length),
    bind: (fd, address, length) => bind(fd, address, length),
    close: (fd) => close(fd),
    if_nametoindex: (name) => ifNameToIndex(name),
    sendto: (fd, buffer, length, flags, address, addressLength) => Number(sendto(fd, buffer, length, flags, address, addressLength)),
    recvfrom: (fd, buffer, length, flags, address, addressLength) => Number(recvfrom(fd, buffer, length, flags, address, addressLength)),
    lastError: () => {
      const value = koffi.errno();
      return errnoNames.get(value) ?? `errno ${value}`;
    },
  };
  return libc;
}

// ------------------------------------------------------------- Linux data paths (LP64)

export interface LinuxSyscalls {
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
   * Calls with memory passed by address (from `address`): koffi then converts plain
   * numbers instead of looking up each Buffer's memory, which the lock-step loops do once
   * per block.
   */
  recvfromAt(fd: number, buffer: number, length: number, flags: number, address: number, addressLength: number): number;
  pollAt(fds: number, count: number, timeoutMs: number): number;
  sendmmsgAt(fd: number, msgvec: number, count: number, flags: number): number;
  sendmsgAt(fd: number, msg: number, flags: number): number;
  /**
   * Where `buffer`'s bytes live, for the *At calls. Off-heap memory only: a Buffer of 64
   * bytes or less may sit on V8's heap and move; `pinnedBuffer` makes safe ones.
   */
  address(buffer: Uint8Array): number;
  eventfd(initial: number, flags: number): number;
  /**
   * sendfile(2) with the file offset passed by address (an 8-byte off_t that the kernel
   * advances; the descriptor's own position is left alone, so readers can share it).
   */
  sendfileAt(outFd: number, inFd: number, offset: number, count: number): number;
  dup(fd: number): number;
  read(fd: number, buffer: Buffer, length: number): number;
  write(fd: number, buffer: Buffer, length: number): number;
  errno(): number;
}

let linux: LinuxSyscalls | null | undefined;

/**
 * The Linux calls, or undefined where they cannot be had (not Linux x64/arm64, whose
 * constants and struct layouts the callers write; no koffi). `platform` lets tests take
 * the path of a machine without them.
 */
export function loadLinuxSyscalls(platform: NodeJS.Platform = process.platform): LinuxSyscalls | undefined {
  if (platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) return undefined;
  if (linux !== undefined) return linux ?? undefined;
  linux = null;
  try {
    const koffi = loadKoffi();
    const lib = openLibc(koffi, 'linux');
    linux = {
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
      sendmmsgAt: lib.func('int sendmmsg(int fd, intptr_t msgvec, unsigned int vlen, int flags)'),
      sendmsgAt: lib.func('long sendmsg(int fd, intptr_t msg, int flags)'),
      address: (buffer: Uint8Array) => Number(koffi.address(buffer)),
      eventfd: lib.func('int eventfd(unsigned int initial, int flags)'),
      sendfileAt: lib.func('long sendfile(int outFd, int inFd, intptr_t offset, unsigned long count)'),
      dup: lib.func('int dup(int fd)'),
      read: lib.func('long read(int fd, void *buffer, unsigned long length)'),
      write: lib.func('long write(int fd, const void *buffer, unsigned long length)'),
      errno: () => koffi.errno(),
    } as LinuxSyscalls;
  } catch {
    linux = null;
  }
  return linux ?? undefined;
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
