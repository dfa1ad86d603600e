import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDhcpPacket, encodeDhcpPacket, type DhcpPacket } from '../../main/dhcp/packet.js';
import { decideProxyReply } from '../../main/dhcp/proxy.js';
import type { ReplyPlan, PlannedReply } from '../../main/dhcp/reply.js';
import type { BootPolicyConfig } from '../../main/pxe/boot-policy.js';
import { firmwareDiscover, rawDhcp, firmwareOptions, SAMPLE_UUID, guidBytes, type FirmwareKind } from '../helpers/dhcp-clients.js';

const SERVER = '192.0.2.1';
const MAC = '52:54:00:00:00:01';
const policy: BootPolicyConfig = {
  serverAddress: SERVER,
  httpBaseUrl: 'http://192.0.2.1:8080',
  boot: { bios: 'undionly.kpxe', uefi64: 'ipxe.efi', arm64: 'ipxe-arm64.efi', http64: 'ipxe.efi', uefi32: 'ipxe32.efi' },
};
const ctx = { serverAddress: SERVER, policy, ports: { server: 67, client: 68 } };

function decide(bytes: Buffer, c = ctx): ReplyPlan {
  return decideProxyReply(decodeDhcpPacket(bytes), c);
}

function replied(plan: ReplyPlan): PlannedReply {
  assert.equal(plan.action, 'reply', plan.action === 'ignore' ? plan.reason : '');
  return plan as PlannedReply;
}

/** The reply as the client sees it: encoded and decoded again. */
function onWire(plan: PlannedReply): DhcpPacket {
  return decodeDhcpPacket(encodeDhcpPacket(plan.reply));
}

