import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clientMac, decodeDhcpPacket, encodeDhcpPacket, DhcpDecodeError, MIN_BOOTP_LENGTH, type DhcpPacket } from '../../main/dhcp/packet.js';
import { canonicalUuid, encodeDhcpOptions, guidFromCanonicalUuid, type DhcpOptions } from '../../main/dhcp/options.js';
import { decodePxeVendorOptions, encodePxeVendorOptions } from '../../main/dhcp/pxe-vendor-options.js';
import { firmwareDiscover, firmwareBootRequest, rawDhcp, SAMPLE_UUID, guidBytes } from '../helpers/dhcp-clients.js';

const MAC = '52:54:00:12:34:56';

function basePacket(options: DhcpOptions, extra: Partial<DhcpPacket> = {}): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  Buffer.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]).copy(chaddr);
  return {
    op: 2,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0x12345678,
    secs: 0,
    flags: 0x8000,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '192.0.2.1',
    giaddr: '0.0.0.0',
    chaddr,
    sname: '',
    file: 'undionly.kpxe',
    options,
    ...extra,
  };
}

describe('golden decodes of firmware DISCOVERs (hand-built from PXE-NOTES "What real clients sent")', () => {
  test('iPXE BIOS ROM: arch 0, bare iPXE user class, option 175, client id, UUID', () => {
    const p = decodeDhcpPacket(firmwareDiscover('ipxe-bios', MAC, 0xdeadbeef));
    assert.equal(p.op, 1);
    assert.equal(p.xid, 0xdeadbeef);
    assert.equal(clientMac(p), MAC);
    assert.equal(p.options.messageType, 1);
    assert.equal(p.options.maxMessageSize, 1472);
    assert.deepEqual(p.options.clientArch, [0]);
    assert.deepEqual(p.options.clientNdi, { type: 1, major: 2, minor: 1 });
    assert.equal(p.options.vendorClassId, 'PXEClient:Arch:00000:UNDI:002001');
    assert.deepEqual(p.options.userClass, { format: 'plain', classes: ['iPXE'] });
    assert.ok(p.options.ipxe instanceof Map);
    assert.deepEqual([...p.options.ipxe!.keys()], [0xb1, 0xeb, 0x13]);
    assert.deepEqual(p.options.clientId, Buffer.from([1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
    assert.equal(p.options.clientUuid?.type, 0);
    assert.equal(canonicalUuid(p.options.clientUuid?.guid), SAMPLE_UUID);
    assert.ok(p.options.parameterRequestList?.includes(175));
  });

  test('EDK2 x64: arch 7, NDI 1.3.0, broadcast flag, no 61/77', () => {
    const p = decodeDhcpPacket(firmwareDiscover('edk2-x64', MAC, 7));
    assert.equal(p.flags, 0x8000);
    assert.deepEqual(p.options.clientArch, [7]);
    assert.deepEqual(p.options.clientNdi, { type: 1, major: 3, minor: 0 });
    assert.equal(p.options.vendorClassId, 'PXEClient:Arch:00007:UNDI:003000');
    assert.equal(p.options.userClass, undefined);
    assert.equal(p.options.clientId, undefined);
  });

  test('HTTP boot x64: HTTPClient vendor class, arch 16', () => {
    const p = decodeDhcpPacket(firmwareDiscover('http-x64', MAC, 9));
    assert.equal(p.options.vendorClassId, 'HTTPClient:Arch:00016:UNDI:003000');
    assert.deepEqual(p.options.clientArch, [16]);
  });

  test('4011 REQUEST: option 43 decoded as PXE sub-options with the boot item', () => {
    const p = decodeDhcpPacket(firmwareBootRequest('edk2-x64', MAC, 11, '192.0.2.50', 0x8000));
    assert.equal(p.options.messageType, 3);
    assert.equal(p.ciaddr, '192.0.2.50');
    assert.deepEqual(p.options.pxe, { bootItem: { type: 0x8000, layer: 0 } });
  });

  test('QEMU all-zero UUID has no canonical form', () => {
    const p = decodeDhcpPacket(firmwareDiscover('edk2-x64', MAC, 1, { uuid: '00000000-0000-0000-0000-000000000000' }));
    assert.equal(p.options.clientUuid?.guid.length, 16);
    assert.equal(canonicalUuid(p.options.clientUuid?.guid), undefined);
  });
});

describe('encode', () => {
  test('a reply is at least 300 bytes, ends its options with 255, NUL-terminates file and sname', () => {
    const p = basePacket({ messageType: 2, serverIdentifier: '192.0.2.1', vendorClassId: 'PXEClient' }, { sname: 'bench' });
    const bytes = encodeDhcpPacket(p);
    assert.ok(bytes.length >= MIN_BOOTP_LENGTH, `length ${bytes.length}`);
    assert.equal(bytes.readUInt32BE(236), 0x63825363);
    // The last non-pad byte of the options is the end option.
    let last = bytes.length - 1;
    while (bytes[last] === 0) last--;
    assert.equal(bytes[last], 255);
    assert.equal(bytes.subarray(108, 108 + 'undionly.kpxe'.length).toString(), 'undionly.kpxe');
    assert.equal(bytes[108 + 'undionly.kpxe'.length], 0);
    assert.equal(bytes[44 + 5], 0);
    assert.equal(bytes[240], 53, 'option 53 first');
  });

  test('a file name of 128 bytes does not fit with its NUL', () => {
    assert.throws(() => encodeDhcpPacket(basePacket({}, { file: 'x'.repeat(128) })), /file is 128 bytes/);
    assert.doesNotThrow(() => encodeDhcpPacket(basePacket({}, { file: 'x'.repeat(127) })));
  });

  test('options longer than 255 bytes are split and joined again (RFC 3396)', () => {
    const long = 'u'.repeat(600);
    const p = decodeDhcpPacket(encodeDhcpPacket(basePacket({ bootFileName: long })));
    assert.equal(p.options.bootFileName, long);
  });

  test('option 82 is last, after everything else', () => {
    const opts = encodeDhcpOptions({ messageType: 5, relayAgentInfo: Buffer.from([1, 2, 0x61, 0x62]), other: new Map([[200, Buffer.from([1])]]) });
    assert.equal(opts[opts.length - 6], 82);
  });

  test('user class keeps its framing: RFC 3004 list and iPXE bare string', () => {
    for (const userClass of [
      { format: 'rfc3004' as const, classes: ['iPXE', 'bench'] },
      { format: 'plain' as const, classes: ['iPXE'] },
    ]) {
      const p = decodeDhcpPacket(encodeDhcpPacket(basePacket({ userClass })));
      assert.deepEqual(p.options.userClass, userClass);
    }
    const framed = decodeDhcpPacket(rawDhcp({ xid: 1, mac: MAC, options: [[77, [4, ...Buffer.from('iPXE')]]] }));
    assert.deepEqual(framed.options.userClass, { format: 'rfc3004', classes: ['iPXE'] });
  });

  test('canonical UUID and wire GUID are inverses, with the EFI byte order', () => {
    const guid = guidFromCanonicalUuid(SAMPLE_UUID);
    assert.deepEqual([...guid], guidBytes(SAMPLE_UUID));
    assert.equal(guid[0], 0x2e, 'first field little-endian on the wire');
    assert.equal(canonicalUuid(guid), SAMPLE_UUID);
  });
});

describe('option overload (52)', () => {
  test('options in the file and sname fields are read, file and sname are then empty', () => {
    const bytes = rawDhcp({
      xid: 5,
      mac: MAC,
      options: [
        [53, [1]],
        [52, [3]],
      ],
    });
    // file field (offset 108): option 60; sname field (offset 44): option 12.
    Buffer.from([60, 9, ...Buffer.from('PXEClient'), 255]).copy(bytes, 108);
    Buffer.from([12, 4, ...Buffer.from('host'), 255]).copy(bytes, 44);
    const p = decodeDhcpPacket(bytes);
    assert.equal(p.options.vendorClassId, 'PXEClient');
    assert.equal(p.options.hostName, 'host');
    assert.equal(p.options.overload, 3);
    assert.equal(p.file, '');
    assert.equal(p.sname, '');
  });
});

describe('PXE vendor options (43)', () => {
  test('menu, boot servers, prompt, discovery control and boot item round-trip', () => {
    const o = {
      discoveryControl: 3,
      bootServers: [
        { type: 0x8000, addresses: ['192.0.2.1'] },
        { type: 0x8001, addresses: ['192.0.2.1', '192.0.2.2'] },
      ],
      bootMenu: [
        { type: 0x8000, description: 'Debian installer' },
        { type: 0, description: 'Local disk' },
      ],
      menuPrompt: { timeout: 10, prompt: 'Choose' },
      bootItem: { type: 0x8000, layer: 0 },
      mtftpIp: '224.1.1.1',
      mtftpClientPort: 1758,
      mtftpServerPort: 1759,
      mtftpTimeout: 1,
      mtftpDelay: 10,
      discoveryMulticastAddress: '224.0.1.22',
      credentialTypes: [1, 2],
      multicastAddressAllocation: Buffer.from([1, 2, 3]),
    };
    const bytes = encodePxeVendorOptions(o);
    assert.equal(bytes[bytes.length - 1], 255);
    assert.deepEqual(decodePxeVendorOptions(bytes), o);
  });

  test('43 of a non-PXE vendor stays opaque', () => {
    const p = decodeDhcpPacket(
      rawDhcp({
        xid: 1,
        mac: MAC,
        options: [
          [60, 'MSFT 5.0'],
          [43, [1, 2, 3]],
        ],
      }),
    );
    assert.deepEqual(p.options.vendorSpecific, Buffer.from([1, 2, 3]));
    assert.equal(p.options.pxe, undefined);
  });
});

describe('malformed input throws DhcpDecodeError', () => {
  const good = firmwareDiscover('edk2-x64', MAC, 1);
  const cases: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['truncated header', good.subarray(0, 100)],
    ['bad op', Buffer.concat([Buffer.from([3]), good.subarray(1)])],
    [
      'hlen over 16',
      (() => {
        const b = Buffer.from(good);
        b[2] = 17;
        return b;
      })(),
    ],
    [
      'bad magic cookie',
      (() => {
        const b = Buffer.from(good);
        b[236] = 1;
        return b;
      })(),
    ],
    ['option running past the end', rawDhcp({ xid: 1, mac: MAC, options: [[53, [1]]], noEnd: true }).subarray(0, 242)],
    ['option length past the end', Buffer.concat([rawDhcp({ xid: 1, mac: MAC, options: [], noEnd: true }), Buffer.from([60, 40, 65, 66])])],
    ['option 53 of length 2', rawDhcp({ xid: 1, mac: MAC, options: [[53, [1, 1]]] })],
    ['option 54 of length 3', rawDhcp({ xid: 1, mac: MAC, options: [[54, [1, 2, 3]]] })],
    ['option 93 of odd length', rawDhcp({ xid: 1, mac: MAC, options: [[93, [0, 0, 7]]] })],
    ['option 52 value 4', rawDhcp({ xid: 1, mac: MAC, options: [[52, [4]]] })],
    [
      'PXE sub-option past the end',
      rawDhcp({
        xid: 1,
        mac: MAC,
        options: [
          [60, 'PXEClient'],
          [43, [71, 9, 0, 0]],
        ],
      }),
    ],
    [
      'PXE boot item of length 3',
      rawDhcp({
        xid: 1,
        mac: MAC,
        options: [
          [60, 'PXEClient'],
          [43, [71, 3, 0, 0, 0, 255]],
        ],
      }),
    ],
    ['option 175 sub-option past the end', rawDhcp({ xid: 1, mac: MAC, options: [[175, [1, 5, 0]]] })],
  ];
  for (const [name, bytes] of cases) {
    test(name, () => {
      assert.throws(() => decodeDhcpPacket(bytes), DhcpDecodeError);
    });
  }

  test('a zeroed RFC 951 vendor area (no cookie) is a BOOTP request without options', () => {
    const b = Buffer.alloc(300);
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    const p = decodeDhcpPacket(b);
    assert.deepEqual(p.options, {});
  });

  test('odd-length option 97 is kept as bytes, not refused', () => {
    const p = decodeDhcpPacket(rawDhcp({ xid: 1, mac: MAC, options: [[97, [0, 1, 2]]] }));
    assert.equal(p.options.clientUuid, undefined);
    assert.deepEqual(p.options.other?.get(97), Buffer.from([0, 1, 2]));
  });
});

describe('property tests', () => {
  test('decode never throws anything but DhcpDecodeError (random bytes and mutated real packets)', () => {
    const captures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'captures');
    const captured = existsSync(captures)
      ? readdirSync(captures)
          .filter((f) => f.endsWith('.bin') && !f.includes('-tftp-'))
          .map((f) => readFileSync(join(captures, f)))
      : [];
    const seeds = [
      firmwareDiscover('ipxe-bios', MAC, 1),
      firmwareDiscover('edk2-x64', MAC, 2),
      firmwareBootRequest('edk2-x64', MAC, 3, '192.0.2.9', 0x8000),
      ...captured,
    ];
    const mutated = fc
      .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat())
      .map(([seed, edits, cut]) => {
        const b = Buffer.from(seed);
        for (const [at, v] of edits) b[240 + (at % (b.length - 240))] = v;
        return b.subarray(0, Math.max(0, b.length - (cut % 80)));
      });
    const random = fc.uint8Array({ minLength: 0, maxLength: 600 }).map((a) => Buffer.from(a));
    const withCookie = fc.uint8Array({ minLength: 0, maxLength: 120 }).map((a) => {
      const head = Buffer.alloc(240);
      head[0] = 1;
      head.writeUInt32BE(0x63825363, 236);
      return Buffer.concat([head, Buffer.from(a)]);
    });
    fc.assert(
      fc.property(fc.oneof(mutated, random, withCookie), (bytes) => {
        try {
          decodeDhcpPacket(bytes);
        } catch (err) {
          if (!(err instanceof DhcpDecodeError)) throw err;
        }
      }),
      { numRuns: 3000 },
    );
  });

  test('decode(encode(packet)) gives the packet back', () => {
    const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.'));
    const text = (max: number) => fc.string({ minLength: 1, maxLength: max }).map((s) => s.replace(/[^\x20-\x7e]/g, 'a'));
    const options = fc.record(
      {
        messageType: fc.integer({ min: 1, max: 8 }),
        serverIdentifier: ipv4,
        subnetMask: ipv4,
        routers: fc.array(ipv4, { minLength: 1, maxLength: 3 }),
        dnsServers: fc.array(ipv4, { minLength: 1, maxLength: 3 }),
        hostName: text(30),
        requestedIp: ipv4,
        leaseTime: fc.nat(),
        renewalTime: fc.nat(),
        rebindingTime: fc.nat(),
        parameterRequestList: fc.array(fc.integer({ min: 1, max: 254 }), { maxLength: 40 }),
        maxMessageSize: fc.integer({ min: 576, max: 65535 }),
        vendorClassId: fc.constantFrom('PXEClient', 'PXEClient:Arch:00007:UNDI:003000', 'HTTPClient'),
        clientId: fc.uint8Array({ minLength: 2, maxLength: 20 }).map((a) => Buffer.from(a)),
        tftpServerName: text(40),
        bootFileName: text(300),
        userClass: fc.oneof(
          fc.array(text(20), { minLength: 1, maxLength: 3 }).map((classes) => ({ format: 'rfc3004' as const, classes })),
          text(20).map((s) => ({ format: 'plain' as const, classes: [`i${s}`.slice(0, 20).replace(/^./, 'z')] })),
        ),
        clientArch: fc.array(fc.integer({ min: 0, max: 65535 }), { minLength: 1, maxLength: 3 }),
        clientNdi: fc.record({ type: fc.nat(255), major: fc.nat(255), minor: fc.nat(255) }, { noNullPrototype: true }),
        clientUuid: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((g) => ({ type: 0, guid: Buffer.from(g) })),
        pxe: fc.record(
          {
            discoveryControl: fc.nat(15),
            bootItem: fc.record({ type: fc.nat(65535), layer: fc.nat(65535) }, { noNullPrototype: true }),
            bootMenu: fc.array(fc.record({ type: fc.nat(65535), description: text(20) }, { noNullPrototype: true }), { minLength: 1, maxLength: 3 }),
          },
          { requiredKeys: [], noNullPrototype: true },
        ),
        relayAgentInfo: fc.uint8Array({ minLength: 1, maxLength: 30 }).map((a) => Buffer.from(a)),
        ipxe: fc
          .array(fc.tuple(fc.integer({ min: 1, max: 254 }), fc.uint8Array({ maxLength: 6 })), { maxLength: 4 })
          .map((items) => new Map(items.map(([c, v]) => [c, Buffer.from(v)]))),
      },
      { requiredKeys: ['vendorClassId'], noNullPrototype: true },
    );
    const packet = fc.record(
      {
        op: fc.constantFrom(1, 2),
        htype: fc.nat(255),
        hlen: fc.nat(16),
        hops: fc.nat(255),
        xid: fc.nat(),
        secs: fc.nat(65535),
        flags: fc.nat(65535),
        ciaddr: ipv4,
        yiaddr: ipv4,
        siaddr: ipv4,
        giaddr: ipv4,
        chaddr: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)),
        sname: fc.string({ maxLength: 63 }).map((s) => s.replace(/[^\x20-\x7e]/g, 'b')),
        file: fc.string({ maxLength: 127 }).map((s) => s.replace(/[^\x20-\x7e]/g, 'c')),
        options,
      },
      { noNullPrototype: true },
    );
    fc.assert(
      fc.property(packet, (p) => {
        const bytes = encodeDhcpPacket(p as DhcpPacket);
        assert.ok(bytes.length >= 300);
        assert.deepEqual(decodeDhcpPacket(bytes), p);
      }),
      { numRuns: 500 },
    );
  });
});
