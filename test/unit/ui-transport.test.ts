// The renderer's transports: WebSocket against the real web-mode server and HostApi (on
// loopback), reconnection, and the Electron bridge's error mapping.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { EventBus } from '../../main/core/events.js';
import { HostApi, connectApiEvents, type ApiServiceHost } from '../../main/api/api.js';
import { WebUiServer } from '../../main/web/web-ui-server.js';
import {
  ApiClient,
  IpcTransport,
  WebSocketTransport,
  errorFromBridge,
  webSocketUrlFor,
  type ConnectionState,
  type WebSocketLike,
} from '../../renderer/src/lib/transport.js';
import { ApiCallError, type BootbenchBridge, type ServicesStatus } from '../../preload/api.js';

function host(): ApiServiceHost & { bus: EventBus } {
  const bus = new EventBus();
  let status: ServicesStatus = { running: false, mode: 'proxy', services: [], problems: [] };
  return {
    bus,
    async start(o) {
      status = { ...status, running: true, interfaceName: o?.interfaceName, services: [{ name: 'tftp', port: 69, state: 'running' }] };
      bus.publish('service.state', { status });
      return status;
    },
    async stop() {
      status = { ...status, running: false };
      return status;
    },
    status: () => status,
    config: () => ({ mode: 'proxy', root: '/srv', httpPort: 8080, boot: {}, dataDir: '/srv/bootbench' }),
    activeTransfers: () => [],
  };
}

const wsFactory = (origin: string) => (url: string) => new WebSocket(url, { origin }) as unknown as WebSocketLike;

describe('WebSocketTransport against the web-mode server', () => {
  const h = host();
  let server: WebUiServer;
  before(async () => {
    const api = new HostApi({ host: h, listInterfaces: () => [], shell: 'web' });
    server = new WebUiServer({ staticDir: '/nonexistent', api, events: (sink) => connectApiEvents({ host: h, sink }) });
    await server.start();
  });
  after(() => server.stop());

  test('typed calls resolve, errors reject as ApiCallError with the code, events arrive', async () => {
    const origin = `http://127.0.0.1:${server.port}`;
    const transport = new WebSocketTransport(`ws://127.0.0.1:${server.port}/api`, { createSocket: wsFactory(origin) });
    const client = new ApiClient(transport);
    try {
      // Sent before the socket is open: queued, then delivered.
      const status = await client.call('services:status');
      assert.equal(status.running, false);
      const pushed = new Promise<ServicesStatus>((resolve) => client.on('services:state', resolve));
      const started = await client.call('services:start', { interfaceName: 'bench0', mode: 'proxy' });
      assert.equal(started.interfaceName, 'bench0');
      assert.equal((await pushed).services[0]!.name, 'tftp');
      await assert.rejects(client.call('services:start', { mode: 'dhcp', pool: { first: 'x', last: 'y' } }), (err: unknown) => {
        assert.ok(err instanceof ApiCallError);
        assert.equal(err.code, 'invalid-request');
        assert.match(err.message, /pool\.first/);
        return true;
      });
      await assert.rejects(client.call('entries:import', { paths: ['/x'] }), (err: ApiCallError) => err.code === 'unavailable');
    } finally {
      transport.close();
    }
  });

  test('a refused connection (wrong origin) ends closed and retries; unsent calls wait for the reconnect', async () => {
    const states: ConnectionState[] = [];
    const timers: (() => void)[] = [];
    const transport = new WebSocketTransport(`ws://127.0.0.1:${server.port}/api`, {
      createSocket: wsFactory('http://evil.example'),
      setTimer: (fn, ms) => {
        if (ms < 10_000) timers.push(fn); // reconnect timers; call timeouts are left alone
        return 0;
      },
      clearTimer: () => {},
    });
    transport.onConnection((s) => states.push(s));
    let settled = false;
    const call = transport.invoke('services:status', undefined).finally(() => (settled = true));
    const rejected = assert.rejects(call, /connection is closed/);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(states, ['connecting', 'closed']);
    assert.equal(timers.length, 1, 'one reconnect scheduled');
    assert.equal(settled, false, 'a call never sent is kept for the next connection');
    transport.close();
    await rejected;
  });
});

