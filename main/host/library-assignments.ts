// The DHCP policy's view of the library: each client's assignment, the copy the DHCP thread
// keeps (who may have one of their own, everyone else's answer), and when either may change.
import type { DhcpAssignmentSource } from '../dhcp/index.js';
import { mayHaveOwnAssignment } from '../pxe/index.js';
import { storeReadCache, watchStoreChanges, type Store } from '../store/index.js';
import { BOOT_BINARY_MOUNTS, type LibraryBootService, type LibraryMachineAssignment } from '../library/index.js';

export interface LibraryAssignmentOptions {
  store: Store;
  library: LibraryBootService;
  httpBaseUrl: string;
  /** `--ipxe-script` set one script for everybody: iPXE clients are not sent the library's. */
  haveStaticScript: boolean;
  /** A UEFI x64 PC with an imaging task gets shim -> signed GRUB (full DHCP, both binaries found). */
  signedChainForImaging: boolean;
  /** MACs with an imaging task waiting (they boot the imaging environment). */
  imagingMacs: () => Set<string>;
  /** A capture waits for the next machine that boots: every PC that network-boots is sent to the environment until one claims it. */
  imagingAnyMachine: () => boolean;
}

/**
 * Per-machine decisions from the library. iPXE clients get the library's script (their
 * assignment, or the menu of all entries) once the library holds entries, unless
 * `--ipxe-script` set one script for everybody; with an empty library they get the
 * per-class boot file like any other client.
 */
export function libraryAssignments(options: LibraryAssignmentOptions): DhcpAssignmentSource {
  const { store, library } = options;
  // Asked for every DHCP request (a DISCOVER storm too): the library answers from memory
  // until the store changes (main/store/read-cache.ts), with one shared answer for every
  // client that boots the default, so this adds no per-client work or cache entry either.
  const reads = storeReadCache(store);
  const libraryScript = Object.freeze({ ipxeScriptUrl: `${options.httpBaseUrl}/ipxe/boot.ipxe` });
  const withLibraryScript = new WeakMap<object, LibraryMachineAssignment>();
  const scripted = (assignment: LibraryMachineAssignment | undefined): LibraryMachineAssignment | undefined => {
    if (options.haveStaticScript || assignment?.ignore || assignment?.ipxeScriptUrl) return assignment;
    if (!assignment) return reads.get('has-bootable-entry', () => store.entries.hasBootableEntry()) ? libraryScript : undefined;
    let withScript = withLibraryScript.get(assignment);
    if (!withScript) withLibraryScript.set(assignment, (withScript = { ...assignment, ipxeScriptUrl: libraryScript.ipxeScriptUrl }));
    return withScript;
  };
  // A PC with an imaging task boots the imaging environment whatever its assignment says:
  // iPXE gets the library's script, and a UEFI x64 PC gets shim -> signed GRUB (whose
  // grub.cfg is the task) when GRUB can reach this host (full DHCP), because its firmware
  // may enforce Secure Boot and refuse iPXE; the signed chain boots with it off as well.
  const imagingMacs = () => reads.get('imaging-pending', options.imagingMacs);
  const anyMachine = () => reads.get('imaging-any-machine', options.imagingAnyMachine);
  const forImaging = options.signedChainForImaging ? Object.freeze({ ...libraryScript, boot: { uefi64: BOOT_BINARY_MOUNTS.shim.slice(1) } }) : libraryScript;
  // Waiting for the next machine that boots, every PC is offered the environment, even when
  // the default is its local disk (the capture is the technician's explicit, one-time
  // request), except a machine whose own assignment is its local disk. The PC that then asks
  // for its script or grub.cfg first claims the capture; the others get their own assignment
  // from that script on.
  const ownAssignments = () => reads.get('own-assignment-identifiers', () => store.machines.identifiersWithOwnAssignment());
  const lookupWhileAnyMachine = (mac: string, uuid: string | undefined) => {
    const assigned = library.lookupMachine(mac, uuid);
    return assigned?.ignore && mayHaveOwnAssignment(ownAssignments(), mac, uuid) ? assigned : forImaging;
  };
  return {
    lookup: (mac, uuid) => (imagingMacs().has(mac) ? forImaging : anyMachine() ? lookupWhileAnyMachine(mac, uuid) : scripted(library.lookupMachine(mac, uuid))),
    view: () => {
      const view = library.assignmentView();
      const pending = imagingMacs();
      const macs = pending.size ? [...new Set([...view.macs, ...pending])] : view.macs;
      return { macs, uuids: view.uuids, defaultAssignment: anyMachine() ? forImaging : scripted(view.defaultAssignment) };
    },
    version: (recheck) => reads.generation(recheck),
    watch: (changed) => watchStoreChanges(store, changed),
  };
}
