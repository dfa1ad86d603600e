import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeTftpPacket, encodeTftpPacket, TftpDecodeError, TftpOpcode, type TftpPacket } from '../../main/tftp/packet.js';
import { negotiateReadOptions } from '../../main/tftp/options.js';

const limits = { maxBlksize: 1468, maxWindowsize: 64 };
const o = (name: string, value: string) => ({ name, value });

describe('TFTP packet codec', () => {
  test('decodes an RRQ as EDK2 sends it (RFC 1350 §5 + RFC 2347 options)', () => {
    const raw = Buffer.from('\x00\x01bootx64.efi\x00octet\x00tsize\x000\x00blksize\x001468\x00windowsize\x004\x00', 'latin1');
    assert.deepEqual(decodeTftpPacket(raw), {
      opcode: TftpOpcode.RRQ,
      filename: 'bootx64.efi',
      mode: 'octet',
      options: [o('tsize', '0'), o('blksize', '1468'), o('windowsize', '4')],
    });
  });

  test('option names and mode are case-insensitive (RFC 2347 §2)', () => {
    const raw = Buffer.from('\x00\x01a\x00OCTET\x00BlkSize\x00512\x00', 'latin1');
    const p = decodeTftpPacket(raw);
    assert.equal(p.opcode, TftpOpcode.RRQ);
    if (p.opcode !== TftpOpcode.RRQ) return;
    assert.equal(p.mode, 'octet');
    assert.deepEqual(p.options, [o('blksize', '512')]);
  });

  test('round trips every packet type', () => {
    const packets: TftpPacket[] = [
      { opcode: TftpOpcode.RRQ, filename: 'Boot\\BCD', mode: 'octet', options: [o('blksize', '1432'), o('tsize', '0')] },
      { opcode: TftpOpcode.WRQ, filename: 'x', mode: 'netascii', options: [] },
      { opcode: TftpOpcode.DATA, block: 65535, data: new Uint8Array([1, 2, 3]) },
      { opcode: TftpOpcode.ACK, block: 0 },
      { opcode: TftpOpcode.ERROR, code: 8, message: 'tsize probe' },
      { opcode: TftpOpcode.OACK, options: [o('blksize', '1468'), o('windowsize', '16')] },
    ];
    for (const p of packets) {
      const decoded = decodeTftpPacket(encodeTftpPacket(p));
      if (p.opcode === TftpOpcode.DATA && decoded.opcode === TftpOpcode.DATA) {
        assert.equal(decoded.block, p.block);
        assert.deepEqual([...decoded.data], [...p.data]);
      } else assert.deepEqual(decoded, p);
    }
  });

  test('malformed packets raise TftpDecodeError with the RFC error code', () => {
    const cases: [string, number][] = [
      ['\x00', 4],
      ['\x00\x01bootx64.efi', 4], // no NUL after the file name
      ['\x00\x01bootx64.efi\x00octet', 4], // no NUL after the mode
      ['\x00\x01f\x00octet\x00blksize\x00', 8], // option without a value
      ['\x00\x01f\x00octet\x00blksize\x001468', 4], // value without NUL
      ['\x00\x09abc', 4], // unknown opcode
      ['\x00\x04\x00', 4], // short ACK
      ['\x00\x03\x00', 4], // short DATA
    ];
    for (const [raw, code] of cases) {
      assert.throws(
        () => decodeTftpPacket(Buffer.from(raw, 'latin1')),
        (err: unknown) => err instanceof TftpDecodeError && err.errorCode === code,
        JSON.stringify(raw),
      );
    }
  });

  test('property: arbitrary bytes either decode or throw TftpDecodeError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), fc.integer({ min: 1, max: 7 }), (body, opcode) => {
        const raw = Buffer.concat([Buffer.from([0, opcode]), body]);
        try {
          decodeTftpPacket(raw);
        } catch (err) {
          assert.ok(err instanceof TftpDecodeError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('property: any RRQ with options round trips', () => {
    const text = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !s.includes('\0'));
    fc.assert(
      fc.property(text, fc.array(fc.tuple(text, text), { maxLength: 5 }), (filename, options) => {
        const packet: TftpPacket = { opcode: TftpOpcode.RRQ, filename, mode: 'octet', options: options.map(([n, v]) => o(n.toLowerCase(), v)) };
        assert.deepEqual(decodeTftpPacket(encodeTftpPacket(packet)), packet);
      }),
      { numRuns: 500 },
    );
  });
});

describe('TFTP option negotiation', () => {
  test('no options: no OACK, RFC 1350 defaults', () => {
    const n = negotiateReadOptions([], 1000, limits);
    assert.deepEqual(n.oack, []);
    assert.equal(n.blksize, 512);
    assert.equal(n.windowsize, 1);
  });

  test('acknowledges in the client order; tsize answered with the real size', () => {
    const n = negotiateReadOptions([o('tsize', '0'), o('blksize', '1432'), o('windowsize', '4'), o('timeout', '5')], 123456, limits);
    assert.deepEqual(n.oack, [o('tsize', '123456'), o('blksize', '1432'), o('windowsize', '4'), o('timeout', '5')]);
    assert.equal(n.timeoutMs, 5000);
    assert.equal(n.tsizeRequested, true);
  });

  test('blksize is clamped to MTU - 32; zero, tiny, negative and non-numbers are ignored', () => {
    assert.deepEqual(negotiateReadOptions([o('blksize', '65464')], 1, limits).oack, [o('blksize', '1468')]);
    assert.deepEqual(negotiateReadOptions([o('blksize', '99999999')], 1, limits).oack, [o('blksize', '1468')]);
    for (const bad of ['0', '7', '-1', 'abc', '', '1e3', ' 512', '0x200', '99999999999']) {
      const n = negotiateReadOptions([o('blksize', bad)], 1, limits);
      assert.deepEqual(n.oack, [], `blksize=${JSON.stringify(bad)}`);
      assert.equal(n.blksize, 512);
      assert.equal(n.ignored.length, 1);
    }
  });

  test('windowsize 0 or out of range is ignored; large values reduced to the maximum', () => {
    assert.deepEqual(negotiateReadOptions([o('windowsize', '0')], 1, limits).oack, []);
    assert.deepEqual(negotiateReadOptions([o('windowsize', '65536')], 1, limits).oack, []);
    assert.deepEqual(negotiateReadOptions([o('windowsize', '65535')], 1, limits).oack, [o('windowsize', '64')]);
  });

  test('the window is bounded in bytes too (memory per transfer), whatever the option order', () => {
    const big = { maxBlksize: 65464, maxWindowsize: 64 };
    assert.deepEqual(negotiateReadOptions([o('windowsize', '64'), o('blksize', '65464')], 1, big).oack, [o('windowsize', '16'), o('blksize', '65464')]);
    assert.equal(negotiateReadOptions([o('blksize', '1468'), o('windowsize', '64')], 1, big).windowsize, 64);
  });

  test('timeout outside 1..255 is ignored; unknown options are left out', () => {
    assert.deepEqual(negotiateReadOptions([o('timeout', '0'), o('timeout', '256')], 1, limits).oack, []);
    assert.deepEqual(negotiateReadOptions([o('multicast', ''), o('rollover', '0')], 1, limits).oack, []);
  });

  test('repeated options: the first one counts', () => {
    const n = negotiateReadOptions([o('blksize', '1024'), o('blksize', '512')], 1, limits);
    assert.deepEqual(n.oack, [o('blksize', '1024')]);
    assert.equal(n.ignored[0].reason, 'repeated option (first one used)');
  });

  test('tsize with an unknown size is left out but still marks a probe-capable request', () => {
    const n = negotiateReadOptions([o('tsize', '0')], undefined, limits);
    assert.deepEqual(n.oack, []);
    assert.equal(n.tsizeRequested, true);
  });
});
