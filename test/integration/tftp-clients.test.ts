// Interoperability with real TFTP clients from Debian over loopback: tftp-hpa's tftp,
// atftp (blksize, windowsize, tsize), curl tftp:// and busybox tftp. Every download is
// compared by sha256 with the source.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { missingPrograms, waitFor } from '../helpers/netns.js';
import { sha256File, TftpFixture } from './tftp-helpers.js';

const run = promisify(execFile);
const LONG = process.env.BOOTBENCH_LONG === '1';

const fx = new TftpFixture();
let port = 0;

before(async () => {
  fx.addFile('small.bin', 100_000);
  fx.addFile('exact.bin', 1468 * 64); // multiple of blksize: ends with an empty block
  fx.addFile('medium.bin', 3_000_001);
  fx.addFile('rollover.bin', 33 * 1024 * 1024 + 777); // > 65535 blocks of 512
  fx.addText('empty.txt', '');
  await fx.start();
  port = fx.server.port;
});

after(() => fx.stop());

function check(name: string, local: string): void {
  assert.equal(sha256File(local), fx.hashes.get(name), `${name}: sha256 of the download`);
}

function lastEvent(type: string, file: string) {
  return fx.events.filter((e) => e.type === type && e.file === '/' + file).at(-1);
}

describe('tftp-hpa tftp', { skip: missingPrograms('tftp') }, () => {
  for (const name of ['small.bin', 'exact.bin', 'medium.bin', 'empty.txt']) {
    test(`get ${name} (binary mode, lock-step 512)`, async () => {
      const out = join(fx.out, `hpa-${name}`);
      await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', name, out], { timeout: 60_000 });
      check(name, out);
      // The end is reported by the worker thread (when it runs the transfer) a moment after
      // the client has its last block.
      const done = await waitFor(() => lastEvent('tftp.done', name), 2000, 'tftp.done published');
      assert.equal(done.mac, '52:54:00:12:34:56');
      assert.equal(done.ip, '127.0.0.1');
    });
  }

  test('Windows spelling and a different case find the file', async () => {
    const out = join(fx.out, 'hpa-case');
    await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', '\\SMALL.BIN', out], { timeout: 30_000 });
    check('small.bin', out);
  });

  test('a missing file and a traversal are refused with ERROR 1 / 2', async () => {
    const a = await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', 'missing.bin', join(fx.out, 'x1')], { timeout: 30_000 });
    assert.match(a.stdout + a.stderr, /Error code 1/);
    const b = await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', '../../etc/passwd', join(fx.out, 'x2')], { timeout: 30_000 });
    assert.match(b.stdout + b.stderr, /Error code 2/);
    assert.ok(fx.events.some((e) => e.type === 'tftp.refused' && e.file === '../../etc/passwd' && e.errorCode === 2));
  });

  test('a write request gets ERROR 2', async () => {
    const r = await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'put', join(fx.root, 'small.bin'), 'upload.bin'], { timeout: 30_000 });
    assert.match(r.stdout + r.stderr, /Error code 2/);
  });
});

