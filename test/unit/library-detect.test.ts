import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { detectFile, UnusableFileError, BIOS_NBP_MAX_SIZE, type IsoDetection } from '../../main/library/detect.js';
import { IsoImage, openIsoFile, listIsoDirectory } from '../../main/library/iso9660.js';
import { buildBzImage, buildCpioNewc, buildIso, buildPe, buildWim, EL_TORITO_ARGS, xorrisoMissing } from './library-fixtures.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'bootbench-detect-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: Buffer | string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function refusal(path: string): Promise<UnusableFileError> {
  try {
    await detectFile(path);
  } catch (err) {
    assert.ok(err instanceof UnusableFileError, `expected UnusableFileError, got ${err}`);
    return err;
  }
  assert.fail(`${path} was accepted`);
}

describe('PE/COFF EFI applications', () => {
  for (const [machine, arch] of [
    [0x8664, 'x64'],
    [0x014c, 'ia32'],
    [0xaa64, 'arm64'],
  ] as const) {
    test(`machine 0x${machine.toString(16)} is an EFI NBP for ${arch}`, async () => {
      const d = await detectFile(write(`app-${arch}.efi`, buildPe(machine)));
      assert.equal(d.kind, 'nbp');
      assert.deepEqual(d.architectures, [arch]);
      assert.ok(d.kind === 'nbp' && d.format === 'efi' && d.pe?.machine === machine && d.pe.signed === false);
    });
  }

  test('a certificate table marks it signed, whatever the name', async () => {
    const d = await detectFile(write('renamed.bin', buildPe(0x8664, { signed: true })));
    assert.ok(d.kind === 'nbp' && d.pe?.signed === true);
    assert.match(d.summary, /signed/);
  });

  test('an EFI driver and a Windows program are refused, naming the subsystem', async () => {
    assert.match((await refusal(write('driver.efi', buildPe(0x8664, { subsystem: 11 })))).message, /EFI boot-service driver .*not an EFI application/);
    assert.match((await refusal(write('setup.exe', buildPe(0x8664, { subsystem: 3 })))).message, /Windows console program/);
  });

  test('an EFI application for RISC-V is refused as an unsupported architecture', async () => {
    assert.match((await refusal(write('riscv.efi', buildPe(0x5064)))).message, /RISC-V 64, which Bootbench does not serve/);
  });
});

describe('BIOS PXE programs', () => {
  const code = () => {
    const b = Buffer.alloc(2048);
    for (let i = 0; i < b.length; i++) b[i] = (i * 73 + 11) & 0xff;
    return b;
  };
  test('.0 / .kpxe / .com machine code under the real-mode limit is a BIOS NBP', async () => {
    for (const name of ['pxelinux.0', 'undionly.kpxe', 'wdsnbp.com']) {
      const d = await detectFile(write(name, code()));
      assert.equal(d.kind, 'nbp', name);
      assert.ok(d.kind === 'nbp' && d.format === 'bios-pxe');
      assert.deepEqual(d.architectures, ['bios']);
    }
  });
  test('content wins over the name: a PE called .kpxe is EFI', async () => {
    const d = await detectFile(write('really-efi.kpxe', buildPe(0x8664)));
    assert.ok(d.kind === 'nbp' && d.format === 'efi');
  });
  test('too large for conventional memory, text, or another format: refused with the reason', async () => {
    assert.match((await refusal(write('huge.0', Buffer.concat([code(), Buffer.alloc(BIOS_NBP_MAX_SIZE)])))).message, /at most 623616 bytes/);
    assert.match((await refusal(write('readme.pxe', 'this is only a text file\n'.repeat(20)))).message, /it is text, not machine code/);
    const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), code()]);
    assert.match((await refusal(write('prog.0', elf))).message, /an ELF executable/);
  });
  test('binary without an NBP extension is refused and says how NBPs are recognised', async () => {
    const err = await refusal(write('mystery.bin', code()));
    assert.match(err.message, /only recognised by its name ending in \.0, \.pxe, \.kpxe/);
    assert.match(err.message, /size 2048 bytes, first bytes 0b 54 9d/);
  });
});

