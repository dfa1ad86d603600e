// Issue 9 item 2: hostile names over the wire, against the real TftpServer and
// HttpFileServer on loopback, sharing one FileResolver made the way the service host makes
// it. More than 100 names: `..` in every spelling, absolute and drive paths, `\`,
// URL-encoded and double-encoded, NUL, overlong, Unicode look-alikes, symlinks and hard
// links leaving the root, device files and FIFOs. Every one must be refused (TFTP ERROR
// 1/2, HTTP 4xx) and no byte of anything outside the root may arrive.
// (test/unit/files-resolver.test.ts covers FileResolver alone; this is end to end.)
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBus } from '../../main/core/events.js';
import { MemoryLogger } from '../../main/core/logger.js';
import { TftpServer } from '../../main/tftp/server.js';
import { HttpFileServer } from '../../main/http/server.js';
import { createHostFileResolver } from '../../main/host/service-host.js';

const dir = mkdtempSync(join(tmpdir(), 'bb-hostile-'));
const root = join(dir, 'root');
const outside = join(dir, 'outside');
const SECRET = `BB-SECRET-${randomBytes(8).toString('hex')}`;
const GOOD = randomBytes(2000);
const isRoot = process.getuid?.() === 0;

/** Bytes that must never leave: the secret file, /etc/passwd's first line. */
const FORBIDDEN = [Buffer.from(SECRET), Buffer.from('root:x:0:0'), Buffer.from('root:*:0:0')];

