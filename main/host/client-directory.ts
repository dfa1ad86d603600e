// Which MAC is behind which IP address, learnt from DHCP traffic, so TFTP and HTTP events
// (which only see an IP) can name the machine.
import { isDhcpEvent, type BootEvent } from '../core/index.js';

export class ClientDirectory {
  private readonly macByIp = new Map<string, string>();

  /** Feeds one bus event; DHCP events carry the client's MAC with an address it uses. */
  observe(event: BootEvent): void {
    if (!event.mac || !isDhcpEvent(event)) return;
    const addresses = [event.ip];
    if (event.type === 'dhcp.received') addresses.push(event.ciaddr, event.requestedIp);
    else if ('yiaddr' in event) addresses.push(event.yiaddr);
    for (const ip of addresses) if (ip && ip !== '0.0.0.0') this.macByIp.set(ip, event.mac);
  }

  macForIp = (ip: string): string | undefined => this.macByIp.get(ip.startsWith('::ffff:') ? ip.slice(7) : ip);
}
