// Runs in the "office" namespace of nic-scoping.test.ts: a PXE client on the NIC Bootbench
// must NOT serve. It broadcasts a PXE DISCOVER from 68, sends a boot-server request to the
// host's office address on 4011 and a TFTP read request to its port 69, and reports every
// UDP answer it got. Prints one JSON line.
//   node --import tsx office-probe.ts IFACE HOST_ADDRESS
import { createSocket } from 'node:dgram';
import { createScopedUdpSocketFactory } from '../../main/net/index.js';
import { listenForOffers } from '../../main/cli/test-boot.js';

const [iface, host] = process.argv.slice(2);

async function main(): Promise<void> {
  const factory = createScopedUdpSocketFactory();
  const heard = await listenForOffers({ interfaceName: iface, socketFactory: factory, kind: 'uefi', listenMs: 2500 });
  const answers: string[] = heard.offers.map((o) => `offer from ${o.from}`);
  const socket = createSocket('udp4');
  socket.on('message', (msg, rinfo) => answers.push(`${msg.length} bytes from ${rinfo.address}:${rinfo.port}`));
  socket.on('error', () => {
    /* ICMP port unreachable from the host's kernel is expected */
  });
  await new Promise<void>((r) => socket.bind(0, () => r()));
  const request = Buffer.alloc(300);
  request[0] = 1;
  request[1] = 1;
  request[2] = 6;
  request.writeUInt32BE(0x63825363, 236);
  Buffer.from([53, 1, 3, 60, 9, ...Buffer.from('PXEClient'), 255]).copy(request, 240);
  socket.send(request, 4011, host);
  socket.send(Buffer.from('\0\x01ipxe.efi\0octet\0'), 69, host);
  await new Promise((r) => setTimeout(r, 1500));
  socket.close();
  console.log(JSON.stringify({ answers, error: heard.error }));
}

main();
