// HttpFileServer with Node's own client on 127.0.0.1 port 0: the dynamic hook, generated
// files, backpressure, aborted downloads and shutdown.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBus, type BootEvent } from '../../main/core/events.js';
import { MemoryLogger } from '../../main/core/logger.js';
import { FileResolver } from '../../main/files/index.js';
import { HttpFileServer } from '../../main/http/server.js';

const dir = mkdtempSync(join(tmpdir(), 'bb-httpu-'));
const events: BootEvent[] = [];
let server: HttpFileServer;
let files: FileResolver;
const BIG = 64 * 1024 * 1024;

before(async () => {
  writeFileSync(join(dir, 'hello.txt'), 'hello\n');
  const fd = openSync(join(dir, 'big.img'), 'w');
  closeSync(fd);
  truncateSync(join(dir, 'big.img'), BIG); // sparse: costs no disk
  files = new FileResolver({ roots: [dir] });
  files.generate('/boot.ipxe', ({ ip }) => `#!ipxe\necho hello ${ip}\n`);
  const bus = new EventBus();
  bus.subscribe((e) => events.push(e));
  server = new HttpFileServer({
    port: 0,
    address: '127.0.0.1',
    files,
    publish: bus.publish,
    logger: new MemoryLogger(),
    dynamic: (req, res, url) => {
      if (url.pathname !== '/api/ping') return false;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ pong: req.method }));
      return true;
    },
  });
  await server.start();
});

