// Protocol-level behaviour of the TFTP server over loopback, with a hand-driven client:
// TIDs, probes, bad input, retransmission, failure and shutdown.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { missingPrograms, waitFor } from '../helpers/netns.js';
import { decodeTftpPacket, encodeAck, encodeError, encodeTftpPacket, TftpOpcode, type TftpPacket } from '../../main/tftp/packet.js';
import { RawClient, sha256, sha256File, TftpFixture } from './tftp-helpers.js';

const run = promisify(execFile);

function rrq(filename: string, options: Record<string, string | number> = {}, mode = 'octet'): Buffer {
  return encodeTftpPacket({
    opcode: TftpOpcode.RRQ,
    filename,
    mode,
    options: Object.entries(options).map(([name, value]) => ({ name, value: String(value) })),
  });
}

function decode(msg: Buffer): TftpPacket {
  return decodeTftpPacket(msg);
}

const fx = new TftpFixture();
let port = 0;

before(async () => {
  fx.addFile('file.bin', 200_000);
  fx.addText('text.txt', 'line one\nline two\r\nbare CR\r here\n');
  await fx.start({ retransmit: { abandonAfterMs: 600, maxBackoffMs: 200, maxRtoMs: 200 } });
  port = fx.server.port;
});

after(() => fx.stop());

/** Downloads with the raw client, lock-step, acknowledging every block. */
async function download(client: RawClient, first: { msg: Buffer; port: number }, blksize = 512): Promise<Buffer> {
  const parts: Buffer[] = [];
  let current = first;
  let expected = 1;
  for (;;) {
    const p = decode(current.msg);
    if (p.opcode === TftpOpcode.OACK) {
      if (expected === 1) client.send(encodeAck(0), current.port);
    } else if (p.opcode === TftpOpcode.DATA) {
      // A retransmitted block (our ACK was slow on a busy machine) is acknowledged again,
      // not appended: RFC 1350 receiver behaviour.
      if (p.block === (expected & 0xffff)) {
        parts.push(Buffer.from(p.data));
        expected++;
      }
      client.send(encodeAck(p.block), current.port);
      if (p.block === ((expected - 1) & 0xffff) && p.data.length < blksize) return Buffer.concat(parts);
    } else throw new Error(`unexpected ${JSON.stringify(p)}`);
    current = await client.receive();
  }
}

