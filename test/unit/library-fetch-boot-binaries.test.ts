import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const SCRIPT = join(import.meta.dirname, '..', '..', 'scripts', 'fetch-boot-binaries.mjs');
const dir = mkdtempSync(join(tmpdir(), 'bootbench-fetch-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]) {
  return spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', timeout: 30_000 });
}

test('names each missing package and the apt-get line, exit 1', () => {
  const empty = join(dir, 'empty-root');
  mkdirSync(empty);
  const r = run(['--source-root', empty, '--out', join(dir, 'out-empty')]);
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /missing: package ipxe is not installed \(no \/usr\/lib\/ipxe\/undionly\.kpxe, \/usr\/lib\/ipxe\/ipxe\.efi, \/usr\/lib\/ipxe\/snponly\.efi\)/,
  );
  assert.match(r.stderr, /missing: package shim-signed/);
  assert.match(r.stderr, /install with: apt-get install -y ipxe shim-signed grub-efi-amd64-signed/);
  assert.equal(run(['--source-root', empty, '--out', join(dir, 'out-empty2'), '--allow-missing']).status, 0);
});

test('copies every binary under its served name and writes a manifest with sha256', () => {
  const root = join(dir, 'root');
  const files: Record<string, string> = {
    'usr/lib/ipxe/undionly.kpxe': 'bios-ipxe',
    'usr/lib/ipxe/ipxe.efi': 'efi-ipxe',
    'usr/lib/ipxe/snponly.efi': 'snp-ipxe',
    'usr/lib/shim/shimx64.efi.signed': 'shim',
    'usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed': 'grub',
    'usr/lib/grub/x86_64-efi/command.lst': 'cmd',
  };
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  const out = join(dir, 'out');
  const r = run(['--source-root', root, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(out, 'secure-boot', 'grubx64.efi'), 'utf8'), 'grub');
  assert.equal(readFileSync(join(out, 'secure-boot', 'grub', 'x86_64-efi', 'command.lst'), 'utf8'), 'cmd');
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  const shim = manifest.files.find((f: { name: string }) => f.name === 'secure-boot/shimx64.efi');
  assert.equal(shim.package, 'shim-signed');
  assert.equal(shim.sha256, createHash('sha256').update('shim').digest('hex'));
  assert.deepEqual(manifest.missing, []);
});