describe('Linux kernels and initrds', () => {
  test('bzImage: version string, protocol, 64-bit', async () => {
    const d = await detectFile(write('vmlinuz', buildBzImage({ version: '6.1.0-27-amd64 (debian-kernel@lists.debian.org) #1 SMP', xloadflags: 0x0b })));
    assert.equal(d.kind, 'kernel');
    assert.ok(d.kind === 'kernel');
    assert.equal(d.format, 'bzimage');
    assert.equal(d.version, '6.1.0-27-amd64 (debian-kernel@lists.debian.org) #1 SMP');
    assert.equal(d.protocol, '2.15');
    assert.deepEqual(d.architectures, ['bios', 'x64']);
    assert.equal(d.efiStub, false);
  });
  test('bzImage with an EFI stub is still a kernel; a 32-bit one boots on ia32', async () => {
    const stub = await detectFile(write('stub', buildBzImage({ efiStub: true })));
    assert.ok(stub.kind === 'kernel' && stub.efiStub);
    const old = await detectFile(write('old', buildBzImage({ protocol: 0x0207, xloadflags: 0 })));
    assert.deepEqual(old.architectures, ['bios', 'ia32']);
  });
  test('uncompressed and gzip cpio are initrds', async () => {
    const plain = await detectFile(write('initrd.cpio', buildCpioNewc()));
    assert.ok(plain.kind === 'initrd' && plain.compression === 'none' && plain.cpio === 'newc');
    const gz = await detectFile(write('whatever', gzipSync(Buffer.concat([buildCpioNewc(), Buffer.alloc(200_000, 7)]))));
    assert.ok(gz.kind === 'initrd' && gz.compression === 'gzip' && gz.cpio === 'newc');
  });
  for (const [tool, args] of [
    ['xz', ['-c', '--check=crc32']],
    ['zstd', ['-c', '-q']],
    ['lz4', ['-c', '-l', '-q']],
  ] as const) {
    const missing = spawnSync(tool, ['--version']).error ? `${tool} is not installed` : undefined;
    test(`${tool}-compressed cpio is an initrd (decompressor run on the head only)`, { skip: missing }, async () => {
      const r = spawnSync(tool, [...args], { input: buildCpioNewc() });
      assert.equal(r.status, 0, String(r.stderr));
      const d = await detectFile(write(`data.${tool}`, r.stdout));
      assert.ok(d.kind === 'initrd' && d.cpio === 'newc', JSON.stringify(d));
    });
  }
  test('gzip that is not a cpio archive is refused', async () => {
    assert.match((await refusal(write('notes.gz', gzipSync('just some text')))).message, /gzip-compressed data that is not a cpio archive.*6a 75 73 74/);
  });
});