describe('TFTP server over loopback', () => {
  test('each transfer answers from a new port; a foreign TID gets ERROR 5 and the transfer goes on', async () => {
    const client = await new RawClient().open();
    const intruder = await new RawClient().open();
    try {
      client.send(rrq('file.bin', { blksize: 1024 }), port);
      const oack = await client.receive();
      assert.notEqual(oack.port, port, 'new TID');
      assert.equal(decode(oack.msg).opcode, TftpOpcode.OACK);
      intruder.send(encodeAck(0), oack.port);
      const err = decode((await intruder.receive()).msg);
      assert.deepEqual(err.opcode === TftpOpcode.ERROR && err.code, 5);
      const data = await download(client, oack, 1024);
      assert.equal(sha256(data), fx.hashes.get('file.bin'));
    } finally {
      await client.close();
      await intruder.close();
    }
  });

  test('size probe: RRQ tsize, OACK with the real size, ERROR 8 -> tftp.probe, not failed', async () => {
    const client = await new RawClient().open();
    try {
      client.send(rrq('FILE.BIN', { tsize: 0, blksize: 1468, windowsize: 4 }), port);
      const oack = await client.receive();
      const p = decode(oack.msg);
      assert.equal(p.opcode, TftpOpcode.OACK);
      if (p.opcode !== TftpOpcode.OACK) return;
      assert.deepEqual(p.options, [
        { name: 'tsize', value: '200000' },
        { name: 'blksize', value: '1468' },
        { name: 'windowsize', value: '4' },
      ]);
      client.send(encodeError(8, 'tsize probe'), oack.port);
      const probe = await waitFor(() => fx.ofType('tftp.probe').at(-1), 2000, 'tftp.probe');
      assert.equal(probe.file, '/file.bin');
      assert.equal(probe.mac, '52:54:00:12:34:56');
      assert.equal(fx.ofType('tftp.failed').length, 0);
    } finally {
      await client.close();
    }
  });

  test('a lost DATA is re-sent after tens of milliseconds, not seconds', async () => {
    const client = await new RawClient().open();
    try {
      client.send(rrq('file.bin'), port);
      const first = await client.receive();
      const t0 = Date.now();
      const again = await client.receive(2000); // we did not ACK: the server re-sends block 1
      const waited = Date.now() - t0;
      assert.deepEqual(again.msg, first.msg);
      assert.ok(waited < 700, `re-sent after ${waited} ms`);
      const data = await download(client, again);
      assert.equal(sha256(data), fx.hashes.get('file.bin'));
    } finally {
      await client.close();
    }
  });

  test('a repeated RRQ before ACK 0 (its OACK was lost) is answered with the OACK at once, from the same TID', async () => {
    const client = await new RawClient().open();
    try {
      client.send(rrq('file.bin', { blksize: 1024 }), port);
      const first = await client.receive();
      assert.equal(decode(first.msg).opcode, TftpOpcode.OACK);
      const t0 = Date.now();
      client.send(rrq('file.bin', { blksize: 1024 }), port);
      const again = await client.receive(1000);
      assert.equal(decode(again.msg).opcode, TftpOpcode.OACK);
      assert.equal(again.port, first.port, 'the same transfer answers');
      assert.ok(Date.now() - t0 < 300, `answered in ${Date.now() - t0} ms, not by the 6 s OACK timer`);
      const data = await download(client, again, 1024);
      assert.equal(sha256(data), fx.hashes.get('file.bin'));
    } finally {
      await client.close();
    }
  });

  test('a repeated RRQ from the same client port does not start a second transfer', async () => {
    const client = await new RawClient().open();
    try {
      const starts = fx.ofType('tftp.start').length;
      client.send(rrq('file.bin', { blksize: 1468 }), port);
      client.send(rrq('file.bin', { blksize: 1468 }), port);
      const oack = await client.receive();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(fx.ofType('tftp.start').length, starts + 1);
      const data = await download(client, oack, 1468);
      assert.equal(sha256(data), fx.hashes.get('file.bin'));
    } finally {
      await client.close();
    }
  });

  test('a silent client: bounded retries, then tftp.failed; nothing stays open', async () => {
    const client = await new RawClient().open();
    try {
      client.send(rrq('file.bin', { blksize: 512 }), port);
      await client.receive(); // OACK, never acknowledged
      const failed = await waitFor(() => fx.ofType('tftp.failed').at(-1), 5000, 'tftp.failed');
      assert.equal(failed.file, '/file.bin');
      assert.match(String(failed.reason), /nothing from the client/);
      const got = await client.drain(100);
      const oacks = got.filter((g) => g.msg[1] === TftpOpcode.OACK).length;
      assert.ok(oacks <= 5, `re-sent the OACK ${oacks} times`);
      await waitFor(() => fx.server.activeTransfers().length === 0, 1000, 'transfer removed');
      assert.equal(fx.files.openDescriptorCount(), 0);
      fx.events.splice(0, fx.events.length); // later tests check for no failures
    } finally {
      await client.close();
    }
  });

  test('WRQ -> ERROR 2; mode "mail" -> ERROR 4; missing -> ERROR 1; traversal -> ERROR 2', async () => {
    const client = await new RawClient().open();
    try {
      const ask = async (_packet: Buffer) => decode((await client.receive()).msg);
      client.send(encodeTftpPacket({ opcode: TftpOpcode.WRQ, filename: 'x', mode: 'octet', options: [] }), port);
      assert.deepEqual(await ask(Buffer.alloc(0)), { opcode: TftpOpcode.ERROR, code: 2, message: 'this server is read-only' });
      client.send(rrq('file.bin', {}, 'mail'), port);
      assert.equal(((await ask(Buffer.alloc(0))) as { code: number }).code, 4);
      client.send(rrq('nope.bin'), port);
      assert.equal(((await ask(Buffer.alloc(0))) as { code: number }).code, 1);
      client.send(rrq('..\\..\\etc\\passwd'), port);
      assert.equal(((await ask(Buffer.alloc(0))) as { code: number }).code, 2);
      client.send(rrq('file.bin\u0000../x'), port);
      // The NUL ends the file name on the wire: an RRQ for file.bin with mode "../x" and a
      // dangling option "octet": refused (4 or 8), never data.
      const nul = await ask(Buffer.alloc(0));
      assert.equal(nul.opcode, TftpOpcode.ERROR);
      assert.ok([4, 8].includes((nul as { code: number }).code));
      assert.ok(fx.ofType('tftp.refused').length >= 5);
    } finally {
      await client.close();
    }
  });

  test('malformed packets: answered or dropped, logged once each, and the server goes on', async () => {
    const client = await new RawClient().open();
    try {
      const junk = [
        Buffer.from([]),
        Buffer.from([0]),
        Buffer.from([0, 1]),
        Buffer.from('\x00\x01no-terminator', 'latin1'),
        Buffer.from('\x00\x01file.bin\x00octet', 'latin1'),
        Buffer.from('\x00\x01file.bin\x00octet\x00blksize\x00', 'latin1'),
        Buffer.from('\x00\x63garbage', 'latin1'),
        Buffer.from([0xff, 0xff, 0xff]),
        Buffer.from([0, 3, 0, 1, 9, 9]), // DATA to the request port
        Buffer.from([0, 4, 0, 0]), // ACK to the request port
        Buffer.alloc(65000, 1), // larger than any TFTP packet, within a UDP datagram
      ];
      const linesBefore = fx.logger.lines.length;
      for (let round = 0; round < 3; round++) for (const j of junk) client.send(j, port);
      const replies = await client.drain(300);
      for (const r of replies) assert.equal(decode(r.msg).opcode, TftpOpcode.ERROR);
      const newLines = fx.logger.lines.slice(linesBefore).map((l) => l.message);
      assert.ok(newLines.length <= junk.length, `logged once per kind, got ${newLines.length}: ${newLines.join(' | ')}`);
      assert.equal(new Set(newLines).size, newLines.length, 'no line repeated');
      // Bad option values are not errors: they are left out of the OACK.
      client.send(rrq('file.bin', { blksize: 0, windowsize: 0, tsize: 'abc', timeout: 999 }), port);
      let first = await client.receive();
      while (first.port === port) first = await client.receive(); // late answers to the junk
      assert.equal(decode(first.msg).opcode, TftpOpcode.DATA, 'no acceptable option: plain RFC 1350 transfer');
      const data = await download(client, first);
      assert.equal(sha256(data), fx.hashes.get('file.bin'));
    } finally {
      await client.close();
    }
  });

  test('netascii: tftp-hpa in its default (ascii) mode gets the file back unchanged', { skip: missingPrograms('tftp') }, async () => {
    const out = join(fx.out, 'ascii.txt');
    await run('tftp', ['-m', 'ascii', '127.0.0.1', String(port), '-c', 'get', 'text.txt', out], { timeout: 30_000 });
    assert.equal(readFileSync(out, 'utf8'), readFileSync(join(fx.root, 'text.txt'), 'utf8'));
    writeFileSync(join(fx.out, 'unused'), '');
    assert.equal(sha256File(out), fx.hashes.get('text.txt'));
  });

  test('without batching (plain dgram sends) a windowed transfer is identical', async () => {
    const plain = new TftpFixture();
    plain.addFile('w.bin', 500_000);
    await plain.start({ batchSend: false });
    const client = await new RawClient().open();
    try {
      client.send(rrq('w.bin', { blksize: 1000, windowsize: 8 }), plain.server.port);
      const oack = await client.receive();
      client.send(encodeAck(0), oack.port);
      const parts: Buffer[] = [];
      let expected = 1;
      for (;;) {
        const { msg } = await client.receive();
        const p = decode(msg);
        if (p.opcode !== TftpOpcode.DATA || p.block !== expected) continue;
        parts.push(Buffer.from(p.data));
        expected++;
        const last = p.data.length < 1000;
        if (last || (expected - 1) % 8 === 0) client.send(encodeAck(p.block), oack.port);
        if (last) break;
      }
      assert.equal(sha256(Buffer.concat(parts)), plain.hashes.get('w.bin'));
    } finally {
      await client.close();
      await plain.stop();
    }
  });

  test('stop() ends running transfers and tells the clients', async () => {
    const client = await new RawClient().open();
    try {
      client.send(rrq('file.bin'), port);
      const first = await client.receive();
      assert.equal(decode(first.msg).opcode, TftpOpcode.DATA);
      assert.equal(fx.server.activeTransfers().length, 1, JSON.stringify(fx.server.activeTransfers()));
      const snapshot = fx.server.activeTransfers()[0];
      assert.equal(snapshot.file, '/file.bin');
      assert.equal(snapshot.mac, '52:54:00:12:34:56');
      await fx.server.stop();
      const got = await client.drain(100);
      assert.ok(got.some((g) => g.msg[1] === TftpOpcode.ERROR));
      assert.deepEqual(fx.server.activeTransfers(), []);
      assert.equal(fx.files.openDescriptorCount(), 0);
    } finally {
      await client.close();
    }
  });
});