describe('WebSocketTransport reconnection (fake sockets)', () => {
  class FakeSocket implements WebSocketLike {
    static all: FakeSocket[] = [];
    readyState = 0;
    sent: string[] = [];
    onopen: ((ev: unknown) => void) | null = null;
    onclose: ((ev: unknown) => void) | null = null;
    onerror: ((ev: unknown) => void) | null = null;
    onmessage: ((ev: { data: unknown }) => void) | null = null;
    constructor(readonly url: string) {
      FakeSocket.all.push(this);
    }
    send(data: string) {
      this.sent.push(data);
    }
    close() {
      this.readyState = 3;
      this.onclose?.({});
    }
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }
    reply(data: unknown) {
      this.onmessage?.({ data: JSON.stringify(data) });
    }
  }

  test('rejects calls in flight when the connection drops, backs off, and reconnects', async () => {
    FakeSocket.all = [];
    const delays: number[] = [];
    const pending: (() => void)[] = [];
    const transport = new WebSocketTransport('ws://h/api', {
      createSocket: (url) => new FakeSocket(url),
      setTimer: (fn, ms) => {
        if (ms < 10_000) {
          delays.push(ms);
          pending.push(fn);
        }
        return 0;
      },
      clearTimer: () => {},
    });
    const first = FakeSocket.all[0]!;
    first.open();
    const inFlight = transport.invoke('machines:list', undefined);
    assert.deepEqual(JSON.parse(first.sent[0]!), { id: 1, call: 'machines:list' });
    first.close();
    await assert.rejects(inFlight, (err: ApiCallError) => err.code === 'unavailable' && /connection .* was lost/.test(err.message));
    pending.shift()!();
    FakeSocket.all[1]!.close(); // host still down
    pending.shift()!();
    assert.deepEqual(delays, [500, 1000], 'backs off');
    const third = FakeSocket.all[2]!;
    const call = transport.invoke('services:status', undefined);
    assert.equal(third.sent.length, 0, 'queued until open');
    third.open();
    const frame = JSON.parse(third.sent[0]!);
    third.reply({ id: frame.id, result: { running: true } });
    assert.deepEqual(await call, { running: true });
    third.close();
    pending.shift()!();
    assert.equal(delays.at(-1), 500, 'a successful connection resets the back-off');
    transport.close();
  });

  test('ignores replies to unknown ids and malformed frames', async () => {
    FakeSocket.all = [];
    const transport = new WebSocketTransport('ws://h/api', { createSocket: (url) => new FakeSocket(url), setTimer: () => 0, clearTimer: () => {} });
    const socket = FakeSocket.all[0]!;
    socket.open();
    const call = transport.invoke('app:info', undefined);
    socket.onmessage?.({ data: '{garbage' });
    socket.reply({ id: 999, result: 'not yours' });
    socket.reply({ id: 1, error: { code: 'failed', message: 'disk full' } });
    await assert.rejects(call, /disk full/);
    transport.close();
  });
});

describe('transport helpers', () => {
  test('web socket URL follows the page and carries the token from the fragment', () => {
    assert.equal(webSocketUrlFor({ protocol: 'http:', host: '127.0.0.1:8099', hash: '' }), 'ws://127.0.0.1:8099/api');
    assert.equal(webSocketUrlFor({ protocol: 'http:', host: '192.0.2.1:8099', hash: '#token=abc_DEF-123' }), 'ws://192.0.2.1:8099/api?token=abc_DEF-123');
    assert.equal(webSocketUrlFor({ protocol: 'https:', host: 'bench:1', hash: '' }, 'stored'), 'wss://bench:1/api?token=stored');
  });

  test('IPC transport rebuilds the error code the preload put in the message', async () => {
    assert.equal(errorFromBridge(new Error("Error invoking remote method 'x': Error: [unavailable] the database is not open"), 'x').code, 'unavailable');
    assert.equal(errorFromBridge(new Error('[not-found] no machine 4'), 'x').message, 'no machine 4');
    assert.equal(errorFromBridge(new Error('boom'), 'x').code, 'failed');
    const bridge = {
      calls: {
        'services:status': async () => ({ running: true }),
        'machines:list': async () => {
          throw new Error('[unavailable] database closed');
        },
      },
      subscribe: () => () => {},
    } as unknown as BootbenchBridge;
    const client = new ApiClient(new IpcTransport(bridge));
    assert.deepEqual(await client.call('services:status'), { running: true });
    await assert.rejects(client.call('machines:list'), (err: ApiCallError) => err.code === 'unavailable' && err.message === 'database closed');
  });
});