function setUpRoot(): string[] {
  mkdirSync(join(root, 'sub', 'deeper'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(root, 'good.bin'), GOOD);
  writeFileSync(join(root, 'sub', 'inner.bin'), GOOD);
  writeFileSync(join(outside, 'secret.txt'), `${SECRET}\n`);
  writeFileSync(join(dir, 'secret-beside-root.txt'), `${SECRET}\n`);
  symlinkSync(join(outside, 'secret.txt'), join(root, 'link-out'));
  symlinkSync('../outside/secret.txt', join(root, 'rel-link-out'));
  symlinkSync('../../../outside/secret.txt', join(root, 'sub', 'deeper', 'rel-link-up'));
  symlinkSync(outside, join(root, 'dirlink'));
  symlinkSync('..', join(root, 'sub', 'parent-link'));
  symlinkSync('/', join(root, 'slash-link'));
  symlinkSync('/etc/passwd', join(root, 'passwd-link'));
  symlinkSync('link-out', join(root, 'chain-link'));
  symlinkSync('/dev/zero', join(root, 'devzero-link'));
  symlinkSync('/proc/self/environ', join(root, 'environ-link'));
  linkSync(join(outside, 'secret.txt'), join(root, 'hard-secret'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  const names = [
    'link-out',
    'rel-link-out',
    'sub/deeper/rel-link-up',
    'dirlink/secret.txt',
    'sub/parent-link/outside/secret.txt',
    'sub/parent-link/secret-beside-root.txt',
    'slash-link/etc/passwd',
    'passwd-link',
    'chain-link',
    'devzero-link',
    'environ-link',
    'hard-secret',
    'HARD-SECRET',
    'Link-Out',
    'DIRLINK/SECRET.TXT',
    'fifo',
    'sub\\parent-link\\outside\\secret.txt',
  ];
  if (isRoot) {
    // Device nodes inside the root itself (only root can make them).
    execFileSync('mknod', [join(root, 'zero'), 'c', '1', '5']);
    execFileSync('mknod', [join(root, 'sda'), 'b', '8', '0']);
    names.push('zero', 'sda', 'ZERO');
  }
  return names;
}

/** `..` in every spelling, absolute, drive, NUL, overlong, encoded, look-alike. */
function traversalNames(): string[] {
  const targets = ['outside/secret.txt', 'secret-beside-root.txt', '../../../../../../etc/passwd'];
  const ups = ['..', '..\\', '..//', '.\\..', './..', '..\\\\', 'sub/../..', 'sub\\..\\..', '..;', '.. ', ' ..', '..\t', '....', '...'];
  const names: string[] = [];
  for (const up of ups) for (const target of targets.slice(0, 2)) names.push(`${up}/${target}`, `/${up}/${target}`);
  names.push(
    '../../../../../../../../etc/passwd',
    '..\\..\\..\\..\\..\\..\\etc\\passwd',
    '/../../../../etc/passwd',
    '\\..\\..\\etc\\passwd',
    'sub/../../outside/secret.txt',
    'sub/deeper/../../../outside/secret.txt',
    './../outside/secret.txt',
    '..',
    '../',
    '/..',
    '\\..',
    '.../.../etc/passwd',
    '..../outside/secret.txt',
    '../.',
    '.././outside/secret.txt',
    'sub/./../../outside/secret.txt',
    // absolute and drive paths (a leading / is relative to the root, so these are "not found" at most)
    '/etc/passwd',
    '//etc/passwd',
    '\\\\localhost\\c$\\windows\\win.ini',
    'C:\\Windows\\win.ini',
    'c:/boot.ini',
    'C:',
    'c:secret.txt',
    '\\\\?\\C:\\Windows\\win.ini',
    '/proc/self/environ',
    '/dev/zero',
    '/dev/sda',
    'file:///etc/passwd',
    `${outside}/secret.txt`,
    `/${dir}/secret-beside-root.txt`,
    // NUL and control characters
    'good.bin\u0000../../etc/passwd',
    '../outside/secret.txt\u0000good.bin',
    '\u0000',
    'good.bin\u0000',
    'sub\u0001/inner.bin',
    'good.bin\n',
    'good\r\n.bin',
    // overlong
    'a'.repeat(300),
    `${'a/'.repeat(600)}good.bin`,
    `${'../'.repeat(400)}etc/passwd`,
    `${'x'.repeat(256)}/good.bin`,
    `sub/${'y'.repeat(2000)}`,
    // Unicode look-alikes of dot and slash (must never be folded into `..` or `/`)
    '\uff0e\uff0e/outside/secret.txt',
    '\u2025/outside/secret.txt',
    '\u2024\u2024/outside/secret.txt',
    '..\u2215outside\u2215secret.txt',
    '..\u2044outside\u2044secret.txt',
    '..\uff0foutside\uff0fsecret.txt',
    '..\uff3coutside\uff3csecret.txt',
    '\u00b7\u00b7/outside/secret.txt',
    '.\u0307./outside/secret.txt',
    '\ufe52\ufe52/outside/secret.txt',
    '..\u29f8outside/secret.txt',
    'GOOD.BIN\u0338',
    // invalid UTF-8 arrives as U+FFFD after decoding
    '\ufffd\ufffd/outside/secret.txt',
  );
  return names;
}

/** Names that only mean something to an HTTP server that decodes them (once or twice). */
function encodedNames(): string[] {
  return [
    '%2e%2e/outside/secret.txt',
    '%2e%2e%2foutside%2fsecret.txt',
    '..%2foutside%2fsecret.txt',
    '..%5coutside%5csecret.txt',
    '%2E%2E%5C%2E%2E%5Cetc%5Cpasswd',
    '%252e%252e%252foutside%252fsecret.txt',
    '%252e%252e/outside/secret.txt',
    '..%252foutside%252fsecret.txt',
    '%c0%ae%c0%ae/outside/secret.txt',
    '%c0%ae%c0%ae%c0%afoutside%c0%afsecret.txt',
    '%e0%80%ae%e0%80%ae/outside/secret.txt',
    '%c1%9c..%c1%9coutside',
    '%uff0e%uff0e/outside/secret.txt',
    'good.bin%00.txt',
    '%00',
    '..%00/outside/secret.txt',
    '%2e%2e%00/outside/secret.txt',
    '%ef%bc%8e%ef%bc%8e/outside/secret.txt',
    '..%c0%afoutside%c0%afsecret.txt',
    '%2fetc%2fpasswd',
    '%5c%5clocalhost%5cc%24%5cwindows',
    'C%3a%5cWindows%5cwin.ini',
    '%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '..%255c..%255cetc%255cpasswd',
    'sub%2f..%2f..%2foutside%2fsecret.txt',
    '%2e./outside/secret.txt',
    '.%2e/outside/secret.txt',
    '%2e%2e;/outside/secret.txt',
    'link-out%00',
    'hard%2dsecret',
    'dirlink%2fsecret.txt',
    '%ff%fe/outside',
    '%',
    '%%32%65%%32%65/outside/secret.txt',
  ];
}

function containsForbidden(data: Buffer): boolean {
  return FORBIDDEN.some((f) => data.includes(f));
}

interface Outcome {
  refused: boolean;
  detail: string;
  leaked: boolean;
  bytes: number;
}

/** One RRQ, built by hand so NULs and odd bytes go out as given; reads whatever comes back. */
function tftpAsk(port: number, name: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const received: Buffer[] = [];
    let bytes = 0;
    const finish = (o: Omit<Outcome, 'leaked' | 'bytes'>) => {
      clearTimeout(timer);
      socket.close();
      resolve({ ...o, bytes, leaked: containsForbidden(Buffer.concat(received)) });
    };
    const timer = setTimeout(() => finish({ refused: false, detail: 'no answer in 3 s' }), 3000);
    socket.on('message', (msg, rinfo) => {
      const op = msg.readUInt16BE(0);
      if (op === 5) return finish({ refused: true, detail: `ERROR ${msg.readUInt16BE(2)} ${msg.subarray(4, msg.length - 1).toString()}` });
      if (op === 3) {
        bytes += msg.length - 4;
        received.push(msg.subarray(4));
        // Tell the server to stop: whatever it sent is already counted.
        socket.send(Buffer.from([0, 5, 0, 0, 0x78, 0]), rinfo.port, rinfo.address);
        return finish({ refused: false, detail: `DATA block ${msg.readUInt16BE(2)} (${msg.length - 4} bytes)` });
      }
      finish({ refused: false, detail: `opcode ${op}` });
    });
    socket.bind(0, '127.0.0.1', () => {
      socket.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from(name, 'utf8'), Buffer.from([0]), Buffer.from('octet\0')]), port, '127.0.0.1');
    });
  });
}

