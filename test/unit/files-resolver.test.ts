import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileResolver, normalizeRequestPath, type OpenResult } from '../../main/files/index.js';

const SECRET = 'TOP-SECRET-OUTSIDE-THE-ROOT';

let base: string;
let root: string;
let unixServer: Server | undefined;
let deviceReason: string | undefined;

before(async () => {
  base = mkdtempSync(join(tmpdir(), 'bb-files-'));
  root = join(base, 'root');
  mkdirSync(join(root, 'Boot'), { recursive: true });
  mkdirSync(join(root, 'EFI', 'Microsoft', 'Boot'), { recursive: true });
  mkdirSync(join(root, 'grub'));
  writeFileSync(join(base, 'secret.txt'), SECRET);
  mkdirSync(join(base, 'outside-dir'));
  writeFileSync(join(base, 'outside-dir', 'passwd'), SECRET);
  writeFileSync(join(root, 'Boot', 'BCD'), 'bcd-store');
  writeFileSync(join(root, 'EFI', 'Microsoft', 'Boot', 'bootmgfw.efi'), 'bootmgr');
  writeFileSync(join(root, 'grub', 'grub.cfg'), 'menuentry');
  writeFileSync(join(root, 'pxelinux.0'), 'pxelinux');
  writeFileSync(join(root, 'a'.repeat(255)), 'long-but-legal');
  symlinkSync('pxelinux.0', join(root, 'link-inside'));
  symlinkSync('grub', join(root, 'dir-link-inside'));
  symlinkSync(join(base, 'secret.txt'), join(root, 'link-out'));
  symlinkSync('../secret.txt', join(root, 'link-rel-out'));
  symlinkSync(join(base, 'outside-dir'), join(root, 'link-out-dir'));
  symlinkSync('/etc/passwd', join(root, 'link-etc'));
  symlinkSync('/dev/zero', join(root, 'link-dev-zero'));
  symlinkSync('loop', join(root, 'loop'));
  symlinkSync('nowhere', join(root, 'dangling'));
  symlinkSync('../../root/../secret.txt', join(root, 'grub', 'sneaky'));
  linkSync(join(base, 'secret.txt'), join(root, 'hardlink-out'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  unixServer = createServer();
  await new Promise<void>((resolve) => unixServer!.listen(join(root, 'socket'), resolve));
  try {
    execFileSync('mknod', [join(root, 'devzero'), 'c', '1', '5'], { stdio: 'ignore' });
  } catch {
    deviceReason = 'mknod needs root (CAP_MKNOD)';
  }
});

after(() => {
  unixServer?.close();
  rmSync(base, { recursive: true, force: true });
});

async function openText(resolver: FileResolver, name: string): Promise<OpenResult & { text?: string }> {
  const r = await resolver.open(name);
  if (!r.ok) return r;
  const buf = Buffer.alloc(r.file.size);
  await r.file.read(buf, 0, buf.length, 0);
  r.file.release();
  return { ...r, text: buf.toString() };
}

/** Traversal built from every prefix, climb and suffix: always refused as access violations. */
function traversalCorpus(): string[] {
  const prefixes = ['', '/', './', '\\', 'Boot/', 'Boot\\', 'grub/./'];
  const climbs = ['..', '../..', '..\\..', '../../../../../../..'];
  const suffixes = ['', '/secret.txt', '/etc/passwd', '\\secret.txt', '/root/../secret.txt'];
  const out: string[] = [];
  for (const p of prefixes) for (const c of climbs) for (const s of suffixes) out.push(p + c + s);
  return out;
}

const refusedCorpus: [string, 'access-denied' | 'not-found'][] = [
  // Absolute paths and drives: `/x` is root-relative (GRUB asks `/grub/grub.cfg`), so it can
  // only reach inside the root; drive letters are refused.
  ['/etc/passwd', 'not-found'],
  ['/etc/shadow', 'not-found'],
  ['C:\\Windows\\win.ini', 'access-denied'],
  ['c:/secret.txt', 'access-denied'],
  ['/C:/secret.txt', 'access-denied'],
  ['\\\\server\\share\\secret.txt', 'not-found'],
  ['//etc/passwd', 'not-found'],
  // NUL and control characters
  ['pxelinux.0\u0000.txt', 'access-denied'],
  ['\u0000', 'access-denied'],
  ['Boot/\u0000/../secret.txt', 'access-denied'],
  ['pxelinux.0\n', 'access-denied'],
  ['pxe\tlinux.0', 'access-denied'],
  ['pxelinux.0\u007f', 'access-denied'],
  ['pxelinux.0\r', 'access-denied'],
  // Overlong
  ['a'.repeat(1025), 'access-denied'],
  ['a/'.repeat(600), 'access-denied'],
  ['a'.repeat(256), 'access-denied'],
  ['Boot/' + 'b'.repeat(300), 'access-denied'],
  ['é'.repeat(200), 'access-denied'], // 400 bytes in UTF-8 > 255
  // Symlinks that leave the root
  ['link-out', 'access-denied'],
  ['LINK-OUT', 'access-denied'],
  ['link-rel-out', 'access-denied'],
  ['link-out-dir/passwd', 'access-denied'],
  ['link-out-dir', 'access-denied'],
  ['link-etc', 'access-denied'],
  ['link-dev-zero', 'access-denied'],
  ['grub/sneaky', 'access-denied'],
  ['dir-link-inside/sneaky', 'access-denied'],
  ['loop', 'not-found'],
  ['dangling', 'not-found'],
  // Not regular files
  ['fifo', 'access-denied'],
  ['socket', 'access-denied'],
  ['Boot', 'not-found'],
  ['grub/', 'not-found'],
  ['', 'not-found'],
  ['/', 'not-found'],
  ['\\', 'not-found'],
  ['.', 'not-found'],
  // Unicode look-alikes stay literal names (never folded into `..` or `/`)
  ['\uff0e\uff0e/secret.txt', 'not-found'],
  ['\u2025/secret.txt', 'not-found'],
  ['..\u2215secret.txt', 'not-found'],
  ['..\u2044secret.txt', 'not-found'],
  ['\uff0e\uff0e\uff3csecret.txt', 'not-found'],
  ['\uff22\uff2f\uff2f\uff34/BCD', 'not-found'],
  ['.\u200b./secret.txt', 'not-found'],
  ['\ufffd', 'access-denied'],
  // URL encoding is not decoded by the resolver (HTTP decodes once before calling it)
  ['%2e%2e/secret.txt', 'not-found'],
  ['%2e%2e%2fsecret.txt', 'not-found'],
  ['..%2fsecret.txt', 'not-found'],
  ['..%5csecret.txt', 'not-found'],
  ['%252e%252e%252fsecret.txt', 'not-found'],
  ['%00', 'not-found'],
  ['..%c0%afsecret.txt', 'not-found'],
  // Trailing tricks
  ['pxelinux.0/', 'not-found'], // a file used as a folder? no: trailing slash is dropped -> found below? (see test)
  ['pxelinux.0/..', 'access-denied'],
  ['pxelinux.0/x', 'not-found'],
  ['Boot/BCD/../../secret.txt', 'access-denied'],
];

describe('normalizeRequestPath', () => {
  test('maps backslashes, drops . and empty segments, keeps a leading slash root-relative', () => {
    assert.deepEqual(normalizeRequestPath('\\Boot\\x64\\wdsnbp.com'), { ok: true, segments: ['Boot', 'x64', 'wdsnbp.com'], path: '/Boot/x64/wdsnbp.com' });
    assert.deepEqual(normalizeRequestPath('/boot\\bcd'), { ok: true, segments: ['boot', 'bcd'], path: '/boot/bcd' });
    assert.deepEqual(normalizeRequestPath('//grub/./x86_64-efi//command.lst'), {
      ok: true,
      segments: ['grub', 'x86_64-efi', 'command.lst'],
      path: '/grub/x86_64-efi/command.lst',
    });
  });
});

describe('FileResolver: hostile names', () => {
  const corpus = traversalCorpus()
    .map((name) => [name, 'access-denied'] as [string, 'access-denied' | 'not-found'])
    .concat(refusedCorpus.filter(([n]) => n !== 'pxelinux.0/'));
  test(`corpus has at least 100 names (${corpus.length})`, () => {
    assert.ok(corpus.length >= 100);
  });

  for (const caseInsensitive of [true, false]) {
    test(`every hostile name is refused with the right code (caseInsensitive=${caseInsensitive})`, async () => {
      const resolver = new FileResolver({ roots: [root], caseInsensitive });
      const wrong: string[] = [];
      for (const [name, code] of corpus) {
        const r = await openText(resolver, name);
        if (r.ok) wrong.push(`${JSON.stringify(name)} was served: ${JSON.stringify(r.text)}`);
        else if (r.code !== code && !(name === 'LINK-OUT' && !caseInsensitive))
          wrong.push(`${JSON.stringify(name)}: ${r.code} (${r.reason}), expected ${code}`);
      }
      assert.deepEqual(wrong, []);
      assert.equal(resolver.openDescriptorCount(), 0);
    });
  }

  test('a device node inside the root is refused', { skip: deviceReason }, async () => {
    const r = await new FileResolver({ roots: [root] }).open('devzero');
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.code, 'access-denied');
  });

  test('a hard link is the same file: served by default, refused with allowHardLinks false', async () => {
    const served = await openText(new FileResolver({ roots: [root] }), 'hardlink-out');
    assert.equal(served.ok && served.text, SECRET, 'a hard link cannot be told from a file in the root');
    const strict = await openText(new FileResolver({ roots: [root], allowHardLinks: false }), 'hardlink-out');
    assert.equal(!strict.ok && strict.code, 'access-denied');
    const normal = await openText(new FileResolver({ roots: [root], allowHardLinks: false }), 'pxelinux.0');
    assert.equal(normal.ok, true);
  });
});

describe('FileResolver: lookups', () => {
  test('Windows and firmware spellings find the file, case-insensitively', async () => {
    const resolver = new FileResolver({ roots: [root] });
    for (const name of ['Boot\\BCD', 'boot/bcd', '/BOOT/bcd', '\\Boot\\BCD', '/boot\\BcD']) {
      const r = await openText(resolver, name);
      assert.equal(r.ok && r.text, 'bcd-store', name);
    }
    const r = await openText(resolver, 'efi\\microsoft\\boot\\BOOTMGFW.EFI');
    assert.equal(r.ok && r.text, 'bootmgr');
  });

  test('case-sensitive mode finds only exact names', async () => {
    const resolver = new FileResolver({ roots: [root], caseInsensitive: false });
    assert.equal((await resolver.open('boot/bcd')).ok, false);
    assert.equal((await resolver.open('Boot/BCD')).ok, true);
  });

  test('symlinks that stay inside the root are followed; long legal names work', async () => {
    const resolver = new FileResolver({ roots: [root] });
    assert.equal((await openText(resolver, 'link-inside')).text, 'pxelinux');
    assert.equal((await openText(resolver, 'dir-link-inside/grub.cfg')).text, 'menuentry');
    assert.equal((await openText(resolver, '//grub//grub.cfg')).text, 'menuentry');
    assert.equal((await openText(resolver, 'pxelinux.0/')).text, 'pxelinux', 'a trailing slash is an empty segment');
    assert.equal((await openText(resolver, 'a'.repeat(255))).text, 'long-but-legal');
  });

  test('the same file is opened once and shared; closed when the last reader releases', async () => {
    const resolver = new FileResolver({ roots: [root] });
    const a = await resolver.open('pxelinux.0');
    const b = await resolver.open('PXELINUX.0');
    assert.ok(a.ok && b.ok);
    assert.equal(resolver.openDescriptorCount(), 1);
    a.file.release();
    assert.equal(resolver.openDescriptorCount(), 1);
    const buf = Buffer.alloc(8);
    assert.equal(await b.file.read(buf, 0, 8, 0), 8, 'still readable after the other reader left');
    b.file.release();
    assert.equal(resolver.openDescriptorCount(), 0);
  });

  test('several roots: the first that has the file wins', async () => {
    const other = join(base, 'root2');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'only-here.txt'), 'second root');
    writeFileSync(join(other, 'pxelinux.0'), 'shadowed');
    const resolver = new FileResolver({ roots: [root, other] });
    assert.equal((await openText(resolver, 'only-here.txt')).text, 'second root');
    assert.equal((await openText(resolver, 'pxelinux.0')).text, 'pxelinux');
  });
});

