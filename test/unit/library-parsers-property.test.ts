// Parsers of untrusted files must fail with a reason, never crash: random and mutated
// inputs go through detection, the PE decoder and the El Torito decoder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectFile, decodePe, UnusableFileError } from '../../main/library/detect.js';
import { decodeBootCatalog } from '../../main/library/iso9660.js';
import { buildBzImage, buildIso, buildPe, buildUdfOnlyIso, buildWim, genisoimageMissing, xorrisoMissing } from './library-fixtures.js';
import { UdfFormatError, UdfImage } from '../../main/library/udf.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'bootbench-prop-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const seeds = [buildPe(0x8664), buildBzImage({ version: '6.1' }), buildWim(9), Buffer.from('#!ipxe\nshell\n')];

test('detectFile: any bytes under any NBP-ish name give a detection or an UnusableFileError', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 4096 }),
        // Valid headers with a few bytes changed: the dangerous inputs for offset arithmetic.
        fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(0x2000), fc.integer({ min: 0, max: 255 })), { maxLength: 8 })).map(([seed, edits]) => {
          const copy = Buffer.from(seed);
          for (const [at, value] of edits) if (at < copy.length) copy[at] = value;
          return copy;
        }),
      ),
      fc.constantFrom('x.0', 'x.efi', 'x.bin', 'initrd.img'),
      async (bytes, name) => {
        const path = join(dir, name);
        writeFileSync(path, bytes);
        try {
          const d = await detectFile(path);
          assert.ok(['nbp', 'kernel', 'initrd', 'iso', 'wim', 'ipxe-script'].includes(d.kind));
          assert.equal(d.size, bytes.length);
        } catch (err) {
          assert.ok(err instanceof UnusableFileError, `unexpected ${(err as Error).stack}`);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('decodePe and decodeBootCatalog never throw on arbitrary bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
      const buffer = Buffer.from(bytes);
      decodePe(buffer);
      const withMz = Buffer.concat([Buffer.from('MZ'), buffer]);
      decodePe(withMz);
      decodeBootCatalog(buffer);
      const withValidation = Buffer.from(buffer.length >= 64 ? buffer : Buffer.concat([buffer, Buffer.alloc(64 - buffer.length)]));
      withValidation[0] = 1;
      withValidation[30] = 0x55;
      withValidation[31] = 0xaa;
      const catalog = decodeBootCatalog(withValidation);
      assert.ok(catalog && catalog.entries.length >= 1);
    }),
    { numRuns: 500 },
  );
});

test('detectFile on a damaged ISO: a detection or an UnusableFileError, nothing else', { skip: xorrisoMissing() }, async () => {
  const iso = buildIso(
    dir,
    { 'casper/vmlinuz': buildBzImage(), 'casper/initrd': 'x', 'EFI/BOOT/BOOTX64.EFI': buildPe(0x8664), 'isolinux/isolinux.bin': Buffer.alloc(2048) },
    ['-R', '-J', '-V', 'PROP', '-b', 'isolinux/isolinux.bin', '-no-emul-boot'],
    'prop.iso',
  );
  const original = readFileSync(iso);
  // Damage the descriptors and the first directory sectors, where all the offsets live.
  const area = Math.min(original.length, 0x8000 + 40 * 2048);
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.integer({ min: 0x8000, max: area - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 16 }),
      async (edits) => {
        const copy = Buffer.from(original);
        for (const [at, value] of edits) copy[at] = value;
        const path = join(dir, 'damaged.iso');
        writeFileSync(path, copy);
        try {
          await detectFile(path);
        } catch (err) {
          assert.ok(err instanceof UnusableFileError, `unexpected ${(err as Error).stack}`);
        }
      },
    ),
    { numRuns: Number(process.env.BOOTBENCH_PROPERTY_RUNS ?? 150) },
  );
});

test('detectFile and the UDF reader on damaged UDF-only media: a detection or an UnusableFileError', { skip: genisoimageMissing() }, async () => {
  const iso = buildUdfOnlyIso(
    dir,
    { bootmgr: Buffer.alloc(3000, 1), 'boot/bcd': Buffer.alloc(3000, 2), 'boot/boot.sdi': 'sdi', 'sources/boot.wim': buildWim(9) },
    'prop-udf.iso',
  );
  const original = readFileSync(iso);
  // The UDF structures of a small genisoimage image live between sector 256 and the file data.
  const from = 256 * 2048;
  const to = Math.min(original.length, from + 64 * 2048);
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.integer({ min: from, max: to - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 24 }),
      async (edits) => {
        const copy = Buffer.from(original);
        for (const [at, value] of edits) copy[at] = value;
        const path = join(dir, 'damaged-udf.iso');
        writeFileSync(path, copy);
        try {
          await detectFile(path);
        } catch (err) {
          assert.ok(err instanceof UnusableFileError, `unexpected ${(err as Error).stack}`);
        }
        try {
          const udf = await UdfImage.open(path);
          if (udf) {
            try {
              await udf.stat('sources/boot.wim');
            } finally {
              await udf.close();
            }
          }
        } catch (err) {
          assert.ok(err instanceof UdfFormatError, `unexpected ${(err as Error).stack}`);
        }
      },
    ),
    { numRuns: Number(process.env.BOOTBENCH_PROPERTY_RUNS ?? 150) },
  );
});
