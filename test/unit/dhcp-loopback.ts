// Shared by the DhcpService loopback tests: plain dgram sockets on 127.0.0.1 in place of the
// host's interface-scoped ones.
import dgram from 'node:dgram';
import type { UdpSocketFactory } from '../../main/net/udp-socket-factory.js';

export const loopbackFactory: UdpSocketFactory = ({ port }) =>
  new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(port, '127.0.0.1', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
  });
