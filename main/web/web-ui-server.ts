// Web mode: the headless host serves the built renderer over HTTP and carries the API
// contract over one WebSocket at /api, so the same UI runs in any browser (and is tested
// in Chromium) without Electron.
//
// Who may talk to it:
// - Bound to loopback (the default): anyone on this computer, but only from a page this
//   server served. The Host header must name the loopback address (DNS rebinding), and
//   the WebSocket's Origin must be this server (a web page elsewhere cannot drive it).
// - Bound to any other address: additionally a token, printed by the host in the URL
//   fragment (`#token=...`: fragments never reach server logs or Referer headers); the
//   renderer passes it on the WebSocket URL.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  type ApiEnvelope,
  type ApiEventName,
  type ApiEvents,
  type WirePush,
  type WireRequest,
  type WireResponse,
  WEB_API_PATH,
  WEB_TOKEN_HEADER,
  WEB_UPLOAD_PATH,
} from '../../preload/api.js';
import { silentLogger, type Logger } from '../core/index.js';
import { saveUpload, UploadError } from './upload.js';

export interface ApiCallHandler {
  handle(call: string, request: unknown): Promise<ApiEnvelope<unknown>>;
}

/** Subscribes a sink to the host's contract events; returns the unsubscribe. */
export type ApiEventSource = (sink: <E extends ApiEventName>(event: E, payload: ApiEvents[E]) => void) => () => void;

