// HTTP file server for the boot roots: what iPXE and UEFI HTTP boot fetch (kernels,
// initrds, WIMs, ISOs for `sanboot`). GET and HEAD, one byte range per request (RFC 9110
// §14), validators (ETag, Last-Modified), keep-alive. Bodies of files on disk go out by
// sendfile(2) where the platform has it (zero-copy.ts), otherwise as streams with
// backpressure.
// Generated content (iPXE scripts, the web UI, its API) is answered by `dynamic` first;
// the http.Server is exposed so the host can attach a WebSocket upgrade handler.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import mime from 'mime-types';
import rangeParser from 'range-parser';
import { systemClock, type Publish, type TransferFields, type Clock, type TimerHandle, type Logger } from '../core/index.js';
import { type FileResolver, type OpenFile, DiskFile } from '../files/index.js';
import { explainBindFailure } from '../net/index.js';
import { ZeroCopySender } from './zero-copy.js';

export interface HttpServerOptions {
  port: number;
  /** the NIC's IPv4 (the host may start a second server on 127.0.0.1 for the UI) */
  address?: string;
  files: FileResolver;
  /** Called first for every request; returns true when it answered (iPXE scripts, web UI, API). */
  dynamic?: (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>;
  macForIp?: (ip: string) => string | undefined;
  publish: Publish;
  logger: Logger;
  clock?: Clock;
  /** Minimum time between http.progress events of one response. Default 250 ms. */
  progressIntervalMs?: number;
  /** Bytes per read from disk. Default 512 KiB. */
  readChunkBytes?: number;
  /** A range session (one client reading one file by ranges) ends after this idle time. Default 5000 ms. */
  rangeIdleMs?: number;
  /** Send bodies of files on disk by sendfile(2) where available (default true); false streams them. */
  zeroCopy?: boolean;
  /** Defaults to process.platform; lets tests take the path of a platform without sendfile. */
  platform?: NodeJS.Platform;
}

const EMPTY = Buffer.alloc(0);

export interface HttpTransferSnapshot {
  id: string;
  mac?: string;
  ip: string;
  file: string;
  protocol: 'http';
  size: number;
  bytes: number;
  rate: number;
  retransmits: 0;
  startedAt: number;
}

interface TrackedTransfer {
  id: string;
  /** fields repeated in every event of this transfer */
  base: TransferFields;
  snapshot: HttpTransferSnapshot;
  /** set for a range session (ip + file + validator) */
  sessionKey?: string;
  inflight: number;
  requests: number;
  failedRequests: number;
  lastProgressAt: number;
  lastEndAt: number;
  idleTimer?: TimerHandle;
}

export class HttpFileServer {
  readonly server: Server;
  private boundPort = 0;
  private readonly clock: Clock;
  private readonly active = new Map<string, TrackedTransfer>();
  private readonly rangeSessions = new Map<string, TrackedTransfer>();
  private counter = 0;
  private zeroCopy: ZeroCopySender | undefined;
  private zeroCopyReason = 'not started';

