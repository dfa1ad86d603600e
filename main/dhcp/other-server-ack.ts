// Proxy mode: what the other (office) DHCP server told a PC we made a boot offer to. Its
// ACK, broadcast to the client port because PXE firmware sets the broadcast flag, names the
// next-server (siaddr) that GRUB 2.06 takes as its TFTP server instead of ours; the host
// records it so the Timeline can say where that PC's GRUB will look for grub.cfg.
import { DhcpMessageType } from './options.js';
import { BOOTREPLY, clientMac, type DhcpPacket } from './packet.js';

export interface OtherServerAck {
  mac: string;
  xid: number;
  /** The address the other server gave the PC. */
  ip?: string;
  /** Its option 54 (server identifier), else the ACK's source address. */
  server: string;
  /** The ACK's siaddr: the next-server GRUB asks; undefined when 0.0.0.0. */
  nextServer?: string;
  /** The ACK's source address, when it differs from `server` (a relay). */
  from?: string;
}

/** A DHCPACK from a server other than us, or undefined for anything else. Pure. */
export function readOtherServerAck(packet: DhcpPacket, sourceAddress: string, ownAddress: string): OtherServerAck | undefined {
  if (packet.op !== BOOTREPLY || packet.options.messageType !== DhcpMessageType.ACK) return undefined;
  const server = packet.options.serverIdentifier ?? sourceAddress;
  if (server === ownAddress || sourceAddress === ownAddress) return undefined;
  return {
    mac: clientMac(packet),
    xid: packet.xid,
    ip: packet.yiaddr !== '0.0.0.0' ? packet.yiaddr : packet.ciaddr !== '0.0.0.0' ? packet.ciaddr : undefined,
    server,
    nextServer: packet.siaddr !== '0.0.0.0' ? packet.siaddr : undefined,
    from: sourceAddress !== server ? sourceAddress : undefined,
  };
}

/**
 * MACs we made a boot offer to lately: only their ACKs are worth an event (the office
 * server's answers to every other PC on the network are none of our business). Each ACK
 * (MAC + xid) is reported once, though firmware may see it again on a retransmission.
 */
export class RecentBootOffers {
  // Both maps are kept in time order (an entry is re-inserted when refreshed), so expired
  // entries are at the front and the cap evicts the oldest: each call costs O(1) amortised,
  // also under a storm of new MACs.
  private readonly offered = new Map<string, number>();
  private readonly reported = new Map<string, number>();

  constructor(
    private readonly keepMs = 10 * 60_000,
    private readonly maxEntries = 4096,
  ) {}

  remember(mac: string, now: number): void {
    this.offered.delete(mac);
    this.offered.set(mac, now);
    trim(this.offered, now - this.keepMs, this.maxEntries);
  }

  /** True once per (MAC, xid) when the MAC got an offer from us within `keepMs`. */
  shouldReport(ack: OtherServerAck, now: number): boolean {
    const at = this.offered.get(ack.mac);
    if (at === undefined || now - at > this.keepMs) return false;
    const key = `${ack.mac}/${ack.xid}`;
    if (this.reported.has(key)) return false;
    this.reported.set(key, now);
    trim(this.reported, now - this.keepMs, this.maxEntries);
    return true;
  }

  /** How many MACs are remembered (for tests). */
  get size(): number {
    return this.offered.size;
  }
}

/** Drop entries older than `oldest` and the oldest beyond `max`, from the front of a time-ordered map. */
function trim(map: Map<string, number>, oldest: number, max: number): void {
  for (const [key, at] of map) {
    if (at >= oldest && map.size <= max) return;
    map.delete(key);
  }
}
