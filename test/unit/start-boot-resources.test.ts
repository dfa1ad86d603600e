// `npm start` on a fresh checkout: resources/boot is built from the Debian packages when a
// file is missing (scripts/boot-resources.mjs, called by scripts/start.mjs), into a
// temporary folder here so the checkout's own copy is left alone.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
// @ts-expect-error plain ESM helper shared with scripts/start.mjs
import { ensureBootBinaries, BOOT_RESOURCE_FILES } from '../../scripts/boot-resources.mjs';
import { chainloadBootPrograms } from '../../main/library/boot-binaries.js';

const dir = mkdtempSync(join(tmpdir(), 'bootbench-start-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fakeDebian(name: string, files: Record<string, string>): string {
  const root = join(dir, name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

const ALL = {
  'usr/lib/ipxe/undionly.kpxe': 'bios-ipxe',
  'usr/lib/ipxe/ipxe.efi': 'efi-ipxe',
  'usr/lib/ipxe/snponly.efi': 'snp-ipxe',
  'usr/lib/shim/shimx64.efi.signed': 'shim',
  'usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed': 'grub',
};

test('a missing resources/boot is built from the packages, and the host then finds both iPXE builds', () => {
  const out = join(dir, 'fresh', 'resources', 'boot');
  const before = chainloadBootPrograms({ resourcesDir: out });
  assert.deepEqual(
    before.map((p) => Boolean(p.missing)),
    [true, true],
    'nothing there before the start',
  );
  const result = ensureBootBinaries({ out, sourceRoot: fakeDebian('debian', ALL), stdio: 'pipe' });
  assert.equal(result.ran, true);
  assert.equal(result.status, 0, result.output);
  assert.deepEqual(result.missing, []);
  for (const file of BOOT_RESOURCE_FILES) assert.ok(statSync(join(out, file)).size > 0, `${file} in place`);
  assert.equal(readFileSync(join(out, 'ipxe', 'snponly.efi'), 'utf8'), 'snp-ipxe');
  const found = chainloadBootPrograms({ resourcesDir: out });
  assert.deepEqual(
    found.map((p) => p.path),
    [join(out, 'ipxe', 'undionly.kpxe'), join(out, 'ipxe', 'snponly.efi')],
  );

  // Everything in place: the next start copies nothing.
  assert.equal(ensureBootBinaries({ out, sourceRoot: join(dir, 'no-such-tree'), stdio: 'pipe' }).ran, false);
});

test('a package that is not installed: the start goes on, names what is missing and the apt-get line', () => {
  const { 'usr/lib/ipxe/undionly.kpxe': _b, 'usr/lib/ipxe/ipxe.efi': _e, 'usr/lib/ipxe/snponly.efi': _s, ...noIpxe } = ALL;
  const out = join(dir, 'partial', 'resources', 'boot');
  const result = ensureBootBinaries({ out, sourceRoot: fakeDebian('no-ipxe', noIpxe), stdio: 'pipe' });
  assert.equal(result.ran, true);
  assert.deepEqual(result.missing, ['ipxe/undionly.kpxe', 'ipxe/ipxe.efi', 'ipxe/snponly.efi']);
  assert.match(result.output, /install with: apt-get install -y ipxe/);
  const programs = chainloadBootPrograms({ resourcesDir: out, dataDir: join(dir, 'data') });
  assert.match(programs[1].missing ?? '', /UEFI PCs cannot boot: the iPXE they are handed \(ipxe\/snponly\.efi\) is missing/);
  assert.match(programs[1].fix ?? '', /sudo apt-get install ipxe\) and run "npm run build:resources"/);
  assert.match(programs[1].fix ?? '', new RegExp(`${join(dir, 'data', 'boot', 'ipxe', 'snponly.efi').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
});
