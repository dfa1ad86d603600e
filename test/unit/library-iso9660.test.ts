// The ISO 9660 reader on an image assembled byte by byte (ECMA-119), for what xorriso will
// not produce in a test: a multi-extent file (normally only files over 4 GiB) whose pieces
// lie apart, which must be extracted rather than served in place.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IsoImage, openIsoFile, extractIsoFile, ISO_SECTOR } from '../../main/library/iso9660.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'bootbench-iso9660-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function record(name: Buffer, lba: number, size: number, flags: number): Buffer {
  const length = 33 + name.length + (name.length % 2 === 0 ? 1 : 0);
  const r = Buffer.alloc(length);
  r[0] = length;
  r.writeUInt32LE(lba, 2);
  r.writeUInt32BE(lba, 6);
  r.writeUInt32LE(size, 10);
  r.writeUInt32BE(size, 14);
  r[25] = flags;
  r.writeUInt16LE(1, 28);
  r.writeUInt16BE(1, 30);
  r[32] = name.length;
  name.copy(r, 33);
  return r;
}

/** Sectors: 16 PVD, 17 terminator, 18 root directory, 20 piece 1, 23 piece 2, 25 SMALL.TXT. */
function buildImage(first: Buffer, second: Buffer, small: Buffer): Buffer {
  const image = Buffer.alloc(27 * ISO_SECTOR);
  const pvd = image.subarray(16 * ISO_SECTOR, 17 * ISO_SECTOR);
  pvd[0] = 1;
  pvd.write('CD001', 1, 'latin1');
  pvd[6] = 1;
  pvd.write('HANDMADE'.padEnd(32, ' '), 40, 'latin1');
  pvd.writeUInt32LE(27, 80);
  pvd.writeUInt32BE(27, 84);
  pvd.writeUInt16LE(ISO_SECTOR, 128);
  pvd.writeUInt16BE(ISO_SECTOR, 130);
  record(Buffer.from([0]), 18, ISO_SECTOR, 2).copy(pvd, 156);
  const terminator = image.subarray(17 * ISO_SECTOR);
  terminator[0] = 255;
  terminator.write('CD001', 1, 'latin1');
  const root = Buffer.concat([
    record(Buffer.from([0]), 18, ISO_SECTOR, 2),
    record(Buffer.from([1]), 18, ISO_SECTOR, 2),
    record(Buffer.from('INSTALL.WIM;1'), 20, first.length, 0x80), // more extents follow
    record(Buffer.from('INSTALL.WIM;1'), 23, second.length, 0),
    record(Buffer.from('SMALL.TXT;1'), 25, small.length, 0),
  ]);
  root.copy(image, 18 * ISO_SECTOR);
  first.copy(image, 20 * ISO_SECTOR);
  second.copy(image, 23 * ISO_SECTOR);
  small.copy(image, 25 * ISO_SECTOR);
  return image;
}

test('multi-extent file: listed once with both extents; read across the seam; not servable in place; extracted', async () => {
  const first = Buffer.alloc(2 * ISO_SECTOR, 0x11); // a non-final extent is a whole number of sectors
  const second = Buffer.from('tail of the big file');
  const path = join(dir, 'handmade.iso');
  writeFileSync(path, buildImage(first, second, Buffer.from('hello')));
  const image = await IsoImage.open(path);
  try {
    assert.deepEqual(image.info, { volumeId: 'HANDMADE', volumeSize: 27 * ISO_SECTOR, names: 'iso9660' });
    const list = await image.list('/');
    assert.deepEqual(
      list.map((e) => e.name),
      ['INSTALL.WIM', 'SMALL.TXT'],
    );
    const wim = list[0];
    assert.equal(wim.size, first.length + second.length);
    assert.deepEqual(wim.extents, [
      { offset: 20 * ISO_SECTOR, size: first.length },
      { offset: 23 * ISO_SECTOR, size: second.length },
    ]);
    const seam = await image.readFile(wim, first.length - 3, 7);
    assert.deepEqual(seam, Buffer.concat([first.subarray(-3), second.subarray(0, 4)]));
  } finally {
    await image.close();
  }
  await assert.rejects(openIsoFile(path, 'install.wim'), /stored in separate pieces; it has to be extracted first/);
  assert.deepEqual(await openIsoFile(path, 'small.txt'), { offset: 25 * ISO_SECTOR, size: 5 });
  const progress: number[] = [];
  const target = join(dir, 'install.wim');
  assert.deepEqual(await extractIsoFile(path, 'INSTALL.WIM', target, (p) => progress.push(p.bytes)), { size: first.length + second.length });
  assert.deepEqual(readFileSync(target), Buffer.concat([first, second]));
  assert.equal(progress.at(-1), first.length + second.length);
});

test('a directory record pointing past the end of the image is an IsoFormatError, not a crash', async () => {
  const image = buildImage(Buffer.alloc(ISO_SECTOR), Buffer.alloc(10), Buffer.alloc(1));
  // Root directory extent -> sector 5000 (beyond the 27-sector image), in the PVD and in ".".
  image.writeUInt32LE(5000, 16 * ISO_SECTOR + 156 + 2);
  const path = join(dir, 'broken.iso');
  writeFileSync(path, image);
  const iso = await IsoImage.open(path);
  try {
    await assert.rejects(iso.list('/'), /lies beyond the end of the image/);
  } finally {
    await iso.close();
  }
});

test('the boot service serves a split file by extracting it once into the data folder', async () => {
  const { openStore } = await import('../../main/store/index.js');
  const { LibraryBootService } = await import('../../main/library/boot-service.js');
  const first = Buffer.alloc(2 * ISO_SECTOR, 0x22);
  const second = Buffer.from('end');
  const path = join(dir, 'split.iso');
  writeFileSync(path, buildImage(first, second, Buffer.from('x')));
  const data = join(dir, 'data');
  const store = openStore(data);
  try {
    // Recorded as an entry directly: this hand-made image holds no boot record, and import refuses data discs.
    const bytes = readFileSync(path);
    const entry = store.entries.create({
      name: 'split',
      kind: 'iso',
      files: [{ arch: 'any', role: 'iso', path, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') }],
    });
    const events: string[] = [];
    const service = new LibraryBootService({
      store,
      dataDir: data,
      httpBaseUrl: 'http://127.0.0.1',
      serverAddress: '127.0.0.1',
      httpPort: 80,
      publish: (type, d) => events.push(`${type} ${String(d?.message ?? '')}`),
    });
    const [a, b] = await Promise.all([service.locateServed(entry.id, 'iso/install.wim'), service.locateServed(entry.id, 'iso/INSTALL.WIM')]);
    assert.ok('path' in a && 'path' in b);
    if (!('path' in a) || !('path' in b)) return;
    assert.equal(a.path, b.path);
    assert.ok(a.path.startsWith(join(data, 'library', '.extracted')));
    assert.deepEqual(readFileSync(a.path), Buffer.concat([first, second]));
    // Named as the ISO stores it, whichever spelling asked first.
    assert.equal(events.filter((e) => e.includes('extracting INSTALL.WIM from split.iso')).length, 1, events.join('\n'));
    assert.deepEqual(await service.locateServed(entry.id, 'iso/small.txt'), { path, offset: 25 * ISO_SECTOR, size: 1 });
  } finally {
    store.close();
  }
});
