// One system call per TFTP window: sendmmsg(2) on Linux (net/libc.ts), instead of one
// dgram.send (and one sendmsg) per block. Node's dgram has no batch send; each send costs
// a SendWrap, an address lookup tick and a syscall, which made windowed transfers
// CPU-bound.
//
// The descriptor is the dgram socket's own; libuv only watches it for reading. While
// libuv still holds queued sends (EAGAIN earlier), packets go through dgram so the order
// on the wire is kept. Whatever sendmmsg does not take (EAGAIN, ENOBUFS) is handed to
// dgram as well, which queues it.
//
// Where the Linux calls are unavailable (not Linux, unusual arch, no koffi), `createBatchSender`
// returns undefined and the server sends packet by packet.
import type { Socket } from 'node:dgram';
import { EAGAIN, ENOBUFS, loadLinuxSyscalls, type LinuxSyscalls } from '../net/index.js';

//  struct sockaddr_in (16)      struct iovec (16)          struct mmsghdr (64)
//  +0 sa_family  u16 (host)     +0 iov_base  void*         +0  msg_name       void*
//  +2 sin_port   u16 (network)  +8 iov_len   size_t        +8  msg_namelen    u32 (+4 pad)
//  +4 sin_addr   4 bytes                                   +16 msg_iov        iovec*
//  +8 zero       8 bytes                                   +24 msg_iovlen     size_t
//                                                          +32 msg_control    void*
//                                                          +40 msg_controllen size_t
//                                                          +48 msg_flags      int (+4 pad)
//                                                          +56 msg_len        u32 (+4 pad)
const SOCKADDR_SIZE = 16;
const IOVEC_SIZE = 16;
const MMSGHDR_SIZE = 64;
const AF_INET = 2;

export interface BatchSender {
  /** Queues one datagram (header + optional data). Sent by `flush`, or when the batch is full. */
  add(header: Uint8Array, data?: Uint8Array): void;
  flush(): void;
  /** UDP GSO sends made so far (diagnostics, tests) */
  readonly segmentedSends?: number;
}

/**
 * Writes a pointer-sized value (addresses fit in 53 bits on LP64 Linux user space). A
 * DataView, not Buffer.writeUInt32LE: this runs four times per datagram.
 */
function writePointer(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value >>> 0, true);
  view.setUint32(offset + 4, (value / 0x1_0000_0000) >>> 0, true);
}

