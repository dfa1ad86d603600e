// The boot policy's `lookupMachine` answered from the store, for the entry kinds whose first
// file is what the firmware loads itself (an NBP, a signed shim chain) or that mean "boot
// from the disk". Kernel/initrd, ISO and WIM entries need an iPXE script built from the entry
// (issue 7); for them only the machine's name is returned and the policy's defaults apply.
import type { BootClass, MachineBootAssignment } from '../pxe/boot-policy.js';
import { resolveBootAssignment } from './boot-assignment.js';
import type { BootEntry } from './entries.js';
import type { Store } from './open-store.js';

const BOOT_CLASSES: readonly BootClass[] = ['bios', 'uefi32', 'uefi64', 'arm64', 'http64', 'httparm64'];

/** The file a client of each boot class loads first: its own architecture's, else an 'any' file. */
function firstFilePerClass(entry: BootEntry): Partial<Record<BootClass, string>> {
  const boot: Partial<Record<BootClass, string>> = {};
  const anyFirst = entry.files.find((f) => f.arch === 'any');
  for (const cls of BOOT_CLASSES) {
    const own = entry.files.find((f) => f.arch === cls) ?? anyFirst;
    if (own) boot[cls] = own.path;
  }
  return boot;
}

export function machineBootLookup(store: Store): (mac: string, uuid?: string) => MachineBootAssignment | undefined {
  return (mac, uuid) => {
    const assignment = resolveBootAssignment(store, mac, uuid);
    const name = assignment?.machine?.name || store.machines.find(mac, uuid)?.name || undefined;
    if (!assignment) return name ? { name } : undefined;
    const { entry } = assignment;
    switch (entry.kind) {
      case 'local-disk':
        return { name, ignore: true, ignoreReason: `boots from its local disk (assigned entry "${entry.name}")` };
      case 'nbp':
      case 'secure-boot-chain':
        return { name, boot: firstFilePerClass(entry) };
      case 'ipxe-script': {
        const script = entry.files[0]?.path;
        return script && /^https?:\/\//.test(script) ? { name, ipxeScriptUrl: script } : { name };
      }
      default:
        return name ? { name } : undefined;
    }
  };
}