/** One GET with the request target written raw (no client-side normalisation or encoding). */
function httpAsk(port: number, target: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), 3000);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => {
      /* reset by a server refusing the request line is a refusal */
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const head = all.subarray(0, Math.max(0, all.indexOf('\r\n\r\n'))).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      const body = all.subarray(all.indexOf('\r\n\r\n') + 4);
      resolve({
        refused: all.length === 0 || (status >= 400 && status < 500),
        detail: all.length === 0 ? 'connection closed without a response' : head.split('\r\n')[0],
        leaked: containsForbidden(all),
        bytes: status >= 200 && status < 300 ? body.length : 0,
      });
    });
    const path = target.startsWith('/') ? target : `/${target}`;
    socket.write(Buffer.concat([Buffer.from('GET '), Buffer.from(path, 'utf8'), Buffer.from(' HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')]));
  });
}

describe('hostile paths over TFTP and HTTP (issue 9 item 2)', () => {
  const bus = new EventBus();
  const logger = new MemoryLogger();
  let tftp: TftpServer;
  let http: HttpFileServer;
  let linkNames: string[] = [];

  before(async () => {
    linkNames = setUpRoot();
    const files = createHostFileResolver(root);
    tftp = new TftpServer({ port: 0, address: '127.0.0.1', files, publish: bus.publish, logger });
    http = new HttpFileServer({ port: 0, address: '127.0.0.1', files, publish: bus.publish, logger });
    await tftp.start();
    await http.start();
  });
  after(async () => {
    await tftp?.stop();
    await http?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the good files are served (so refusals below mean something)', async () => {
    const t = await tftpAsk(tftp.port, 'good.bin');
    assert.equal(t.refused, false, t.detail);
    const h = await httpAsk(http.port, '/sub/inner.bin');
    assert.match(h.detail, /200/);
    assert.equal(h.bytes, GOOD.length);
  });

  test('over 100 hostile names: 100% refused, 0 bytes from outside the root', async () => {
    const plain = [...traversalNames(), ...linkNames];
    const encoded = encodedNames();
    const failures: string[] = [];
    let asked = 0;
    for (const name of plain) {
      const t = await tftpAsk(tftp.port, name);
      // HTTP gets the same name percent-encoded (what a client library would send) and raw.
      const h1 = await httpAsk(http.port, name.split('/').map(encodeURIComponent).join('/'));
      const h2 = /[\s\u0000-\u001f]/.test(name) ? h1 : await httpAsk(http.port, name);
      asked += 3;
      for (const [proto, o] of [
        ['TFTP', t],
        ['HTTP', h1],
        ['HTTP raw', h2],
      ] as const) {
        if (!o.refused || o.leaked || o.bytes > 0) failures.push(`${proto} ${JSON.stringify(name)}: ${o.detail}${o.leaked ? ' LEAKED' : ''}`);
      }
    }
    for (const target of encoded) {
      const h = await httpAsk(http.port, target);
      // TFTP has no encoding: the literal name (a file that does not exist) must be refused too.
      const t = await tftpAsk(tftp.port, target);
      asked += 2;
      for (const [proto, o] of [
        ['HTTP', h],
        ['TFTP', t],
      ] as const) {
        if (!o.refused || o.leaked || o.bytes > 0) failures.push(`${proto} ${JSON.stringify(target)}: ${o.detail}${o.leaked ? ' LEAKED' : ''}`);
      }
    }
    const names = plain.length + encoded.length;
    console.log(`hostile paths: ${names} names, ${asked} requests, ${asked - failures.length} refused, ${failures.length} not`);
    assert.ok(names >= 100, `only ${names} names`);
    assert.deepEqual(failures, []);
    // The servers are still fine afterwards.
    assert.equal((await tftpAsk(tftp.port, 'sub/inner.bin')).refused, false);
  });
});
