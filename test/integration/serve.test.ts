// `bootbench serve` end to end in a namespace pair: TFTP and HTTP downloads from a real
// client (curl), JSON events with the client's details, clean stop on SIGTERM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, missingPrograms, netnsUnavailableReason } from '../helpers/netns.js';
import { ServeProcess } from '../helpers/serve-process.js';

const skip = netnsUnavailableReason() ?? missingPrograms('curl');

let lab: Lab;
let serve: ServeProcess;
let clientNs: string;
const root = mkdtempSync(join(tmpdir(), 'bb-serve-root-'));
const data = mkdtempSync(join(tmpdir(), 'bb-serve-data-'));
const payload = randomBytes(3 * 1024 * 1024 + 77);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

before(async () => {
  if (skip) return;
  writeFileSync(join(root, 'nbp.efi'), payload);
  writeFileSync(join(root, 'boot.ipxe'), '#!ipxe\necho hello from bootbench\n');
  lab = new Lab('bbs');
  const server = lab.namespace('s');
  clientNs = lab.namespace('c');
  lab.veth(server, 'bench0', '192.0.2.1/24', clientNs, 'eth0', '192.0.2.10/24');
  serve = new ServeProcess(lab, server, ['--interface', 'bench0', '--root', root, '--boot', 'uefi64=nbp.efi', '--ipxe-script', 'boot.ipxe', '--data', data]);
  await serve.ready();
});

after(async () => {
  if (lab) await lab.destroy();
});

test('TFTP download by curl is byte-identical and reported', { skip }, async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'bb-dl-')), 'nbp.efi');
  lab.exec(clientNs, 'curl', ['-sS', '--tftp-blksize', '1468', '-o', out, 'tftp://192.0.2.1/nbp.efi']);
  const { readFileSync } = await import('node:fs');
  assert.equal(sha(readFileSync(out)), sha(payload));
  const done = await serve.waitForEvent((e) => e.type === 'tftp.done', 5000, 'tftp.done');
  assert.equal(done.ip, '192.0.2.10');
  assert.match(String(done.file), /^\/?nbp\.efi$/);
  assert.ok(serve.events.some((e) => e.type === 'tftp.start'));
});

test('HTTP serves the root and the iPXE script', { skip }, async () => {
  const body = lab.exec(clientNs, 'curl', ['-sS', 'http://192.0.2.1:8080/boot.ipxe']);
  assert.match(body, /^#!ipxe\necho hello from bootbench/);
  const headers = lab.exec(clientNs, 'curl', ['-sSI', 'http://192.0.2.1:8080/nbp.efi']);
  assert.match(headers, new RegExp(`content-length: ${payload.length}`, 'i'));
  await serve.waitForEvent((e) => e.type === 'http.done' && e.file === '/boot.ipxe', 5000, 'http.done for the script');
});

test('paths outside the root are refused over TFTP and HTTP', { skip }, async () => {
  const code = lab.exec(clientNs, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--path-as-is', 'http://192.0.2.1:8080/../../etc/passwd']);
  assert.match(code, /^4\d\d$/);
  assert.throws(() => lab.exec(clientNs, 'curl', ['-sS', '-o', '/dev/null', 'tftp://192.0.2.1/../../etc/passwd']));
});

test('SIGTERM stops the host cleanly with exit code 0', { skip }, async () => {
  assert.equal(await serve.stop('SIGTERM'), 0, serve.stderr);
});
