// The PXE boot menu as option 43 sub-options (PXE 2.1 §2.4.2, Table 2-1):
//   6 DISCOVERY_CONTROL = 3   no broadcast/multicast discovery: ask the listed servers
//   8 BOOT_SERVERS            { type(2) count(1)=1 ip(4) } per network entry, all us
//   9 BOOT_MENU               { type(2) len(1) label } per entry; type 0 = local boot
//  10 MENU_PROMPT             timeout(1) prompt
// The whole of option 43 must fit its one length byte (255), so labels are shortened and,
// if that is not enough, trailing entries dropped; PXE-NOTES warns that long menus break
// firmware long before that.
import { encodePxeVendorOptions, PXE_DISCOVERY, type PxeVendorOptions } from './pxe-vendor-options.js';
import type { ResolvedMenuItem } from '../pxe/index.js';

export const MAX_OPTION_43 = 255;

export function buildPxeMenuOptions(items: ResolvedMenuItem[], prompt: string, timeoutSeconds: number, serverAddress: string): PxeVendorOptions {
  const timeout = Math.max(0, Math.min(255, Math.round(timeoutSeconds)));
  const build = (list: ResolvedMenuItem[], labelMax: number, promptMax: number): PxeVendorOptions => ({
    discoveryControl: PXE_DISCOVERY.noBroadcast | PXE_DISCOVERY.noMulticast,
    bootServers: list.filter((i) => i.type !== 0).map((i) => ({ type: i.type, addresses: [serverAddress] })),
    bootMenu: list.map((i) => ({ type: i.type, description: asciiLabel(i.label).slice(0, labelMax) })),
    menuPrompt: { timeout, prompt: asciiLabel(prompt).slice(0, promptMax) },
  });
  const fits = (o: PxeVendorOptions) => encodePxeVendorOptions(o).length <= MAX_OPTION_43;

  let list = items.slice();
  for (;;) {
    for (const [labelMax, promptMax] of [
      [64, 64],
      [40, 40],
      [24, 24],
      [16, 16],
      [10, 8],
    ]) {
      const o = build(list, labelMax, promptMax);
      if (fits(o)) return o;
    }
    if (list.length <= 1) return build(list, 10, 8);
    list = list.slice(0, -1);
  }
}

/** Firmware menus print bytes to a text console: keep printable ASCII only. */
function asciiLabel(text: string): string {
  return text.normalize('NFKD').replace(/[^\x20-\x7e]/g, '');
}
