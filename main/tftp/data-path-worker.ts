// The worker thread of the TFTP worker data path (see worker-data-path.ts for why). One
// loop serves every transfer handed to it: poll(2) over the transfers' descriptors and a
// doorbell eventfd, recvfrom the ACK, ReadTransfer decides, sendmmsg puts the window on
// the wire, file blocks come from pread (fs.readSync) into the transfer's read-ahead
// chunks. Nothing here runs per packet on Node's event loop.
//
// While at least one transfer runs the thread stays in this loop; commands from the main
// thread (start, abort) are taken with receiveMessageOnPort when the doorbell rings. With
// no transfer left it returns to its event loop and waits for the next 'message'.
import { readSync } from 'node:fs';
import { setPriority } from 'node:os';
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Clock, TimerHandle } from '../core/index.js';
import { createDescriptorBatchSender, type BatchSender } from './batch-send.js';
import { dispatchTransferDatagram, UNKNOWN_TID_ERROR } from './data-path.js';
import { SPIN_BUDGET_MS, SpinCredit } from './spin-wait.js';
import { ReadTransfer } from './transfer.js';
import { EAGAIN, EINTR, loadLinuxSyscalls, pinnedBuffer, POLLIN, POLLOUT, type LinuxSyscalls, encodeSockaddr } from '../net/index.js';
import type { DataPathCommand, DataPathEvent, WorkerTransferSpec } from './worker-data-path.js';

/** Longest single poll(2): bounds how late a terminate() from the main thread takes effect. */
const MAX_POLL_MS = 100;
const RECEIVE_BYTES = 2048;
/** Most datagrams read from one transfer per poll(2): the others, timers and commands wait no longer. */
const RECEIVE_BURST = 16;
/** Largest datagram sent one by one when sendmmsg did not take it: 4 + the largest blksize. */
const SCRATCH_BYTES = 4 + 65464;

interface LoopTimer {
  at: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * Timers run by the poll loop; `now` as systemClock (Date.now) so RTT figures match the
 * dgram path. `now` is read once per datagram received (`refresh`), not on every call: a
 * lock-step block asked for it five times, and the value cannot move much within one
 * pass of the loop.
 */
class PollLoopClock implements Clock {
  /** about one per transfer: a plain array, scanned without iterator objects */
  private timers: LoopTimer[] = [];
  private current = Date.now();

  now(): number {
    return this.current;
  }

  refresh(): number {
    this.current = Date.now();
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: LoopTimer = { at: this.current + Math.max(0, ms), fn, cancelled: false };
    this.timers.push(timer);
    return { id: timer };
  }

  clearTimeout(handle: TimerHandle): void {
    const timer = handle.id as LoopTimer;
    timer.cancelled = true;
    const i = this.timers.indexOf(timer);
    if (i >= 0) this.timers.splice(i, 1);
  }

  /** ms until the earliest timer (0 if due), or undefined when none is set. */
  untilNext(now: number): number | undefined {
    const timers = this.timers;
    if (timers.length === 0) return undefined;
    let earliest = timers[0].at;
    for (let i = 1; i < timers.length; i++) if (timers[i].at < earliest) earliest = timers[i].at;
    return Math.max(0, earliest - now);
  }

