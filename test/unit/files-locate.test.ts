// FileResolver.locate: files found per request, whole or a stretch of a bigger file (a file
// inside an ISO image), served with the same refusals as everything else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FileResolver, type OpenFile } from '../../main/files/index.js';

async function readAll(file: OpenFile): Promise<Buffer> {
  const buffer = Buffer.alloc(file.size);
  let done = 0;
  while (done < file.size) {
    const n = await file.read(buffer, done, Math.min(7, file.size - done), done);
    if (n === 0) break;
    done += n;
  }
  return buffer.subarray(0, done);
}

async function streamed(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test('a located stretch reads and streams only its own bytes; unknown names fall through to the root', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bb-locate-'));
  try {
    const image = Buffer.from('HEADER-the inner file-TRAILER');
    writeFileSync(join(dir, 'image.iso'), image);
    symlinkSync(join(dir, 'image.iso'), join(dir, 'link.iso'));
    mkdirSync(join(dir, 'root', 'images'), { recursive: true });
    writeFileSync(join(dir, 'root', 'images', 'plain.txt'), 'from the root');
    const files = new FileResolver({ roots: [join(dir, 'root')], allowHardLinks: false });
    const asked: string[] = [];
    files.locate('/images', async (rest) => {
      asked.push(rest);
      if (rest === 'inner/File') return { path: join(dir, 'link.iso'), offset: 7, size: 14 };
      if (rest === 'gone') return { missing: 'the entry was removed' };
      if (rest === 'past-end') return { path: join(dir, 'image.iso'), offset: 20, size: 100 };
      return undefined;
    });

    const inner = await files.open('/IMAGES/inner/File', { protocol: 'http' });
    assert.ok(inner.ok, JSON.stringify(inner));
    assert.equal(inner.file.path, '/IMAGES/inner/File');
    assert.equal(inner.file.size, 14);
    assert.equal((await readAll(inner.file)).toString(), 'the inner file');
    assert.equal((await streamed(inner.file.createReadStream(4, 8))).toString(), 'inner');
    assert.equal(await inner.file.read(Buffer.alloc(10), 0, 10, 14), 0, 'nothing past the end of the stretch');
    inner.file.release();
    assert.deepEqual(asked, ['inner/File']);

    const plain = await files.open('/images/plain.txt');
    assert.ok(plain.ok, 'a name the locator does not know comes from the root');
    plain.file.release();
    assert.deepEqual(await files.open('/images/gone'), { ok: false, code: 'not-found', reason: 'the entry was removed', path: '/images/gone' });
    const past = await files.open('/images/past-end');
    assert.ok(!past.ok && past.code === 'not-found' && /past the end/.test(past.reason));
    assert.equal(files.openDescriptorCount(), 0);

    assert.equal(files.unmount('/images'), true);
    assert.equal((await files.open('/images/inner/File')).ok, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a mount below a locator's prefix wins over it", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bb-locate-'));
  try {
    writeFileSync(join(dir, 'mounted.bin'), 'mounted');
    const files = new FileResolver({ roots: [dir] });
    files.locate('/library', async () => ({ missing: 'asked the locator' }));
    files.mount('/library/e1/file.bin', join(dir, 'mounted.bin'));
    const opened = await files.open('/library/e1/file.bin');
    assert.ok(opened.ok);
    opened.file.release();
    assert.equal((await files.open('/library/e1/other.bin')).ok, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
