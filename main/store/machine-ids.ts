// Which machine row an event belongs to, found or created while a batch of events is written.
// A DHCP message records what identifies the machine (UUID, architecture, vendor class, IP);
// other events only need the id, which is remembered between batches.
import { type BootEvent, normalizeMac } from '../core/index.js';
import type { Store } from './open-store.js';

/** MAC -> machine id answers kept between flushes. */
const MAX_REMEMBERED_MACS = 4096;

export class MachineIds {
  // A cache (each hit is checked against the store, so dropping entries is safe), bounded
  // because a DISCOVER storm brings a new MAC with every packet.
  private readonly byMac = new Map<string, number>();
  // Machines recorded or checked in the batch being written: sure to exist until it commits.
  private readonly thisBatch = new Map<string, number>();

  constructor(private readonly store: Store) {}

  /** The machine of `event`'s MAC, recorded as seen now; undefined when the event names no MAC. Call inside the batch's transaction. */
  idFor(event: BootEvent): number | undefined {
    const mac = event.mac ? normalizeMac(event.mac) : undefined;
    if (!mac) return undefined;
    const thisBatch = this.thisBatch.get(mac);
    if (event.type === 'dhcp.received') {
      // A few per boot, and they carry what identifies the machine: always recorded.
      const seen = {
        uuid: event.uuid || undefined,
        arch: event.arch,
        vendorClass: event.vendorClass || undefined,
        ip: event.ip || event.requestedIp || event.ciaddr || undefined,
        time: event.time,
      };
      // The same MAC again in this batch (a client repeating its DISCOVER): the MAC is known
      // now, so recording it is the update alone.
      if (thisBatch !== undefined) {
        this.store.machines.touchSeenById(thisBatch, seen);
        return thisBatch;
      }
      return this.remember(mac, this.store.machines.recordSeen({ mac, ...seen }).id);
    }
    if (thisBatch !== undefined) return thisBatch;
    // A magic packet we sent is no sighting of the PC: its row (when it has one) is left as it was.
    if (event.type === 'wake.sent') return this.store.machines.findByMac(mac)?.id;
    const known = this.byMac.get(mac);
    if (known !== undefined && this.store.machines.exists(known)) return this.remember(mac, known);
    return this.remember(mac, this.store.machines.recordSeen({ mac, ip: event.ip || undefined, time: event.time }).id);
  }

  /** The batch committed or rolled back: its ids are no longer sure. */
  endBatch(): void {
    this.thisBatch.clear();
  }

  /** Forgets everything (history went off: the rows may not have been written). */
  clear(): void {
    this.byMac.clear();
    this.thisBatch.clear();
  }

  private remember(mac: string, id: number): number {
    this.thisBatch.set(mac, id);
    this.byMac.delete(mac); // re-inserted as the newest
    this.byMac.set(mac, id);
    if (this.byMac.size > MAX_REMEMBERED_MACS) this.byMac.delete(this.byMac.keys().next().value!);
    return id;
  }
}