describe('proxy offers', () => {
  const common = (kind: FirmwareKind, xid: number) => {
    const plan = replied(decide(firmwareDiscover(kind, MAC, xid)));
    const r = onWire(plan);
    assert.equal(r.op, 2);
    assert.equal(r.xid, xid);
    assert.equal(r.yiaddr, '0.0.0.0', 'a proxy never hands out an address');
    assert.equal(r.siaddr, SERVER, 'iPXE ignores proxy offers with siaddr 0');
    assert.equal(r.options.messageType, 2);
    assert.equal(r.options.serverIdentifier, SERVER);
    assert.deepEqual(r.options.clientUuid?.guid, Buffer.from(guidBytes(SAMPLE_UUID)), 'option 97 echoed');
    assert.deepEqual(plan.to, { address: '255.255.255.255', port: 68 });
    assert.equal(r.chaddr.subarray(0, 6).toString('hex'), '525400000001');
    return r;
  };

  test('BIOS: option 60 PXEClient, option 43 discovery control 8, the file', () => {
    const r = common('intel-bios', 1);
    assert.equal(r.options.vendorClassId, 'PXEClient');
    assert.deepEqual(r.options.pxe, { discoveryControl: 8 });
    assert.equal(r.file, 'undionly.kpxe');
  });

  test('iPXE BIOS ROM without a script: the TFTP NBP and option 43', () => {
    const r = common('ipxe-bios', 2);
    assert.equal(r.file, 'undionly.kpxe');
    assert.equal(r.options.bootFileName, 'undionly.kpxe', 'iPXE asked for 67');
    assert.deepEqual(r.options.pxe, { discoveryControl: 8 });
  });

  test('iPXE with a script: its URL', () => {
    const plan = replied(decide(firmwareDiscover('ipxe-uefi', MAC, 3), { ...ctx, policy: { ...policy, ipxeScriptUrl: 'http://192.0.2.1:8080/boot.ipxe' } }));
    const r = onWire(plan);
    assert.equal(r.file, 'http://192.0.2.1:8080/boot.ipxe');
    assert.equal(r.options.vendorClassId, 'PXEClient');
  });

  test('UEFI x64: no option 43, so the firmware asks 4011', () => {
    const r = common('edk2-x64', 4);
    assert.equal(r.options.vendorClassId, 'PXEClient');
    assert.equal(r.options.pxe, undefined);
    assert.equal(r.file, 'ipxe.efi');
  });

  test('ARM64', () => {
    const r = common('edk2-arm64', 5);
    assert.equal(r.file, 'ipxe-arm64.efi');
    assert.equal(r.options.pxe, undefined);
  });

  test('HTTP boot: HTTPClient and a full URL in file and option 67', () => {
    const r = common('http-x64', 6);
    assert.equal(r.options.vendorClassId, 'HTTPClient');
    assert.equal(r.options.bootFileName, 'http://192.0.2.1:8080/ipxe.efi');
    assert.equal(r.file, 'http://192.0.2.1:8080/ipxe.efi');
    assert.equal(r.options.pxe, undefined);
  });

  test('option 43 per architecture is configurable', () => {
    const c = { ...ctx, policy: { ...policy, proxyVendorOptions: { uefi64: true, bios: false } } };
    assert.deepEqual(onWire(replied(decide(firmwareDiscover('edk2-x64', MAC, 7), c))).options.pxe, { discoveryControl: 8 });
    assert.equal(onWire(replied(decide(firmwareDiscover('intel-bios', MAC, 8), c))).options.pxe, undefined);
  });

  test('relayed DISCOVER: unicast to giaddr:67, option 82 echoed', () => {
    const bytes = rawDhcp({ xid: 9, mac: MAC, giaddr: '198.18.5.1', options: [...firmwareOptions('intel-bios', MAC), [82, [1, 3, 0x61, 0x62, 0x63]]] });
    const plan = replied(decide(bytes));
    assert.deepEqual(plan.to, { address: '198.18.5.1', port: 67 });
    const r = onWire(plan);
    assert.equal(r.giaddr, '198.18.5.1');
    assert.deepEqual(r.options.relayAgentInfo, Buffer.from([1, 3, 0x61, 0x62, 0x63]));
  });

  test('a menu when more than one entry; 43 within 255 bytes', () => {
    const menu = Array.from({ length: 12 }, (_, i) => ({ label: `A rather long boot menu entry number ${i} with details`, file: `f${i}.0` }));
    const c = { ...ctx, policy: { ...policy, menu, menuPrompt: 'Press F8 for the boot menu of this very fine bench' } };
    const plan = replied(decide(firmwareDiscover('intel-bios', MAC, 10), c));
    const bytes = encodeDhcpPacket(plan.reply);
    const r = decodeDhcpPacket(bytes);
    const pxe = r.options.pxe!;
    assert.equal(pxe.discoveryControl, 3);
    assert.ok(pxe.bootMenu && pxe.bootMenu.length >= 2);
    assert.equal(pxe.bootMenu![0].type, 0x8000);
    assert.deepEqual(pxe.bootServers![0], { type: 0x8000, addresses: [SERVER] });
    assert.ok(pxe.menuPrompt);
    assert.equal(r.file, '', 'the client chooses first, then asks 4011');
    // Find option 43 on the wire and check its length byte covers everything.
    let i = 240;
    while (bytes[i] !== 43) i += 2 + bytes[i + 1];
    assert.ok(bytes[i + 1] <= 255);
    assert.equal(bytes[i + 2 + bytes[i + 1] - 1], 255, 'sub-options end with 255 inside 43');
  });

  test('a two-entry menu keeps both labels whole', () => {
    const c = { ...ctx, policy: { ...policy, menu: [{ label: 'Install', file: 'a.0' }, { label: 'Boot from disk' }] } };
    const r = onWire(replied(decide(firmwareDiscover('intel-bios', MAC, 11), c)));
    assert.deepEqual(r.options.pxe?.bootMenu, [
      { type: 0x8000, description: 'Install' },
      { type: 0, description: 'Boot from disk' },
    ]);
    assert.deepEqual(r.options.pxe?.bootServers, [{ type: 0x8000, addresses: [SERVER] }]);
  });
});

