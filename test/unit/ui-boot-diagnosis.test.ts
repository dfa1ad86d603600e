// The Timeline screen's plain-language diagnosis of where a boot stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BootEvent, BootEventType } from '../../main/core/events.js';
import { diagnoseBoot, lastBootAttempt, summarizeEvent, fileFirmware } from '../../main/api/boot-diagnosis.js';

const mac = '52:54:00:aa:bb:01';
let t = 0;
const ev = (type: BootEventType, details: Record<string, unknown> = {}): BootEvent => ({ type, time: (t += 100), mac, ...details });

test('no events: nothing seen yet, with what to check', () => {
  const d = diagnoseBoot([]);
  assert.equal(d.stage, 'none');
  assert.match(d.hint!, /network boot/);
});

test('proxy offer and then silence points at full DHCP mode', () => {
  const d = diagnoseBoot([ev('dhcp.received', { msgType: 'DISCOVER', arch: 0 }), ev('proxy.offer', { file: 'undionly.kpxe' })]);
  assert.equal(d.stage, 'offer');
  assert.match(d.message, /Offer sent, no request came/);
  assert.match(d.hint!, /full DHCP/);
});

test('a UEFI client handed a BIOS file is named as such', () => {
  const d = diagnoseBoot([
    ev('dhcp.received', { msgType: 'DISCOVER', arch: 7 }),
    ev('proxy.offer', { file: 'undionly.kpxe' }),
    ev('tftp.start', { file: 'undionly.kpxe' }),
    ev('tftp.done', { file: 'undionly.kpxe', bytes: 70000 }),
  ]);
  assert.equal(d.level, 'problem');
  assert.match(d.message, /UEFI client got a BIOS file \(undionly\.kpxe\)/);
});

test('a TFTP size probe followed by nothing', () => {
  const d = diagnoseBoot([
    ev('dhcp.received', { msgType: 'DISCOVER', arch: 7 }),
    ev('pxe.ack', { file: 'ipxe.efi' }),
    ev('tftp.probe', { file: 'ipxe.efi', size: 1_000_000 }),
  ]);
  assert.match(d.message, /TFTP size probe for ipxe\.efi, then nothing/);
});

test('a complete download is ok; a failed one says why', () => {
  assert.equal(diagnoseBoot([ev('dhcp.received', { msgType: 'DISCOVER', arch: 7 }), ev('tftp.done', { file: 'ipxe.efi', bytes: 1 })]).level, 'ok');
  const failed = diagnoseBoot([ev('tftp.start', { file: 'big.img' }), ev('tftp.failed', { file: 'big.img', reason: 'timed out after 5 retransmits' })]);
  assert.equal(failed.level, 'problem');
  assert.match(failed.message, /timed out/);
  assert.match(failed.hint!, /block size/);
});

test('a full DHCP offer with no request suggests another DHCP server', () => {
  const d = diagnoseBoot([ev('dhcp.received', { msgType: 'DISCOVER' }), ev('dhcp.offer', { yiaddr: '192.0.2.100' })]);
  assert.match(d.hint!, /Another DHCP server/);
});

test('only the last boot attempt counts: a reboot starts over', () => {
  const events = [
    ev('dhcp.received', { msgType: 'DISCOVER', arch: 7 }),
    ev('tftp.failed', { file: 'ipxe.efi', reason: 'timeout' }),
    ev('dhcp.received', { msgType: 'DISCOVER', arch: 7 }),
    ev('proxy.offer', { file: 'ipxe.efi' }),
  ];
  assert.equal(lastBootAttempt(events).length, 2);
  assert.equal(diagnoseBoot(events).stage, 'offer');
});

