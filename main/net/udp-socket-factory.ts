// The contract between the UDP services (DHCP, boot server, TFTP) and the network layer.
// Services never create sockets themselves: they are given a factory, so tests can use
// loopback sockets on port 0 and the host can use interface-scoped sockets.
import type { Socket } from 'node:dgram';

export interface UdpSocketOptions {
  /** Port to bind; 0 = any (tests). */
  port: number;
  /**
   * Bind to this local IPv4 address (default 0.0.0.0). A socket that must receive
   * limited broadcasts (DHCP 67, 4011) binds 0.0.0.0 and relies on `interfaceName`.
   */
  address?: string;
  /** Scope the socket to this NIC: receive only what arrived on it, send only through it. */
  interfaceName?: string;
  /** Allow sending to broadcast addresses. */
  broadcast?: boolean;
  /**
   * Set SO_REUSEADDR (default false). Off so that a port already held by another DHCP/TFTP
   * server fails with a clear "in use by X" error instead of being silently shared; only a
   * client-side socket (e.g. a probe on 68 beside the OS's DHCP client) should turn it on.
   */
  reuseAddress?: boolean;
}

export type UdpSocketFactory = (options: UdpSocketOptions) => Promise<Socket>;
