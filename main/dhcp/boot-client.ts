// What a request says about the client, read once per packet: the boot policy, the
// assignment lookup and the events all take this description, not the packet, so option 97
// is turned into a UUID once and the policy needs no DHCP codec.
import type { BootClient } from '../pxe/index.js';
import { canonicalUuid, isPxeVendorClass } from './options.js';
import { clientMac, type DhcpPacket } from './packet.js';

/** Option 60 of PXE firmware ("PXEClient:Arch:...", PXE 2.1 §2.2.1) and of UEFI HTTP boot ("HTTPClient:..."). */
const ARCH_IN_VENDOR_CLASS = /Arch:(\d{5})/;

export function describeBootClient(p: DhcpPacket): BootClient {
  const o = p.options;
  let arch = o.clientArch?.[0];
  if (arch === undefined && o.vendorClassId) {
    const m = ARCH_IN_VENDOR_CLASS.exec(o.vendorClassId);
    if (m) arch = Number(m[1]);
  }
  const userClass = o.userClass?.classes;
  return {
    mac: clientMac(p),
    uuid: canonicalUuid(o.clientUuid?.guid),
    arch,
    vendorClass: o.vendorClassId,
    userClass,
    ipxe: o.ipxe !== undefined || !!userClass?.includes('iPXE'),
    bootItemType: o.pxe?.bootItem?.type,
  };
}

/**
 * BOOTP clients, PXE and HTTP-boot firmware and iPXE may get a boot file; an office PC's
 * DHCP client does not, so its assignment is never looked up.
 */
export function wantsBootFile(client: BootClient, messageType: number | undefined): boolean {
  return messageType === undefined || isPxeVendorClass(client.vendorClass) || client.ipxe;
}
