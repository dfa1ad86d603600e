// Web mode transport on loopback: static files, the WebSocket contract, pushed events,
// and who is refused (wrong Origin, wrong Host, missing token).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import WebSocket from 'ws';
import { WebUiServer, CONTENT_SECURITY_POLICY, type ApiEventSource } from '../../main/web/web-ui-server.js';
import type { ApiEnvelope, ApiEvents } from '../../preload/api.js';

function get(port: number, path: string, host = `127.0.0.1:${port}`): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function connect(url: string, origin?: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, origin ? { origin } : {});
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket, match: (m: any) => boolean = () => true): Promise<any> {
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const message = JSON.parse(data.toString());
      if (match(message)) {
        ws.off('message', onMessage);
        resolve(message);
      }
    };
    ws.on('message', onMessage);
  });
}

describe('WebUiServer on loopback', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bb-ui-'));
  let server: WebUiServer;
  let emit: (<E extends keyof ApiEvents>(e: E, p: ApiEvents[E]) => void) | undefined;
  const calls: [string, unknown][] = [];

  before(async () => {
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Bootbench</title>');
    writeFileSync(join(dir, 'assets', 'app-1234.js'), 'console.log(1)');
    writeFileSync(join(tmpdir(), 'bb-ui-secret.txt'), 'secret');
    const events: ApiEventSource = (sink) => {
      emit = sink;
      return () => (emit = undefined);
    };
    server = new WebUiServer({
      staticDir: dir,
      events,
      api: {
        async handle(call, req): Promise<ApiEnvelope<unknown>> {
          calls.push([call, req]);
          return call === 'services:status' ? { result: { running: false } } : { error: { code: 'unknown-call', message: `Unknown call "${call}".` } };
        },
      },
    });
    await server.start();
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('serves the renderer with a strict CSP and no token on loopback', async () => {
    assert.equal(server.token, undefined);
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const index = await get(server.port, '/');
    assert.equal(index.status, 200);
    assert.match(index.body, /<title>Bootbench/);
    assert.equal(index.headers['content-security-policy'], CONTENT_SECURITY_POLICY);
    assert.match(String(index.headers['content-security-policy']), /script-src 'self';/);
    const asset = await get(server.port, '/assets/app-1234.js');
    assert.equal(asset.status, 200);
    assert.match(String(asset.headers['content-type']), /javascript/);
  });

  test('refuses paths outside the renderer folder and foreign Host headers', async () => {
    assert.equal((await get(server.port, '/../bb-ui-secret.txt')).status, 404);
    assert.equal((await get(server.port, '/%2e%2e/bb-ui-secret.txt')).status, 404);
    // Encoded slashes survive URL normalisation; only the folder check stops these.
    assert.equal((await get(server.port, '/%2f..%2fbb-ui-secret.txt')).status, 404);
    assert.equal((await get(server.port, '/..%5c..%5cbb-ui-secret.txt')).status, 404);
    assert.equal((await get(server.port, '/', `evil.example:${server.port}`)).status, 421, 'DNS rebinding: a foreign name is refused');
    assert.equal((await get(server.port, '/', `localhost:${server.port}`)).status, 200);
  });

  test('carries calls as envelopes and pushes events', async () => {
    const ws = await connect(`ws://127.0.0.1:${server.port}/api`, `http://127.0.0.1:${server.port}`);
    ws.send(JSON.stringify({ id: 1, call: 'services:status' }));
    assert.deepEqual(await nextMessage(ws), { id: 1, result: { running: false } });
    ws.send(JSON.stringify({ id: 2, call: 'nope', request: {} }));
    assert.equal((await nextMessage(ws)).error.code, 'unknown-call');
    const pushed = nextMessage(ws, (m) => m.event);
    emit!('services:state', { running: true, mode: 'proxy', services: [], problems: [] });
    assert.deepEqual(await pushed, { event: 'services:state', payload: { running: true, mode: 'proxy', services: [], problems: [] } });
    ws.close();
  });

  test('refuses a WebSocket from another origin or without one', async () => {
    await assert.rejects(connect(`ws://127.0.0.1:${server.port}/api`, 'http://evil.example'), /HTTP 403/);
    await assert.rejects(connect(`ws://127.0.0.1:${server.port}/api`), /HTTP 403/);
    await assert.rejects(connect(`ws://127.0.0.1:${server.port}/other`, `http://127.0.0.1:${server.port}`), /HTTP 404/);
  });

  test('closes a connection that sends garbage', async () => {
    const ws = await connect(`ws://127.0.0.1:${server.port}/api`, `http://127.0.0.1:${server.port}`);
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send('{not json');
    assert.equal(await closed, 1007);
  });
});

describe('WebUiServer with a token', () => {
  test('a non-loopback bind without a token gets a generated one', () => {
    const s = new WebUiServer({ staticDir: '/nonexistent', address: '0.0.0.0', api: { handle: async () => ({ result: null }) } });
    assert.ok(s.token && s.token.length >= 24);
  });

  test('requires the token on the WebSocket', async () => {
    // Loopback with an explicit token exercises the same check without leaving loopback.
    const token = 'abcdefghijklmnopqrstuvwx';
    const s = new WebUiServer({ staticDir: '/nonexistent', token, api: { handle: async () => ({ result: 'ok' }) } });
    await s.start();
    try {
      assert.match(s.url, new RegExp(`#token=${token}$`));
      const origin = `http://127.0.0.1:${s.port}`;
      await assert.rejects(connect(`ws://127.0.0.1:${s.port}/api`, origin), /HTTP 401/);
      await assert.rejects(connect(`ws://127.0.0.1:${s.port}/api?token=abcdefghijklmnopqrstuvwy`, origin), /HTTP 401/);
      const ws = await connect(`ws://127.0.0.1:${s.port}/api?token=${token}`, origin);
      ws.send(JSON.stringify({ id: 9, call: 'app:info' }));
      assert.deepEqual(await nextMessage(ws), { id: 9, result: 'ok' });
      ws.close();
      const missing = await get(s.port, '/');
      assert.equal(missing.status, 503);
      assert.match(missing.body, /npm run build:renderer/);
    } finally {
      await s.stop();
    }
  });
});
