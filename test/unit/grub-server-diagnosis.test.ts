// The Timeline explains a GRUB that never comes back to us: in proxy mode it asks the other
// DHCP server's next-server (named from its ACK, or from the PC's REQUEST), and after UEFI
// HTTP boot the signed network GRUB has no TFTP server at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BootEvent, BootEventType } from '../../main/core/events.js';
import { diagnoseBoot, summarizeEvent } from '../../main/api/boot-diagnosis.js';

const mac = '52:54:00:aa:bb:03';
let t = 0;
const ev = (type: BootEventType, details: Record<string, unknown> = {}): BootEvent => ({ type, time: (t += 100), mac, ...details });
const pxe = { arch: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003000' };

/** EDK2 in proxy mode up to GRUB: proxy offer, the office exchange, 4011, shim and GRUB by TFTP. */
function proxyChainToGrub(officeAck?: Record<string, unknown>): BootEvent[] {
  return [
    ev('dhcp.received', { msgType: 'DISCOVER', ...pxe }),
    ev('proxy.offer', { file: 'shimx64.efi', siaddr: '192.0.2.1', warning: 'shimx64.efi leads to GRUB ...' }),
    ev('dhcp.received', { msgType: 'REQUEST', ...pxe, serverIdentifier: '192.0.2.2' }),
    ev('dhcp.ignored', { msgType: 'REQUEST', reason: 'REQUEST for DHCP server 192.0.2.2; proxy mode hands out no addresses' }),
    ...(officeAck ? [ev('dhcp.other-ack', { ip: '192.0.2.90', server: '192.0.2.2', ...officeAck })] : []),
    ev('dhcp.received', { msgType: 'REQUEST', port: 4011, ...pxe }),
    ev('pxe.ack', { file: 'shimx64.efi', siaddr: '192.0.2.1' }),
    ev('tftp.done', { file: '/shimx64.efi', bytes: 1_048_504 }),
    ev('tftp.refused', { file: 'revocations_sku.efi', reason: 'no such file' }),
    ev('tftp.done', { file: '/grubx64.efi', bytes: 3_843_520 }),
  ];
}

test('proxy mode: GRUB loaded and silent names the next-server from the other server ACK', () => {
  const d = diagnoseBoot(proxyChainToGrub({ nextServer: '192.0.2.2' }));
  assert.equal(d.level, 'problem');
  assert.match(
    d.message,
    /GRUB was loaded, but it asks 192\.0\.2\.2 \(the next-server in the answer of the other DHCP server \(192\.0\.2\.2\)\) for grub\.cfg, not this computer \(192\.0\.2\.1\)/,
  );
  assert.match(d.hint!, /full DHCP mode/);
  assert.match(d.hint!, /next-server \(siaddr\) of the other DHCP server \(192\.0\.2\.2\) to 192\.0\.2\.1/);
});

test('proxy mode: an ACK without next-server, and no ACK seen (server from the REQUEST)', () => {
  assert.match(diagnoseBoot(proxyChainToGrub({})).message, /asks nobody: the answer of the other DHCP server \(192\.0\.2\.2\) names no next-server/);
  assert.match(diagnoseBoot(proxyChainToGrub()).message, /asks the next-server in the answer of the other DHCP server \(192\.0\.2\.2\) for grub\.cfg/);
});

test('no GRUB problem when GRUB asked us, or when the other server points GRUB at us', () => {
  const askedUs = [...proxyChainToGrub({ nextServer: '192.0.2.2' }), ev('tftp.refused', { file: '/grub/x86_64-efi/command.lst', reason: 'no such file' })];
  assert.doesNotMatch(diagnoseBoot(askedUs).message, /GRUB was loaded/);
  assert.doesNotMatch(diagnoseBoot(proxyChainToGrub({ nextServer: '192.0.2.1' })).message, /GRUB was loaded/);
});

test('full DHCP mode with GRUB fetching its files is not a GRUB problem', () => {
  const d = diagnoseBoot([
    ev('dhcp.received', { msgType: 'DISCOVER', ...pxe }),
    ev('dhcp.lease', { file: 'shimx64.efi', yiaddr: '192.0.2.100' }),
    ev('tftp.done', { file: '/shimx64.efi', bytes: 1_048_504 }),
    ev('tftp.done', { file: '/grubx64.efi', bytes: 3_843_520 }),
    ev('tftp.done', { file: '/grub/grub.cfg', bytes: 300 }),
  ]);
  assert.equal(d.level, 'ok');
});

test('UEFI HTTP boot of shim and GRUB: GRUB has no TFTP server to ask', () => {
  const http = { arch: 16, vendorClass: 'HTTPClient:Arch:00016:UNDI:003000' };
  const d = diagnoseBoot([
    ev('dhcp.received', { msgType: 'DISCOVER', ...http }),
    ev('proxy.offer', { file: 'http://192.0.2.1:8080/shimx64.efi', siaddr: '192.0.2.1', vendorClass: 'HTTPClient' }),
    ev('dhcp.received', { msgType: 'REQUEST', ...http, serverIdentifier: '192.0.2.2' }),
    ev('http.done', { file: '/shimx64.efi', bytes: 1_048_504 }),
    ev('http.done', { file: '/grubx64.efi', bytes: 3_843_520 }),
  ]);
  assert.equal(d.level, 'problem');
  assert.match(d.message, /UEFI HTTP boot: GRUB was loaded over HTTP and stopped at its prompt/);
  assert.match(d.hint!, /PXE/);
});

test('the Timeline line for the other server ACK', () => {
  assert.equal(
    summarizeEvent(ev('dhcp.other-ack', { server: '192.0.2.2', ip: '192.0.2.90', nextServer: '192.0.2.2' })).summary,
    'The other DHCP server 192.0.2.2 gave it 192.0.2.90; its next-server is 192.0.2.2',
  );
  assert.match(summarizeEvent(ev('dhcp.other-ack', { server: '192.0.2.2', ip: '192.0.2.90' })).summary, /names no next-server/);
});