describe('atftp', { skip: missingPrograms('atftp') }, () => {
  const cases: [string, string[]][] = [
    ['blksize 1468', ['--option', 'blksize 1468']],
    ['blksize 1468 + windowsize 16 + tsize', ['--option', 'blksize 1468', '--option', 'windowsize 16', '--option', 'tsize 0']],
    ['blksize 512 + windowsize 64', ['--option', 'blksize 512', '--option', 'windowsize 64']],
    ['blksize 8 (RFC 2348 minimum)', ['--option', 'blksize 8']],
    ['blksize 65464 clamped to 1468', ['--option', 'blksize 65464']],
  ];
  for (const [label, options] of cases) {
    for (const name of ['small.bin', 'exact.bin', 'medium.bin']) {
      if (label.startsWith('blksize 8') && name === 'medium.bin') continue;
      test(`${label}: ${name}`, async () => {
        const out = join(fx.out, `atftp-${label.replace(/\W+/g, '_')}-${name}`);
        await run('atftp', ['-g', '-r', name, '-l', out, ...options, '127.0.0.1', String(port)], { timeout: 60_000 });
        check(name, out);
        const start = fx.events.filter((e) => e.type === 'tftp.start' && e.file === '/' + name).at(-1)!;
        const negotiated = start.options as Record<string, number>;
        if (label.includes('clamped')) assert.equal(negotiated.blksize, 1468);
        if (label.includes('windowsize 16')) {
          assert.equal(negotiated.windowsize, 16);
          assert.equal(negotiated.tsize, start.size);
        }
      });
    }
  }

  test('rollover: 33 MiB at blksize 512 (65536+ blocks) with windowsize 16', async () => {
    const out = join(fx.out, 'atftp-rollover');
    await run('atftp', ['-g', '-r', 'rollover.bin', '-l', out, '--option', 'blksize 512', '--option', 'windowsize 16', '127.0.0.1', String(port)], {
      timeout: 120_000,
    });
    check('rollover.bin', out);
  });

  test('rollover: 97 MiB at blksize 1468 (BOOTBENCH_LONG)', { skip: LONG ? undefined : 'long variant: set BOOTBENCH_LONG=1' }, async () => {
    fx.addFile('huge.bin', 97 * 1024 * 1024);
    const out = join(fx.out, 'atftp-huge');
    await run('atftp', ['-g', '-r', 'huge.bin', '-l', out, '--option', 'blksize 1468', '--option', 'windowsize 16', '127.0.0.1', String(port)], {
      timeout: 300_000,
    });
    check('huge.bin', out);
  });
});

describe('curl tftp://', { skip: missingPrograms('curl') }, () => {
  for (const [label, args] of [
    ['default blksize', []],
    ['--tftp-blksize 1468', ['--tftp-blksize', '1468']],
  ] as const) {
    // Not empty.txt: curl 7.88 fails any empty TFTP download ("getpeername() failed"),
    // against atftpd too, and never ACKs the empty block.
    for (const name of ['small.bin', 'exact.bin', 'medium.bin']) {
      test(`${label}: ${name}`, async () => {
        const out = join(fx.out, `curl-${args.length}-${name}`);
        await run('curl', ['-sS', '-o', out, ...args, `tftp://127.0.0.1:${port}/${name}`], { timeout: 60_000 });
        check(name, out);
      });
    }
  }

  test(
    'rollover: 33 MiB at blksize 512, lock-step (curl handles the wrap)',
    { skip: LONG ? undefined : 'long variant (65536+ round trips): set BOOTBENCH_LONG=1' },
    async () => {
      const out = join(fx.out, 'curl-rollover');
      await run('curl', ['-sS', '-o', out, '--tftp-blksize', '512', `tftp://127.0.0.1:${port}/rollover.bin`], { timeout: 300_000 });
      check('rollover.bin', out);
    },
  );
});

describe('busybox tftp', { skip: missingPrograms('busybox') }, () => {
  for (const [label, args] of [
    ['no options', []],
    ['-b 1468', ['-b', '1468']],
  ] as const) {
    for (const name of ['small.bin', 'exact.bin', 'medium.bin']) {
      test(`${label}: ${name}`, async () => {
        const out = join(fx.out, `bb-${args.length}-${name}`);
        await run('busybox', ['tftp', '-g', '-r', name, '-l', out, ...args, '127.0.0.1', String(port)], { timeout: 60_000 });
        check(name, out);
      });
    }
  }
});

describe('after all clients', () => {
  test('no transfer is left active and no descriptor is left open', async () => {
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(fx.server.activeTransfers(), []);
    assert.equal(fx.files.openDescriptorCount(), 0);
    assert.equal(fx.ofType('tftp.failed').length, 0, JSON.stringify(fx.ofType('tftp.failed')));
  });
});