export interface WebUiServerOptions {
  /** Folder with the built renderer (index.html + assets). */
  staticDir: string;
  api: ApiCallHandler;
  events?: ApiEventSource;
  /** Default 127.0.0.1. Anything but loopback requires a token (generated when not given). */
  address?: string;
  /** Default 0 (any free port). */
  port?: number;
  token?: string;
  logger?: Logger;
  /** Where uploaded files wait for `entries:import-uploads`; without it, uploads are refused. */
  uploadDir?: () => string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

/**
 * The page may load only what this server serves and connect only back to it; no inline
 * script, no plugins, no framing. Same policy as the Electron window (main/app).
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** A progress snapshot superseded by the next one can be dropped for a slow client. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export function isLoopbackAddress(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address);
}

export class WebUiServer {
  readonly server: Server;
  readonly token: string | undefined;
  private readonly wss: WebSocketServer;
  private readonly staticDir: string;
  private readonly logger: Logger;
  private readonly address: string;
  private unsubscribe?: () => void;
  private boundPort = 0;

  constructor(private readonly options: WebUiServerOptions) {
    this.address = options.address ?? '127.0.0.1';
    this.staticDir = resolve(options.staticDir);
    this.logger = options.logger ?? silentLogger;
    if (options.token !== undefined && options.token.length < 16) throw new Error('the web UI token must be at least 16 characters');
    this.token = options.token ?? (isLoopbackAddress(this.address) ? undefined : randomBytes(24).toString('base64url'));
    this.server = createServer((req, res) => this.serveHttp(req, res));
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 8 * 1024 * 1024 });
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    this.wss.on('connection', (ws) => this.connection(ws));
  }

  get port(): number {
    return this.boundPort;
  }

  /** The address to open; carries the token in the fragment when one is required. */
  get url(): string {
    const host = isIP(this.address) === 6 ? `[${this.address}]` : this.address;
    return `http://${host}:${this.boundPort}/${this.token ? `#token=${this.token}` : ''}`;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolveListen, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(
          new Error(
            err.code === 'EADDRINUSE'
              ? `The web UI port ${this.options.port} on ${this.address} is already in use: choose another with --ui-port, or stop the program using it.`
              : err.code === 'EADDRNOTAVAIL'
                ? `${this.address} is not an address of this computer: choose one of its own addresses for the web UI (--ui-address).`
                : `The web UI cannot listen on ${this.address}:${this.options.port ?? 0}: ${err.message}`,
          ),
        );
      };
      this.server.once('error', onError);
      this.server.listen(this.options.port ?? 0, this.address, () => {
        this.server.off('error', onError);
        resolveListen();
      });
    });
    const bound = this.server.address();
    this.boundPort = typeof bound === 'object' && bound ? bound.port : 0;
    this.unsubscribe = this.options.events?.((event, payload) => this.broadcast(event, payload));
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
    this.server.closeAllConnections?.();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Host header values this server answers to (DNS rebinding protection). */
  private hostAllowed(hostHeader: string | undefined): boolean {
    if (!hostHeader) return false;
    const port = String(this.boundPort);
    const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostHeader.trim().toLowerCase());
    if (!match || (match[2] ?? '80') !== port) return false;
    const name = match[1]!.replace(/^\[|\]$/g, '');
    if (name === this.address) return true;
    if (isLoopbackAddress(this.address)) return isLoopbackAddress(name);
    // Reached from the network with a token: the technician may use any name for this computer.
    return this.token !== undefined;
  }

  /** Browsers always send Origin on a WebSocket handshake and a POST; it must be this very server. */
  private fromOwnPage(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    return !!origin && !!req.headers.host && origin.toLowerCase() === `http://${req.headers.host.trim().toLowerCase()}`;
  }

  private tokenMatches(given: string | null): boolean {
    if (!this.token) return true;
    if (!given) return false;
    const a = Buffer.from(given);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private serveHttp(req: IncomingMessage, res: ServerResponse): void {
    if (!this.hostAllowed(req.headers.host)) {
      res.writeHead(421, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS });
      res.end('This Bootbench web UI answers only to the address it listens on.\n');
      return;
    }
    if (req.url?.split('?')[0] === WEB_UPLOAD_PATH) {
      void this.receiveUpload(req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', ...SECURITY_HEADERS });
      res.end();
      return;
    }
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400, SECURITY_HEADERS);
      res.end();
      return;
    }
    if (pathname === '/' || pathname === '') pathname = '/index.html';
    const file = normalize(join(this.staticDir, pathname));
    if (pathname.includes('\0') || (file !== this.staticDir && !file.startsWith(this.staticDir + sep))) {
      res.writeHead(404, SECURITY_HEADERS);
      res.end();
      return;
    }
    let size: number;
    try {
      const stat = statSync(file);
      if (!stat.isFile()) throw new Error('not a file');
      size = stat.size;
    } catch {
      const missingUi = pathname === '/index.html';
      res.writeHead(missingUi ? 503 : 404, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS });
      res.end(missingUi ? `The web UI is not built (no ${file}): run \`npm run build:renderer\` first.\n` : 'Not found\n');
      return;
    }
    const hashedAsset = pathname.startsWith('/assets/');
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': size,
      'cache-control': hashedAsset ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...SECURITY_HEADERS,
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file).pipe(res);
  }

  /**
   * POST /upload?name=FILE with the bytes as the body. The same checks as the WebSocket: this
   * server's Host, its own Origin (a page elsewhere cannot post files here) and the token.
   */
  private async receiveUpload(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const answer = (status: number, body: object) => {
      if (res.headersSent) return;
      const text = JSON.stringify(body);
      // The request body may still be arriving: close rather than read a refused upload.
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        ...(status >= 400 ? { connection: 'close' } : {}),
        ...SECURITY_HEADERS,
      });
      res.end(text);
    };
    const refuse = (status: number, message: string) => {
      this.logger.warn(`web UI: refused an upload: ${message}`, { origin: req.headers.origin, host: req.headers.host });
      answer(status, { error: message });
    };
    if (req.method !== 'POST') return refuse(405, 'Uploads are sent with POST.');
    if (!this.fromOwnPage(req)) return refuse(403, 'Uploads are accepted only from the page this server served.');
    const token = req.headers[WEB_TOKEN_HEADER];
    if (!this.tokenMatches(typeof token === 'string' ? token : null))
      return refuse(401, 'The upload did not carry the token from the address this UI was opened with: open that address again.');
    const dir = this.options.uploadDir?.();
    if (!dir) return refuse(503, 'This host has no library to upload to (the machine database is not open).');
    const length = Number(req.headers['content-length']);
    if (!req.headers['content-length'] || !Number.isSafeInteger(length) || length < 0) return refuse(411, 'The upload must say its size (Content-Length).');
    let name: string | null;
    try {
      name = new URL(req.url ?? '/', 'http://x').searchParams.get('name');
    } catch {
      name = null;
    }
    try {
      const saved = await saveUpload(req, { dir, name: name ?? '', size: length });
      answer(200, { upload: saved.id, name: saved.name, size: saved.size });
    } catch (err) {
      const status = err instanceof UploadError ? err.status : 500;
      refuse(status, (err as Error).message);
    }
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: number, reason: string) => {
      this.logger.warn(`web UI: refused a WebSocket connection: ${reason}`, { origin: req.headers.origin, host: req.headers.host });
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    };
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://x');
    } catch {
      return refuse(400, 'Bad Request');
    }
    if (url.pathname !== WEB_API_PATH) return refuse(404, 'Not Found');
    if (!this.hostAllowed(req.headers.host)) return refuse(421, 'Misdirected Request');
    if (!this.fromOwnPage(req)) return refuse(403, 'Forbidden');
    if (!this.tokenMatches(url.searchParams.get('token'))) return refuse(401, 'Unauthorized');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
  }

  private connection(ws: WebSocket): void {
    ws.on('message', (data, isBinary) => {
      if (isBinary) return ws.close(1003, 'text frames only');
      let frame: WireRequest;
      try {
        frame = JSON.parse(data.toString());
      } catch {
        return ws.close(1007, 'not JSON');
      }
      if (!frame || typeof frame !== 'object' || typeof frame.id !== 'number' || typeof frame.call !== 'string') {
        return ws.close(1008, 'not a request frame');
      }
      this.options.api.handle(frame.call, frame.request).then((envelope) => {
        if (ws.readyState !== ws.OPEN) return;
        const reply: WireResponse = { id: frame.id, ...envelope };
        ws.send(JSON.stringify(reply));
      });
    });
    ws.on('error', (err) => this.logger.warn(`web UI: WebSocket error: ${err.message}`));
  }

  private broadcast<E extends ApiEventName>(event: E, payload: ApiEvents[E]): void {
    if (this.wss.clients.size === 0) return;
    const push: WirePush<E> = { event, payload };
    const text = JSON.stringify(push);
    for (const ws of this.wss.clients) {
      if (ws.readyState !== ws.OPEN) continue;
      if (event === 'transfer:progress' && ws.bufferedAmount > MAX_BUFFERED_BYTES) continue;
      ws.send(text);
    }
  }
}
