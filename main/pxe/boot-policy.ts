// Who gets which boot file. One pure function, `chooseBootFile`, from a plain description
// of the client (MAC, UUID, architecture, vendor and user class: main/dhcp/boot-client.ts
// reads it from the packet) plus the machine's assignment and the defaults, to a decision
// with its reason that the Proxy DHCP, the boot server and full DHCP all follow. It knows
// no packet format.

import { ARCHITECTURES, architectureName, isHttpBootClass, type BootClass } from '../core/index.js';
export { ARCHITECTURES, BOOT_CLASS_NAMES, architectureName, bootClassForArch, isHttpBootClass, type BootClass } from '../core/index.js';

/** One line of a boot menu. Without `file` the line means "boot from the local disk" (PXE type 0). */
export interface BootMenuEntry {
  label: string;
  /** A path under the TFTP root or a URL; per class when the classes need different binaries. */
  file?: string | Partial<Record<BootClass, string>>;
}

/** What the store says about one machine; every field optional. */
export interface MachineBootAssignment {
  /** Shown in events and decisions. */
  name?: string;
  /** Do not answer this machine at all (it should boot from its disk). */
  ignore?: boolean;
  /** Why it is not answered, in plain words (events and the Timeline show it). */
  ignoreReason?: string;
  /** Per-class files overriding the defaults. */
  boot?: Partial<Record<BootClass, string>>;
  /** iPXE script for this machine, overriding the default one. */
  ipxeScriptUrl?: string;
  /** Entries offered to this machine; more than one makes a PXE menu. */
  menu?: BootMenuEntry[];
}

export interface BootPolicyConfig {
  serverAddress: string;
  /** e.g. http://192.0.2.1:8080; relative files for HTTP-boot clients are resolved against it. */
  httpBaseUrl: string;
  /** Path relative to the TFTP root, or a URL (HTTP classes; iPXE clients). */
  boot: Partial<Record<BootClass, string>>;
  /** If set, iPXE clients (user class iPXE or option 175) get this URL instead of a TFTP file. */
  ipxeScriptUrl?: string;
  /** Default boot menu for every machine without its own. */
  menu?: BootMenuEntry[];
  menuPrompt?: string;
  /** Seconds the PXE menu waits before taking the first entry (PXE 2.1: 255 = wait forever). */
  menuTimeoutSeconds?: number;
  /**
   * Whether UEFI HTTP boot firmware (vendor class HTTPClient) is answered; undefined = yes.
   * When false it gets no offer, and its firmware goes on to its next boot option.
   */
  answerHttpBoot?: boolean;
}

/** What a client told us about itself (main/dhcp/boot-client.ts reads it from its DHCP message). */
export interface BootClient {
  /** Lower-case colon form. */
  mac: string;
  /** Canonical UUID from option 97, when it identifies anything. */
  uuid?: string;
  /** First option-93 value, or the `Arch:` field of option 60. */
  arch?: number;
  vendorClass?: string;
  userClass?: string[];
  /** User class `iPXE` or option 175 present. */
  ipxe: boolean;
  /** Boot item type asked for on 4011 (option 43 sub-option 71). */
  bootItemType?: number;
}

export interface ResolvedMenuItem {
  /** PXE boot server type: 0 local boot, 0x8000 + n for our entries (vendor-defined range). */
  type: number;
  label: string;
  /** Undefined for local boot. */
  file?: string;
}

interface DecisionBase {
  bootClass: BootClass;
  /** The machine's name, when its assignment has one. */
  machine?: string;
  reason: string;
}

export type BootDecision =
  | (DecisionBase & { kind: 'file'; file: string; vendorClass: 'PXEClient' })
  | (DecisionBase & { kind: 'url'; url: string; vendorClass: 'PXEClient' | 'HTTPClient' })
  | (DecisionBase & {
      kind: 'menu';
      items: ResolvedMenuItem[];
      prompt: string;
      timeoutSeconds: number;
      defaultItem: ResolvedMenuItem;
      vendorClass: 'PXEClient';
    })
  | {
      kind: 'ignore';
      reason: string;
      bootClass?: BootClass;
      machine?: string;
      /** Not answered on purpose (its assignment says so), not for want of an answer. */ deliberate?: true;
      /** Not answered because the technician turned this boot method off (UEFI HTTP boot). */
      turnedOff?: 'http-boot';
    };

/** Menu item types for our entries; iPXE asks for 0x8000 after a menu (PXE-NOTES). */
export const MENU_TYPE_BASE = 0x8000;

const URL_RE = /^[a-z][a-z0-9+.-]*:\/\//i;

export function isUrl(file: string): boolean {
  return URL_RE.test(file);
}

function urlFor(config: BootPolicyConfig, file: string): string {
  if (isUrl(file)) return file;
  const path = file.replace(/\\/g, '/').replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/');
  return `${config.httpBaseUrl.replace(/\/+$/, '')}/${path}`;
}

function entryFile(entry: BootMenuEntry, bootClass: BootClass): string | undefined {
  if (entry.file === undefined || typeof entry.file === 'string') return entry.file;
  return entry.file[bootClass];
}

/** HTTP-boot firmware runs the same EFI binaries as PXE firmware of its CPU, fetched over HTTP. */
const HTTP_FALLBACK: Partial<Record<BootClass, BootClass>> = { http64: 'uefi64', httparm64: 'arm64' };