function dataViewOf(buffer: Buffer): DataView {
  return new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/**
 * A batch sender for datagrams from `socket` to `address:port`, or undefined when batching
 * is not available here. `capacity` is the most datagrams per system call. `segmentation`:
 * runs of equal-size datagrams as UDP GSO sends. `unsent`: where datagrams the kernel did
 * not take go instead of dgram's send as they are (a caller that reuses its header buffers
 * copies them there).
 */
export function createBatchSender(
  socket: Socket,
  address: string,
  port: number,
  capacity: number,
  segmentation?: SegmentationOptions,
  unsent?: UnsentHandler['unsent'],
): BatchSender | undefined {
  const fd = socketDescriptor(socket);
  if (typeof fd !== 'number' || fd < 0) return undefined;
  return createDescriptorBatchSender(
    fd,
    address,
    port,
    capacity,
    {
      // While libuv still holds queued sends (EAGAIN earlier), sendmmsg would overtake them.
      ready: () => socket.getSendQueueCount() === 0,
      unsent:
        unsent ??
        ((header, data) => {
          if (data && data.length > 0) socket.send([header, data], port, address);
          else socket.send(header, port, address);
        }),
    },
    segmentation,
  );
}

export interface SegmentationOptions {
  /**
   * Send runs of datagrams of exactly this many bytes as UDP GSO (UDP_SEGMENT, Linux 4.18):
   * one trip through the stack per run instead of one per datagram. 0 or absent: off.
   */
  segmentSize?: number;
  /** Asked before each batch; false: plain sendmmsg for this one. */
  enabled?: () => boolean;
}

export interface UnsentHandler {
  /** May the batch go out now? (false: everything goes to `unsent`, in order) */
  ready?: () => boolean;
  /** A datagram sendmmsg did not take (EAGAIN, ENOBUFS, or not ready). */
  unsent: (header: Uint8Array, data: Uint8Array | undefined) => void;
}

/**
 * The same on a bare descriptor (the worker data path owns its sockets outside dgram).
 * Undefined when the Linux calls are unavailable, or `address` is not IPv4.
 */
export function createDescriptorBatchSender(
  fd: number,
  address: string,
  port: number,
  capacity: number,
  handler: UnsentHandler,
  segmentation?: SegmentationOptions,
): BatchSender | undefined {
  const sys = loadLinuxSyscalls();
  if (!sys) return undefined;
  const octets = address.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !(o >= 0 && o <= 255))) return undefined;

  // One block of memory per sender: the address, 2 iovecs and 1 mmsghdr per datagram.
  // At least 65 bytes: V8 keeps smaller typed arrays on its heap, where they move.
  const memory = Buffer.alloc(Math.max(65, SOCKADDR_SIZE + capacity * (2 * IOVEC_SIZE + MMSGHDR_SIZE)));
  const view = dataViewOf(memory);
  const base = sys.address(memory);
  const iovOffset = SOCKADDR_SIZE;
  const msgOffset = SOCKADDR_SIZE + capacity * 2 * IOVEC_SIZE;
  memory.writeUInt16LE(AF_INET, 0);
  memory.writeUInt16BE(port, 2);
  for (let i = 0; i < 4; i++) memory[4 + i] = octets[i];
  for (let i = 0; i < capacity; i++) {
    const m = msgOffset + i * MMSGHDR_SIZE;
    writePointer(view, m, base);
    memory.writeUInt32LE(SOCKADDR_SIZE, m + 8);
    writePointer(view, m + 16, base + iovOffset + i * 2 * IOVEC_SIZE);
  }
  const msgvecAt = base + msgOffset;
  // Keep the views alive until the call (their memory must not be collected mid-batch).
  const headers: Uint8Array[] = new Array(capacity);
  const datas: (Uint8Array | undefined)[] = new Array(capacity);
  let count = 0;

  const segmentSize = segmentation?.segmentSize ?? 0;
  let segmenting = segmentSize > 0 && segmentSize * 2 <= MAX_UDP_PAYLOAD;
  let segmentedSends = 0;
  const maxSegments = segmenting ? Math.min(MAX_GSO_SEGMENTS, Math.floor(MAX_UDP_PAYLOAD / segmentSize)) : 0;
  // msghdr (56) + cmsghdr with a u16 (CMSG_SPACE(2) = 24) for UDP_SEGMENT sends.
  //   struct msghdr: +0 name, +8 namelen, +16 iov, +24 iovlen, +32 control, +40 controllen, +48 flags
  //   struct cmsghdr: +0 len (size_t), +8 level int, +12 type int, +16 data
  const segmented = segmenting ? Buffer.alloc(MSGHDR_SIZE + CMSG_U16_SPACE) : EMPTY_BUFFER;
  const segmentedView = dataViewOf(segmented);
  const segmentedAt = segmenting ? sys.address(segmented) : 0;
  if (segmenting) {
    writePointer(segmentedView, 0, base);
    segmented.writeUInt32LE(SOCKADDR_SIZE, 8);
    writePointer(segmentedView, 32, segmentedAt + MSGHDR_SIZE);
    writePointer(segmentedView, 40, CMSG_U16_SPACE);
    writePointer(segmentedView, MSGHDR_SIZE, CMSG_U16_LEN);
    segmented.writeInt32LE(SOL_UDP, MSGHDR_SIZE + 8);
    segmented.writeInt32LE(UDP_SEGMENT, MSGHDR_SIZE + 12);
    segmented.writeUInt16LE(segmentSize, MSGHDR_SIZE + 16);
  }

  /**
   * Sends runs of full-size datagrams (the last of a run may be shorter) as one UDP GSO
   * super-datagram each; the kernel cuts it into the same datagrams. Returns how many
   * datagrams, from the start of the batch, went out this way.
   */
  const sendSegmented = (): number => {
    let first = 0;
    while (count - first >= 2) {
      let n = 0;
      let iovecs = 0;
      while (first + n < count && n < maxSegments) {
        const data = datas[first + n];
        const dataLength = data ? data.length : 0;
        const length = headers[first + n].length + dataLength;
        if (length > segmentSize) break;
        n++;
        iovecs += dataLength > 0 ? 2 : 1;
        if (length < segmentSize || dataLength === 0) break; // a short one ends the run
      }
      if (n < 2) break;
      writePointer(segmentedView, 16, base + iovOffset + first * 2 * IOVEC_SIZE);
      writePointer(segmentedView, 24, iovecs);
      if (sys.sendmsgAt(fd, segmentedAt, 0) < 0) {
        const errno = sys.errno();
        // EIO/EINVAL/ENOPROTOOPT: no UDP GSO here (old kernel, no checksum offload on the
        // route's device); sendmmsg from now on. EAGAIN/ENOBUFS: the caller's path handles it.
        if (errno !== EAGAIN && errno !== ENOBUFS) segmenting = false;
        break;
      }
      first += n;
      segmentedSends++;
    }
    return first;
  };

  const flush = (): void => {
    if (count === 0) return;
    let sent = 0;
    if (!handler.ready || handler.ready()) {
      if (segmenting && count >= 2 && (!segmentation!.enabled || segmentation!.enabled())) sent = sendSegmented();
      if (sent < count) {
        const result = sys.sendmmsgAt(fd, msgvecAt + sent * MMSGHDR_SIZE, count - sent, 0);
        if (result > 0) sent += result;
      }
    }
    for (let i = sent; i < count; i++) handler.unsent(headers[i], datas[i]);
    for (let i = 0; i < count; i++) {
      headers[i] = EMPTY;
      datas[i] = undefined;
    }
    count = 0;
  };

  return {
    add(header, data) {
      const iov = iovOffset + count * 2 * IOVEC_SIZE;
      writePointer(view, iov, addressOf(sys, header));
      writePointer(view, iov + 8, header.length);
      const hasData = data !== undefined && data.length > 0;
      if (hasData) {
        writePointer(view, iov + IOVEC_SIZE, addressOf(sys, data));
        writePointer(view, iov + IOVEC_SIZE + 8, data.length);
      }
      view.setUint32(msgOffset + count * MMSGHDR_SIZE + 24, hasData ? 2 : 1, true);
      headers[count] = header;
      datas[count] = data;
      count++;
      if (count === capacity) flush();
    },
    flush,
    get segmentedSends() {
      return segmentedSends;
    },
  };
}