describe('FileResolver: virtual namespace', () => {
  test('generate: per-client content, case-insensitive, before the disk', async () => {
    const resolver = new FileResolver({ roots: [root] });
    resolver.generate('/machines/boot.ipxe', ({ ip, protocol }) => (ip === '192.0.2.7' ? `#!ipxe\necho ${protocol}\n` : undefined));
    resolver.generate('/pxelinux.0', () => Buffer.from('generated wins'));
    const r = await resolver.open('\\Machines\\BOOT.ipxe', { protocol: 'http', ip: '192.0.2.7' });
    assert.ok(r.ok);
    const buf = Buffer.alloc(r.file.size);
    assert.equal(r.file.read(buf, 0, buf.length, 0), buf.length);
    assert.equal(buf.toString(), '#!ipxe\necho http\n');
    assert.equal(r.file.generated, true);
    assert.equal((await resolver.open('/machines/boot.ipxe', { protocol: 'tftp', ip: '192.0.2.8' })).ok, false);
    assert.equal((await openText(resolver, 'pxelinux.0')).text, 'generated wins');
    assert.equal(resolver.unmount('/PXELINUX.0'), true);
    assert.equal((await openText(resolver, 'pxelinux.0')).text, 'pxelinux');
  });

  test('generate: a generator with nothing for this client falls through to the root', async () => {
    const resolver = new FileResolver({ roots: [root] });
    resolver.generate('/grub/grub.cfg', ({ mac }) => (mac === 'aa:bb:cc:dd:ee:ff' ? 'generated cfg' : undefined));
    assert.equal((await openText(resolver, 'grub/grub.cfg')).text, 'menuentry', 'unassigned client gets the root file');
    const r = await resolver.open('/grub/grub.cfg', { protocol: 'tftp', mac: 'aa:bb:cc:dd:ee:ff' });
    assert.ok(r.ok && r.file.generated);
  });

  test('mount: a file or a folder at a virtual path; traversal inside a mount is refused', async () => {
    const resolver = new FileResolver({ roots: [root] });
    resolver.mount('/entries/debian/linux', join(base, 'secret.txt'));
    resolver.mount('/entries/out', join(base, 'outside-dir'));
    assert.equal((await openText(resolver, 'entries/debian/linux')).text, SECRET, 'explicit mounts may point anywhere');
    assert.equal((await openText(resolver, 'ENTRIES/OUT/passwd')).text, SECRET);
    const up = await resolver.open('entries/out/../secret.txt');
    assert.equal(!up.ok && up.code, 'access-denied');
    const missing = await resolver.open('entries/debian/linux/extra');
    assert.equal(missing.ok, false);
    assert.throws(() => resolver.mount('/x/../y', '/tmp'));
    assert.throws(() => resolver.mount('/x', 'relative/path'));
  });
});
