// The Library screen's import through the contract: `entries:import` on HostApi with the
// real import flow (detection, hashing, copy into the data folder) and a real store.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../../main/store/index.js';
import { storeApi } from '../../main/api/api-store.js';
import { storeLibraryImporter } from '../../main/api/api-library.js';
import { HostApi } from '../../main/api/api.js';
import { resolveEntryFilePath } from '../../main/library/import.js';
import type { BootEntry, ImportFilesResult } from '../../preload/api.js';
import { buildIso, buildPe, xorrisoMissing } from './library-fixtures.js';
import { idleServiceHost } from '../helpers/idle-host.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const host = idleServiceHost();

describe('entries:import through HostApi', () => {
  let dir: string;
  let dataDir: string;
  let store: Store;
  let api: HostApi;
  let mounts = 0;
  const efi = Buffer.concat([buildPe(0x8664), Buffer.alloc(3000, 0x41)]);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bb-ui-import-'));
    dataDir = join(dir, 'data');
    store = openStore(':memory:');
    const library = storeLibraryImporter({ store, dataDir: () => dataDir, afterChange: async () => void mounts++ });
    api = new HostApi({ host, store: storeApi(store, { dataDir: () => dataDir }), library, listInterfaces: () => [], shell: 'web' });
  });
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function importFiles(paths: string[]): Promise<ImportFilesResult> {
    const reply = await api.handle('entries:import', { paths });
    if ('error' in reply) throw new Error(`${reply.error.code}: ${reply.error.message}`);
    return reply.result as ImportFilesResult;
  }

  test('an EFI program becomes an entry; an unknown file is refused with what was seen', async () => {
    const tool = join(dir, 'memtest.efi');
    const notes = join(dir, 'notes.txt');
    writeFileSync(tool, efi);
    writeFileSync(notes, 'just some text, not a boot file\n');

    const result = await importFiles([tool, notes]);
    assert.equal(result.entries.length, 1);
    const [entry] = result.entries;
    assert.equal(entry!.name, 'memtest');
    assert.equal(entry!.kind, 'nbp');
    assert.deepEqual(entry!.archs, ['uefi64']);
    assert.equal(entry!.sha256, sha(efi));
    assert.equal(entry!.size, efi.length);
    assert.equal(result.problems.length, 1);
    assert.match(result.problems[0]!, /^Not added: notes\.txt: .*first bytes/);

    // Stored in the library: listed, copied into the data folder byte for byte, source untouched.
    const listed = await api.handle('entries:list', undefined);
    assert.ok('result' in listed);
    assert.deepEqual(
      (listed.result as BootEntry[]).map((e) => [e.name, e.kind, e.sha256]),
      [['memtest', 'nbp', sha(efi)]],
    );
    const copy = resolveEntryFilePath(store.entries.list()[0]!.files[0]!, dataDir);
    assert.ok(copy.startsWith(join(dataDir, 'library')), copy);
    assert.deepEqual(readFileSync(copy), efi);
    assert.deepEqual(readFileSync(tool), efi);
    assert.equal(mounts, 1, 'the running services are told once');
  });

  test('the same content twice, at once: one entry, the other reported as already there', async () => {
    const again = join(dir, 'memtest-copy.efi');
    writeFileSync(again, efi);
    const [a, b] = await Promise.all([importFiles([again]), importFiles([again])]);
    assert.equal(a.entries.length + b.entries.length, 0, 'memtest is already in the library');
    for (const r of [a, b]) assert.match(r.problems.join('\n'), /memtest-copy is already in the library as "memtest"/);
    assert.equal(store.entries.list().length, 1);
    assert.equal(mounts, 1, 'nothing new to mount');
  });

  test('missing and relative paths are refused in words; an empty list is an invalid request', async () => {
    const result = await importFiles([join(dir, 'gone.iso'), 'relative/ipxe.efi']);
    assert.equal(result.entries.length, 0);
    assert.equal(result.problems.length, 2);
    assert.match(result.problems.join('\n'), /gone\.iso: there is no such file or folder/);
    assert.match(result.problems.join('\n'), /relative\/ipxe\.efi: give the full path/);
    const empty = await api.handle('entries:import', { paths: [] });
    assert.ok('error' in empty && empty.error.code === 'invalid-request');
    assert.equal(existsSync(join(dataDir, 'library', 'gone')), false);
  });

  test('a data ISO with nothing bootable is refused at import, saying why', { skip: xorrisoMissing() }, async () => {
    const iso = buildIso(dir, { 'photos/readme.txt': 'holiday photos', 'data.bin': Buffer.alloc(300_000, 7) }, ['-R', '-J', '-V', 'DATA_DISC'], 'data.iso');
    const before = store.entries.list().length;
    const result = await importFiles([iso]);
    assert.equal(result.entries.length, 0);
    assert.equal(store.entries.list().length, before, 'no entry a PC could be assigned to');
    assert.equal(result.problems.length, 1);
    assert.match(
      result.problems[0]!,
      /^Not added: data\.iso: not bootable: the ISO image "DATA_DISC" has no El Torito boot record, no EFI loader .* add a bootable ISO instead/,
    );
    // The same tree with a BIOS boot record is taken.
    const bootable = buildIso(
      dir,
      { 'isolinux/isolinux.bin': Buffer.alloc(2048, 0x90), 'data.bin': Buffer.alloc(300_000, 8) },
      ['-R', '-V', 'BOOTABLE', '-b', 'isolinux/isolinux.bin', '-no-emul-boot'],
      'bootable.iso',
    );
    const taken = await importFiles([bootable]);
    assert.deepEqual(
      taken.entries.map((e) => e.kind),
      ['iso'],
    );

    // A data disc taken in before import refused them is not handed to a machine or a group.
    const bytes = readFileSync(iso);
    const old = store.entries.create({
      name: 'old data disc',
      kind: 'iso',
      files: [{ arch: 'any', role: 'iso', path: iso, size: bytes.length, sha256: sha(bytes) }],
    });
    const pc = store.machines.create({ macs: ['52:54:00:00:09:01'], name: 'pc-91', group: 'row-9' });
    for (const [call, request] of [
      ['machines:update', { id: pc.id, entryId: old.id }],
      ['machines:assign-group', { group: 'row-9', entryId: old.id }],
    ] as const) {
      const reply = await api.handle(call, request);
      assert.ok('error' in reply, `${call} must refuse`);
      assert.equal(reply.error.code, 'invalid-request');
      assert.match(reply.error.message, /^"old data disc" cannot be assigned: not bootable: .*choose another entry\.$/);
    }
    assert.equal(store.machines.get(pc.id)!.entryId, null, 'nothing was assigned');
    const ok = await api.handle('machines:update', { id: pc.id, entryId: taken.entries[0]!.id });
    assert.ok('result' in ok, 'a bootable ISO is assigned');
  });

  test('without a library (no store) the call is refused as unavailable, never faked', async () => {
    const bare = new HostApi({ host, listInterfaces: () => [], shell: 'web' });
    const reply = await bare.handle('entries:import', { paths: ['/tmp/ipxe.efi'] });
    assert.ok('error' in reply);
    assert.equal(reply.error.code, 'unavailable');
    assert.match(reply.error.message, /no boot library/);
  });
});