const FLAG_FOR_CLASS: Record<BootClass, string> = {
  bios: '--boot-bios',
  uefi32: '--boot-uefi32',
  uefi64: '--boot-uefi64',
  arm64: '--boot-arm64',
  http64: '--boot-http64',
  httparm64: '--boot-httparm64',
};

/**
 * Decides what one client gets. Pure: same inputs, same decision. `assignment` is what the
 * store says about this machine (found by its MAC or UUID), undefined for none.
 */
export function chooseBootFile(client: BootClient, config: BootPolicyConfig, assignment?: MachineBootAssignment): BootDecision {
  const arch = client.arch ?? 0; // a PXE 2.0 ROM without option 93 is a BIOS (RFC 4578 §2.1 came later)
  const archInfo = ARCHITECTURES[arch];
  const bootClass = archInfo?.bootClass;
  if (!bootClass) {
    return {
      kind: 'ignore',
      reason: `${architectureName(arch)} (option 93 = ${arch}) has no boot file class; Bootbench serves BIOS, UEFI IA32/x64/ARM64 and HTTP boot x64/ARM64`,
    };
  }

  const machine = assignment?.name;
  const base = { bootClass, machine };
  if (assignment?.ignore) {
    return { kind: 'ignore', ...base, deliberate: true, reason: assignment.ignoreReason ?? `${machine ?? client.mac} is set not to boot from the network` };
  }

  const httpClass = isHttpBootClass(bootClass) || client.vendorClass?.startsWith('HTTPClient') === true;
  const vendorClass = httpClass ? ('HTTPClient' as const) : ('PXEClient' as const);
  const who = machine ? `machine ${machine}` : 'default';
  // The setting is about firmware: iPXE already running asks for its script, not for HTTP boot.
  if (httpClass && !client.ipxe && config.answerHttpBoot === false) {
    return {
      kind: 'ignore',
      ...base,
      turnedOff: 'http-boot',
      reason: 'its firmware asked for UEFI HTTP boot (HTTPClient), which is turned off in the serving settings; it goes on to PXE or its disk',
    };
  }

  // iPXE as the NBP does DHCP again; handing it the iPXE binary would loop forever.
  const scriptUrl = assignment?.ipxeScriptUrl ?? config.ipxeScriptUrl;
  if (client.ipxe && scriptUrl) {
    return {
      kind: 'url',
      ...base,
      url: urlFor(config, scriptUrl),
      vendorClass,
      reason: `iPXE client: ${assignment?.ipxeScriptUrl ? who : 'default'} iPXE script`,
    };
  }

  const menu = (assignment?.menu ?? config.menu ?? []).map((entry, i): ResolvedMenuItem => {
    const file = entryFile(entry, bootClass);
    return { type: file === undefined ? 0 : MENU_TYPE_BASE + i, label: entry.label, file };
  });

  let file: string | undefined;
  let reason: string;
  if (menu.length > 0) {
    const wanted = client.bootItemType;
    const chosen = wanted !== undefined && wanted !== 0 ? menu.find((m) => m.type === wanted) : undefined;
    const defaultItem = menu.find((m) => m.file !== undefined);
    // A menu only for PXE firmware asking on 67: HTTP boot has no menus, and on 4011 the
    // client has already chosen (or asks for the default with type 0).
    if (menu.length > 1 && wanted === undefined && !httpClass && defaultItem) {
      return {
        kind: 'menu',
        ...base,
        items: menu,
        prompt: config.menuPrompt ?? 'Bootbench: choose what to boot',
        timeoutSeconds: config.menuTimeoutSeconds ?? 10,
        defaultItem,
        vendorClass: 'PXEClient',
        reason: `${who} menu with ${menu.length} entries`,
      };
    }
    if (wanted !== undefined && wanted !== 0 && !chosen) {
      return { kind: 'ignore', ...base, reason: `boot item type ${wanted} is not on the menu offered to ${who === 'default' ? client.mac : who}` };
    }
    const item = chosen ?? defaultItem;
    if (!item?.file) return { kind: 'ignore', ...base, reason: `the menu for ${bootClass} has no entry that boots from the network` };
    file = item.file;
    reason = `${who} menu entry "${item.label}"`;
  } else {
    file = assignment?.boot?.[bootClass] ?? config.boot[bootClass];
    reason = `${assignment?.boot?.[bootClass] ? who : 'default'} ${bootClass} boot file`;
    const fallback = HTTP_FALLBACK[bootClass];
    if (file === undefined && fallback) {
      file = assignment?.boot?.[fallback] ?? config.boot[fallback];
      reason = `${assignment?.boot?.[fallback] ? who : 'default'} ${fallback} boot file over HTTP`;
    }
    if (file === undefined) {
      return { kind: 'ignore', ...base, reason: `no boot file configured for ${bootClass} (${architectureName(arch)}); set ${FLAG_FOR_CLASS[bootClass]}` };
    }
  }

  if (httpClass) return { kind: 'url', ...base, url: urlFor(config, file), vendorClass: 'HTTPClient', reason };
  if (isUrl(file)) {
    if (client.ipxe) return { kind: 'url', ...base, url: file, vendorClass: 'PXEClient', reason };
    // HTTPClient took the branch above, so only PXEClient is left to name.
    const fetcher = client.vendorClass?.startsWith('PXEClient') ? 'PXE firmware' : 'this client';
    return { kind: 'ignore', ...base, reason: `the ${bootClass} boot file is a URL (${file}), but ${fetcher} can only fetch by TFTP` };
  }
  return { kind: 'file', ...base, file, vendorClass: 'PXEClient', reason };
}
