// Structure checks for the marker NBPs. The real proof that they run is the lab tests
// (firmware prints the marker); these catch a broken generator in milliseconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  biosMarkerNbp,
  uefiMarkerNbp,
  markerText,
  qemuExitStatus,
  BIOS_EXIT_VALUE,
  UEFI_EXIT_VALUE,
  PE_MACHINE_X64,
  EFI_APPLICATION_SUBSYSTEM,
} from './marker-nbp.js';

test('BIOS marker NBP points SI at its own marker when loaded at 0000:7C00', () => {
  const nbp = biosMarkerNbp();
  assert.ok(nbp.length < 512, 'fits in one TFTP block');
  assert.equal(nbp[5], 0xbe, 'mov si, imm16');
  const messageAddress = nbp.readUInt16LE(6);
  const message = nbp.subarray(messageAddress - 0x7c00);
  assert.equal(message.subarray(0, message.indexOf(0)).toString('latin1'), `\n${markerText('bios')}\n`);
  assert.ok(nbp.includes(Buffer.from([0xba, 0x02, 0x04])), 'mov dx, 0x402');
  assert.ok(nbp.includes(Buffer.from([0xba, 0xf4, 0x00, 0xb0, BIOS_EXIT_VALUE, 0xee])), 'exit through port 0xf4');
});

test('UEFI marker NBP is a PE32+ x64 EFI application with consistent headers', () => {
  const pe = uefiMarkerNbp();
  assert.equal(pe.toString('latin1', 0, 2), 'MZ');
  const peOffset = pe.readUInt32LE(0x3c);
  assert.equal(pe.toString('latin1', peOffset, peOffset + 4), 'PE\0\0');
  const coff = peOffset + 4;
  assert.equal(pe.readUInt16LE(coff), PE_MACHINE_X64);
  const sectionCount = pe.readUInt16LE(coff + 2);
  const optionalSize = pe.readUInt16LE(coff + 16);
  assert.equal(pe.readUInt16LE(coff + 18) & 0x0001, 0, 'relocations not stripped');
  const opt = coff + 20;
  assert.equal(pe.readUInt16LE(opt), 0x20b, 'PE32+ magic');
  assert.equal(pe.readUInt16LE(opt + 68), EFI_APPLICATION_SUBSYSTEM);
  const entry = pe.readUInt32LE(opt + 16);
  const sectionAlignment = pe.readUInt32LE(opt + 32);
  const fileAlignment = pe.readUInt32LE(opt + 36);
  const imageSize = pe.readUInt32LE(opt + 56);
  const headersSize = pe.readUInt32LE(opt + 60);
  assert.equal(imageSize % sectionAlignment, 0);
  assert.equal(headersSize % fileAlignment, 0);

  const sections = Array.from({ length: sectionCount }, (_, i) => {
    const s = opt + optionalSize + i * 40;
    return {
      name: pe.toString('latin1', s, s + 8).replace(/\0+$/, ''),
      virtualSize: pe.readUInt32LE(s + 8),
      rva: pe.readUInt32LE(s + 12),
      rawSize: pe.readUInt32LE(s + 16),
      rawOffset: pe.readUInt32LE(s + 20),
    };
  });
  assert.ok(opt + optionalSize + sectionCount * 40 <= headersSize, 'section table inside the headers');
  for (const s of sections) {
    assert.equal(s.rva % sectionAlignment, 0, `${s.name} RVA aligned`);
    assert.equal(s.rawOffset % fileAlignment, 0, `${s.name} file offset aligned`);
    assert.ok(s.rawOffset + s.rawSize <= pe.length, `${s.name} inside the file`);
    assert.ok(s.rva + s.virtualSize <= imageSize, `${s.name} inside the image`);
  }
  const text = sections.find((s) => s.name === '.text');
  assert.ok(text && entry >= text.rva && entry < text.rva + text.virtualSize, 'entry point in .text');

  const relocDirRva = pe.readUInt32LE(opt + 112 + 5 * 8);
  const relocDirSize = pe.readUInt32LE(opt + 112 + 5 * 8 + 4);
  const reloc = sections.find((s) => s.name === '.reloc');
  assert.ok(reloc, '.reloc section present');
  assert.equal(relocDirRva, reloc.rva);
  const block = pe.subarray(reloc.rawOffset, reloc.rawOffset + relocDirSize);
  assert.equal(block.readUInt32LE(4), relocDirSize, 'one relocation block covering the directory');
  for (let i = 8; i < block.length; i += 2) assert.equal(block.readUInt16LE(i) >> 12, 0, 'only ABSOLUTE padding entries');

  const code = pe.subarray(text.rawOffset, text.rawOffset + text.virtualSize);
  assert.ok(code.includes(Buffer.from(`\n${markerText('uefi64')}\n\0`, 'latin1')));
  assert.ok(code.includes(Buffer.from([0xb0, UEFI_EXIT_VALUE, 0xee])), 'exit through port 0xf4');
});

test('exit status follows isa-debug-exit: (value << 1) | 1', () => {
  assert.equal(qemuExitStatus(BIOS_EXIT_VALUE), 85);
  assert.equal(qemuExitStatus(UEFI_EXIT_VALUE), 87);
});
