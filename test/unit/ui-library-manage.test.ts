// Managing the library through the contract: entries:update (rename, kernel arguments,
// Secure Boot chain), entries:pair, entries:remove, entries:import-uploads and what
// entries:list says about each entry, on HostApi with a real store and real files.
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../../main/store/index.js';
import { storeApi } from '../../main/api/api-store.js';
import { storeLibraryImporter } from '../../main/api/api-library.js';
import { HostApi } from '../../main/api/api.js';
import { ensureLocalDiskEntry, resolveEntryFilePath, uploadsDir } from '../../main/library/index.js';
import type { ApiCallName, BootEntry, EntryRemoveResult, EntryUpdateResult, ImportFilesResult, MachineGroup } from '../../preload/api.js';
import { buildBzImage, buildCpioNewc, buildPe } from './library-fixtures.js';
import { idleServiceHost } from '../helpers/idle-host.js';

const kernelBytes = Buffer.concat([buildBzImage({ version: '6.1.0-test', efiStub: true }), Buffer.alloc(7000, 0x90)]);
const initrdBytes = buildCpioNewc('init', Buffer.alloc(5000, 0x41));

describe('managing library entries through HostApi', () => {
  let dir: string;
  let dataDir: string;
  let store: Store;
  let api: HostApi;
  let changes = 0;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bb-ui-manage-'));
    dataDir = join(dir, 'data');
    store = openStore(':memory:');
    changes = 0;
    const library = storeLibraryImporter({ store, dataDir: () => dataDir, afterChange: async () => void changes++ });
    api = new HostApi({ host: idleServiceHost(), store: storeApi(store), library, listInterfaces: () => [], shell: 'web' });
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function call<T>(name: ApiCallName, request?: unknown): Promise<T> {
    const reply = await api.handle(name, request);
    if ('error' in reply) throw new Error(`${reply.error.code}: ${reply.error.message}`);
    return reply.result as T;
  }
  async function refusal(name: ApiCallName, request: unknown): Promise<string> {
    const reply = await api.handle(name, request);
    assert.ok('error' in reply, `${name} should be refused`);
    return reply.error.message;
  }
  function file(name: string, bytes: Buffer): string {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  }
  async function importKernelPair(): Promise<BootEntry> {
    const result = await call<ImportFilesResult>('entries:import', { paths: [file('vmlinuz', kernelBytes), file('initrd.img', initrdBytes)] });
    assert.equal(result.entries.length, 1, result.problems.join('; '));
    return result.entries[0]!;
  }

  test('a kernel and its initrd added together are one entry; its size counts each file once', async () => {
    const entry = await importKernelPair();
    assert.equal(entry.kind, 'kernel');
    assert.deepEqual(entry.archs.sort(), ['bios', 'uefi64']);
    assert.equal(entry.files.length, 4, 'kernel and initrd rows for each of the two boot classes');
    assert.equal(entry.size, kernelBytes.length + initrdBytes.length);
    assert.deepEqual(entry.bootable, { ok: true, reason: 'boots on bios, uefi64' });
    assert.match(entry.detected, /kernel/i);
    assert.equal(entry.secureBoot, 'off');
    assert.equal(entry.builtIn, false);
  });

  test('added one by one they are two entries; pairing makes the one entry and removes the initrd entry', async () => {
    const [kernel] = (await call<ImportFilesResult>('entries:import', { paths: [file('vmlinuz', kernelBytes)] })).entries;
    const [initrd] = (await call<ImportFilesResult>('entries:import', { paths: [file('initrd.img', initrdBytes)] })).entries;
    assert.equal(initrd!.kind, 'initrd');
    assert.equal(initrd!.bootable.ok, false);
    assert.match(initrd!.bootable.reason, /pair it with its kernel/);

    assert.match(await refusal('entries:pair', { kernelId: initrd!.id, initrdId: kernel!.id }), /not a kernel/);
    const paired = await call<BootEntry>('entries:pair', { kernelId: kernel!.id, initrdId: initrd!.id });
    assert.deepEqual(
      paired.files.map((f) => `${f.arch}:${f.role}`),
      ['bios:kernel', 'bios:initrd', 'uefi64:kernel', 'uefi64:initrd'],
    );
    assert.equal(paired.size, kernelBytes.length + initrdBytes.length);
    const list = await call<BootEntry[]>('entries:list');
    assert.deepEqual(
      list.map((e) => e.name),
      ['vmlinuz'],
    );
    // The initrd's copy in the library is now the kernel entry's, and still there.
    assert.ok(
      existsSync(
        resolveEntryFilePath(
          paired.files.find((f) => f.role === 'initrd')!,
          dataDir,
        ),
      ),
    );
    assert.equal(changes, 3, 'the services are told after each import and after pairing');
  });

  test('rename and kernel arguments are validated on the host', async () => {
    const entry = await importKernelPair();
    const renamed = await call<EntryUpdateResult>('entries:update', { id: entry.id, name: 'Debian rescue', arguments: 'console=ttyS0 quiet' });
    assert.equal(renamed.entry.name, 'Debian rescue');
    assert.equal(renamed.entry.arguments, 'console=ttyS0 quiet');
    assert.equal(store.entries.get(entry.id)!.arguments, 'console=ttyS0 quiet');

    const [efi] = (await call<ImportFilesResult>('entries:import', { paths: [file('tool.efi', Buffer.concat([buildPe(0x8664), Buffer.alloc(2000, 1)]))] }))
      .entries;
    assert.match(await refusal('entries:update', { id: efi!.id, name: 'Debian rescue' }), /exists already: choose another name/);
    assert.match(
      await refusal('entries:update', { id: efi!.id, arguments: 'quiet' }),
      /only kernel, Secure Boot chain and Linux ISO entries take a kernel command line/,
    );
    assert.match(await refusal('entries:update', { id: entry.id, arguments: 'quiet\nchain http://evil/' }), /one line without "\$"/);
    assert.match(await refusal('entries:update', { id: entry.id, arguments: 'root=${x}' }), /one line without "\$"/);
    assert.match(await refusal('entries:update', { id: entry.id, name: '   ' }), /name must not be empty/);
    assert.match(await refusal('entries:update', { id: 999, name: 'x' }), /no boot entry number 999/);
    assert.equal(store.entries.get(entry.id)!.arguments, 'console=ttyS0 quiet', 'a refused edit changes nothing');
  });

  test('Secure Boot chain: shim and GRUB go in front of the UEFI x64 kernel and come off again', async () => {
    const entry = await importKernelPair();
    // The technician's own signed binaries in <data>/boot win over the bundled ones.
    mkdirSync(join(dataDir, 'boot', 'secure-boot'), { recursive: true });
    writeFileSync(join(dataDir, 'boot', 'secure-boot', 'shimx64.efi'), buildPe(0x8664, { signed: true }));
    writeFileSync(join(dataDir, 'boot', 'secure-boot', 'grubx64.efi'), buildPe(0x8664, { signed: true }));

    const on = await call<EntryUpdateResult>('entries:update', { id: entry.id, secureBoot: true });
    assert.equal(on.entry.kind, 'secure-boot-chain');
    assert.equal(on.entry.secureBoot, 'on');
    assert.deepEqual(
      on.entry.files.map((f) => `${f.arch}:${f.role}`),
      ['bios:kernel', 'bios:initrd', 'uefi64:shim', 'uefi64:grub', 'uefi64:kernel', 'uefi64:initrd'],
      'BIOS clients keep booting the kernel through iPXE',
    );
    assert.equal(on.entry.files.find((f) => f.role === 'shim')!.path, join(dataDir, 'boot', 'secure-boot', 'shimx64.efi'));
    assert.match(on.warnings.join(' '), /no signature; GRUB in Secure Boot lockdown refuses it/);

    const off = await call<EntryUpdateResult>('entries:update', { id: entry.id, secureBoot: false });
    assert.equal(off.entry.kind, 'kernel');
    assert.deepEqual(
      off.entry.files.map((f) => `${f.arch}:${f.role}`),
      ['bios:kernel', 'bios:initrd', 'uefi64:kernel', 'uefi64:initrd'],
    );

    const [efi] = (await call<ImportFilesResult>('entries:import', { paths: [file('tool.efi', Buffer.concat([buildPe(0x8664), Buffer.alloc(2000, 2)]))] }))
      .entries;
    assert.match(await refusal('entries:update', { id: efi!.id, secureBoot: true }), /starts a Linux kernel entry only/);
  });

  test('remove: refused while machines or groups boot it, naming them; forced, they fall back and the copies go', async () => {
    const entry = await importKernelPair();
    const copies = [...new Set(entry.files.map((f) => resolveEntryFilePath(f, dataDir)))];
    const machine = store.machines.create({ macs: ['52:54:00:00:00:07'], name: 'bench-07', group: 'row-a', entryId: entry.id });
    store.machines.setGroup({ name: 'row-b', entryId: entry.id, notes: '' });

    const asked = await call<EntryRemoveResult>('entries:remove', { id: entry.id });
    assert.equal(asked.removed, false);
    assert.deepEqual(asked.machines, ['bench-07']);
    assert.deepEqual(asked.groups, ['row-b']);
    assert.equal(asked.who, 'machine bench-07; group row-b');
    assert.ok(store.entries.get(entry.id), 'still there');
    assert.ok(copies.every((c) => existsSync(c)));

    const forced = await call<EntryRemoveResult>('entries:remove', { id: entry.id, force: true });
    assert.equal(forced.removed, true);
    assert.equal(forced.filesDeleted, 2);
    assert.equal(store.entries.get(entry.id), undefined);
    assert.equal(store.machines.get(machine.id)!.entryId, null, 'the machine falls back to its group / the default');
    assert.ok(
      copies.every((c) => !existsSync(c)),
      'the library copies are deleted',
    );
    assert.deepEqual(readdirSync(join(dataDir, 'library')), [], 'and their folder');
  });

  test('remove leaves files referenced in place alone', async () => {
    const source = file('ref.efi', Buffer.concat([buildPe(0x8664), Buffer.alloc(100, 3)]));
    const ref = store.entries.create({
      name: 'referenced',
      kind: 'nbp',
      files: [{ arch: 'uefi64', role: 'nbp', path: source, size: 1, sha256: '0'.repeat(64) }],
    });
    const removed = await call<EntryRemoveResult>('entries:remove', { id: ref.id });
    assert.equal(removed.removed, true);
    assert.equal(removed.filesDeleted, 0);
    assert.ok(existsSync(source));
  });

  test('"Local disk" is built in: listed as such, neither renamed nor removed', async () => {
    const disk = ensureLocalDiskEntry(store);
    const [listed] = await call<BootEntry[]>('entries:list');
    assert.equal(listed!.builtIn, true);
    assert.equal(listed!.bootable.ok, true);
    assert.match(
      await refusal('entries:remove', { id: disk.id, force: true }),
      /built in and cannot be removed: it is the choice "boot from the machine's own disk"/,
    );
    assert.match(await refusal('entries:update', { id: disk.id, name: 'Disk' }), /built in and cannot be renamed/);
  });

  test('a group name with no machines disappears when its assignment is cleared', async () => {
    const entry = await importKernelPair();
    store.machines.create({ macs: ['52:54:00:00:00:08'], name: 'bench-08', group: 'row-a' });
    const typo = await call<MachineGroup>('machines:assign-group', { group: 'rwo-a', entryId: entry.id });
    assert.equal(typo.count, 0);
    assert.ok((await call<MachineGroup[]>('machines:groups')).some((g) => g.name === 'rwo-a'));
    const cleared = await call<MachineGroup>('machines:assign-group', { group: 'rwo-a', entryId: null });
    assert.equal(cleared.removed, true);
    assert.deepEqual(
      (await call<MachineGroup[]>('machines:groups')).map((g) => g.name),
      ['row-a'],
    );
    // A group with machines keeps existing when its assignment is cleared.
    await call('machines:assign-group', { group: 'row-a', entryId: entry.id });
    const kept = await call<MachineGroup>('machines:assign-group', { group: 'row-a', entryId: null });
    assert.equal(kept.removed, undefined);
    assert.equal(kept.count, 1);
  });

  test('uploads are imported together (kernel + initrd pair) and moved, not copied; the upload folders go', async () => {
    const ids = ['a'.repeat(32), 'b'.repeat(32)];
    mkdirSync(join(uploadsDir(dataDir), ids[0]!), { recursive: true });
    mkdirSync(join(uploadsDir(dataDir), ids[1]!), { recursive: true });
    writeFileSync(join(uploadsDir(dataDir), ids[0]!, 'vmlinuz'), kernelBytes);
    writeFileSync(join(uploadsDir(dataDir), ids[1]!, 'initrd.img'), initrdBytes);
    const result = await call<ImportFilesResult>('entries:import-uploads', { uploads: ids });
    assert.deepEqual(result.problems, []);
    assert.equal(result.entries.length, 1);
    assert.equal(result.entries[0]!.kind, 'kernel');
    assert.deepEqual(readdirSync(uploadsDir(dataDir)), [], 'nothing left in the upload area');
    for (const f of result.entries[0]!.files) assert.ok(existsSync(resolveEntryFilePath(f, dataDir)));

    const gone = await call<ImportFilesResult>('entries:import-uploads', { uploads: ['c'.repeat(32)] });
    assert.match(gone.problems.join(' '), /no longer on the host .* drop the file again/);
    assert.match(await refusal('entries:import-uploads', { uploads: ['../../etc'] }), /must be an upload id the host gave/);
  });
});