  constructor(private readonly options: HttpServerOptions) {
    this.clock = options.clock ?? systemClock;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        this.options.logger.error(`HTTP: ${req.method} ${req.url} failed: ${(err as Error).message}`);
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
          res.end('internal error\n');
        } else {
          res.destroy();
        }
      });
    });
    // Boot clients keep one connection for a kernel, an initrd and many ranges.
    this.server.keepAliveTimeout = 30_000;
  }

  get port(): number {
    return this.boundPort;
  }

  /** How file bodies go out: 'sendfile' (zero-copy worker) or 'stream', with the reason when not sendfile. */
  get bodyPath(): { kind: 'sendfile' | 'stream'; reason?: string } {
    return this.zeroCopy?.usable ? { kind: 'sendfile' } : { kind: 'stream', reason: this.zeroCopy ? 'zero-copy worker failed' : this.zeroCopyReason };
  }

  async start(): Promise<void> {
    if (this.options.zeroCopy === false) this.zeroCopyReason = 'zeroCopy: false';
    else {
      const started = await ZeroCopySender.start(this.options.platform);
      this.zeroCopy = started.sender;
      if (started.reason) {
        this.zeroCopyReason = started.reason;
        this.options.logger.debug(`HTTP: file bodies are streamed (${started.reason})`);
      }
    }
    try {
      await this.listen();
    } catch (err) {
      await this.zeroCopy?.stop();
      this.zeroCopy = undefined;
      throw err;
    }
  }

  private listen(): Promise<void> {
    const { port, address } = this.options;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.server.off('listening', onListening);
        reject(err.code ? explainBindFailure({ protocol: 'tcp', port, address, code: err.code }) : err);
      };
      const onListening = (): void => {
        this.server.off('error', onError);
        this.boundPort = (this.server.address() as AddressInfo).port;
        this.server.on('error', (err) => this.options.logger.error(`HTTP server error: ${err.message}`));
        resolve();
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      this.server.listen({ port, host: address });
    });
  }

  async stop(): Promise<void> {
    for (const session of [...this.rangeSessions.values()]) {
      if (session.idleTimer) this.clock.clearTimeout(session.idleTimer);
      session.idleTimer = undefined;
      if (session.inflight === 0) this.finishTransfer(session, undefined);
    }
    await new Promise<void>((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await this.zeroCopy?.stop();
    this.zeroCopy = undefined;
  }

  activeTransfers(): HttpTransferSnapshot[] {
    return [...this.active.values()].map((a) => ({ ...a.snapshot }));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const rawUrl = req.url ?? '/';
    let url: URL;
    try {
      url = new URL(rawUrl, 'http://localhost');
    } catch {
      return this.plain(res, 400, 'bad request URL');
    }
    if (this.options.dynamic && (await this.options.dynamic(req, res, url))) return;

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return this.plain(res, 405, 'only GET and HEAD are served');
    }
    // Decode the raw path ourselves: URL normalisation would quietly drop `..`, and a
    // request that contains it should be refused, not rewritten.
    const rawPath = rawUrl.startsWith('/') ? rawUrl.split(/[?#]/, 1)[0] : url.pathname;
    let requested: string;
    try {
      requested = decodeURIComponent(rawPath);
    } catch {
      this.refused(ip, rawPath, 'malformed percent-encoding', 400);
      return this.plain(res, 400, 'malformed percent-encoding in path');
    }
    const mac = this.options.macForIp?.(ip);
    const opened = await this.options.files.open(requested, { protocol: 'http', ip, mac });
    if (!opened.ok) {
      const status = opened.code === 'access-denied' ? 403 : 404;
      this.refused(ip, requested, opened.reason, status);
      return this.plain(res, status, status === 403 ? 'forbidden' : 'not found');
    }
    const file = opened.file;
    try {
      this.serveFile(req, res, file, ip, mac);
    } catch (err) {
      file.release();
      throw err;
    }
  }

  private serveFile(req: IncomingMessage, res: ServerResponse, file: OpenFile, ip: string, mac: string | undefined): void {
    const lastModified = new Date(Math.floor(file.mtimeMs / 1000) * 1000);
    res.setHeader('accept-ranges', 'bytes');
    res.setHeader('etag', file.etag);
    res.setHeader('last-modified', lastModified.toUTCString());
    // Boot files get replaced in place; clients must revalidate (cheap with the ETag).
    res.setHeader('cache-control', 'no-cache');
    res.setHeader('content-type', mime.contentType(file.path.slice(file.path.lastIndexOf('/') + 1)) || 'application/octet-stream');

    if (isNotModified(req, file.etag, lastModified)) {
      file.release();
      res.statusCode = 304;
      res.end();
      return;
    }

    let start = 0;
    let end = file.size - 1;
    let status = 200;
    const rangeHeader = req.headers.range;
    if (rangeHeader && ifRangeAllows(req, file.etag, lastModified)) {
      const ranges = rangeParser(file.size, rangeHeader, { combine: true });
      if (ranges === -1) {
        file.release();
        res.setHeader('content-range', `bytes */${file.size}`);
        return this.plain(res, 416, 'range not satisfiable');
      }
      // -2 (malformed), non-byte units and multiple ranges: RFC 9110 §14.2 lets us ignore
      // the header and send the whole file, which every client handles.
      if (ranges !== -2 && ranges.type === 'bytes' && ranges.length === 1) {
        start = ranges[0].start;
        end = ranges[0].end;
        status = 206;
        res.setHeader('content-range', `bytes ${start}-${end}/${file.size}`);
      }
    }
    const length = Math.max(0, end - start + 1);
    res.statusCode = status;
    res.setHeader('content-length', String(length));

    if (req.method === 'HEAD' || length === 0) {
      file.release();
      res.end();
      if (req.method !== 'HEAD') this.options.publish('http.done', { mac, ip, file: file.path, size: file.size, bytes: 0, status, durationMs: 0, rate: 0 });
      return;
    }

    const range = status === 206 ? { start, end } : undefined;
    const transfer = this.beginTransfer(ip, mac, file, length, range);
    const socketFd = (res.socket as unknown as { _handle?: { fd?: number } } | null)?._handle?.fd;
    if (this.zeroCopy?.usable && file instanceof DiskFile && typeof socketFd === 'number' && socketFd >= 0) {
      this.sendZeroCopy(res, file, socketFd, start, length, transfer, this.zeroCopy);
      return;
    }
    const stream = file.createReadStream(start, end, this.options.readChunkBytes ?? 512 * 1024);
    stream.on('data', (chunk: Buffer) => this.addBytes(transfer, chunk.length));
    pipeline(stream, res, (err) => {
      file.release();
      this.endRequest(transfer, err ?? undefined);
    });
  }

  /**
   * The body by sendfile(2) in the zero-copy worker. The headers go through Node first;
   * the worker starts once they are in the kernel (a write's callback runs after every
   * earlier write on the socket), and the response is ended through Node afterwards.
   */
  private sendZeroCopy(
    res: ServerResponse,
    file: DiskFile,
    socketFd: number,
    start: number,
    length: number,
    transfer: TrackedTransfer,
    sender: ZeroCopySender,
  ): void {
    const socket = res.socket!;
    let counted = 0;
    let abort: ((reason: string) => void) | undefined;
    let closedEarly = false;
    const count = (bytes: number): void => {
      if (bytes > counted) this.addBytes(transfer, bytes - counted);
      counted = Math.max(counted, bytes);
    };
    const onClose = (): void => {
      closedEarly = true;
      abort?.('client closed the connection');
    };
    const fail = (reason: string): void => {
      res.off('close', onClose);
      file.release();
      res.destroy();
      this.endRequest(transfer, new Error(reason));
    };
    res.once('close', onClose);
    res.flushHeaders();
    socket.write(EMPTY, (err) => {
      if (err || closedEarly || socket.destroyed) return fail('client closed the connection');
      try {
        abort = sender.send(socketFd, file.descriptorFd, start, length, this.options.progressIntervalMs ?? 250, {
          onProgress: count,
          onEnd: (bytes, error) => {
            count(bytes);
            if (error) return fail(error);
            res.off('close', onClose);
            file.release();
            res.end();
            this.endRequest(transfer, undefined);
          },
        });
      } catch (e) {
        fail((e as Error).message);
      }
    });
  }

  /**
   * A full GET is one transfer. Range requests for the same file from the same client
   * (iPXE `sanboot` reads an ISO as thousands of ranges) are one transfer too: started by
   * the first range, done after `rangeIdleMs` without another, so the UI and the store see
   * "ISO read by 192.0.2.7", not a flood of tiny downloads.
   */
  private beginTransfer(
    ip: string,
    mac: string | undefined,
    file: OpenFile,
    length: number,
    range: { start: number; end: number } | undefined,
  ): TrackedTransfer {
    const now = this.clock.now();
    const sessionKey = range ? `${ip}|${file.path}|${file.etag}` : undefined;
    const existing = sessionKey ? this.rangeSessions.get(sessionKey) : undefined;
    if (existing) {
      if (existing.idleTimer) this.clock.clearTimeout(existing.idleTimer);
      existing.idleTimer = undefined;
      existing.inflight++;
      existing.requests++;
      return existing;
    }
    const id = `http-${(++this.counter).toString(36)}`;
    const base = range
      ? { transferId: id, mac, ip, file: file.path, size: file.size, ranged: true }
      : { transferId: id, mac, ip, file: file.path, size: file.size, length, status: 200 };
    const snapshot: HttpTransferSnapshot = {
      id,
      mac,
      ip,
      file: file.path,
      protocol: 'http',
      size: file.size,
      bytes: 0,
      rate: 0,
      retransmits: 0,
      startedAt: now,
    };
    const transfer: TrackedTransfer = { id, base, snapshot, sessionKey, inflight: 1, requests: 1, failedRequests: 0, lastProgressAt: now, lastEndAt: now };
    this.active.set(id, transfer);
    if (sessionKey) this.rangeSessions.set(sessionKey, transfer);
    this.options.publish('http.start', { ...base, ...(range ? { range } : {}) });
    return transfer;
  }

  private addBytes(transfer: TrackedTransfer, n: number): void {
    const snapshot = transfer.snapshot;
    snapshot.bytes += n;
    const now = this.clock.now();
    if (now - transfer.lastProgressAt < (this.options.progressIntervalMs ?? 250)) return;
    transfer.lastProgressAt = now;
    const elapsed = now - snapshot.startedAt;
    snapshot.rate = elapsed > 0 ? (snapshot.bytes * 1000) / elapsed : 0;
    this.options.publish('http.progress', {
      ...transfer.base,
      bytes: snapshot.bytes,
      rate: Math.round(snapshot.rate),
      ...(transfer.sessionKey ? { requests: transfer.requests } : {}),
    });
  }

  private endRequest(transfer: TrackedTransfer, err: Error | undefined): void {
    transfer.inflight--;
    transfer.lastEndAt = this.clock.now();
    // Usually the client went away (a range probe, a cancelled download).
    const reason = err ? ((err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' ? 'client closed the connection' : err.message) : undefined;
    if (!transfer.sessionKey) {
      this.finishTransfer(transfer, reason);
      return;
    }
    if (err) transfer.failedRequests++;
    if (transfer.inflight > 0) return;
    transfer.idleTimer = this.clock.setTimeout(() => {
      transfer.idleTimer = undefined;
      if (transfer.inflight === 0) this.finishTransfer(transfer, undefined);
    }, this.options.rangeIdleMs ?? 5000);
  }

  private finishTransfer(transfer: TrackedTransfer, failure: string | undefined): void {
    this.active.delete(transfer.id);
    if (transfer.sessionKey && this.rangeSessions.get(transfer.sessionKey) === transfer) this.rangeSessions.delete(transfer.sessionKey);
    const { snapshot } = transfer;
    const durationMs = transfer.lastEndAt - snapshot.startedAt;
    const rate = durationMs > 0 ? Math.round((snapshot.bytes * 1000) / durationMs) : 0;
    const details = {
      ...transfer.base,
      bytes: snapshot.bytes,
      durationMs,
      rate,
      ...(transfer.sessionKey ? { requests: transfer.requests, failedRequests: transfer.failedRequests } : {}),
    };
    if (failure) this.options.publish('http.failed', { ...details, reason: failure });
    else this.options.publish('http.done', details);
  }

  private plain(res: ServerResponse, status: number, message: string): void {
    const body = `${message}\n`;
    res.statusCode = status;
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.setHeader('content-length', String(Buffer.byteLength(body)));
    res.end(body);
  }

  private refused(ip: string, file: string, reason: string, status: number): void {
    this.options.publish('http.refused', { mac: this.options.macForIp?.(ip), ip, file, reason, status });
  }
}

/** RFC 9110 §13.1.2 (If-None-Match wins over If-Modified-Since, §13.1.3). */
function isNotModified(req: IncomingMessage, etag: string, lastModified: Date): boolean {
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch) return ifNoneMatch.trim() === '*' || ifNoneMatch.split(',').some((tag) => stripWeak(tag.trim()) === etag);
  const ifModifiedSince = req.headers['if-modified-since'];
  if (ifModifiedSince) {
    const since = Date.parse(ifModifiedSince);
    return !Number.isNaN(since) && lastModified.getTime() <= since;
  }
  return false;
}

/** RFC 9110 §13.1.5: a Range applies only if the representation is unchanged. */
function ifRangeAllows(req: IncomingMessage, etag: string, lastModified: Date): boolean {
  const header = req.headers['if-range'];
  const ifRange = Array.isArray(header) ? header[0] : header;
  if (!ifRange) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) return value === etag; // strong comparison only
  const date = Date.parse(value);
  return !Number.isNaN(date) && lastModified.getTime() <= date;
}

function stripWeak(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}
