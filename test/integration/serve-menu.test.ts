// `bootbench serve --menu`: a BIOS PXE ROM (no iPXE) gets a PXE boot menu in option 43,
// with the lines given on the command line, and a 4011 request for a line gets its file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, netnsUnavailableReason } from '../helpers/netns.js';
import { ServeProcess } from '../helpers/serve-process.js';
import { firmwareDiscover } from '../helpers/dhcp-clients.js';

const skip = netnsUnavailableReason();
const MAC = '52:54:00:aa:10:01';

let lab: Lab;
let serve: ServeProcess;
let clientNs: string;

before(async () => {
  if (skip) return;
  const root = mkdtempSync(join(tmpdir(), 'bb-menu-root-'));
  writeFileSync(join(root, 'memtest.0'), Buffer.alloc(4096, 0x90));
  writeFileSync(join(root, 'undionly.kpxe'), Buffer.alloc(4096, 0x90));
  lab = new Lab('bbm');
  const server = lab.namespace('s');
  clientNs = lab.namespace('c');
  lab.veth(server, 'bench0', '192.0.2.1/24', clientNs, 'eth0', null);
  // The client has no address yet, like firmware: it broadcasts from 0.0.0.0:68.
  lab.exec(clientNs, 'ip', ['route', 'add', '255.255.255.255/32', 'dev', 'eth0']);
  serve = new ServeProcess(lab, server, [
    '--interface',
    'bench0',
    '--root',
    root,
    '--data',
    mkdtempSync(join(tmpdir(), 'bb-menu-data-')),
    '--menu',
    'Memory test=memtest.0',
    '--menu',
    'iPXE=undionly.kpxe',
    '--menu',
    'Local disk=',
    '--menu-timeout',
    '5',
  ]);
  await serve.ready();
});

after(async () => {
  if (lab) await lab.destroy();
});

test('a BIOS PXE ROM gets the menu given with --menu', { skip }, async () => {
  const discover = firmwareDiscover('intel-bios', MAC, 0x1234abcd).toString('hex');
  // Sends the DISCOVER from the client namespace and prints the offer's option 43 length.
  const script = `
    const dgram = require('node:dgram');
    const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    s.bind(68, () => {
      s.setBroadcast(true);
      s.send(Buffer.from('${discover}', 'hex'), 67, '255.255.255.255');
    });
    s.on('message', (m) => { console.log(m.length); process.exit(0); });
    setTimeout(() => process.exit(3), 5000);
  `;
  lab.exec(clientNs, process.execPath, ['-e', script]);
  const offer = await serve.waitForEvent((e) => e.type === 'proxy.offer' && e.mac === MAC, 5000, 'proxy.offer for the BIOS client');
  assert.deepEqual(offer.menu, ['Memory test', 'iPXE', 'Local disk']);
  assert.equal(offer.option43, true);
});