  runDue(now: number): void {
    const timers = this.timers;
    let due = false;
    for (let i = 0; i < timers.length; i++) if (timers[i].at <= now) due = true;
    if (!due) return;
    // Callbacks set and clear timers: take the due ones out first, and skip any that an
    // earlier callback cleared.
    this.timers = timers.filter((t) => t.at > now);
    for (const t of timers) {
      if (t.at > now || t.cancelled) continue;
      t.cancelled = true;
      t.fn();
    }
  }
}

interface LoopTransfer {
  id: number;
  fd: number;
  clientPort: number;
  /** client IPv4 as a 32-bit number, compared with each datagram's source */
  clientAddress: number;
  clientSockaddr: Buffer;
  transfer: ReadTransfer;
  sender: BatchSender;
  ended: boolean;
  junkLogged: boolean;
  sendFailureLogged: boolean;
  /** Whether busy waiting has paid off lately for this client (see `spinForNext`). */
  spin: SpinCredit;
  spinBudgetMs: number;
}

const { port, doorbellFd } = workerData as { port: MessagePort; doorbellFd: number };

// Bulk transfers yield the CPU to the main thread, which answers DHCP and the boot server:
// a PC waiting for its offer must not queue behind a bench of downloads. On Linux the nice value belongs to the calling thread, so this
// lowers only this worker; elsewhere it may lower the process or fail, so it is Linux-only.
if (process.platform === 'linux') {
  try {
    setPriority(10);
  } catch {
    // Not allowed here: transfers simply keep the normal priority.
  }
}
const sys = loadLinuxSyscalls();
const clock = new PollLoopClock();
const transfers = new Map<number, LoopTransfer>();
const toClose: number[] = [];
// recvfrom and poll take these by address (LinuxSyscalls.recvfromAt/pollAt): memory that never moves.
const received = pinnedBuffer(RECEIVE_BYTES);
const from = pinnedBuffer(16);
const fromLength = pinnedBuffer(4);
const [receivedAt, fromAt, fromLengthAt] = sys ? [sys.address(received), sys.address(from), sys.address(fromLength)] : [0, 0, 0];
const scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
const doorbellValue = Buffer.alloc(8);
let pollSet = pinnedBuffer(8 * 16);
let pollSetAt = sys ? sys.address(pollSet) : 0;
let polled: LoopTransfer[] = [];
let pollSetStale = true;

function post(event: DataPathEvent): void {
  port.postMessage(event);
}

function start(spec: WorkerTransferSpec, syscalls: LinuxSyscalls): void {
  const octets = spec.ip.split('.').map(Number);
  const entry: LoopTransfer = {
    id: spec.id,
    fd: spec.fd,
    clientPort: spec.port,
    clientAddress: ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0,
    clientSockaddr: encodeSockaddr(spec.ip, spec.port),
    transfer: undefined as unknown as ReadTransfer,
    sender: undefined as unknown as BatchSender,
    ended: false,
    junkLogged: false,
    sendFailureLogged: false,
    spin: new SpinCredit(),
    spinBudgetMs: spec.busyWaitMs ?? SPIN_BUDGET_MS,
  };
  const sender = createDescriptorBatchSender(
    spec.fd,
    spec.ip,
    spec.port,
    Math.min(64, spec.negotiated.windowsize),
    { unsent: (header, data) => sendSingly(entry, header, data, syscalls) },
    // A window of full blocks is one GSO send: the send path's per-datagram cost was most
    // of the CPU of windowed transfers. The kernel cuts the run into datagrams before a
    // NIC, but a packet socket on the path (a user-space bridge or forwarder) sees the
    // whole run and may drop it: after the first retransmission the transfer sends
    // datagram by datagram.
    { segmentSize: spec.segmentation === false ? 0 : 4 + spec.negotiated.blksize, enabled: () => entry.transfer.retransmits === 0 },
  );
  if (!sender) throw new Error('sendmmsg is not available in the worker');
  entry.sender = sender;
  const fileFd = spec.fileFd;
  entry.transfer = new ReadTransfer({
    source: {
      size: spec.size,
      read(target, targetOffset, length, position) {
        let got = 0;
        while (got < length) {
          const n = readSync(fileFd, target, targetOffset + got, length - got, position + got);
          if (n === 0) break;
          got += n;
        }
        return got;
      },
    },
    negotiated: spec.negotiated,
    send: sender.add,
    flush: sender.flush,
    clock,
    // sendmmsg copies every datagram into the kernel before it returns.
    sendQueueLength: () => 0,
    onEnd: (result) => {
      entry.ended = true;
      transfers.delete(entry.id);
      toClose.push(entry.fd);
      pollSetStale = true;
      post({ type: 'end', id: entry.id, result });
    },
    onProgress: (progress) => post({ type: 'progress', id: entry.id, progress }),
    progressIntervalMs: spec.progressIntervalMs,
    retransmit: spec.retransmit,
    readAheadBytes: spec.readAheadBytes,
  });
  transfers.set(entry.id, entry);
  pollSetStale = true;
  post({ type: 'started', id: entry.id });
  entry.transfer.start();
}

/**
 * A datagram sendmmsg did not take (the socket buffer was full): wait briefly for room,
 * then try once more; otherwise it is lost and the retransmit timer recovers it.
 */
function sendSingly(entry: LoopTransfer, header: Uint8Array, data: Uint8Array | undefined, syscalls: LinuxSyscalls): void {
  let length = header.length;
  scratch.set(header, 0);
  if (data) {
    scratch.set(data, length);
    length += data.length;
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    if (syscalls.sendto(entry.fd, scratch, length, 0, entry.clientSockaddr, 16) >= 0) return;
    const errno = syscalls.errno();
    if (errno !== EAGAIN && errno !== EINTR) break;
    const one = Buffer.alloc(8);
    one.writeInt32LE(entry.fd, 0);
    one.writeInt16LE(POLLOUT, 4);
    syscalls.poll(one, 1, 5);
  }
  if (!entry.sendFailureLogged) {
    entry.sendFailureLogged = true;
    post({ type: 'warn', id: entry.id, message: `send failed (errno ${syscalls.errno()}); treated as loss` });
  }
}

function handle(command: DataPathCommand, syscalls: LinuxSyscalls): void {
  clock.refresh();
  switch (command.type) {
    case 'start':
      try {
        start(command.spec, syscalls);
      } catch (err) {
        syscalls.close(command.spec.fd);
        post({ type: 'refused', id: command.spec.id, reason: (err as Error).message });
      }
      return;
    case 'abort':
      transfers.get(command.id)?.transfer.abort(command.reason);
      return;
    case 'repeated-request':
      transfers.get(command.id)?.transfer.handleRepeatedRequest();
      return;
    case 'abort-all':
      for (const entry of [...transfers.values()]) entry.transfer.abort(command.reason);
  }
}

function takeCommands(syscalls: LinuxSyscalls): void {
  syscalls.read(doorbellFd, doorbellValue, 8);
  for (let message = receiveMessageOnPort(port); message; message = receiveMessageOnPort(port)) {
    handle(message.message as DataPathCommand, syscalls);
  }
}

//  struct pollfd (8 bytes): +0 fd int, +4 events short, +6 revents short
function rebuildPollSet(): void {
  polled = [...transfers.values()];
  const count = polled.length + 1;
  if (pollSet.length < count * 8) {
    pollSet = pinnedBuffer(count * 16);
    pollSetAt = sys!.address(pollSet);
  }
  pollSet.writeInt32LE(doorbellFd, 0);
  pollSet.writeInt16LE(POLLIN, 4);
  for (let i = 0; i < polled.length; i++) {
    pollSet.writeInt32LE(polled[i].fd, (i + 1) * 8);
    pollSet.writeInt16LE(POLLIN, (i + 1) * 8 + 4);
  }
  pollSetStale = false;
}

/** Reads one datagram of `entry`'s socket and acts on it; false when there was none. */
function receive(entry: LoopTransfer, syscalls: LinuxSyscalls): boolean {
  fromLength.writeUInt32LE(16, 0);
  const n = syscalls.recvfromAt(entry.fd, receivedAt, RECEIVE_BYTES, 0, fromAt, fromLengthAt);
  if (n < 0) return false; // EAGAIN (nothing queued) or a queued ICMP error
  clock.refresh();
  const verdict = dispatchTransferDatagram(
    entry.transfer,
    received,
    n,
    from.readUInt16BE(2) === entry.clientPort && from.readUInt32BE(4) === entry.clientAddress,
  );
  if (verdict === 'handled') return true;
  if (verdict === 'foreign-tid') {
    syscalls.sendto(entry.fd, UNKNOWN_TID_ERROR, UNKNOWN_TID_ERROR.length, 0, from, 16);
    return true;
  }
  if (!entry.junkLogged) {
    entry.junkLogged = true;
    post({ type: 'junk', id: entry.id, bytes: n });
  }
  return true;
}

/**
 * Busy-waits up to the transfer's budget (SPIN_BUDGET_MS by default) for the next datagram of a worker's only transfer and
 * handles it; false when none came (the caller then sleeps in poll). See spin-wait.ts.
 */
function spinForNext(entry: LoopTransfer, syscalls: LinuxSyscalls): boolean {
  if (entry.spinBudgetMs <= 0 || !entry.spin.shouldSpin()) return false;
  const until = performance.now() + entry.spinBudgetMs;
  do {
    for (let i = 0; i < 8; i++) {
      if (receive(entry, syscalls)) {
        entry.spin.caught();
        return true;
      }
    }
  } while (performance.now() < until);
  entry.spin.missed();
  return false;
}

function runLoop(syscalls: LinuxSyscalls): void {
  while (transfers.size > 0) {
    if (pollSetStale) rebuildPollSet();
    const wait = clock.untilNext(clock.now());
    // poll(2) takes whole milliseconds and koffi truncates: a timer due in 0.4 ms would make
    // it poll(0) in a loop until then. Rounded up, a timer runs up to 1 ms late, which no
    // TFTP timer (retransmission, progress) minds.
    const ready = syscalls.pollAt(pollSetAt, polled.length + 1, wait === undefined ? MAX_POLL_MS : Math.ceil(Math.min(wait, MAX_POLL_MS)));
    clock.refresh();
    if (ready > 0) {
      if (pollSet.readInt16LE(6) !== 0) takeCommands(syscalls);
      for (let i = 0; i < polled.length; i++) {
        const entry = polled[i];
        if (entry.ended || pollSet.readInt16LE((i + 1) * 8 + 6) === 0) continue;
        // Lock-step: by the time the DATA we just sent returns from sendmmsg, a client on
        // the same machine or a fast LAN has often ACKed it already. Reading again at once
        // saves the poll(2) round trip; a miss costs one recvfrom (EAGAIN).
        for (let burst = 0; burst < RECEIVE_BURST && !entry.ended; burst++) {
          if (!receive(entry, syscalls) && (polled.length !== 1 || !spinForNext(entry, syscalls))) break;
        }
      }
    }
    clock.runDue(clock.now());
    while (toClose.length > 0) syscalls.close(toClose.pop()!);
  }
}

if (!sys || !createDescriptorBatchSender(doorbellFd, '127.0.0.1', 9, 1, { unsent: () => {} })) {
  post({ type: 'unavailable', reason: 'koffi or the Linux syscalls did not load in the worker' });
} else {
  const syscalls = sys;
  port.on('message', (command: DataPathCommand) => {
    handle(command, syscalls);
    runLoop(syscalls);
    while (toClose.length > 0) syscalls.close(toClose.pop()!);
  });
  post({ type: 'ready' });
}
