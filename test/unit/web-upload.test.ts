// Web mode uploads: file names that could leave the upload area are refused, a full disk is
// refused up front or mid-way with a clear message, and no partial file survives any failure;
// the endpoint applies the WebSocket's checks (Host, Origin, token).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { Readable, Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { saveUpload, uploadFileName, UploadError } from '../../main/web/upload.js';
import { WebUiServer } from '../../main/web/web-ui-server.js';
import { createUiHost } from '../../main/web/ui-host.js';
import { uploadsDir } from '../../main/library/import.js';

const isUploadError = (status: number, message: RegExp) => (err: unknown) => err instanceof UploadError && err.status === status && message.test(err.message);

describe('upload file names', () => {
  test('a plain file name is kept as it is', () => {
    for (const name of ['ipxe.efi', 'debian-12.5.0-amd64-netinst.iso', 'Kernel v6 (signed).img', 'résumé.wim']) assert.equal(uploadFileName(name), name);
  });
  test('anything that names another place is refused, not cleaned up', () => {
    const cases: [string, RegExp][] = [
      ['../../etc/passwd', /is a path/],
      ['/etc/passwd', /is a path/],
      ['boot/ipxe.efi', /is a path/],
      ['..\\windows\\win.ini', /is a path/],
      ['..', /starts with a dot/],
      ['.bashrc', /starts with a dot/],
      ['C:evil.efi', /names a drive/],
      ['a\u0000b.efi', /control characters/],
      ['line\nbreak.iso', /control characters/],
      ['', /has no file name/],
      ['x'.repeat(201), /longer than 200 bytes/],
    ];
    for (const [name, message] of cases) assert.throws(() => uploadFileName(name), isUploadError(400, message), JSON.stringify(name));
  });
});

describe('saveUpload', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'bb-upload-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const area = (name: string) => join(dir, name);
  const left = (name: string) => (existsSync(area(name)) ? readdirSync(area(name)) : []);

  test('streams the body into a folder of its own and names the file when complete', async () => {
    const bytes = randomBytes(300_000);
    const saved = await saveUpload(Readable.from([bytes.subarray(0, 100_000), bytes.subarray(100_000)]), {
      dir: area('ok'),
      name: 'ipxe.efi',
      size: bytes.length,
    });
    assert.match(saved.id, /^[0-9a-f]{32}$/);
    assert.deepEqual(readdirSync(join(area('ok'), saved.id)), ['ipxe.efi']);
    assert.deepEqual(readFileSync(join(area('ok'), saved.id, 'ipxe.efi')), bytes);
  });

  test('a disk without room for the announced size is refused before a byte is written', async () => {
    await assert.rejects(
      saveUpload(Readable.from([Buffer.alloc(10)]), { dir: area('small'), name: 'big.iso', size: 5 * 1024 * 1024, freeBytes: () => 1024 * 1024 }),
      isUploadError(507, /has 1\.0 MiB free and big\.iso needs 5\.0 MiB: free space there/),
    );
    assert.deepEqual(left('small'), []);
  });

  test('a disk that fills up mid-way: a clear message and nothing kept', async () => {
    let written = 0;
    const filling = () =>
      new Writable({
        write(chunk: Buffer, _e, done) {
          written += chunk.length;
          if (written > 64 * 1024) return done(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
          done();
        },
      });
    const body = Readable.from(Array.from({ length: 8 }, () => Buffer.alloc(32 * 1024, 7)));
    await assert.rejects(
      saveUpload(body, { dir: area('full'), name: 'rescue.iso', size: 8 * 32 * 1024, openWrite: filling }),
      isUploadError(507, /filled up while rescue\.iso was uploaded .* nothing was kept/),
    );
    assert.deepEqual(left('full'), [], 'the upload folder and its partial file are gone');
  });

  test('a body that breaks off or ends short leaves nothing', async () => {
    const broken = new Readable({ read() {} });
    broken.push(Buffer.alloc(1000));
    setTimeout(() => broken.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })), 20);
    await assert.rejects(saveUpload(broken, { dir: area('broken'), name: 'a.efi', size: 5000 }), isUploadError(400, /stopped after .* nothing was kept/));
    assert.deepEqual(left('broken'), []);

    await assert.rejects(
      saveUpload(Readable.from([Buffer.alloc(100)]), { dir: area('short'), name: 'b.efi', size: 200 }),
      isUploadError(400, /ended after 100 of 200 bytes/),
    );
    assert.deepEqual(left('short'), []);
    await assert.rejects(
      saveUpload(Readable.from([Buffer.alloc(300)]), { dir: area('long'), name: 'c.efi', size: 200 }),
      isUploadError(400, /More bytes arrived/),
    );
    assert.deepEqual(left('long'), []);
  });
});