test('summaries are one plain line each', () => {
  assert.equal(summarizeEvent(ev('tftp.done', { file: 'ipxe.efi', bytes: 1048576, durationMs: 400 })).summary, 'TFTP sent ipxe.efi (1.0 MB) in 0.4 s');
  assert.equal(summarizeEvent(ev('dhcp.received', { msgType: 'DISCOVER', arch: 7, port: 67 })).summary, 'DISCOVER from UEFI 64-bit firmware');
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
    ev('dhcp.received', { msgType: 'DISCOVER', arch: 7 }),
    ev('proxy.offer', { file: 'bootbench/snponly.efi' }),
    ev('tftp.refused', { file: 'bootbench/snponly.efi', reason: 'no such file' }),
  ]);
  assert.equal(bundled.level, 'problem');
  assert.match(bundled.hint!, /Bootbench's own boot programs: the Start screen's "Boot programs" list/);
  assert.doesNotMatch(bundled.hint!, /`/, 'plain text, no Markdown');
  const own = diagnoseBoot([
    ev('dhcp.received', { msgType: 'DISCOVER', arch: 0 }),
    ev('proxy.offer', { file: 'pxelinux.0' }),
    ev('tftp.refused', { file: 'pxelinux.0', reason: 'no such file' }),
  ]);
  assert.match(own.hint!, /served folder shown on the Start screen, or give this machine another boot entry on the Machines screen/);
  assert.doesNotMatch(own.hint!, /boot file setting/);
});

test("a normal proxy boot: the office server's own REQUEST is no warning and does not change the diagnosis", () => {
  const officeRequest = ev('dhcp.ignored', {
    msgType: 'REQUEST',
    expected: true,
    reason: 'REQUEST for DHCP server 192.0.2.2; proxy mode hands out no addresses',
  });
  assert.equal(summarizeEvent(officeRequest).level, 'info');
  const offerOnly = diagnoseBoot([ev('dhcp.received', { msgType: 'DISCOVER', arch: 0 }), ev('proxy.offer', { file: 'undionly.kpxe' }), officeRequest]);
  assert.equal(offerOnly.stage, 'offer', 'still "offer sent, no request came", not "we did not answer"');
  // A real non-answer still warns.
  const refused = ev('dhcp.ignored', { msgType: 'DISCOVER', reason: 'not a PXE or HTTP-boot client' });
  assert.equal(summarizeEvent(refused).level, 'warning');
  assert.equal(diagnoseBoot([ev('dhcp.received', { msgType: 'DISCOVER' }), refused]).level, 'warning');
});

test('a machine sent to its local disk on purpose is described as such, with the day its boot once was used', () => {
  const used = ev('host.warning', { bootOnce: 'completed', message: 'Rescue was booted once (rescue/initrd.img fetched); local disk from the next boot' });
  assert.equal(summarizeEvent(used).level, 'info');
  const events = [
    ev('dhcp.received', { msgType: 'DISCOVER', arch: 7 }),
    ev('tftp.done', { file: 'ipxe.efi', bytes: 1000, size: 1000 }),
    used,
    ev('dhcp.received', { msgType: 'DISCOVER', arch: 7 }),
    ev('dhcp.ignored', { msgType: 'DISCOVER', deliberate: true, reason: 'boots from its local disk (assigned entry "Local disk")' }),
  ];
  const d = diagnoseBoot(events);
  assert.equal(d.stage, 'local-disk');
  assert.equal(d.level, 'info');
  const day = new Date(used.time);
  assert.match(d.message, new RegExp(`^Boots from its local disk: boot once was used on ${day.getFullYear()}-`));
  assert.doesNotMatch(`${d.message} ${d.hint}`, /enable PXE|firmware/i);
  assert.match(d.hint!, /[Aa]ssign an entry/);
  assert.equal(summarizeEvent(events[4]!).level, 'info');
  // Local disk assigned by hand (no boot once): the reason the policy gave.
  const byHand = diagnoseBoot([
    ev('dhcp.received', { msgType: 'DISCOVER', arch: 7 }),
    ev('dhcp.ignored', { deliberate: true, reason: 'boots from its local disk (assigned entry "Local disk")' }),
  ]);
  assert.equal(byHand.message, 'Not answered on purpose: boots from its local disk (assigned entry "Local disk").');
});

test('green only when the whole file came: a download cut short is a failure with its byte count', () => {
  const d = diagnoseBoot([
    ev('dhcp.received', { msgType: 'DISCOVER', arch: 7 }),
    ev('tftp.done', { file: 'ipxe.efi', bytes: 1_000_000, size: 1_000_000 }),
    ev('http.done', { file: '/library/e3/data.iso', bytes: 4096, size: 376_832 }),
  ]);
  assert.equal(d.level, 'problem');
  assert.equal(d.stage, 'failed');
  assert.match(d.message, /^Download of \/library\/e3\/data\.iso stopped after 4\.0 KB of 368 KB/);
  // A sanboot range session reads parts of the ISO by design: not cut short.
  const ranged = diagnoseBoot([ev('http.done', { file: '/library/e3/live.iso', bytes: 4096, size: 376_832, ranged: true })]);
  assert.equal(ranged.level, 'ok');
});

test("green only when the entry's whole set of files came", () => {
  const expected = { entry: 'Debian live', paths: ['/library/e4/initrd.img'], rangeCounts: false };
  const bootProgramOnly = diagnoseBoot(
    [
      ev('dhcp.received', { msgType: 'DISCOVER', arch: 7 }),
      ev('tftp.done', { file: 'bootbench/snponly.efi', bytes: 10, size: 10 }),
      ev('http.done', { file: '/ipxe/boot.ipxe', bytes: 5, size: 5 }),
    ],
    expected,
  );
  assert.equal(bootProgramOnly.level, 'warning');
  assert.match(bootProgramOnly.message, /not yet everything Debian live needs: initrd\.img never came/);
  const all = diagnoseBoot(
    [
      ev('dhcp.received', { msgType: 'DISCOVER', arch: 7 }),
      ev('tftp.done', { file: 'bootbench/snponly.efi', bytes: 10, size: 10 }),
      ev('http.done', { file: '/library/e4/vmlinuz', bytes: 50, size: 50 }),
      ev('http.done', { file: 'library/E4/initrd.img', bytes: 70, size: 70 }),
    ],
    expected,
  );
  assert.equal(all.level, 'ok');
  assert.equal(all.stage, 'done');
  assert.match(all.message, /^Downloaded library\/E4\/initrd\.img, the last file Debian live needs \(3 files this boot\)/);
});
