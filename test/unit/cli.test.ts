import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePool, checkPoolAgainstInterface, ConfigError } from '../../main/host/config.js';

const CLI = join(import.meta.dirname, '..', '..', 'main', 'cli', 'bootbench.ts');

function runCli(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('serve --help lists every documented flag', () => {
  const r = runCli(['serve', '--help']);
  assert.equal(r.code, 0, r.stderr);
  for (const flag of [
    '--menu LABEL=PATH',
    '--interface NAME',
    '--mode proxy|dhcp',
    '--pool FIRST-LAST',
    '--root DIR',
    '--boot CLASS=PATH',
    '--ipxe-script PATH',
    '--http-boot on|off',
    '--http-boot-file PATH',
    '--http-port N',
    '--data DIR',
    '--log text|json',
  ]) {
    assert.ok(r.stdout.includes(flag), `help lacks ${flag}`);
  }
  for (const cls of ['bios', 'uefi32', 'uefi64', 'arm64', 'http64']) assert.ok(r.stdout.includes(cls));
});

const bad: [string[], RegExp][] = [
  [['serve', '--mode', 'relay', '--root', '.', '--boot', 'bios=a'], /--mode "relay" is not allowed: use proxy or dhcp/],
  [['serve', '--bogus'], /Unknown option '--bogus'/],
  [['serve', '--root', '.', '--boot', 'ppc=x'], /--boot "ppc=x" is not CLASS=PATH: CLASS is one of bios, uefi32/],
  [['serve', '--root', '.', '--boot', 'bios=a', '--http-port', '70000'], /--http-port "70000" is not a port/],
  [['serve', '--root', '.', '--boot', 'bios=a', '--mode', 'dhcp'], /--mode dhcp needs --pool/],
  [['serve', '--root', '.', '--boot', 'bios=a', '--mode', 'dhcp', '--pool', '192.0.2.50-192.0.2.10'], /first address is after the last/],
  [['serve', '--root', '.', '--boot', 'bios=a', '--pool', '192.0.2.10-192.0.2.50'], /--pool is only used with --mode dhcp/],
  [['serve', '--root', '.', '--boot', 'bios=a', '--log', 'xml'], /--log "xml" is not allowed: use text or json/],
  [['serve', '--root', '.', '--boot', 'bios=http://x/y'], /PXE firmware downloads by TFTP/],
  [['frobnicate'], /unknown command "frobnicate"/],
  [['serve', '--root', '.', '--menu', 'Only=a.0'], /--menu needs at least two lines/],
  [['serve', '--root', '.', '--menu', '=a.0', '--menu', 'B=b.0'], /--menu "=a.0" is not LABEL=PATH/],
  [['serve', '--root', '.', '--menu', 'A=a.0', '--menu', 'B=b.0', '--menu-timeout', '300'], /--menu-timeout "300" is not allowed/],
];

for (const [args, message] of bad) {
  test(`bad input exits 2 with a clear message: ${args.join(' ')}`, () => {
    const r = runCli(args);
    assert.equal(r.code, 2, `exit code for ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  });
}

test('serve on a missing root names the flag', () => {
  const data = mkdtempSync(join(tmpdir(), 'bb-cli-'));
  const r = runCli(['serve', '--root', join(data, 'nope'), '--boot', 'bios=a', '--data', data, '--interface', 'lo']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--root .*nope does not exist/);
});

test('pools are parsed and checked against the NIC network', () => {
  assert.deepEqual(parsePool('192.0.2.100-192.0.2.150'), { first: '192.0.2.100', last: '192.0.2.150' });
  assert.throws(() => parsePool('192.0.2.1'), ConfigError);
  assert.throws(() => checkPoolAgainstInterface({ first: '198.18.0.10', last: '198.18.0.20' }, '192.0.2.1', 24, 'br0'), /outside br0's network 192.0.2.0\/24/);
  assert.throws(() => checkPoolAgainstInterface({ first: '192.0.2.1', last: '192.0.2.20' }, '192.0.2.1', 24, 'br0'), /contains br0's own address/);
  checkPoolAgainstInterface({ first: '192.0.2.10', last: '192.0.2.20' }, '192.0.2.1', 24, 'br0');
});
