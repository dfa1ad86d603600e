import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { hashFile, importPath, importPaths, resolveEntryFilePath, type ImportProgress } from '../../main/library/import.js';
import { entriesCommand } from '../../main/cli/entries.js';
import { buildBzImage, buildCpioNewc, buildPe, buildWim } from './library-fixtures.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'bootbench-import-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function write(path: string, content: Buffer | string): string {
  const full = join(dir, path);
  mkdirSync(join(full, '..'), { recursive: true });
  writeFileSync(full, content);
  return full;
}

describe('import', () => {
  test('copy: hashes with progress, copies into <data>/library, leaves the source untouched', async () => {
    const content = Buffer.concat([buildPe(0x8664), Buffer.alloc(9 * 1024 * 1024, 0x5a)]);
    const source = write('src/tool.efi', content);
    const before = statSync(source);
    const progress: ImportProgress[] = [];
    const data = join(dir, 'data-copy');
    const entry = await importPath(source, { dataDir: data, mode: 'copy', onProgress: (p) => progress.push(p) });
    assert.equal(entry.kind, 'nbp');
    assert.equal(entry.name, 'tool');
    assert.deepEqual(entry.architectures, ['x64']);
    assert.equal(entry.files.length, 1);
    const [file] = entry.files;
    assert.deepEqual(
      { arch: file.arch, role: file.role, size: file.size, sha256: file.sha256 },
      { arch: 'uefi64', role: 'nbp', size: content.length, sha256: sha(content) },
    );
    assert.equal(file.path, 'tool/tool.efi');
    assert.deepEqual(readFileSync(resolveEntryFilePath(file, data)), content);
    assert.ok(progress.length >= 3, `progress reported ${progress.length} times`);
    assert.equal(progress.at(-1)!.bytes, content.length);
    assert.ok(progress.every((p, i) => i === 0 || p.bytes >= progress[i - 1].bytes));
    const after = statSync(source);
    assert.equal(after.mtimeMs, before.mtimeMs);
    assert.deepEqual(readFileSync(source), content);
  });

  test('reference: nothing copied, absolute path kept', async () => {
    const source = write('src/menu.ipxe', '#!ipxe\necho hi\n');
    const data = join(dir, 'data-ref');
    const entry = await importPath(source, { dataDir: data, mode: 'reference' });
    assert.equal(entry.kind, 'ipxe-script');
    assert.deepEqual(
      entry.files.map((f) => [f.arch, f.role, f.path]),
      [['any', 'script', source]],
    );
    assert.equal(existsSync(join(data, 'library')), false);
  });

  test('a kernel given with its initrd becomes one kernel entry, files per boot class in fetch order', async () => {
    const kernel = write('k/vmlinuz', buildBzImage({ version: '6.1.0-test' }));
    const initrd = write('k/initrd.img', gzipSync(buildCpioNewc()));
    const result = await importPaths([kernel, initrd], { dataDir: join(dir, 'data-k'), mode: 'copy', name: 'Rescue' });
    assert.equal(result.entries.length, 1);
    const [entry] = result.entries;
    assert.equal(entry.name, 'Rescue');
    assert.equal(entry.kind, 'kernel');
    assert.deepEqual(
      entry.files.map((f) => `${f.arch}:${f.role}:${f.path}`),
      ['bios:kernel:rescue/vmlinuz', 'bios:initrd:rescue/initrd.img', 'uefi64:kernel:rescue/vmlinuz', 'uefi64:initrd:rescue/initrd.img'],
    );
  });

  test('a Windows PE folder becomes one WIM entry with bootmgr, BCD, boot.sdi, boot.wim', async () => {
    write('winpe/bootmgr', Buffer.alloc(3000, 1));
    write('winpe/Boot/BCD', Buffer.alloc(3000, 2));
    write('winpe/Boot/boot.sdi', Buffer.alloc(3000, 3));
    write('winpe/sources/boot.wim', buildWim(9));
    const entry = await importPath(join(dir, 'winpe'), { dataDir: join(dir, 'data-w'), mode: 'reference' });
    assert.equal(entry.kind, 'wim');
    assert.deepEqual(entry.architectures, ['bios', 'x64']);
    assert.deepEqual(
      entry.files.filter((f) => f.arch === 'uefi64').map((f) => f.role),
      ['bootmgr', 'bcd', 'boot-sdi', 'wim'],
    );
  });

  test('an install tree with thousands of files still yields its WIM entry (boot files looked up directly)', async () => {
    write('install/BOOTMGR', Buffer.alloc(3000, 1));
    write('install/BOOT/bcd', Buffer.alloc(3000, 2));
    write('install/BOOT/Boot.SDI', Buffer.alloc(3000, 3));
    for (let i = 0; i < 600; i++) write(`install/sources/aaa-${String(i).padStart(3, '0')}.dll`, 'x');
    write('install/sources/BOOT.WIM', buildWim(9));
    const entry = await importPath(join(dir, 'install'), { dataDir: join(dir, 'data-i'), mode: 'reference' });
    assert.equal(entry.kind, 'wim');
    assert.deepEqual(
      entry.files.filter((f) => f.arch === 'uefi64').map((f) => f.source.slice(join(dir, 'install').length)),
      ['/BOOTMGR', '/BOOT/bcd', '/BOOT/Boot.SDI', '/sources/BOOT.WIM'],
    );
  });

  test('a mixed folder: each usable file an entry, the rest refused with reasons', async () => {
    write('mixed/a.efi', buildPe(0xaa64));
    write('mixed/b.0', Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 37) & 0xff)));
    write('mixed/notes.txt', 'hello');
    const result = await importPaths([join(dir, 'mixed')], { dataDir: join(dir, 'data-m'), mode: 'reference' });
    assert.deepEqual(result.entries.map((e) => `${e.name}:${e.kind}:${e.architectures.join('+')}`).sort(), ['a:nbp:arm64', 'b:nbp:bios']);
    assert.equal(result.refused.length, 1);
    assert.match(result.refused[0].reason, /notes\.txt: not a recognised boot file/);
  });
});

