// The HTTP file server against curl over loopback: full downloads, HEAD, ranges, a sparse
// file over 4 GiB, keep-alive, path safety, progress; each with bodies sent by sendfile(2)
// (where the platform has it) and streamed.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { missingPrograms, waitFor } from '../helpers/netns.js';
import { EventBus, type BootEvent } from '../../main/core/events.js';
import { MemoryLogger } from '../../main/core/logger.js';
import { FileResolver } from '../../main/files/index.js';
import { HttpFileServer } from '../../main/http/server.js';
import { sha256File, writeRandomFile } from './tftp-helpers.js';

const run = promisify(execFile);
const skip = missingPrograms('curl');

const dir = mkdtempSync(join(tmpdir(), 'bb-http-'));
const root = join(dir, 'root');
const out = join(dir, 'out');
const events: BootEvent[] = [];
let base = '';
const servers = new Map<'sendfile' | 'stream', HttpFileServer>();
const hashes = new Map<string, string>();
const SPARSE_SIZE = 5 * 1024 * 1024 * 1024 + 12345; // over 4 GiB: Content-Length must not wrap
const TAIL = Buffer.from('the-end-of-a-very-large-sparse-iso');

before(async () => {
  mkdirSync(join(root, 'Boot'), { recursive: true });
  mkdirSync(out);
  hashes.set('big.bin', writeRandomFile(join(root, 'big.bin'), 20 * 1024 * 1024 + 3));
  hashes.set('kernel', writeRandomFile(join(root, 'Boot', 'vmlinuz'), 300_000));
  const sparse = join(root, 'sparse.iso');
  const fd = openSync(sparse, 'w');
  closeSync(fd);
  truncateSync(sparse, SPARSE_SIZE);
  const fd2 = openSync(sparse, 'r+');
  writeSync(fd2, TAIL, 0, TAIL.length, SPARSE_SIZE - TAIL.length);
  closeSync(fd2);
  const bus = new EventBus();
  bus.subscribe((e) => events.push(e));
  for (const mode of ['sendfile', 'stream'] as const) {
    const server = new HttpFileServer({
      port: 0,
      address: '127.0.0.1',
      files: new FileResolver({ roots: [root] }),
      publish: bus.publish,
      logger: new MemoryLogger(),
      macForIp: () => '52:54:00:aa:bb:cc',
      zeroCopy: mode === 'sendfile',
      progressIntervalMs: 0,
    });
    await server.start();
    servers.set(mode, server);
  }
});

