import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDhcpPacket, encodeDhcpPacket } from '../../main/dhcp/packet.js';
import type { PlannedReply, ReplyPlan } from '../../main/dhcp/reply.js';
import { decideBootServerReply } from '../../main/dhcp/boot-server.js';
import { buildPxeMenuOptions, MAX_OPTION_43 } from '../../main/dhcp/boot-menu.js';
import { encodePxeVendorOptions } from '../../main/dhcp/pxe-vendor-options.js';
import type { BootPolicyConfig } from '../../main/pxe/boot-policy.js';
import { firmwareBootRequest, firmwareOptions, rawDhcp, bootItemOption, guidBytes, SAMPLE_UUID, type FirmwareKind } from '../helpers/dhcp-clients.js';

const SERVER = '192.0.2.1';
const MAC = '52:54:00:00:00:02';
const policy: BootPolicyConfig = {
  serverAddress: SERVER,
  httpBaseUrl: 'http://192.0.2.1:8080',
  boot: { bios: 'undionly.kpxe', uefi64: 'ipxe.efi', arm64: 'ipxe-arm64.efi', http64: 'ipxe.efi' },
  menu: undefined,
};
const ctx = { serverAddress: SERVER, policy };

function replied(plan: ReplyPlan): PlannedReply {
  assert.equal(plan.action, 'reply', plan.action === 'ignore' ? plan.reason : '');
  return plan as PlannedReply;
}

describe('boot server (4011) ACKs', () => {
  const cases: [FirmwareKind, string, string][] = [
    ['edk2-x64', 'ipxe.efi', 'PXEClient'],
    ['edk2-arm64', 'ipxe-arm64.efi', 'PXEClient'],
    ['intel-bios', 'undionly.kpxe', 'PXEClient'],
    ['ipxe-bios', 'undionly.kpxe', 'PXEClient'],
    ['http-x64', 'http://192.0.2.1:8080/ipxe.efi', 'HTTPClient'],
  ];
  for (const [kind, file, vendor] of cases) {
    test(`${kind}: ACK to the source address and port with file, siaddr, option 60, echoed boot item`, () => {
      const bytes = firmwareBootRequest(kind, MAC, 0x4011, '192.0.2.77', 0);
      // EDK2 sends from port 4011.
      const plan = replied(decideBootServerReply(decodeDhcpPacket(bytes), { address: '192.0.2.77', port: 4011 }, ctx));
      assert.deepEqual(plan.to, { address: '192.0.2.77', port: 4011 });
      const r = decodeDhcpPacket(encodeDhcpPacket(plan.reply));
      assert.equal(r.options.messageType, 5);
      assert.equal(r.xid, 0x4011);
      assert.equal(r.file, file);
      assert.equal(r.siaddr, SERVER);
      assert.equal(r.yiaddr, '0.0.0.0');
      assert.equal(r.ciaddr, '192.0.2.77');
      assert.equal(r.options.vendorClassId, vendor);
      assert.equal(r.options.serverIdentifier, SERVER);
      assert.deepEqual(r.options.clientUuid?.guid, Buffer.from(guidBytes(SAMPLE_UUID)));
      if (vendor === 'PXEClient') assert.deepEqual(r.options.pxe, { bootItem: { type: 0, layer: 0 } });
    });
  }

  test('INFORM is answered too, and a client without an address gets a broadcast to its port', () => {
    const bytes = rawDhcp({ xid: 2, mac: MAC, options: [...firmwareOptions('edk2-x64', MAC, { messageType: 8 }), bootItemOption(0)] });
    const plan = replied(decideBootServerReply(decodeDhcpPacket(bytes), { address: '0.0.0.0', port: 68 }, ctx));
    assert.deepEqual(plan.to, { address: '255.255.255.255', port: 68 });
  });

  test('iPXE asks with item 0x8000 after a menu and gets that entry', () => {
    const c = {
      ...ctx,
      policy: {
        ...policy,
        menu: [
          { label: 'One', file: 'one.kpxe' },
          { label: 'Two', file: 'two.kpxe' },
        ],
      },
    };
    const first = replied(
      decideBootServerReply(decodeDhcpPacket(firmwareBootRequest('ipxe-bios', MAC, 3, '192.0.2.78', 0x8000)), { address: '192.0.2.78', port: 68 }, c),
    );
    assert.equal(first.reply.file, 'one.kpxe');
    assert.deepEqual(first.reply.options.pxe?.bootItem, { type: 0x8000, layer: 0 });
    const second = replied(
      decideBootServerReply(decodeDhcpPacket(firmwareBootRequest('ipxe-bios', MAC, 4, '192.0.2.78', 0x8001)), { address: '192.0.2.78', port: 68 }, c),
    );
    assert.equal(second.reply.file, 'two.kpxe');
  });

  test('BIS credentials (layer bit 15) are not served', () => {
    const bytes = rawDhcp({ xid: 5, mac: MAC, options: [...firmwareOptions('edk2-x64', MAC, { messageType: 3 }), bootItemOption(0, 0x8000)] });
    const plan = decideBootServerReply(decodeDhcpPacket(bytes), { address: '192.0.2.5', port: 4011 }, ctx);
    assert.equal(plan.action, 'ignore');
  });

  test('DISCOVER on 4011 and non-PXE clients are ignored', () => {
    const discover = rawDhcp({ xid: 6, mac: MAC, options: firmwareOptions('edk2-x64', MAC) });
    assert.equal(decideBootServerReply(decodeDhcpPacket(discover), { address: '192.0.2.5', port: 4011 }, ctx).action, 'ignore');
    const plain = rawDhcp({ xid: 7, mac: MAC, options: [[53, [3]]] });
    assert.equal(decideBootServerReply(decodeDhcpPacket(plain), { address: '192.0.2.5', port: 68 }, ctx).action, 'ignore');
  });
});

describe('boot menu option 43', () => {
  test('always fits in 255 bytes, dropping or shortening entries', () => {
    for (const n of [2, 5, 20, 60]) {
      const items = Array.from({ length: n }, (_, i) => ({ type: 0x8000 + i, label: `Entry ${i} `.repeat(12), file: `f${i}` }));
      const o = buildPxeMenuOptions(items, 'A prompt that is far too long for a firmware console '.repeat(3), 30, SERVER);
      assert.ok(encodePxeVendorOptions(o).length <= MAX_OPTION_43, `n=${n}`);
      assert.ok(o.bootMenu!.length >= 2);
      assert.equal(o.menuPrompt!.timeout, 30);
    }
  });
  test('labels are printable ASCII', () => {
    const o = buildPxeMenuOptions(
      [
        { type: 0x8000, label: 'Débian 12 — installer', file: 'a' },
        { type: 0, label: 'Local' },
      ],
      'Wählen',
      5,
      SERVER,
    );
    assert.equal(o.bootMenu![0].description, 'Debian 12  installer');
    assert.equal(o.menuPrompt!.prompt, 'Wahlen');
  });
});
