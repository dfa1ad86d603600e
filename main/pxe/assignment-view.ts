// Which clients can have a boot assignment of their own. Everyone else (a new MAC, a storm of
// them, a machine that was only ever seen) boots the one default answer, so that answer can
// be given without asking the store, here or in the DHCP thread (main/dhcp/dhcp-thread.ts).
import { normalizeMac, normalizeUuid } from '../core/index.js';

/** Canonical MACs and UUIDs of the machines with an entry or a group of their own. */
export interface AssignedIdentities {
  macs: Set<string>;
  uuids: Set<string>;
}

/** False when neither the client's MAC nor its UUID belongs to a machine with an assignment. */
export function mayHaveOwnAssignment(assigned: AssignedIdentities, mac: string, uuid: string | undefined): boolean {
  if (assigned.macs.size > 0) {
    const normalizedMac = normalizeMac(mac);
    if (normalizedMac !== undefined && assigned.macs.has(normalizedMac)) return true;
  }
  if (uuid === undefined || assigned.uuids.size === 0) return false;
  const normalizedUuid = normalizeUuid(uuid);
  return normalizedUuid !== undefined && assigned.uuids.has(normalizedUuid);
}
