// The TFTP server (read-only). Port 69 receives requests; each read transfer gets its own
// socket on a fresh port, which is its TID (RFC 1350 §4), on one of the two data paths
// (data-path.ts). The loop here only decodes, negotiates and hands over: decisions live in
// options.ts and transfer.ts, path safety in main/files.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { availableParallelism } from 'node:os';
import { systemClock, type Publish, type Clock, type Logger } from '../core/index.js';
import { type FileResolver, type OpenFile, GeneratedFile } from '../files/index.js';
import { MAX_NETASCII_FILE, toNetascii } from './netascii.js';
import { explainBindFailure, PortBindError, type UdpSocketFactory, type UdpSocketOptions } from '../net/index.js';
import { decodeTftpPacket, encodeError, TftpDecodeError, TftpErrorCode, TftpOpcode, type TftpRequestPacket } from './packet.js';
import { negotiateReadOptions, type NegotiatedTransfer } from './options.js';
import type { RunningTransfer, TransferHandlers, TransferSpec } from './data-path.js';
import { EventLoopDataPath } from './event-loop-data-path.js';
import type { RetransmitPolicy, TransferResult } from './transfer.js';
import { WorkerDataPath } from './worker-data-path.js';
import { MulticastDataPath, type TftpMulticastOptions } from './multicast-path.js';

export interface TftpServerOptions {
  /** default 69; 0 = any (tests) */
  port?: number;
  /** bind address (the NIC's IPv4; tests 127.0.0.1) */
  address?: string;
  /** default: plain dgram sockets */
  socketFactory?: UdpSocketFactory;
  files: FileResolver;
  /** interface MTU - 32 (default 1468) */
  maxBlksize?: number;
  /** largest windowsize granted (RFC 7440); default 64 */
  maxWindowsize?: number;
  macForIp?: (ip: string) => string | undefined;
  publish: Publish;
  logger: Logger;
  clock?: Clock;
  /** Retransmission tuning (tests shorten it). */
  retransmit?: Partial<RetransmitPolicy>;
  /** Read-ahead chunk size per transfer (two chunks per transfer). Default 256 KiB. */
  readAheadBytes?: number;
  /** Minimum time between tftp.progress events of one transfer. Default 250 ms. */
  progressIntervalMs?: number;
  /** Send each window with one sendmmsg(2) where available (Linux). Default true. */
  batchSend?: boolean;
  /**
   * Where transfers run once negotiated: 'worker' (default where available: Linux with
   * koffi, system clock, batchSend on) moves each transfer's socket to a worker thread
   * with its own poll loop (worker-data-path.ts); 'event-loop' keeps them on dgram.
   */
  dataPath?: 'worker' | 'event-loop';
  /**
   * Worker threads for the 'worker' data path; each transfer goes to the least busy one.
   * Default: the number of CPUs, at most 2 (a window burst to many clients at once is
   * CPU-bound in the kernel's send path, which one thread would serialise).
   */
  dataPathWorkers?: number;
  /**
   * Worker data path: how long a worker with a single transfer busy-waits for the
   * client's next ACK before sleeping (spin-wait.ts), in microseconds. Default 100; 0 off.
   * Clients that answer later than this stop it by themselves.
   */
  busyWaitMicroseconds?: number;
  /** Defaults to process.platform; lets tests take the path of a platform without the worker. */
  platform?: NodeJS.Platform;
  /**
   * RFC 2090 multicast: requests with the `multicast` option share one stream per file
   * (multicast-path.ts). Off when undefined: the option is then left out of the OACK and the
   * client downloads unicast.
   */
  multicast?: TftpMulticastOptions;
}

export interface TftpTransferSnapshot {
  id: string;
  mac?: string;
  ip: string;
  /** client's port (its TID) */
  port: number;
  file: string;
  protocol: 'tftp';
  size: number;
  bytes: number;
  /** bytes per second so far */
  rate: number;
  blksize: number;
  windowsize: number;
  retransmits: number;
  startedAt: number;
  phase: string;
}

interface ActiveTransfer {
  id: string;
  ip: string;
  port: number;
  mac?: string;
  file: OpenFile;
  transfer: RunningTransfer;
  negotiated: NegotiatedTransfer;
}