after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ res: IncomingMessage; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ res, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HttpFileServer', () => {
  test('the dynamic hook answers first; unanswered paths fall through to files', async () => {
    const r = await get('/api/ping');
    assert.equal(r.body.toString(), '{"pong":"GET"}');
    const f = await get('/hello.txt');
    assert.equal(f.body.toString(), 'hello\n');
    assert.equal(f.res.headers['content-type'], 'text/plain; charset=utf-8');
  });

  test('generated files: per client, with length, ETag and HEAD', async () => {
    const r = await get('/BOOT.IPXE');
    assert.equal(r.body.toString(), '#!ipxe\necho hello 127.0.0.1\n');
    assert.equal(r.res.headers['content-length'], String(r.body.length));
    const h = await get('/boot.ipxe', {}, 'HEAD');
    assert.equal(h.body.length, 0);
    assert.equal(h.res.headers['content-length'], String(r.body.length));
    assert.equal(h.res.headers.etag, r.res.headers.etag);
  });

  test('If-Modified-Since at or after the file time -> 304', async () => {
    const first = await get('/hello.txt');
    const again = await get('/hello.txt', { 'if-modified-since': String(first.res.headers['last-modified']) });
    assert.equal(again.res.statusCode, 304);
    const older = await get('/hello.txt', { 'if-modified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' });
    assert.equal(older.res.statusCode, 200);
  });

  test('file bodies go out by sendfile(2) on Linux', { skip: process.platform !== 'linux' && 'Linux only' }, () => {
    assert.deepEqual(server.bodyPath, { kind: 'sendfile' });
  });

  /** A client that requests big.img and reads nothing; the server's bytes must stop growing. */
  async function stalledClient(target: HttpFileServer, seen: BootEvent[]): Promise<void> {
    const socket = connect(target.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.pause();
    socket.write('GET /big.img HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => setTimeout(r, 400));
    const active = target.activeTransfers().find((t) => t.file === '/big.img');
    assert.ok(active, 'transfer is running');
    const firstLook = active.bytes;
    await new Promise((r) => setTimeout(r, 300));
    const secondLook = target.activeTransfers().find((t) => t.file === '/big.img')!.bytes;
    assert.ok(secondLook < 32 * 1024 * 1024, `read ${secondLook} bytes of ${BIG} for a client that reads nothing`);
    assert.equal(secondLook, firstLook, 'no more reads while the client is stalled');
    const before = seen.length;
    socket.destroy();
    let failed: BootEvent | undefined;
    for (let i = 0; i < 100 && !failed; i++) {
      failed = seen.slice(before).find((e) => e.type === 'http.failed' && e.file === '/big.img');
      if (!failed) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(failed, 'http.failed after the client went away');
    assert.match(String(failed.reason), /closed/);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(files.openDescriptorCount(), 0, 'descriptor released after the abort');
  }

  test('backpressure: a client that stops reading stops the sending (sendfile)', async () => {
    await stalledClient(server, events);
  });

  test('backpressure: a client that stops reading stops the disk reads (streamed)', async () => {
    const seen: BootEvent[] = [];
    const streamed = new HttpFileServer({
      port: 0,
      address: '127.0.0.1',
      files,
      publish: (type, d) => seen.push({ type, time: 0, ...d }),
      logger: new MemoryLogger(),
      zeroCopy: false,
    });
    await streamed.start();
    try {
      assert.equal(streamed.bodyPath.kind, 'stream');
      await stalledClient(streamed, seen);
    } finally {
      await streamed.stop();
    }
  });

  test(
    'a zero-copy worker that dies mid-response: that response fails, later ones are streamed',
    { skip: process.platform !== 'linux' && 'Linux only' },
    async () => {
      const seen: BootEvent[] = [];
      const other = new HttpFileServer({
        port: 0,
        address: '127.0.0.1',
        files,
        publish: (type, d) => seen.push({ type, time: 0, ...d }),
        logger: new MemoryLogger(),
      });
      await other.start();
      try {
        assert.equal(other.bodyPath.kind, 'sendfile');
        const socket = connect(other.port, '127.0.0.1');
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
        socket.pause();
        socket.write('GET /big.img HTTP/1.1\r\nHost: x\r\n\r\n');
        await new Promise((r) => setTimeout(r, 300));
        await (other as unknown as { zeroCopy: { worker: { terminate(): Promise<number> } } }).zeroCopy.worker.terminate();
        for (let i = 0; i < 100 && !seen.some((e) => e.type === 'http.failed'); i++) await new Promise((r) => setTimeout(r, 20));
        const failed = seen.find((e) => e.type === 'http.failed');
        assert.match(String(failed?.reason), /zero-copy worker failed/);
        socket.destroy();
        assert.deepEqual(other.bodyPath, { kind: 'stream', reason: 'zero-copy worker failed' });
        const n = await new Promise<number>((resolve, reject) => {
          request({ host: '127.0.0.1', port: other.port, path: '/big.img', headers: { range: 'bytes=0-99999' } }, (res) => {
            let got = 0;
            res.on('data', (c: Buffer) => (got += c.length));
            res.on('end', () => resolve(got));
          })
            .on('error', reject)
            .end();
        });
        assert.equal(n, 100_000);
      } finally {
        await other.stop();
      }
      assert.equal(files.openDescriptorCount(), 0);
    },
  );

  test('progress events are throttled', async () => {
    const before = events.length;
    await get('/big.img');
    // The client may have the last byte a moment before the server hears that it went out.
    for (let i = 0; i < 100 && !events.slice(before).some((e) => e.type === 'http.done'); i++) await new Promise((r) => setTimeout(r, 10));
    const mine = events.slice(before).filter((e) => e.file === '/big.img');
    const done = mine.find((e) => e.type === 'http.done')!;
    assert.equal(done.bytes, BIG);
    const progress = mine.filter((e) => e.type === 'http.progress');
    assert.ok(progress.length <= Math.ceil(Number(done.durationMs) / 250) + 1, `${progress.length} progress events in ${done.durationMs} ms`);
  });

  test('range requests of one client for one file are one transfer (iPXE sanboot)', async () => {
    const ranged = new HttpFileServer({
      port: 0,
      address: '127.0.0.1',
      files,
      publish: (type, d) => seen.push({ type, time: 0, ...d }),
      logger: new MemoryLogger(),
      rangeIdleMs: 150,
    });
    const seen: BootEvent[] = [];
    await ranged.start();
    try {
      const fetchRange = (range: string) =>
        new Promise<number>((resolve, reject) => {
          request({ host: '127.0.0.1', port: ranged.port, path: '/big.img', headers: { range } }, (res) => {
            let n = 0;
            res.on('data', (c: Buffer) => (n += c.length));
            res.on('end', () => resolve(n));
          })
            .on('error', reject)
            .end();
        });
      const sizes = [await fetchRange('bytes=0-2047'), await fetchRange('bytes=1048576-1050623'), await fetchRange('bytes=-4096')];
      assert.deepEqual(sizes, [2048, 2048, 4096]);
      assert.equal(seen.filter((e) => e.type === 'http.start').length, 1);
      assert.equal(seen.filter((e) => e.type === 'http.done').length, 0, 'not done while the client may read more');
      await new Promise((r) => setTimeout(r, 400));
      const done = seen.filter((e) => e.type === 'http.done');
      assert.equal(done.length, 1);
      assert.equal(done[0].bytes, 8192);
      assert.equal(done[0].requests, 3);
      assert.equal(done[0].transferId, seen.find((e) => e.type === 'http.start')!.transferId);
      assert.deepEqual(ranged.activeTransfers(), []);
    } finally {
      await ranged.stop();
    }
  });

  test('where sendfile(2) is missing (Windows, macOS), bodies are streamed, and the server says why', async () => {
    const other = new HttpFileServer({ port: 0, address: '127.0.0.1', files, publish: () => {}, logger: new MemoryLogger(), platform: 'win32' });
    await other.start();
    try {
      assert.equal(other.bodyPath.kind, 'stream');
      assert.match(String(other.bodyPath.reason), /win32/);
      const body = await new Promise<Buffer>((resolve, reject) => {
        request({ host: '127.0.0.1', port: other.port, path: '/big.img', headers: { range: 'bytes=1048576-2097151' } }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => resolve(Buffer.concat(parts)));
        })
          .on('error', reject)
          .end();
      });
      assert.equal(body.length, 1024 * 1024);
    } finally {
      await other.stop();
    }
  });

  test('stop() closes idle keep-alive connections', async () => {
    const other = new HttpFileServer({ port: 0, address: '127.0.0.1', files, publish: () => {}, logger: new MemoryLogger() });
    await other.start();
    const socket = connect(other.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => socket.once('data', r));
    const closed = new Promise((r) => socket.once('close', r));
    const t0 = Date.now();
    await other.stop();
    await closed;
    assert.ok(Date.now() - t0 < 1000);
  });

  test('a port in use is explained', async () => {
    const clash = new HttpFileServer({ port: server.port, address: '127.0.0.1', files, publish: () => {}, logger: new MemoryLogger() });
    await assert.rejects(clash.start(), /in use|port/i);
  });
});