describe('WIM and iPXE scripts', () => {
  test('WIM header + XML: image name, boot index, compression, architecture', async () => {
    const d = await detectFile(write('boot.wim', buildWim(9)));
    assert.ok(d.kind === 'wim');
    assert.equal(d.bootIndex, 1);
    assert.equal(d.compression, 'lzx');
    assert.deepEqual(d.imageNames, ['Microsoft Windows PE (amd64)']);
    assert.deepEqual(d.architectures, ['bios', 'x64']);
    const arm = await detectFile(write('arm.wim', buildWim(12)));
    assert.deepEqual(arm.architectures, ['arm64']);
  });
  test('#!ipxe (with BOM / leading blank line) is a script; other text is refused', async () => {
    const d = await detectFile(write('menu.txt', '\ufeff\n#!ipxe\nchain http://x/y\n'));
    assert.ok(d.kind === 'ipxe-script' && d.dialect === 'ipxe');
    assert.deepEqual(d.architectures, []);
    assert.match((await refusal(write('menu2.ipxe', '#!/bin/sh\necho\n'))).message, /first bytes 23 21 2f 62 69 6e/);
  });
  test('an empty file is refused', async () => {
    assert.match((await refusal(write('empty.efi', ''))).message, /empty \(size 0 bytes/);
  });
});

describe('ISO 9660 images (built with xorriso)', { skip: xorrisoMissing() }, () => {
  const kernel = buildBzImage({ version: '6.8.0-test' });
  test('Ubuntu-like live ISO: El Torito BIOS+UEFI, casper kernel/initrd, EFI loader, Rock Ridge names', async () => {
    const iso = buildIso(
      dir,
      {
        'isolinux/isolinux.bin': Buffer.alloc(2048, 0x90),
        'efi.img': Buffer.alloc(64 * 1024),
        'EFI/BOOT/BOOTX64.EFI': buildPe(0x8664, { signed: true }),
        'EFI/BOOT/grubx64.efi': buildPe(0x8664),
        'casper/vmlinuz': kernel,
        'casper/initrd': gzipSync(buildCpioNewc()),
        'casper/filesystem.squashfs': 'hsqs',
        'A file with a long, mixed-Case name.txt': 'long name',
      },
      ['-R', '-J', '-V', 'Ubuntu 24.04 test', ...EL_TORITO_ARGS],
      'ubuntu.iso',
    );
    const d = (await detectFile(iso)) as IsoDetection;
    assert.equal(d.kind, 'iso');
    assert.equal(d.volumeId, 'Ubuntu 24.04 test');
    assert.deepEqual({ bios: d.elTorito.bios, uefi: d.elTorito.uefi }, { bios: true, uefi: true });
    assert.deepEqual(d.architectures, ['bios', 'x64']);
    assert.deepEqual(d.efiLoaders, ['EFI/BOOT/BOOTX64.EFI']);
    assert.deepEqual(d.linux, { flavour: 'ubuntu-casper', kernel: 'casper/vmlinuz', initrds: ['casper/initrd'], rootImage: 'casper/filesystem.squashfs' });
    assert.equal(d.windows, undefined);

    const names = (await listIsoDirectory(iso, '/')).map((e) => e.name);
    assert.ok(names.includes('A file with a long, mixed-Case name.txt'), names.join(','));
    const where = await openIsoFile(iso, '/CASPER/VMLINUZ');
    assert.equal(where.size, kernel.length);
    const image = await IsoImage.open(iso);
    try {
      assert.equal(image.info.names, 'rock-ridge');
      const entry = await image.stat('casper\\vmlinuz');
      assert.deepEqual(await image.readFile(entry!), kernel);
    } finally {
      await image.close();
    }
    // The offset really points at the bytes inside the image.
    const { readFileSync } = await import('node:fs');
    assert.deepEqual(readFileSync(iso).subarray(where.offset, where.offset + where.size), kernel);
  });

  test('Debian live layout picks the versioned kernel and its matching initrd', async () => {
    const iso = buildIso(
      dir,
      {
        'live/vmlinuz-6.1.0-18-amd64': kernel,
        'live/initrd.img-6.1.0-18-amd64': buildCpioNewc(),
        'live/filesystem.squashfs': 'hsqs',
        'isolinux/isolinux.bin': Buffer.alloc(2048, 0x90),
      },
      ['-R', '-V', 'd-live', '-b', 'isolinux/isolinux.bin', '-no-emul-boot'],
      'debian.iso',
    );
    const d = (await detectFile(iso)) as IsoDetection;
    assert.equal(d.linux?.flavour, 'debian-live');
    assert.equal(d.linux?.kernel, 'live/vmlinuz-6.1.0-18-amd64');
    assert.deepEqual(d.linux?.initrds, ['live/initrd.img-6.1.0-18-amd64']);
    assert.deepEqual(d.architectures, ['bios']);
    assert.equal(d.elTorito.uefi, false);
  });

  test('Windows PE layout: bootmgr, BCD, boot.sdi, boot.wim found (Joliet names)', async () => {
    const iso = buildIso(
      dir,
      {
        bootmgr: Buffer.alloc(4096, 1),
        'boot/bcd': Buffer.alloc(8192, 2),
        'boot/boot.sdi': Buffer.alloc(4096, 3),
        'sources/boot.wim': buildWim(9),
        'efi/boot/bootx64.efi': buildPe(0x8664, { signed: true }),
      },
      ['--norock', '-J', '-V', 'WINPE'],
      'winpe.iso',
    );
    const d = (await detectFile(iso)) as IsoDetection;
    assert.equal(d.linux, undefined);
    assert.deepEqual(d.windows, {
      bootmgr: 'bootmgr',
      bcd: 'boot/bcd',
      bootSdi: 'boot/boot.sdi',
      bootWim: 'sources/boot.wim',
      efiBootmgr: 'efi/boot/bootx64.efi',
      udfOnly: false,
    });
    assert.deepEqual(d.architectures, ['x64']);
    assert.equal((await openIsoFile(iso, 'Sources/Boot.WIM')).size, buildWim(9).length);
  });

  test('a truncated ISO (interrupted download) is refused, naming both sizes', async () => {
    const iso = buildIso(dir, { 'data.bin': Buffer.alloc(200_000, 7) }, ['-R', '-V', 'CUT'], 'cut.iso');
    const { readFileSync } = await import('node:fs');
    const whole = readFileSync(iso);
    const cut = write('cut-short.iso', whole.subarray(0, whole.length - 100_000));
    const err = await refusal(cut);
    assert.match(err.message, new RegExp(`volume is ${whole.length} bytes but the file has only ${whole.length - 100_000}: it is incomplete`));
  });

  test('plain ISO 9660 names (no Rock Ridge, no Joliet) are found case-insensitively', async () => {
    const iso = buildIso(dir, { 'casper/vmlinuz': kernel, 'casper/initrd.gz': gzipSync(buildCpioNewc()) }, ['--norock', '-V', 'PLAIN'], 'plain.iso');
    const names = (await listIsoDirectory(iso, 'casper')).map((e) => e.name);
    assert.deepEqual(names.sort(), ['INITRD.GZ', 'VMLINUZ']);
    const d = (await detectFile(iso)) as IsoDetection;
    assert.equal(d.linux?.kernel, 'casper/VMLINUZ');
    assert.deepEqual(d.architectures, []);
    await assert.rejects(openIsoFile(iso, 'casper/missing'), /casper\/missing is not in/);
    await assert.rejects(openIsoFile(iso, 'casper'), /is a directory/);
  });
});