describe('proxy ignores', () => {
  test('a client without PXEClient/HTTPClient', () => {
    const plan = decide(
      rawDhcp({
        xid: 1,
        mac: MAC,
        options: [
          [53, [1]],
          [60, 'MSFT 5.0'],
        ],
      }),
    );
    assert.equal(plan.action, 'ignore');
    assert.match((plan as { reason: string }).reason, /not a PXE/);
  });
  test('a REQUEST to another DHCP server', () => {
    const plan = decide(
      rawDhcp({ xid: 1, mac: MAC, options: [...firmwareOptions('edk2-x64', MAC, { messageType: 3 }), [54, [198, 18, 0, 1]], [50, [198, 18, 0, 50]]] }),
    );
    assert.equal(plan.action, 'ignore');
  });
  test('an architecture without a boot class', () => {
    const plan = decide(
      rawDhcp({
        xid: 1,
        mac: MAC,
        options: [
          [53, [1]],
          [93, [0, 25]],
          [60, 'PXEClient:Arch:00025:UNDI:003000'],
        ],
      }),
    );
    assert.equal(plan.action, 'ignore');
    assert.match((plan as { reason: string }).reason, /RISC-V/);
  });
  test('a BOOTREPLY', () => {
    assert.equal(
      decide(
        rawDhcp({
          op: 2,
          xid: 1,
          mac: MAC,
          options: [
            [53, [2]],
            [60, 'PXEClient'],
          ],
        }),
      ).action,
      'ignore',
    );
  });
});

describe('REQUEST naming us on port 67', () => {
  test('is answered like the boot server, broadcast to 68', () => {
    const bytes = rawDhcp({ xid: 12, mac: MAC, options: [...firmwareOptions('edk2-x64', MAC, { messageType: 3 }), [54, [192, 0, 2, 1]]] });
    const plan = replied(decide(bytes));
    assert.equal(plan.reply.options.messageType, 5);
    assert.equal(plan.reply.file, 'ipxe.efi');
    assert.deepEqual(plan.to, { address: '255.255.255.255', port: 68 });
  });
});

describe('proxy invariants (property)', () => {
  test('whatever a client sends, a proxy reply never carries an address and always carries siaddr and option 60', async () => {
    const fc = (await import('fast-check')).default;
    const kinds: FirmwareKind[] = ['ipxe-bios', 'ipxe-uefi', 'edk2-x64', 'edk2-arm64', 'http-x64', 'http-arm64', 'intel-bios'];
    const request = fc.record({
      kind: fc.constantFrom(...kinds),
      type: fc.integer({ min: 1, max: 8 }),
      arch: fc.integer({ min: 0, max: 40 }),
      giaddr: fc.constantFrom('0.0.0.0', '198.18.1.1'),
      ciaddr: fc.constantFrom('0.0.0.0', '192.0.2.44'),
      serverId: fc.constantFrom(undefined, SERVER, '192.0.2.2'),
    });
    fc.assert(
      fc.property(request, (r) => {
        const extra: [number, number[]][] = [[93, [r.arch >> 8, r.arch & 0xff]]];
        if (r.serverId) extra.push([54, r.serverId.split('.').map(Number)]);
        const base = firmwareOptions(r.kind, MAC, { messageType: r.type }).filter(([code]) => code !== 93);
        const bytes = rawDhcp({ xid: 1, mac: MAC, giaddr: r.giaddr, ciaddr: r.ciaddr, options: [...base, ...extra] });
        const plan = decideProxyReply(decodeDhcpPacket(bytes), ctx);
        if (plan.action !== 'reply') return;
        const wire = decodeDhcpPacket(encodeDhcpPacket(plan.reply));
        assert.equal(wire.yiaddr, '0.0.0.0');
        assert.equal(wire.siaddr, SERVER);
        assert.match(wire.options.vendorClassId ?? '', /^(PXEClient|HTTPClient)$/);
        assert.ok([2, 5].includes(wire.options.messageType!));
      }),
      { numRuns: 400 },
    );
  });
});

describe('proxy chain warning', () => {
  test('GRUB and shim in proxy mode get a warning naming the fix; other files none', async () => {
    const { proxyChainWarning } = await import('../../main/dhcp/proxy.js');
    assert.match(proxyChainWarning('efi\\shimx64.efi', SERVER) ?? '', /grub\.cfg.*--mode dhcp.*next-server to 192\.0\.2\.1/);
    assert.match(proxyChainWarning('boot/grubnetx64.efi', SERVER) ?? '', /GRUB/);
    assert.match(proxyChainWarning('http://192.0.2.1:8080/shimx64.efi', SERVER) ?? '', /after UEFI HTTP boot stops at its prompt.*by PXE/);
    assert.equal(proxyChainWarning('ipxe.efi', SERVER), undefined);
    assert.equal(proxyChainWarning(undefined, SERVER), undefined);
  });
});
