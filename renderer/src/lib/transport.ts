// How the renderer reaches the host: one small interface, two implementations.
// - Electron: the preload's `window.bootbench` bridge (IPC underneath).
// - Web mode: a WebSocket back to the server that served this page.
// The rest of the renderer only sees `ApiClient`, typed by preload/api.ts.
import {
  ApiCallError,
  BRIDGE_GLOBAL,
  WEB_API_PATH,
  isApiCallName,
  type ApiArgs,
  type ApiCallName,
  type ApiErrorCode,
  type ApiEventName,
  type ApiEvents,
  type ApiResponse,
  type BootbenchBridge,
  type WirePush,
  type WireResponse,
} from '../../../preload/api.js';

export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface Transport {
  readonly kind: 'ipc' | 'websocket';
  /** Resolves with the result; rejects with ApiCallError. */
  invoke(call: ApiCallName, request: unknown): Promise<unknown>;
  subscribe<E extends ApiEventName>(event: E, listener: (payload: ApiEvents[E]) => void): () => void;
  onConnection(listener: (state: ConnectionState) => void): () => void;
  close(): void;
}

/** Typed calls over any transport. */
export class ApiClient {
  constructor(readonly transport: Transport) {}

  call<C extends ApiCallName>(call: C, ...args: ApiArgs<C>): Promise<ApiResponse<C>> {
    return this.transport.invoke(call, args[0]) as Promise<ApiResponse<C>>;
  }

  on<E extends ApiEventName>(event: E, listener: (payload: ApiEvents[E]) => void): () => void {
    return this.transport.subscribe(event, listener);
  }
}