const EMPTY = new Uint8Array(0);
const EMPTY_BUFFER = Buffer.alloc(0);
const MSGHDR_SIZE = 56;
const CMSG_U16_LEN = 18;
const CMSG_U16_SPACE = 24;
// <netinet/in.h> IPPROTO_UDP, <linux/udp.h> UDP_SEGMENT, UDP_MAX_SEGMENTS; errno values
const SOL_UDP = 17;
const UDP_SEGMENT = 103;
const MAX_GSO_SEGMENTS = 64;
/** IPv4: 65535 - 20 (IP) - 8 (UDP) */
const MAX_UDP_PAYLOAD = 65507;

/**
 * Start address of each ArrayBuffer a datagram was sent from. An address costs a native
 * call and a BigInt per datagram; a transfer sends from the same few read-ahead buffers
 * over and over, and a backing store never moves (reading `.buffer` moves a small on-heap
 * typed array off the heap for good first).
 */
const bufferAddresses = new WeakMap<ArrayBufferLike, number>();

function addressOf(sys: LinuxSyscalls, view: Uint8Array): number {
  const buffer = view.buffer;
  let base = bufferAddresses.get(buffer);
  if (base === undefined) {
    base = sys.address(new Uint8Array(buffer));
    bufferAddresses.set(buffer, base);
  }
  return base + view.byteOffset;
}

/**
 * The socket's file descriptor. dgram keeps its handle under an internal symbol; the
 * public-looking `_handle` getter would print a deprecation warning (DEP0112).
 */
function socketDescriptor(socket: Socket): number | undefined {
  const record = socket as unknown as Record<symbol, { handle?: { fd?: number } } | undefined>;
  const stateKey = Object.getOwnPropertySymbols(socket).find((key) => key.description === 'state symbol');
  const fd = stateKey ? record[stateKey]?.handle?.fd : undefined;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
