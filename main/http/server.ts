// HTTP file server for the boot roots: what iPXE and UEFI HTTP boot fetch (kernels,
// initrds, WIMs, ISOs for `sanboot`). GET and HEAD, one byte range per request (RFC 9110
// §14), validators (ETag, Last-Modified), keep-alive, streaming with backpressure.
// Generated content (iPXE scripts, the web UI, its API) is answered by `dynamic` first;
// the http.Server is exposed so the host can attach a WebSocket upgrade handler.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import mime from 'mime-types';
import rangeParser from 'range-parser';
import { systemClock, type Clock } from '../host/clock.js';
import type { Publish } from '../host/events.js';
import type { Logger } from '../host/logger.js';
import type { FileResolver, OpenFile } from '../files/index.js';
import { explainBindFailure } from '../net/bind-errors.js';

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
}

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

interface ActiveResponse {
  snapshot: HttpTransferSnapshot;
}

export class HttpFileServer {
  readonly server: Server;
  private boundPort = 0;
  private readonly clock: Clock;
  private readonly active = new Map<string, ActiveResponse>();
  private counter = 0;

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

  start(): Promise<void> {
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

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
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

    const id = `http-${(++this.counter).toString(36)}`;
    const startedAt = this.clock.now();
    const range = status === 206 ? { start, end } : undefined;
    const base = { transferId: id, mac, ip, file: file.path, size: file.size, length, range, status };
    const snapshot: HttpTransferSnapshot = { id, mac, ip, file: file.path, protocol: 'http', size: file.size, bytes: 0, rate: 0, retransmits: 0, startedAt };
    this.active.set(id, { snapshot });
    this.options.publish('http.start', base);

    const interval = this.options.progressIntervalMs ?? 250;
    let lastProgress = startedAt;
    let bytes = 0;
    const stream = file.createReadStream(start, end, this.options.readChunkBytes ?? 512 * 1024);
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      const now = this.clock.now();
      snapshot.bytes = bytes;
      if (now - lastProgress >= interval) {
        lastProgress = now;
        const elapsed = now - startedAt;
        snapshot.rate = elapsed > 0 ? (bytes * 1000) / elapsed : 0;
        this.options.publish('http.progress', { ...base, bytes, rate: Math.round(snapshot.rate) });
      }
    });
    pipeline(stream, res, (err) => {
      file.release();
      this.active.delete(id);
      const durationMs = this.clock.now() - startedAt;
      const rate = durationMs > 0 ? Math.round((bytes * 1000) / durationMs) : 0;
      if (err) {
        // Usually the client went away (a range probe, a cancelled download).
        const reason = (err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' ? 'client closed the connection' : err.message;
        this.options.publish('http.failed', { ...base, bytes, durationMs, rate, reason });
        return;
      }
      this.options.publish('http.done', { ...base, bytes, durationMs, rate });
    });
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
