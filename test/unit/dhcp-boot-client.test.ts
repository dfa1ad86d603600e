// The client as the DHCP side describes it for the boot policy (main/dhcp/boot-client.ts).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { describeBootClient, wantsBootFile } from '../../main/dhcp/boot-client.js';
import { decodeDhcpPacket } from '../../main/dhcp/packet.js';
import { bootClassForArch } from '../../main/pxe/boot-policy.js';
import { firmwareDiscover, firmwareBootRequest, rawDhcp, SAMPLE_UUID } from '../helpers/dhcp-clients.js';

const MAC = '52:54:00:aa:bb:01';

describe('describeBootClient reads what the firmware sent', () => {
  test('iPXE BIOS', () => {
    const c = describeBootClient(decodeDhcpPacket(firmwareDiscover('ipxe-bios', MAC, 1)));
    assert.deepEqual(c, {
      mac: MAC,
      uuid: SAMPLE_UUID,
      arch: 0,
      vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
      userClass: ['iPXE'],
      ipxe: true,
      bootItemType: undefined,
    });
  });
  test('EDK2 on 4011 with a boot item', () => {
    const c = describeBootClient(decodeDhcpPacket(firmwareBootRequest('edk2-x64', MAC, 1, '192.0.2.9', 0x8000)));
    assert.equal(c.arch, 7);
    assert.equal(c.ipxe, false);
    assert.equal(c.bootItemType, 0x8000);
  });
  test('arch from the vendor class when option 93 is missing', () => {
    const c = describeBootClient(
      decodeDhcpPacket(
        rawDhcp({
          xid: 1,
          mac: MAC,
          options: [
            [53, [1]],
            [60, 'PXEClient:Arch:00011:UNDI:003000'],
          ],
        }),
      ),
    );
    assert.equal(c.arch, 11);
    assert.equal(bootClassForArch(c.arch!), 'arm64');
  });
});

test('only a client that may get a boot file is looked up: BOOTP, PXE or HTTP-boot firmware, iPXE', () => {
  const office = describeBootClient(
    decodeDhcpPacket(
      rawDhcp({
        xid: 1,
        mac: MAC,
        options: [
          [53, [1]],
          [60, 'MSFT 5.0'],
        ],
      }),
    ),
  );
  assert.equal(wantsBootFile(office, 1), false);
  assert.equal(wantsBootFile(office, undefined), true, 'BOOTP');
  assert.equal(wantsBootFile(describeBootClient(decodeDhcpPacket(firmwareDiscover('edk2-x64', MAC, 1))), 1), true);
  assert.equal(wantsBootFile(describeBootClient(decodeDhcpPacket(firmwareDiscover('ipxe-bios', MAC, 1))), 3), true);
});