describe('bootbench entries (CLI)', () => {
  const capture = () => {
    const out = { stdout: '', stderr: '' };
    return { out, io: { stdout: (t: string) => void (out.stdout += t), stderr: (t: string) => void (out.stderr += t) } };
  };

  test('import --json then list --json: kind, architectures, sha256; duplicates skipped', async () => {
    const data = join(dir, 'cli-data');
    const efi = buildPe(0x014c);
    const a = write('cli/ia32.efi', efi);
    const b = write('cli/menu.ipxe', '#!ipxe\nshell\n');
    const first = capture();
    assert.equal(await entriesCommand(['import', a, b, '--data', data, '--json'], first.io), 0, first.out.stderr);
    const report = JSON.parse(first.out.stdout);
    assert.deepEqual(
      report.imported.map((e: { kind: string; architectures: string[] }) => [e.kind, e.architectures]),
      [
        ['nbp', ['ia32']],
        ['ipxe-script', []],
      ],
    );
    assert.equal(report.imported[0].sha256, sha(efi));

    const again = capture();
    assert.equal(await entriesCommand(['import', a, '--data', data], again.io), 0);
    assert.match(again.out.stdout, /already in the library: ia32/);

    const list = capture();
    assert.equal(await entriesCommand(['list', '--data', data, '--json'], list.io), 0);
    const entries = JSON.parse(list.out.stdout);
    assert.equal(entries.length, 2);
    const nbp = entries.find((e: { kind: string }) => e.kind === 'nbp');
    assert.deepEqual(
      { name: nbp.name, architectures: nbp.architectures, sha256: nbp.sha256, storage: nbp.storage },
      { name: 'ia32', architectures: ['ia32'], sha256: sha(efi), storage: 'copy' },
    );
  });

  test('an unusable file exits 1 with the reason; usage errors exit 2', async () => {
    const data = join(dir, 'cli-bad');
    const bad = write('cli/readme.0', 'plain text, not a boot program\n'.repeat(10));
    const r = capture();
    assert.equal(await entriesCommand(['import', bad, '--data', data], r.io), 1);
    assert.match(r.out.stderr, /cannot use .*readme\.0: .*it is text, not machine code/);
    const u = capture();
    assert.equal(await entriesCommand(['import', '--data', data], u.io), 2);
    assert.match(u.out.stderr, /needs at least one PATH/);
    const v = capture();
    assert.equal(await entriesCommand(['frobnicate'], v.io), 2);
  });

  test('--secure-boot: shim, GRUB, then the kernel and initrd; warns about an unsigned kernel', async () => {
    const data = join(dir, 'cli-sb');
    write('cli-sb/boot/secure-boot/shimx64.efi', buildPe(0x8664, { signed: true }));
    write('cli-sb/boot/secure-boot/grubx64.efi', buildPe(0x8664, { signed: true }));
    const k = write('sb/vmlinuz', buildBzImage({ efiStub: true }));
    const i = write('sb/initrd.img', buildCpioNewc());
    const r = capture();
    assert.equal(await entriesCommand(['import', k, i, '--data', data, '--secure-boot', '--json', '--name', 'Signed chain'], r.io), 0, r.out.stderr);
    const [entry] = JSON.parse(r.out.stdout).imported;
    assert.equal(entry.kind, 'secure-boot-chain');
    assert.deepEqual(entry.architectures, ['x64']);
    assert.deepEqual(
      entry.files.map((f: { role: string; arch: string }) => `${f.arch}:${f.role}`),
      ['uefi64:shim', 'uefi64:grub', 'uefi64:kernel', 'uefi64:initrd'],
    );
    assert.ok(entry.files[0].path.endsWith('boot/secure-boot/shimx64.efi'));
    assert.match(r.out.stderr, /warning: Signed chain: the kernel carries no signature/);
    const wrong = capture();
    assert.equal(await entriesCommand(['import', write('sb/tool.efi', buildPe(0x8664)), '--data', data, '--secure-boot'], wrong.io), 1);
    assert.match(wrong.out.stderr, /--secure-boot: tool is nbp, not a Linux kernel/);
  });

  test('runs as a process through a tiny entry point (exit codes reach the shell)', () => {
    const data = join(dir, 'cli-proc');
    const script = `import { entriesCommand } from ${JSON.stringify(join(import.meta.dirname, '..', '..', 'main', 'cli', 'entries.ts'))}; process.exitCode = await entriesCommand(process.argv.slice(1));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, 'list', '--data', data, '--json'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), []);
  });
});

test('copying a large file waits for the disk without piling up listeners on the copy', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bb-import-listeners-'));
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  try {
    // 1 MiB reads into a 16 KiB write buffer: every chunk waits for 'drain', 24 times.
    const source = join(dir, 'big.bin');
    writeFileSync(source, Buffer.alloc(24 * 1024 * 1024, 5));
    const { size } = await hashFile(source, join(dir, 'copy.bin'));
    assert.equal(size, 24 * 1024 * 1024);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      warnings.filter((w) => w.includes('MaxListeners')),
      [],
    );
  } finally {
    process.off('warning', onWarning);
    rmSync(dir, { recursive: true, force: true });
  }
});
