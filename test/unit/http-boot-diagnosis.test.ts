// The Timeline's diagnosis names a UEFI HTTP boot as such, including when the firmware
// HTTP-booted iPXE, and points at HTTP (not TFTP) when the URL was never fetched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BootEvent, BootEventType } from '../../main/core/events.js';
import { bootStartedOverHttp, diagnoseBoot } from '../../main/api/boot-diagnosis.js';

const mac = '52:54:00:aa:bb:02';
let t = 0;
const ev = (type: BootEventType, details: Record<string, unknown> = {}): BootEvent => ({ type, time: (t += 100), mac, ...details });
const url = 'http://192.0.2.1:8080/marker.efi';
const httpDiscover = (msgType: string): BootEvent => ev('dhcp.received', { msgType, arch: 16, vendorClass: 'HTTPClient:Arch:00016:UNDI:003000' });

test('an HTTP boot that downloaded its program is called an HTTP boot', () => {
  const d = diagnoseBoot([
    httpDiscover('DISCOVER'),
    httpDiscover('REQUEST'),
    ev('dhcp.lease', { file: url, bootClass: 'http64' }),
    ev('http.start', { file: '/marker.efi' }),
    ev('http.done', { file: '/marker.efi', bytes: 2048 }),
  ]);
  assert.equal(d.level, 'ok');
  assert.match(d.message, /^UEFI HTTP boot: Downloaded \/marker\.efi/);
});

test('a URL handed out and never fetched points at HTTP, not TFTP', () => {
  const d = diagnoseBoot([httpDiscover('DISCOVER'), ev('proxy.offer', { file: url, bootClass: 'http64', vendorClass: 'HTTPClient' })]);
  assert.equal(d.level, 'warning');
  assert.match(d.message, /UEFI HTTP boot: the firmware was given http:\/\/192\.0\.2\.1:8080\/marker\.efi and never fetched it/);
  assert.match(d.hint!, /HTTP/);
  assert.doesNotMatch(d.hint!, /TFTP/);
});

test('iPXE reached through HTTP boot still counts as an HTTP boot; a later PXE boot does not', () => {
  const chain = [
    httpDiscover('DISCOVER'),
    ev('dhcp.lease', { file: 'http://192.0.2.1:8080/ipxe.efi', bootClass: 'http64' }),
    ev('http.done', { file: '/ipxe.efi', bytes: 1_000_000 }),
    ev('dhcp.received', { msgType: 'DISCOVER', arch: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003010', userClass: 'iPXE' }),
    ev('dhcp.lease', { file: 'http://192.0.2.1:8080/boot.ipxe' }),
    ev('http.done', { file: '/boot.ipxe', bytes: 100 }),
  ];
  assert.equal(bootStartedOverHttp(chain), true);
  assert.match(diagnoseBoot(chain).message, /^UEFI HTTP boot: /);
  const pxeLater = [...chain, ev('dhcp.received', { msgType: 'DISCOVER', arch: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003000' })];
  assert.equal(bootStartedOverHttp(pxeLater), false);
  assert.doesNotMatch(diagnoseBoot(pxeLater).message, /HTTP boot/);
});

test('a PXE boot is not called an HTTP boot', () => {
  const d = diagnoseBoot([
    ev('dhcp.received', { msgType: 'DISCOVER', arch: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003000' }),
    ev('pxe.ack', { file: 'ipxe.efi' }),
  ]);
  assert.doesNotMatch(d.message, /HTTP boot/);
  assert.match(d.hint!, /TFTP/);
});

test('HTTP boot turned off: the Timeline says so for that PC, as a choice, with where to turn it on', async () => {
  const { summarizeEvent } = await import('../../main/api/boot-diagnosis.js');
  const reason = 'its firmware asked for UEFI HTTP boot (HTTPClient), which is turned off in the serving settings; it goes on to PXE or its disk';
  const ignored = ev('dhcp.ignored', { msgType: 'DISCOVER', bootClass: 'http64', turnedOff: 'http-boot', reason });
  const d = diagnoseBoot([httpDiscover('DISCOVER'), ignored, httpDiscover('DISCOVER'), ev('dhcp.ignored', { ...ignored })]);
  assert.equal(d.level, 'info');
  assert.match(d.message, /^UEFI HTTP boot: not answered, because UEFI HTTP boot is turned off/);
  assert.match(d.hint!, /Start screen/);
  const line = summarizeEvent(ignored);
  assert.equal(line.level, 'info');
  assert.match(line.summary, /^Not answered on purpose: its firmware asked for UEFI HTTP boot/);
});

test('an HTTP-boot DISCOVER not answered for another reason is not blamed on the setting', () => {
  const d = diagnoseBoot([httpDiscover('DISCOVER'), ev('dhcp.ignored', { msgType: 'DISCOVER', reason: 'no boot file configured for http64' })]);
  assert.equal(d.level, 'warning');
  assert.doesNotMatch(d.message, /turned off/);
});
