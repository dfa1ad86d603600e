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
