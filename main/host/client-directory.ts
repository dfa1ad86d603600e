// Which MAC is behind which IP address, learnt from DHCP traffic, so TFTP and HTTP events
// (which only see an IP) can name the machine.
import type { BootEvent } from '../core/events.js';

export class ClientDirectory {
  private readonly macByIp = new Map<string, string>();

  /** Feeds one bus event; DHCP events carry the client's MAC with an address it uses. */
  observe(event: BootEvent): void {
    if (!event.mac) return;
    for (const key of ['ip', 'yiaddr', 'ciaddr', 'requestedIp'] as const) {
      const ip = event[key];
      if (typeof ip === 'string' && ip !== '0.0.0.0' && ip !== '') this.macByIp.set(ip, event.mac);
    }
  }

  macForIp = (ip: string): string | undefined => this.macByIp.get(ip.startsWith('::ffff:') ? ip.slice(7) : ip);
}
