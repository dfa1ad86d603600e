// The Timeline screen's plain-language diagnosis of where a boot stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BootEvent, BootEventType } from '../../main/host/events.js';
import { diagnoseBoot, lastBootAttempt, summarizeEvent, fileFirmware } from '../../main/host/boot-diagnosis.js';

const mac = '52:54:00:aa:bb:01';
let t = 0;
const ev = (type: BootEventType, details: Record<string, unknown> = {}): BootEvent => ({ type, time: (t += 100), mac, ...details });

test('no events: nothing seen yet, with what to check', () => {
  const d = diagnoseBoot([]);
  assert.equal(d.stage, 'none');
  assert.match(d.hint!, /network boot/);
});

test('proxy offer and then silence points at full DHCP mode', () => {
  const d = diagnoseBoot([ev('dhcp.discover', { msgType: 'DISCOVER', arch: 0 }), ev('proxy.offer', { bootFile: 'undionly.kpxe' })]);
  assert.equal(d.stage, 'offer');
  assert.match(d.message, /Offer sent, no request came/);
  assert.match(d.hint!, /full DHCP/);
});

test('a UEFI client handed a BIOS file is named as such', () => {
  const d = diagnoseBoot([
    ev('dhcp.discover', { msgType: 'DISCOVER', arch: 7 }),
    ev('proxy.offer', { bootFile: 'undionly.kpxe' }),
    ev('tftp.start', { file: 'undionly.kpxe' }),
    ev('tftp.done', { file: 'undionly.kpxe', bytes: 70000 }),
  ]);
  assert.equal(d.level, 'problem');
  assert.match(d.message, /UEFI client got a BIOS file \(undionly\.kpxe\)/);
});

test('a TFTP size probe followed by nothing', () => {
  const d = diagnoseBoot([ev('dhcp.discover', { msgType: 'DISCOVER', arch: 7 }), ev('pxe.ack', { bootFile: 'ipxe.efi' }), ev('tftp.probe', { file: 'ipxe.efi', size: 1_000_000 })]);
  assert.match(d.message, /TFTP size probe for ipxe\.efi, then nothing/);
});

test('a complete download is ok; a failed one says why', () => {
  assert.equal(diagnoseBoot([ev('dhcp.discover', { msgType: 'DISCOVER', arch: 7 }), ev('tftp.done', { file: 'ipxe.efi', bytes: 1 })]).level, 'ok');
  const failed = diagnoseBoot([ev('tftp.start', { file: 'big.img' }), ev('tftp.failed', { file: 'big.img', reason: 'timed out after 5 retransmits' })]);
  assert.equal(failed.level, 'problem');
  assert.match(failed.message, /timed out/);
  assert.match(failed.hint!, /block size/);
});

test('a full DHCP offer with no request suggests another DHCP server', () => {
  const d = diagnoseBoot([ev('dhcp.discover', { msgType: 'DISCOVER' }), ev('dhcp.offer', { yiaddr: '192.0.2.100' })]);
  assert.match(d.hint!, /Another DHCP server/);
});

test('only the last boot attempt counts: a reboot starts over', () => {
  const events = [
    ev('dhcp.discover', { msgType: 'DISCOVER', arch: 7 }),
    ev('tftp.failed', { file: 'ipxe.efi', reason: 'timeout' }),
    ev('dhcp.discover', { msgType: 'DISCOVER', arch: 7 }),
    ev('proxy.offer', { bootFile: 'ipxe.efi' }),
  ];
  assert.equal(lastBootAttempt(events).length, 2);
  assert.equal(diagnoseBoot(events).stage, 'offer');
});

test('summaries are one plain line each', () => {
  assert.equal(summarizeEvent(ev('tftp.done', { file: 'ipxe.efi', bytes: 1048576, durationMs: 400 })).summary, 'TFTP sent ipxe.efi (1.0 MB) in 0.4 s');
  assert.equal(summarizeEvent(ev('dhcp.discover', { msgType: 'DISCOVER', arch: 7, port: 67 })).summary, 'DISCOVER from UEFI 64-bit firmware');
  assert.equal(summarizeEvent(ev('tftp.refused', { file: 'x.efi', reason: 'file not found' })).level, 'problem');
  const conflict = summarizeEvent(ev('dhcp.conflict', { address: '192.0.2.100', heldBy: '52:54:00:00:00:99', method: 'arp' }));
  assert.equal(conflict.summary, 'Address 192.0.2.100 is already used by another machine (52:54:00:00:00:99); kept out of the pool and offering another');
  assert.equal(conflict.level, 'warning');
  assert.equal(fileFirmware('boot/undionly.kpxe'), 'bios');
  assert.equal(fileFirmware('EFI/BOOT/BOOTX64.EFI'), 'uefi');
  assert.equal(fileFirmware('vmlinuz'), undefined);
});

test('a refused file points to a folder and a setting that exist on a screen', () => {
  const bundled = diagnoseBoot([
    ev('dhcp.discover', { msgType: 'DISCOVER', arch: 7 }),
    ev('proxy.offer', { bootFile: 'bootbench/snponly.efi' }),
    ev('tftp.refused', { file: 'bootbench/snponly.efi', reason: 'no such file' }),
  ]);
  assert.equal(bundled.level, 'problem');
  assert.match(bundled.hint!, /Bootbench's own boot programs: the Start screen's "Boot programs" list/);
  assert.doesNotMatch(bundled.hint!, /`/, 'plain text, no Markdown');
  const own = diagnoseBoot([ev('dhcp.discover', { msgType: 'DISCOVER', arch: 0 }), ev('proxy.offer', { bootFile: 'pxelinux.0' }), ev('tftp.refused', { file: 'pxelinux.0', reason: 'no such file' })]);
  assert.match(own.hint!, /served folder shown on the Start screen, or give this machine another boot entry on the Machines screen/);
  assert.doesNotMatch(own.hint!, /boot file setting/);
});
