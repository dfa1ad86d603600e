// The UEFI HTTP boot setting from each door: `serve` flags, the stored settings a start
// saves and the next one reads, and the boot files the policy gets from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags, SERVE_OPTIONS, serveConfigFromFlags, UsageError } from '../../main/cli/serve-flags.js';
import { bootFilesWithHttpBoot, defaultServeConfig } from '../../main/host/config.js';
import { configFromSettings, saveConfigToSettings } from '../../main/host/stored-config.js';
import { openStore } from '../../main/store/index.js';

const base = defaultServeConfig('/tmp/bootbench-unused');
const fromFlags = (args: string[], config = base) => serveConfigFromFlags(parseFlags(args, SERVE_OPTIONS).values, config);

test('--http-boot on|off and --http-boot-file set the setting; bad values are refused in words', () => {
  assert.equal(fromFlags([]).httpBoot, undefined, 'untouched: answered, same as UEFI PXE');
  assert.deepEqual(fromFlags(['--http-boot', 'off']).httpBoot, { answer: false });
  assert.deepEqual(fromFlags(['--http-boot-file', 'efi/ipxe.efi']).httpBoot, { answer: true, file: 'efi/ipxe.efi' });
  assert.deepEqual(fromFlags(['--http-boot-file', 'http://192.0.2.9/boot.efi']).httpBoot, { answer: true, file: 'http://192.0.2.9/boot.efi' });
  // An empty file goes back to the UEFI PXE program; "on" keeps a stored file.
  const stored = { ...base, httpBoot: { answer: false, file: 'old.efi' } };
  assert.deepEqual(fromFlags(['--http-boot-file='], stored).httpBoot, { answer: false });
  assert.deepEqual(fromFlags(['--http-boot', 'on'], stored).httpBoot, { answer: true, file: 'old.efi' });
  assert.throws(
    () => fromFlags(['--http-boot', 'maybe']),
    (e: Error) => e instanceof UsageError && /--http-boot "maybe" is not allowed: use on or off/.test(e.message),
  );
  assert.throws(() => fromFlags(['--http-boot-file', '/etc/passwd']), /not allowed: give a path inside the served folder/);
  assert.throws(() => fromFlags(['--http-boot-file', '../x.efi']), /not allowed/);
  assert.throws(() => fromFlags(['--http-boot-file', 'tftp://192.0.2.1/x.efi']), /not allowed/);
  assert.throws(() => fromFlags(['--http-boot', 'off', '--http-boot-file', 'x.efi']), /--http-boot-file is not used with --http-boot off/);
});

test('a start saves the setting and the next start reads it back', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bootbench-http-boot-setting-'));
  const store = openStore(dir);
  try {
    assert.equal(configFromSettings(store, dir).httpBoot, undefined);
    saveConfigToSettings(store, { ...defaultServeConfig(dir), httpBoot: { answer: false } });
    assert.deepEqual(configFromSettings(store, dir).httpBoot, { answer: false });
    saveConfigToSettings(store, { ...defaultServeConfig(dir), httpBoot: { answer: true, file: 'efi/ipxe.efi' } });
    assert.deepEqual(configFromSettings(store, dir).httpBoot, { answer: true, file: 'efi/ipxe.efi' });
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the setting's file takes the http64 place; without one the boot files stay as they are", () => {
  const boot = { uefi64: 'ipxe.efi', http64: 'http://192.0.2.1:8080/bootbench/snp.efi' };
  assert.equal(bootFilesWithHttpBoot(boot, undefined), boot);
  assert.equal(bootFilesWithHttpBoot(boot, { answer: true }), boot);
  assert.deepEqual(bootFilesWithHttpBoot(boot, { answer: true, file: 'mine.efi' }), { uefi64: 'ipxe.efi', http64: 'mine.efi' });
});
