// Windows installation media keep their files in UDF only; the library finds bootmgr, BCD,
// boot.sdi and boot.wim there, serves them in place, and boots them with wimboot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UdfImage } from '../../main/library/udf.js';
import { listIsoDirectory } from '../../main/library/iso9660.js';
import { detectFile, type IsoDetection } from '../../main/library/detect.js';
import { buildIpxeScript } from '../../main/library/ipxe-script.js';
import { openStore } from '../../main/store/index.js';
import { importPath } from '../../main/library/import.js';
import { LibraryBootService } from '../../main/library/boot-service.js';
import { buildPe, buildUdfOnlyIso, buildWim, genisoimageMissing } from './library-fixtures.js';

let dir: string;
let iso: string;
const wim = buildWim(9, 'Microsoft Windows Setup (amd64)');
const bcd = Buffer.alloc(8192, 0x42);
before(() => {
  if (genisoimageMissing()) return;
  dir = mkdtempSync(join(tmpdir(), 'bootbench-udf-'));
  iso = buildUdfOnlyIso(dir, {
    bootmgr: Buffer.alloc(5000, 0x4d),
    'boot/bcd': bcd,
    'boot/boot.sdi': Buffer.alloc(3000, 0x53),
    'sources/boot.wim': wim,
    'efi/boot/bootx64.efi': buildPe(0x8664, { signed: true }),
    'Long File Name With Spaces.txt': 'x',
  });
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const skip = genisoimageMissing();

test('the ISO 9660 tree shows only the README; UDF shows everything, names and offsets right', { skip }, async () => {
  assert.deepEqual(
    (await listIsoDirectory(iso, '/')).map((e) => e.name),
    ['README.TXT'],
  );
  const udf = (await UdfImage.open(iso))!;
  try {
    assert.equal(udf.volumeId, 'CCCOMA_X64FRE_EN-US_DV9');
    const names = (await udf.list('/')).map((e) => e.name).sort();
    assert.deepEqual(names, ['Long File Name With Spaces.txt', 'README.TXT', 'boot', 'bootmgr', 'efi', 'sources']);
    const entry = (await udf.stat('Boot\\BCD'))!;
    assert.equal(entry.size, bcd.length);
    assert.deepEqual(readFileSync(iso).subarray(entry.offset, entry.offset + entry.size), bcd);
    assert.equal(await udf.stat('boot/missing'), undefined);
  } finally {
    await udf.close();
  }
  // A plain ISO without UDF has no anchor at sector 256.
  assert.equal(await UdfImage.open(join(import.meta.dirname, 'library-udf.test.ts')), undefined);
});

test('detection finds the Windows boot files through UDF', { skip }, async () => {
  const d = (await detectFile(iso)) as IsoDetection;
  assert.equal(d.kind, 'iso');
  assert.deepEqual(d.windows, {
    bootmgr: 'bootmgr',
    bcd: 'boot/bcd',
    bootSdi: 'boot/boot.sdi',
    bootWim: 'sources/boot.wim',
    efiBootmgr: 'efi/boot/bootx64.efi',
    udfOnly: true,
  });
  assert.deepEqual(d.architectures, ['x64']);
  assert.match(d.summary, /Windows boot files \(in UDF\)/);
});

test('served in place from UDF and booted with wimboot', { skip }, async () => {
  const data = join(dir, 'data');
  const store = openStore(data);
  try {
    const imported = await importPath(iso, { dataDir: data, mode: 'reference', name: 'Windows 11 setup' });
    const entry = store.entries.create({
      ...imported,
      files: imported.files.map(({ arch, role, path, size, sha256 }) => ({ arch, role, path, size, sha256 })),
    });
    const service = new LibraryBootService({ store, dataDir: data, httpBaseUrl: 'http://192.0.2.1:8080', serverAddress: '192.0.2.1', httpPort: 8080 });
    const where = await service.locateServed(entry.id, 'iso/sources/boot.wim');
    assert.ok('path' in where, JSON.stringify(where));
    if ('path' in where) assert.deepEqual(readFileSync(where.path).subarray(where.offset, where.offset + where.size), wim);
    const script = buildIpxeScript(
      { action: 'entry', entry: await service.scriptEntry(entry) },
      { httpBaseUrl: 'http://192.0.2.1:8080', architecture: 'x64', wimbootUrl: 'http://192.0.2.1:8080/ipxe/wimboot' },
    );
    assert.ok(script.includes(`initrd --name BCD http://192.0.2.1:8080/library/e${entry.id}/iso/boot/bcd BCD || goto failed`), script);
    assert.ok(script.includes(`initrd --name boot.wim http://192.0.2.1:8080/library/e${entry.id}/iso/sources/boot.wim boot.wim || goto failed`));
  } finally {
    store.close();
  }
});