after(async () => {
  for (const server of servers.values()) await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function curl(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('curl', ['-sS', ...args], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'latin1' });
}

function headers(text: string): Record<string, string> {
  const h: Record<string, string> = {};
  for (const line of text.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) h[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return h;
}

for (const mode of ['sendfile', 'stream'] as const)
  describe(`HTTP with curl, bodies by ${mode}`, { skip }, () => {
    before(() => {
      const server = servers.get(mode)!;
      base = `http://127.0.0.1:${server.port}`;
      // sendfile(2) exists on Linux only; elsewhere both servers stream, and say why.
      if (mode === 'sendfile' && process.platform === 'linux') assert.deepEqual(server.bodyPath, { kind: 'sendfile' });
      if (mode === 'stream') assert.equal(server.bodyPath.kind, 'stream');
    });

    test('full GET of a 20 MiB file matches by sha256; events carry the MAC', async () => {
      const before = events.length;
      await curl('-o', join(out, 'big.bin'), `${base}/big.bin`);
      assert.equal(sha256File(join(out, 'big.bin')), hashes.get('big.bin'));
      // The client may have the last byte a moment before the server hears that it went out.
      const done = await waitFor(() => events.slice(before).find((e) => e.type === 'http.done' && e.file === '/big.bin'), 2000, 'http.done');
      assert.equal(done.bytes, 20 * 1024 * 1024 + 3);
      assert.equal(done.mac, '52:54:00:aa:bb:cc');
      assert.ok(events.slice(before).some((e) => e.type === 'http.start' && e.file === '/big.bin'));
    });

    test('progress events count up to the size; a range session counts only its ranges', async () => {
      const before = events.length;
      await curl('-o', '/dev/null', `${base}/big.bin`);
      await waitFor(() => events.slice(before).some((e) => e.type === 'http.done' && e.file === '/big.bin'), 2000, 'http.done');
      const mine = events.slice(before).filter((e) => e.file === '/big.bin');
      const progress = mine.filter((e) => e.type === 'http.progress').map((e) => Number(e.bytes));
      assert.ok(progress.length >= 1, 'at least one progress event for 20 MiB');
      for (let i = 1; i < progress.length; i++) assert.ok(progress[i] > progress[i - 1], `increasing: ${progress.join(',')}`);
      assert.ok(progress.at(-1)! <= 20 * 1024 * 1024 + 3);
      assert.equal(mine.find((e) => e.type === 'http.done')!.bytes, 20 * 1024 * 1024 + 3);
      await curl('-o', '/dev/null', '-r', '1000-1999', `${base}/big.bin`);
      await curl('-o', '/dev/null', '-r', '5000000-5999999', `${base}/big.bin`);
      const ranged = events.slice(before).filter((e) => e.type === 'http.progress' && e.file === '/big.bin' && e.ranged);
      assert.ok(
        ranged.every((e) => Number(e.bytes) <= 1000 + 1_000_000),
        'no more than the ranges asked',
      );
    });

    test('case-insensitive, Windows-style path', async () => {
      await curl('-o', join(out, 'k'), `${base}/boot%5CVMLINUZ`);
      assert.equal(sha256File(join(out, 'k')), hashes.get('kernel'));
    });

    test('HEAD: length, validators, ranges advertised, no body', async () => {
      const r = await curl('-I', `${base}/big.bin`);
      assert.match(r.stdout, /^HTTP\/1\.1 200/);
      const h = headers(r.stdout);
      assert.equal(h['content-length'], String(20 * 1024 * 1024 + 3));
      assert.equal(h['accept-ranges'], 'bytes');
      assert.match(h['etag'], /^".+"$/);
      assert.ok(!Number.isNaN(Date.parse(h['last-modified'])));
      assert.equal(h['content-type'], 'application/octet-stream');
    });

    test('ranges: middle, suffix, open-ended; bytes match the file', async () => {
      const whole = await curl(`${base}/Boot/vmlinuz`);
      const file = Buffer.from(whole.stdout, 'latin1');
      for (const [range, start, end] of [
        ['100-199', 100, 199],
        ['-500', file.length - 500, file.length - 1],
        ['299000-', 299000, file.length - 1],
        ['0-0', 0, 0],
      ] as const) {
        const r = await curl('-i', '-r', range, `${base}/Boot/vmlinuz`);
        const [head, body] = r.stdout.split('\r\n\r\n', 2).length === 2 ? splitOnce(r.stdout) : ['', ''];
        assert.match(head, /^HTTP\/1\.1 206/, range);
        assert.equal(headers(head)['content-range'], `bytes ${start}-${end}/${file.length}`);
        assert.deepEqual(Buffer.from(body, 'latin1'), file.subarray(start, end + 1), range);
      }
    });

    test('unsatisfiable range -> 416 with the size; several ranges -> the whole file', async () => {
      const r = await curl('-i', '-r', '400000-500000', `${base}/Boot/vmlinuz`);
      assert.match(r.stdout, /^HTTP\/1\.1 416/);
      assert.equal(headers(splitOnce(r.stdout)[0])['content-range'], 'bytes */300000');
      const multi = await curl('-i', '-r', '0-9,100-109', `${base}/Boot/vmlinuz`);
      assert.match(multi.stdout, /^HTTP\/1\.1 200/);
      assert.equal(headers(splitOnce(multi.stdout)[0])['content-length'], '300000');
    });

    test('sparse file over 4 GiB: HEAD length and a Range at the very end', async () => {
      const head = await curl('-I', `${base}/sparse.iso`);
      assert.equal(headers(head.stdout)['content-length'], String(SPARSE_SIZE));
      assert.equal(headers(head.stdout)['content-type'], 'application/x-iso9660-image');
      const r = await curl('-i', '-r', `${SPARSE_SIZE - TAIL.length}-`, `${base}/sparse.iso`);
      const [h, body] = splitOnce(r.stdout);
      assert.match(h, /^HTTP\/1\.1 206/);
      assert.equal(headers(h)['content-range'], `bytes ${SPARSE_SIZE - TAIL.length}-${SPARSE_SIZE - 1}/${SPARSE_SIZE}`);
      assert.equal(body, TAIL.toString('latin1'));
      const mid = await curl('-r', '4294967290-4294967305', `${base}/sparse.iso`);
      assert.equal(mid.stdout.length, 16, 'a range across the 4 GiB boundary');
    });

    test('conditional requests: If-None-Match -> 304, stale If-Range -> whole file', async () => {
      const etag = headers((await curl('-I', `${base}/Boot/vmlinuz`)).stdout)['etag'];
      const r = await curl('-i', '-H', `If-None-Match: ${etag}`, `${base}/Boot/vmlinuz`);
      assert.match(r.stdout, /^HTTP\/1\.1 304/);
      const stale = await curl('-i', '-r', '0-9', '-H', 'If-Range: "not-the-etag"', `${base}/Boot/vmlinuz`);
      assert.match(stale.stdout, /^HTTP\/1\.1 200/);
      const fresh = await curl('-i', '-r', '0-9', '-H', `If-Range: ${etag}`, `${base}/Boot/vmlinuz`);
      assert.match(fresh.stdout, /^HTTP\/1\.1 206/);
    });

    test('keep-alive: two requests share one connection', async () => {
      const r = await curl('-v', '-o', '/dev/null', '-o', '/dev/null', `${base}/Boot/vmlinuz`, `${base}/big.bin`);
      assert.match(r.stderr, /Re-using existing connection|Reusing existing connection/);
    });

    test('path safety: traversal (raw and encoded), NUL, drive -> 403; missing -> 404; bad escape -> 400', async () => {
      const status = async (path: string) => (await curl('-o', '/dev/null', '-w', '%{http_code}', '--path-as-is', `${base}${path}`)).stdout;
      for (const p of [
        '/../etc/passwd',
        '/%2e%2e/%2e%2e/etc/passwd',
        '/Boot/..%2f..%2fetc%2fpasswd',
        '/%5c..%5c..%5cetc%5cpasswd',
        '/big.bin%00.txt',
        '/C:%5cWindows%5cwin.ini',
        '/..%5c..%5c',
      ]) {
        assert.equal(await status(p), '403', p);
      }
      assert.equal(await status('/nothing-here'), '404');
      assert.equal(await status('/Boot'), '404');
      assert.equal(await status('/%zz'), '400');
      assert.equal(await status('/%252e%252e/etc/passwd'), '404', 'decoded once only: a literal "%2e%2e" folder');
      assert.ok(events.some((e) => e.type === 'http.refused' && e.status === 403));
    });

    test('only GET and HEAD', async () => {
      const r = await curl('-i', '-X', 'POST', `${base}/big.bin`);
      assert.match(r.stdout, /^HTTP\/1\.1 405/);
      assert.equal(headers(splitOnce(r.stdout)[0])['allow'], 'GET, HEAD');
    });
  });

function splitOnce(text: string): [string, string] {
  const i = text.indexOf('\r\n\r\n');
  return i < 0 ? [text, ''] : [text.slice(0, i), text.slice(i + 4)];
}
