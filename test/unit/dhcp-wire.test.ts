// The byte helpers the DHCP codecs build every reply with (main/dhcp/wire.ts), checked
// against their plain definitions: they were rewritten without regexes and per-byte arrays
// for the DISCOVER storm (issue 9 item 8), and must accept and produce exactly the same.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DhcpEncodeError } from '../../main/dhcp/errors.js';
import { decodeTlv, encodeIpv4, encodeTlv, formatMac, writeIpv4 } from '../../main/dhcp/wire.js';

/** The definition: four groups of 1-3 digits, each at most 255. */
function ipv4ByDefinition(address: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  const bytes = m?.slice(1, 5).map(Number);
  return bytes && bytes.every((b) => b <= 255) ? bytes : undefined;
}

function encoded(address: string): number[] | undefined {
  try {
    return [...encodeIpv4(address)];
  } catch (err) {
    assert.ok(err instanceof DhcpEncodeError);
    return undefined;
  }
}

describe('DHCP wire helpers', () => {
  test('encodeIpv4 accepts exactly the dotted quads', () => {
    for (const a of ['0.0.0.0', '255.255.255.255', '192.0.2.1', '01.002.3.4']) assert.deepEqual(encoded(a), ipv4ByDefinition(a), a);
    for (const a of ['', '256.1.1.1', '1.2.3', '1.2.3.4.', '.1.2.3.4', '1..2.3', '0000.1.1.1', '1.2.3.4\n', ' 1.2.3.4', '1.2.3.-4', '1.2.3.4x'])
      assert.equal(encoded(a), undefined, JSON.stringify(a));
    const text = fc.oneof(
      fc.stringMatching(/^[0-9.]{0,17}$/),
      fc.string(),
      fc.ipV4(),
      fc.ipV4().map((s) => `${s}\n`),
      fc.ipV4().map((s) => `${s}.`),
    );
    fc.assert(
      fc.property(text, (a) => assert.deepEqual(encoded(a), ipv4ByDefinition(a))),
      { numRuns: 20_000 },
    );
  });

  test('writeIpv4 writes the address at the offset and nothing else', () => {
    const out = Buffer.alloc(8, 0xaa);
    writeIpv4(out, '198.18.0.7', 2);
    assert.equal(out.toString('hex'), 'aaaac6120007aaaa');
  });

  test('formatMac: lower-case colon form of any length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 16 }), (bytes) => {
        assert.equal(formatMac(Buffer.from(bytes)), [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':'));
      }),
    );
  });

  test('encodeTlv round-trips through decodeTlv, long values split into 255-byte pieces (RFC 3396)', () => {
    const item = fc.tuple(
      fc.integer({ min: 1, max: 254 }),
      fc.uint8Array({ maxLength: 700 }).map((b) => Buffer.from(b)),
    );
    fc.assert(
      fc.property(fc.uniqueArray(item, { selector: ([code]) => code, maxLength: 6 }), (items) => {
        const bytes = encodeTlv(items);
        const lengths = items.reduce((n, [, v]) => n + (v.length === 0 ? 2 : v.length + 2 * Math.ceil(v.length / 255)), 0);
        assert.equal(bytes.length, lengths);
        const decoded = decodeTlv(bytes, 'test');
        assert.deepEqual(
          [...decoded].map(([c, v]) => [c, v.toString('hex')]),
          items.map(([c, v]) => [c, v.toString('hex')]),
        );
      }),
    );
    assert.throws(() => encodeTlv([[255, Buffer.alloc(1)]]), DhcpEncodeError);
    assert.throws(() => encodeTlv(new Map([[0, Buffer.alloc(1)]])), DhcpEncodeError);
  });
});