class Listeners<T extends unknown[]> {
  private readonly set = new Set<(...args: T) => void>();
  add(listener: (...args: T) => void): () => void {
    this.set.add(listener);
    return () => this.set.delete(listener);
  }
  emit(...args: T): void {
    for (const listener of [...this.set]) {
      try {
        listener(...args);
      } catch (err) {
        console.error('listener failed', err);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Electron

/** The preload rejects with "[code] message" (only an Error's message crosses contextBridge). */
export function errorFromBridge(err: unknown, call: string): ApiCallError {
  const text = err instanceof Error ? err.message : String(err);
  const match = /^(?:Error invoking remote method '[^']*': (?:Error: )?)?\[([a-z-]+)\] ([\s\S]*)$/.exec(text);
  if (match) return new ApiCallError(match[1] as ApiErrorCode, match[2]!, call);
  return new ApiCallError('failed', text, call);
}

export class IpcTransport implements Transport {
  readonly kind = 'ipc';
  constructor(private readonly bridge: BootbenchBridge) {}

  async invoke(call: ApiCallName, request: unknown): Promise<unknown> {
    const fn = this.bridge.calls[call] as ((r?: unknown) => Promise<unknown>) | undefined;
    if (!fn) throw new ApiCallError('unknown-call', `Unknown call "${call}".`, call);
    try {
      return await (request === undefined ? fn() : fn(request));
    } catch (err) {
      throw errorFromBridge(err, call);
    }
  }

  subscribe<E extends ApiEventName>(event: E, listener: (payload: ApiEvents[E]) => void): () => void {
    return this.bridge.subscribe(event, listener);
  }

  onConnection(listener: (state: ConnectionState) => void): () => void {
    listener('open'); // IPC to our own main process does not drop
    return () => {};
  }

  close(): void {}
}

// ---------------------------------------------------------------------------------------
// Web mode

/** The subset of the browser WebSocket used here (the `ws` package's client fits too). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

export interface WebSocketTransportOptions {
  /** Creates the socket; default: the browser's WebSocket. */
  createSocket?: (url: string) => WebSocketLike;
  /** Delay before reconnect attempt n (0-based); default 0.5 s doubling up to 5 s. */
  reconnectDelay?: (attempt: number) => number;
  /** A call gives up after this long (default 60 s: starting DHCP probes for a few seconds). */
  callTimeoutMs?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

const OPEN = 1;

export class WebSocketTransport implements Transport {
  readonly kind = 'websocket';
  private socket?: WebSocketLike;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; call: string; timer: unknown }>();
  private readonly queue: { id: number; frame: string }[] = [];
  private readonly events = new Map<ApiEventName, Listeners<[unknown]>>();
  private readonly connection = new Listeners<[ConnectionState]>();
  private state: ConnectionState = 'connecting';
  private attempt = 0;
  private reconnectTimer: unknown;
  private closed = false;
  private readonly options: Required<WebSocketTransportOptions>;

  constructor(
    private readonly url: string,
    options: WebSocketTransportOptions = {},
  ) {
    this.options = {
      createSocket: options.createSocket ?? ((u) => new WebSocket(u) as unknown as WebSocketLike),
      reconnectDelay: options.reconnectDelay ?? ((n) => Math.min(5000, 500 * 2 ** n)),
      callTimeoutMs: options.callTimeoutMs ?? 60_000,
      setTimer: options.setTimer ?? ((fn, ms) => setTimeout(fn, ms)),
      clearTimer: options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>)),
    };
    this.open();
  }

  get connectionState(): ConnectionState {
    return this.state;
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.connection.emit(state);
  }

  private open(): void {
    this.setState('connecting');
    const socket = this.options.createSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.setState('open');
      for (const { frame } of this.queue.splice(0)) socket.send(frame);
    };
    socket.onmessage = (ev) => this.receive(ev.data);
    socket.onerror = () => {}; // followed by onclose, which decides
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      // Calls sent may or may not have run on the host: say so rather than retrying them.
      // Calls still queued were never sent and go out after the reconnect.
      const queued = new Set(this.queue.map((q) => q.id));
      for (const [id, p] of this.pending) {
        if (queued.has(id)) continue;
        this.options.clearTimer(p.timer);
        p.reject(
          new ApiCallError(
            'unavailable',
            'The connection to the Bootbench host was lost before it answered; check the host is running, then try again.',
            p.call,
          ),
        );
        this.pending.delete(id);
      }
      this.setState('closed');
      if (this.closed) return;
      this.reconnectTimer = this.options.setTimer(() => this.open(), this.options.reconnectDelay(this.attempt++));
    };
  }

  private receive(data: unknown): void {
    let frame: WireResponse | WirePush;
    try {
      frame = JSON.parse(String(data));
    } catch {
      return;
    }
    if ('event' in frame) {
      this.events.get(frame.event)?.emit(frame.payload);
      return;
    }
    const p = this.pending.get(frame.id);
    if (!p) return;
    this.pending.delete(frame.id);
    this.options.clearTimer(p.timer);
    if ('error' in frame) p.reject(new ApiCallError(frame.error.code, frame.error.message, p.call));
    else p.resolve(frame.result);
  }

  invoke(call: ApiCallName, request: unknown): Promise<unknown> {
    if (!isApiCallName(call)) return Promise.reject(new ApiCallError('unknown-call', `Unknown call "${call}".`, call));
    if (this.closed) return Promise.reject(new ApiCallError('unavailable', 'The connection is closed.', call));
    const id = this.nextId++;
    const frame = JSON.stringify(request === undefined ? { id, call } : { id, call, request });
    return new Promise((resolve, reject) => {
      const timer = this.options.setTimer(() => {
        if (!this.pending.delete(id)) return;
        const index = this.queue.findIndex((q) => q.id === id);
        if (index >= 0) this.queue.splice(index, 1);
        reject(new ApiCallError('unavailable', `The host did not answer ${call} within ${Math.round(this.options.callTimeoutMs / 1000)} s.`, call));
      }, this.options.callTimeoutMs);
      this.pending.set(id, { resolve, reject, call, timer });
      if (this.socket && this.socket.readyState === OPEN) this.socket.send(frame);
      else this.queue.push({ id, frame });
    });
  }

  subscribe<E extends ApiEventName>(event: E, listener: (payload: ApiEvents[E]) => void): () => void {
    let set = this.events.get(event);
    if (!set) this.events.set(event, (set = new Listeners()));
    return set.add(listener as (p: unknown) => void);
  }

  onConnection(listener: (state: ConnectionState) => void): () => void {
    listener(this.state);
    return this.connection.add(listener);
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer !== undefined) this.options.clearTimer(this.reconnectTimer);
    this.socket?.close(1000, 'closing');
    for (const [id, p] of this.pending) {
      this.options.clearTimer(p.timer);
      p.reject(new ApiCallError('unavailable', 'The connection is closed.', p.call));
      this.pending.delete(id);
    }
    this.queue.length = 0;
  }
}

/** ws://host/api for the page's own origin, with the token from `#token=` when there is one. */
export function webSocketUrlFor(location: { protocol: string; host: string; hash: string }, storedToken?: string | null): string {
  const fromHash = /(?:^#|&)token=([^&]+)/.exec(location.hash)?.[1];
  const token = fromHash ?? storedToken ?? undefined;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${WEB_API_PATH}${token ? `?token=${encodeURIComponent(decodeURIComponent(token))}` : ''}`;
}

/** IPC when the preload bridge is there (Electron), else a WebSocket to this page's server. */
export function pickTransport(win: Window & { [BRIDGE_GLOBAL]?: BootbenchBridge } = window as never): Transport {
  const bridge = win[BRIDGE_GLOBAL];
  if (bridge) return new IpcTransport(bridge);
  // Keep the token for reloads, then take it out of the address bar (and of screenshots).
  const stored = win.sessionStorage?.getItem('bootbench.token');
  const url = webSocketUrlFor(win.location, stored);
  const token = /[?&]token=([^&]+)/.exec(url)?.[1];
  if (token) win.sessionStorage?.setItem('bootbench.token', decodeURIComponent(token));
  if (win.location.hash.includes('token=')) win.history.replaceState(null, '', win.location.pathname + win.location.search);
  return new WebSocketTransport(url);
}