function post(port: number, path: string, body: Buffer, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', headers: { host: `127.0.0.1:${port}`, 'content-length': String(body.length), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, body: String(res.headers['content-type']).startsWith('application/json') ? JSON.parse(text) : text }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('POST /upload on the web UI server', () => {
  const token = 'abcdefghijklmnopqrstuvwx';
  let dir: string;
  let server: WebUiServer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bb-upload-srv-'));
    server = new WebUiServer({ staticDir: '/nonexistent', token, uploadDir: () => join(dir, 'uploads'), api: { handle: async () => ({ result: null }) } });
    await server.start();
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("needs this server's Origin and the token, like the WebSocket", async () => {
    const origin = `http://127.0.0.1:${server.port}`;
    const body = Buffer.from('hello');
    assert.equal((await post(server.port, '/upload?name=a.efi', body, { 'x-bootbench-token': token })).status, 403, 'no Origin');
    assert.equal((await post(server.port, '/upload?name=a.efi', body, { origin: 'http://evil.example', 'x-bootbench-token': token })).status, 403);
    const noToken = await post(server.port, '/upload?name=a.efi', body, { origin });
    assert.equal(noToken.status, 401);
    assert.match(noToken.body.error, /token/);
    assert.equal((await post(server.port, '/upload?name=a.efi', body, { origin, 'x-bootbench-token': 'abcdefghijklmnopqrstuvwy' })).status, 401);
    assert.equal((await post(server.port, '/upload?name=a.efi', body, { origin, host: 'evil.example', 'x-bootbench-token': token })).status, 421);
    assert.ok(!existsSync(join(dir, 'uploads')) || readdirSync(join(dir, 'uploads')).length === 0, 'nothing was stored');

    const traversal = await post(server.port, `/upload?name=${encodeURIComponent('../../x.efi')}`, body, { origin, 'x-bootbench-token': token });
    assert.equal(traversal.status, 400);
    assert.match(traversal.body.error, /is a path/);

    const ok = await post(server.port, '/upload?name=a.efi', body, { origin, 'x-bootbench-token': token });
    assert.equal(ok.status, 200);
    assert.match(ok.body.upload, /^[0-9a-f]{32}$/);
    assert.equal(readFileSync(join(dir, 'uploads', ok.body.upload, 'a.efi'), 'utf8'), 'hello');
  });

  test('a browser that goes away mid-upload leaves no file', async () => {
    const origin = `http://127.0.0.1:${server.port}`;
    const before = readdirSync(join(dir, 'uploads')).length;
    await new Promise<void>((resolve) => {
      const req = request({
        host: '127.0.0.1',
        port: server.port,
        path: '/upload?name=big.iso',
        method: 'POST',
        headers: { host: `127.0.0.1:${server.port}`, origin, 'x-bootbench-token': token, 'content-length': String(10 * 1024 * 1024) },
      });
      req.on('error', () => resolve());
      req.write(Buffer.alloc(256 * 1024));
      // Break off only once the host has started writing the partial file.
      const started = Date.now();
      const poll = setInterval(() => {
        if (readdirSync(join(dir, 'uploads')).length > before || Date.now() - started > 3000) {
          clearInterval(poll);
          assert.equal(readdirSync(join(dir, 'uploads')).length, before + 1, 'the upload was being written');
          req.destroy();
        }
      }, 10);
    });
    const deadline = Date.now() + 3000;
    while (readdirSync(join(dir, 'uploads')).length !== before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(readdirSync(join(dir, 'uploads')).length, before, "the aborted upload's folder is removed");
  });
});

test('a host that stopped mid-upload leaves nothing behind after its next start', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bb-upload-restart-'));
  try {
    const stale = join(uploadsDir(dataDir), 'f'.repeat(32));
    mkdirSync(stale, { recursive: true });
    writeFileSync(join(stale, 'rescue.iso.partial'), Buffer.alloc(1000));
    const ui = createUiHost({ dataDir });
    try {
      assert.equal(existsSync(uploadsDir(dataDir)), false);
    } finally {
      await ui.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
