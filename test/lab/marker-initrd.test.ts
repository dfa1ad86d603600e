// Structure checks for the marker initrd (the lab's kernel+initrd scenario runs it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INITRD_EXIT_VALUE, INITRD_MARKER, markerInitElf, markerInitrd } from './marker-initrd.js';

function readCpio(archive: Buffer): { name: string; mode: number; data: Buffer }[] {
  const entries = [];
  let at = 0;
  for (;;) {
    assert.equal(archive.toString('latin1', at, at + 6), '070701', `newc magic at ${at}`);
    const field = (i: number): number => parseInt(archive.toString('latin1', at + 6 + i * 8, at + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    const nameAt = at + 110;
    const name = archive.toString('latin1', nameAt, nameAt + nameSize - 1);
    const dataAt = nameAt + nameSize + ((4 - ((110 + nameSize) % 4)) % 4);
    const data = archive.subarray(dataAt, dataAt + size);
    entries.push({ name, mode, data });
    if (name === 'TRAILER!!!') break;
    at = dataAt + size + ((4 - (size % 4)) % 4);
  }
  return entries;
}

test('marker initrd is a newc cpio with an executable /init and a trailer', () => {
  const entries = readCpio(markerInitrd());
  const init = entries.find((e) => e.name === 'init');
  assert.ok(init, '/init present');
  assert.equal(init.mode, 0o100755);
  assert.deepEqual(init.data, markerInitElf());
  assert.equal(entries.at(-1)?.name, 'TRAILER!!!');
  const tty = entries.find((e) => e.name === 'dev/ttyS0');
  assert.equal(tty?.mode, 0o020600, 'COM1 character device for the serial marker');
});

test('/init is a static x86-64 ELF executable whose entry point is inside its one segment', () => {
  const elf = markerInitElf();
  assert.deepEqual([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
  assert.equal(elf[4], 2, 'ELFCLASS64');
  assert.equal(elf.readUInt16LE(16), 2, 'ET_EXEC');
  assert.equal(elf.readUInt16LE(18), 62, 'EM_X86_64');
  const entry = elf.readBigUInt64LE(24);
  const phoff = Number(elf.readBigUInt64LE(32));
  assert.equal(elf.readUInt32LE(phoff), 1, 'PT_LOAD');
  const vaddr = elf.readBigUInt64LE(phoff + 16);
  const filesz = elf.readBigUInt64LE(phoff + 32);
  assert.equal(filesz, BigInt(elf.length));
  assert.ok(entry > vaddr && entry < vaddr + filesz);
  assert.ok(elf.includes(Buffer.from(`\n${INITRD_MARKER}\n\0`)));
  assert.ok(elf.includes(Buffer.from('/dev/ttyS0\0')));
  assert.ok(elf.includes(Buffer.from([0xb0, INITRD_EXIT_VALUE, 0xee])), 'exit through port 0xf4');
});
