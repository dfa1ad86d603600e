// The multicast option where no multicast session can take the request, over loopback
// (nothing here is sent to a group): the server leaves `multicast` out of its OACK and the
// client downloads unicast, as RFC 2347 §2 lets it. The sessions themselves are tested in
// namespaces (tftp-multicast-netns.test.ts) and without sockets (unit/tftp-multicast.test.ts).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeTftpPacket, encodeAck, encodeError, encodeTftpPacket, TftpOpcode } from '../../main/tftp/packet.js';
import { waitFor } from '../helpers/netns.js';
import { RawClient, sha256, TftpFixture } from './tftp-helpers.js';

function rrq(filename: string, options: Record<string, string | number>, mode = 'octet'): Buffer {
  return encodeTftpPacket({
    opcode: TftpOpcode.RRQ,
    filename,
    mode,
    options: Object.entries(options).map(([name, value]) => ({ name, value: String(value) })),
  });
}

/** Lock-step download after the first answer (an OACK or DATA 1). */
async function download(client: RawClient, first: { msg: Buffer; port: number }, blksize: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let current = first;
  let expected = 1;
  for (;;) {
    const p = decodeTftpPacket(current.msg);
    if (p.opcode === TftpOpcode.OACK) client.send(encodeAck(0), current.port);
    else if (p.opcode === TftpOpcode.DATA) {
      if (p.block === expected) {
        parts.push(Buffer.from(p.data));
        expected++;
      }
      client.send(encodeAck(p.block), current.port);
      if (p.block === expected - 1 && p.data.length < blksize) return Buffer.concat(parts);
    } else throw new Error(`unexpected ${JSON.stringify(p)}`);
    current = await client.receive();
  }
}

describe('multicast option, served unicast', () => {
  const on = new TftpFixture();
  const off = new TftpFixture();

  before(async () => {
    for (const fx of [on, off]) {
      fx.addFile('file.bin', 60_000);
      fx.addFile('many-blocks.bin', 600_000);
      fx.addText('text.txt', 'one\ntwo\n');
    }
    await on.start({ multicast: {}, retransmit: { abandonAfterMs: 600, maxBackoffMs: 200, maxRtoMs: 200 } });
    await off.start({ retransmit: { abandonAfterMs: 600, maxBackoffMs: 200, maxRtoMs: 200 } });
  });

  after(async () => {
    await on.stop();
    await off.stop();
  });

  test('multicast off (the default): the option is left out of the OACK and the file arrives unicast', async () => {
    const client = await new RawClient().open();
    try {
      client.send(rrq('file.bin', { multicast: '', blksize: 1024, windowsize: 4 }), off.server.port);
      const first = await client.receive();
      const oack = decodeTftpPacket(first.msg);
      assert.ok(oack.opcode === TftpOpcode.OACK);
      // windowsize is granted: without multicast nothing changes for the transfer.
      assert.deepEqual(oack.options, [
        { name: 'blksize', value: '1024' },
        { name: 'windowsize', value: '4' },
      ]);
      client.send(encodeAck(0), first.port);
      const parts: Buffer[] = [];
      for (let got = 0; got < 60_000;) {
        const p = decodeTftpPacket((await client.receive()).msg);
        assert.ok(p.opcode === TftpOpcode.DATA);
        if (p.block === parts.length + 1) {
          parts.push(Buffer.from(p.data));
          got += p.data.length;
        }
        if (p.block % 4 === 0 || p.data.length < 1024) client.send(encodeAck(parts.length), first.port);
      }
      assert.equal(sha256(Buffer.concat(parts)), off.hashes.get('file.bin'));
      assert.equal(off.ofType('tftp-multicast.start').length, 0);
    } finally {
      await client.close();
    }
  });

  test('a file of more than 65535 blocks at the asked blksize goes unicast (multicast blocks never roll over)', async () => {
    const client = await new RawClient().open();
    try {
      client.send(rrq('many-blocks.bin', { multicast: '', blksize: 8 }), on.server.port);
      const first = await client.receive();
      const oack = decodeTftpPacket(first.msg);
      assert.ok(oack.opcode === TftpOpcode.OACK);
      assert.deepEqual(oack.options, [{ name: 'blksize', value: '8' }]);
      client.send(encodeAck(0), first.port);
      const data = decodeTftpPacket((await client.receive()).msg);
      assert.ok(data.opcode === TftpOpcode.DATA && data.block === 1);
      client.send(encodeError(0, 'enough'), first.port);
      const start = await waitFor(() => on.ofType('tftp.start').find((e) => e.file === '/many-blocks.bin'), 2000, 'tftp.start');
      assert.equal((start as { options: Record<string, number> }).options.multicast, undefined);
      assert.equal(on.ofType('tftp-multicast.start').length, 0);
    } finally {
      await client.close();
    }
  });

  test('netascii (a copy per request) goes unicast', async () => {
    const client = await new RawClient().open();
    try {
      client.send(rrq('text.txt', { multicast: '' }, 'netascii'), on.server.port);
      const first = await client.receive();
      const data = await download(client, first, 512);
      assert.equal(data.toString(), 'one\r\ntwo\r\n');
      assert.equal(on.ofType('tftp-multicast.start').length, 0);
    } finally {
      await client.close();
    }
  });
});