/** The same complaint about the same client is logged at most once per this period. */
const LOG_ONCE_MS = 60_000;

export class TftpServer {
  private socket: Socket | undefined;
  private boundPort = 0;
  private readonly clock: Clock;
  /** key `ip:port` of the client, including requests still opening their file */
  private readonly transfers = new Map<string, ActiveTransfer | 'opening'>();
  private readonly loggedAt = new Map<string, number>();
  private transferCounter = 0;
  private stopping = false;
  /** where transfers run while it can (Linux); undefined: the event loop, for `dataPathReason` */
  private workerPath: WorkerDataPath | undefined;
  private eventLoopPath: EventLoopDataPath | undefined;
  private multicastPath: MulticastDataPath | undefined;
  private dataPathReason = 'not started';

  constructor(private readonly options: TftpServerOptions) {
    this.clock = options.clock ?? systemClock;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Where new transfers run ('worker' or 'event-loop'), and why when not the worker. */
  get dataPathInUse(): { kind: 'worker' | 'event-loop'; reason?: string } {
    return this.workerPath?.usable ? { kind: 'worker' } : { kind: 'event-loop', reason: this.workerPath ? 'worker failed' : this.dataPathReason };
  }

  async start(): Promise<void> {
    if (this.socket) return;
    this.stopping = false;
    const port = this.options.port ?? 69;
    let socket: Socket;
    try {
      socket = await this.createSocket({ port, address: this.options.address });
    } catch (err) {
      if (err instanceof PortBindError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code) throw explainBindFailure({ protocol: 'udp', port, address: this.options.address, code });
      throw err;
    }
    this.socket = socket;
    this.boundPort = socket.address().port;
    const o = this.options;
    this.eventLoopPath = new EventLoopDataPath({
      openSocket: (options) => this.createSocket(options),
      address: o.address,
      clock: this.clock,
      batchSend: o.batchSend,
      retransmit: o.retransmit,
      progressIntervalMs: o.progressIntervalMs,
      readAheadBytes: o.readAheadBytes,
    });
    if (o.multicast) {
      this.multicastPath = new MulticastDataPath({
        ...o.multicast,
        openSocket: (options) => this.createSocket(options),
        address: o.address,
        clock: this.clock,
        publish: o.publish,
        logger: o.logger,
        retransmit: o.retransmit,
        readAheadBytes: o.readAheadBytes,
        macForIp: o.macForIp,
      });
    }
    await this.startWorkerPath();
    socket.on('message', (msg, rinfo) => this.onRequest(msg, rinfo));
    socket.on('error', (err) => this.options.logger.error(`TFTP socket error: ${err.message}`));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // Transfers end through their paths' end reports (ERROR sent, file released, event).
    const paths = [this.workerPath, this.eventLoopPath, this.multicastPath];
    this.workerPath = this.eventLoopPath = this.multicastPath = undefined;
    this.dataPathReason = 'stopped';
    for (const path of paths) await path?.stop('server stopping');
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  activeTransfers(): TftpTransferSnapshot[] {
    const out: TftpTransferSnapshot[] = [];
    const now = this.clock.now();
    for (const active of this.transfers.values()) {
      if (active === 'opening') continue;
      const t = active.transfer;
      const elapsed = now - t.startedAt;
      out.push({
        id: active.id,
        mac: active.mac,
        ip: active.ip,
        port: active.port,
        file: active.file.path,
        protocol: 'tftp',
        size: t.size,
        bytes: t.bytesAcknowledged,
        rate: elapsed > 0 ? (t.bytesAcknowledged * 1000) / elapsed : 0,
        blksize: t.blksize,
        windowsize: t.windowsize,
        retransmits: t.retransmits,
        startedAt: t.startedAt,
        phase: t.phase,
      });
    }
    return out;
  }

  private async startWorkerPath(): Promise<void> {
    const o = this.options;
    if (o.dataPath === 'event-loop') this.dataPathReason = 'dataPath: event-loop';
    else if (o.batchSend === false) this.dataPathReason = 'batchSend: false';
    else if (o.clock !== undefined && o.clock !== systemClock) this.dataPathReason = 'an injected clock (the worker keeps system time)';
    else {
      const count = Math.max(1, o.dataPathWorkers ?? Math.min(2, availableParallelism()));
      const started = await WorkerDataPath.start(
        count,
        {
          address: o.address,
          retransmit: o.retransmit,
          progressIntervalMs: o.progressIntervalMs,
          readAheadBytes: o.readAheadBytes,
          busyWaitMs: o.busyWaitMicroseconds === undefined ? undefined : o.busyWaitMicroseconds / 1000,
          logOnce: (key, message) => this.logOnce(key, message),
          clock: this.clock,
        },
        o.platform,
      );
      this.dataPathReason = started.reason ?? '';
      if (!started.dataPath) o.logger.debug(`TFTP: transfers run on the event loop: ${this.dataPathReason}`);
      else if (this.stopping) await started.dataPath.stop('server stopping');
      else this.workerPath = started.dataPath;
    }
  }

  private createSocket(options: UdpSocketOptions): Promise<Socket> {
    return (this.options.socketFactory ?? plainUdpSocket)(options);
  }

  private onRequest(msg: Buffer, rinfo: RemoteInfo): void {
    let packet;
    try {
      packet = decodeTftpPacket(msg);
    } catch (err) {
      const reason = err instanceof TftpDecodeError ? err.message : String(err);
      this.logOnce(`${rinfo.address}:malformed:${reason}`, `TFTP: malformed packet from ${rinfo.address}:${rinfo.port}: ${reason}`);
      // Answer only what looks like a request; other junk is dropped (no reflection).
      const opcode = msg.length >= 2 ? (msg[0] << 8) | msg[1] : -1;
      if (opcode === TftpOpcode.RRQ || opcode === TftpOpcode.WRQ || (opcode > TftpOpcode.OACK && msg.length < 600)) {
        const code = err instanceof TftpDecodeError ? err.errorCode : TftpErrorCode.IllegalOperation;
        this.sendFromMain(encodeError(code, reason), rinfo);
        this.refused(rinfo.address, undefined, reason, code);
      }
      return;
    }
    switch (packet.opcode) {
      case TftpOpcode.RRQ:
        void this.startRead(packet, rinfo).catch((err) => {
          this.options.logger.error(`TFTP: read request from ${rinfo.address} failed: ${(err as Error).message}`);
        });
        return;
      case TftpOpcode.WRQ:
        this.sendFromMain(encodeError(TftpErrorCode.AccessViolation, 'this server is read-only'), rinfo);
        this.refused(rinfo.address, packet.filename, 'write request (server is read-only)', TftpErrorCode.AccessViolation);
        return;
      default:
        // DATA/ACK/ERROR/OACK belong on a transfer's port, not 69: a confused or late client.
        this.logOnce(
          `${rinfo.address}:stray:${packet.opcode}`,
          `TFTP: ignored opcode ${packet.opcode} sent to the request port by ${rinfo.address}:${rinfo.port}`,
        );
    }
  }

  private async startRead(request: TftpRequestPacket, rinfo: RemoteInfo): Promise<void> {
    const key = `${rinfo.address}:${rinfo.port}`;
    // A repeated RRQ from the same client port means our first answer is late or lost; the
    // transfer answers it (a second transfer would confuse the client).
    const existing = this.transfers.get(key);
    if (existing !== undefined) {
      if (existing !== 'opening') existing.transfer.handleRepeatedRequest();
      return;
    }
    if (this.stopping) return;
    const ip = rinfo.address;
    const mac = this.options.macForIp?.(ip);
    if (request.mode !== 'octet' && request.mode !== 'netascii') {
      this.sendFromMain(encodeError(TftpErrorCode.IllegalOperation, `transfer mode ${request.mode} is not supported`), rinfo);
      this.refused(ip, request.filename, `unsupported mode ${request.mode}`, TftpErrorCode.IllegalOperation);
      return;
    }
    this.transfers.set(key, 'opening');
    let file: OpenFile | undefined;
    try {
      const opened = await this.options.files.open(request.filename, { protocol: 'tftp', ip, mac });
      if (!opened.ok) {
        const code = opened.code === 'access-denied' ? TftpErrorCode.AccessViolation : TftpErrorCode.FileNotFound;
        this.sendFromMain(encodeError(code, opened.code === 'access-denied' ? 'access violation' : 'file not found'), rinfo);
        this.refused(ip, request.filename, opened.reason, code);
        this.transfers.delete(key);
        return;
      }
      file = opened.file;
      if (request.mode === 'netascii') file = await this.netasciiCopy(file, rinfo);
      if (!file) {
        this.transfers.delete(key);
        return;
      }
      const negotiated = negotiateReadOptions(request.options, file.size, {
        maxBlksize: this.options.maxBlksize ?? 1468,
        maxWindowsize: this.options.maxWindowsize ?? 64,
        // netascii copies are made per request: only octet transfers can share a stream
        multicast: this.multicastPath !== undefined && request.mode === 'octet',
      });
      for (const ignored of negotiated.ignored) {
        this.logOnce(
          `${ip}:option:${ignored.name}:${ignored.reason}`,
          `TFTP: ${ip} option ${ignored.name}=${JSON.stringify(ignored.value)} not acknowledged: ${ignored.reason}`,
          'debug',
        );
      }
      const { workerPath, eventLoopPath } = this;
      if (this.stopping || !eventLoopPath) throw new Error('server stopping');
      const spec = { ip, port: rinfo.port, file, negotiated };
      if (negotiated.multicast && (await this.joinMulticast(spec, key, request, rinfo, mac))) return;
      const handlers = this.transferHandlers(key, request, rinfo, mac, file, negotiated);
      if (workerPath?.usable && (await workerPath.begin(spec, handlers))) return;
      await eventLoopPath.begin(spec, handlers);
    } catch (err) {
      this.transfers.delete(key);
      file?.release();
      if (this.stopping) return; // stop() raced the file open: nothing to report
      this.sendFromMain(encodeError(TftpErrorCode.NotDefined, 'server error'), rinfo);
      throw err;
    }
  }

  /**
   * RFC 2090: adds the client to its file's multicast session. False when the file cannot
   * go multicast here (see MulticastDataPath.sessionFor): the caller serves it unicast, and
   * the OACK then simply lacks the option.
   */
  private async joinMulticast(spec: TransferSpec, key: string, request: TftpRequestPacket, rinfo: RemoteInfo, mac: string | undefined): Promise<boolean> {
    const path = this.multicastPath;
    const plan = path?.sessionFor(spec.file, spec.negotiated);
    if (!path || !plan) {
      spec.negotiated.multicast = false;
      this.logOnce(`${rinfo.address}:multicast-unicast`, `TFTP: ${spec.file.path} to ${rinfo.address} goes unicast: no multicast session can take it`, 'debug');
      return false;
    }
    // The session reads through its first member's handle and releases it at its end.
    const handlers = this.transferHandlers(key, request, rinfo, mac, spec.file, spec.negotiated, false);
    if (!(await path.join(plan.entry, spec, handlers))) {
      spec.negotiated.multicast = false;
      return false;
    }
    if (plan.joining) spec.file.release();
    return true;
  }

  /** What the server does with a transfer's reports, on either data path. */
  private transferHandlers(
    key: string,
    request: TftpRequestPacket,
    rinfo: RemoteInfo,
    mac: string | undefined,
    file: OpenFile,
    negotiated: NegotiatedTransfer,
    releaseFile = true,
  ): TransferHandlers {
    const { address: ip, port } = rinfo;
    const id = `tftp-${(++this.transferCounter).toString(36)}-${ip}:${port}`;
    const base = { transferId: id, mac, ip, port, file: file.path, requested: request.filename, options: eventOptions(negotiated, file.size), size: file.size };
    const { publish, logger } = this.options;
    let sendErrorLogged = false;
    return {
      onStart: (transfer) => {
        this.transfers.set(key, { id, ip, port, mac, file, transfer, negotiated });
        publish('tftp.start', base);
      },
      onProgress: (p) => publish('tftp.progress', { ...base, bytes: p.bytes, rate: Math.round(p.rate), retransmits: p.retransmits }),
      onEnd: (result) => {
        this.transfers.delete(key);
        if (releaseFile) file.release();
        this.publishEnd(base, result);
      },
      onRefused: (reason) => {
        this.transfers.delete(key);
        file.release();
        this.sendFromMain(encodeError(TftpErrorCode.NotDefined, 'server error'), rinfo);
        logger.error(`TFTP: read request from ${ip} failed: ${reason}`);
      },
      onJunk: (bytes) => this.logOnce(`${ip}:transfer-junk`, `TFTP: ignored unexpected packet (${bytes} bytes) from ${ip}:${port} during a transfer`),
      // Logged once per transfer: the retransmit timer recovers or gives up.
      onSendError: (message) => {
        if (sendErrorLogged) return;
        sendErrorLogged = true;
        logger.warn(`TFTP: socket error while sending ${file.path} to ${ip}: ${message}`);
      },
    };
  }

  private publishEnd(base: { file: string; ip: string } & Record<string, unknown>, result: TransferResult): void {
    const { publish } = this.options;
    const details = { ...base, bytes: result.bytes, rate: Math.round(result.rate), retransmits: result.retransmits, durationMs: result.durationMs };
    switch (result.outcome) {
      case 'done':
        publish('tftp.done', details);
        return;
      case 'probe':
        publish('tftp.probe', { ...details, errorCode: result.errorCode, reason: result.reason });
        return;
      case 'aborted':
        publish('tftp.aborted', { ...details, errorCode: result.errorCode, reason: result.reason });
        return;
      case 'failed':
        this.options.logger.warn(`TFTP: ${base.file} to ${base.ip} failed: ${result.reason}`);
        publish('tftp.failed', { ...details, reason: result.reason });
    }
  }

  /**
   * The netascii form of `file`, in memory (netascii changes every offset, so the bounded
   * read-ahead of octet transfers cannot apply). Boot files travel in octet mode; this is
   * for the odd text file fetched with a default tftp client.
   */
  private async netasciiCopy(file: OpenFile, rinfo: RemoteInfo): Promise<OpenFile | undefined> {
    try {
      if (file.size > MAX_NETASCII_FILE) {
        this.sendFromMain(encodeError(TftpErrorCode.NotDefined, `netascii mode is limited to ${MAX_NETASCII_FILE} bytes; use octet (binary) mode`), rinfo);
        this.refused(rinfo.address, file.path, 'netascii request for a large file', TftpErrorCode.NotDefined);
        return undefined;
      }
      const raw = Buffer.allocUnsafe(file.size);
      let got = 0;
      while (got < raw.length) {
        const n = await file.read(raw, got, raw.length - got, got);
        if (n === 0) break;
        got += n;
      }
      return new GeneratedFile(file.path, toNetascii(raw.subarray(0, got)), file.mtimeMs);
    } finally {
      file.release();
    }
  }

  private sendFromMain(packet: Buffer, to: RemoteInfo): void {
    this.socket?.send(packet, to.port, to.address);
  }

  private refused(ip: string, file: string | undefined, reason: string, errorCode: number): void {
    this.options.publish('tftp.refused', { mac: this.options.macForIp?.(ip), ip, file, reason, errorCode });
  }

  private logOnce(key: string, message: string, level: 'warn' | 'debug' = 'warn'): void {
    const now = this.clock.now();
    const last = this.loggedAt.get(key);
    if (last !== undefined && now - last < LOG_ONCE_MS) return;
    if (this.loggedAt.size > 1000) this.loggedAt.clear();
    this.loggedAt.set(key, now);
    this.options.logger[level](message);
  }
}

function eventOptions(negotiated: NegotiatedTransfer, size: number): Record<string, number> {
  const options: Record<string, number> = { blksize: negotiated.blksize, windowsize: negotiated.windowsize };
  if (negotiated.multicast) options.multicast = 1;
  if (negotiated.tsizeRequested) options.tsize = size;
  if (negotiated.timeoutMs !== undefined) options.timeout = negotiated.timeoutMs / 1000;
  return options;
}

/** Default socket factory: a plain dgram socket bound to address:port. */
export function plainUdpSocket(options: UdpSocketOptions): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp4', reuseAddr: options.reuseAddress ?? false });
    const onError = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ port: options.port, address: options.address }, () => {
      socket.off('error', onError);
      if (options.broadcast) socket.setBroadcast(true);
      resolve(socket);
    });
  });
}
