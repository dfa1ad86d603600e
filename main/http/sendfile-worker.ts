// The worker thread of the HTTP zero-copy path (see zero-copy.ts for why). One poll(2) loop
// serves every response handed to it: each is a duplicate of the connection's socket, a
// file descriptor, an offset and a length, moved by sendfile(2) whenever the socket has
// room. The file's bytes go from the page cache to the socket inside the kernel; nothing
// is copied through JavaScript. Commands arrive with a doorbell eventfd, as in the TFTP
// data path worker.
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { EAGAIN, EINTR, loadLinuxSyscalls, pinnedBuffer, POLLIN, POLLOUT, type LinuxSyscalls } from '../net/index.js';
import type { SendfileCommand, SendfileEvent } from './zero-copy.js';

/** Longest single poll(2): bounds how late a terminate() from the main thread takes effect. */
const MAX_POLL_MS = 100;
/**
 * Most bytes one response gets per turn of the loop (one sendfile call). Every ready
 * response gets a turn before any gets a second, as nginx's sendfile_max_chunk does: over
 * a fast link (a veth, loopback) a socket that a quick client drains seldom fills, so
 * sending until EAGAIN would let one response run ahead while the others wait.
 */
const SENDFILE_TURN = 2 * 1024 * 1024;

interface Job {
  id: number;
  /** our own dup of the connection's socket, closed here */
  socketFd: number;
  fileFd: number;
  /** off_t the kernel advances, passed by address */
  offset: Buffer;
  offsetAt: number;
  remaining: number;
  sent: number;
  reported: number;
  lastProgressAt: number;
  progressIntervalMs: number;
}

const { port, doorbellFd } = workerData as { port: MessagePort; doorbellFd: number };
const sys = loadLinuxSyscalls();
const jobs = new Map<number, Job>();
const doorbellValue = Buffer.alloc(8);
let pollSet = pinnedBuffer(8 * 16);
let polled: Job[] = [];

function post(event: SendfileEvent): void {
  port.postMessage(event);
}

function finish(job: Job, syscalls: LinuxSyscalls, error?: string): void {
  jobs.delete(job.id);
  syscalls.close(job.socketFd);
  post({ type: 'end', id: job.id, bytes: job.sent, error });
}

/** One turn: a sendfile call of at most SENDFILE_TURN bytes, unless the socket is full or the range done. */
function pump(job: Job, syscalls: LinuxSyscalls, now: number): void {
  while (job.remaining > 0) {
    const n = syscalls.sendfileAt(job.socketFd, job.fileFd, job.offsetAt, Math.min(job.remaining, SENDFILE_TURN));
    if (n > 0) {
      job.sent += n;
      job.remaining -= n;
      break; // the others' turn
    }
    if (n === 0) return finish(job, syscalls, 'file shrank while being sent');
    const errno = syscalls.errno();
    if (errno === EINTR) continue;
    if (errno === EAGAIN) break;
    // EPIPE, ECONNRESET: the client went away.
    return finish(job, syscalls, errno === 32 || errno === 104 ? 'client closed the connection' : `sendfile failed (errno ${errno})`);
  }
  if (job.remaining === 0) return finish(job, syscalls);
  if (now - job.lastProgressAt >= job.progressIntervalMs && job.sent > job.reported) {
    job.lastProgressAt = now;
    job.reported = job.sent;
    post({ type: 'progress', id: job.id, bytes: job.sent });
  }
}

function handle(command: SendfileCommand, syscalls: LinuxSyscalls): void {
  if (command.type === 'abort') {
    const job = jobs.get(command.id);
    if (job) finish(job, syscalls, command.reason);
    return;
  }
  const offset = pinnedBuffer(8);
  offset.writeBigInt64LE(BigInt(command.start), 0);
  const job: Job = {
    id: command.id,
    socketFd: command.socketFd,
    fileFd: command.fileFd,
    offset,
    offsetAt: syscalls.address(offset),
    remaining: command.length,
    sent: 0,
    reported: 0,
    lastProgressAt: Date.now(),
    progressIntervalMs: command.progressIntervalMs,
  };
  jobs.set(job.id, job);
  // Usually the socket has room: the first call goes out without waiting for poll.
  pump(job, syscalls, job.lastProgressAt);
}

function takeCommands(syscalls: LinuxSyscalls): void {
  syscalls.read(doorbellFd, doorbellValue, 8);
  for (let message = receiveMessageOnPort(port); message; message = receiveMessageOnPort(port)) handle(message.message as SendfileCommand, syscalls);
}

//  struct pollfd (8 bytes): +0 fd int, +4 events short, +6 revents short
function runLoop(syscalls: LinuxSyscalls): void {
  let round = 0;
  while (jobs.size > 0) {
    // Who goes first changes every round, so no response is always served last.
    const all = [...jobs.values()];
    const first = round++ % all.length;
    polled = first === 0 ? all : [...all.slice(first), ...all.slice(0, first)];
    if (pollSet.length < (polled.length + 1) * 8) pollSet = pinnedBuffer((polled.length + 1) * 16);
    pollSet.writeInt32LE(doorbellFd, 0);
    pollSet.writeInt16LE(POLLIN, 4);
    pollSet.writeInt16LE(0, 6);
    for (let i = 0; i < polled.length; i++) {
      pollSet.writeInt32LE(polled[i].socketFd, (i + 1) * 8);
      pollSet.writeInt16LE(POLLOUT, (i + 1) * 8 + 4);
      pollSet.writeInt16LE(0, (i + 1) * 8 + 6);
    }
    const ready = syscalls.poll(pollSet, polled.length + 1, MAX_POLL_MS);
    if (ready <= 0) continue;
    if (pollSet.readInt16LE(6) !== 0) takeCommands(syscalls);
    const now = Date.now();
    for (let i = 0; i < polled.length; i++) {
      const job = polled[i];
      // POLLOUT, or POLLERR/POLLHUP: sendfile then reports what happened.
      if (jobs.get(job.id) === job && pollSet.readInt16LE((i + 1) * 8 + 6) !== 0) pump(job, syscalls, now);
    }
  }
}

if (!sys) {
  post({ type: 'unavailable', reason: 'koffi or the Linux syscalls did not load in the worker' });
} else {
  const syscalls = sys;
  port.on('message', (command: SendfileCommand) => {
    handle(command, syscalls);
    runLoop(syscalls);
  });
  post({ type: 'ready' });
}
