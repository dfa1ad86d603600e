// Issue 7, lab: a UEFI client with Secure Boot enforced (OVMF with Microsoft's keys
// enrolled) reaches GRUB through the signed chain served by bootbench: shim (signed by
// Microsoft) by TFTP, then Debian's signed netboot GRUB, then our grub.cfg. grub.cfg
// then tries to chainload the unsigned marker NBP, which shim's verifier must refuse:
// that proves Secure Boot was really on.
// Full-DHCP mode: in proxy mode GRUB 2.06 takes its TFTP server from the office
// server's ACK (see PXE-NOTES), so the chain breaks at grub.cfg there.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labUnavailableReason, type ClientKind } from './boot-lab.js';
import { Scenario, assertEventForMac, describeTime, scenarioSkipReason } from './scenario.js';
import { markerText } from './marker-nbp.js';

const SHIM = '/usr/lib/shim/shimx64.efi.signed';
const GRUB_NET = '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed';
const clients: ClientKind[] = ['uefi-secure'];
const skip =
  scenarioSkipReason({ clients, office: false }) ??
  labUnavailableReason({ kinds: clients, files: [SHIM, GRUB_NET] });

// The signed netboot GRUB's built-in prefix is /grub, so it asks for /grub/grub.cfg.
const grubCfg = `echo BOOTBENCH-GRUB-OK
chainloader /marker.efi
boot
echo BOOTBENCH-UNSIGNED-REFUSED
halt
`;

if (skip) test('Secure Boot chain: shim, signed GRUB, grub.cfg', { skip }, () => {});
else describe('Secure Boot chain: shim, signed GRUB, grub.cfg', () => {
  const scenario = new Scenario({
    name: 'Secure Boot chain',
    mode: 'dhcp',
    office: false,
    clients,
    rootFiles: { 'shimx64.efi': SHIM, 'grubx64.efi': GRUB_NET, 'grub/grub.cfg': Buffer.from(grubCfg) },
    boot: { uefi64: 'shimx64.efi' },
  });
  before(() => scenario.start());
  after(() => scenario.stop());

  test('OVMF with Secure Boot on runs shim and GRUB, and GRUB refuses the unsigned NBP', async (t) => {
    const result = await scenario.result(0);
    t.diagnostic(describeTime(result, 'grub.cfg (then halt)', scenario));
    const problems: string[] = [];
    if (!result.serial.includes('BOOTBENCH-GRUB-OK')) problems.push('grub.cfg did not run (no BOOTBENCH-GRUB-OK on the serial console)');
    if (!/bad shim signature|prohibited by secure boot policy/.test(result.serial)) problems.push('GRUB did not refuse the unsigned marker.efi: is Secure Boot on?');
    if (result.debugcon.includes(markerText('uefi64'))) problems.push('the unsigned marker NBP ran: Secure Boot is not enforced');
    if (!result.serial.includes('BOOTBENCH-UNSIGNED-REFUSED') || result.exitCode !== 0) problems.push(`GRUB did not reach "halt" (QEMU exit ${result.exitCode ?? result.signal})`);
    assert.equal(problems.length, 0, `${problems.join('\n')}\n${scenario.failureReport(result)}`);
    assertEventForMac(scenario, result, 'tftp.done', 'shimx64.efi');
    assertEventForMac(scenario, result, 'tftp.done', 'grubx64.efi');
    assertEventForMac(scenario, result, 'tftp.done', 'grub/grub.cfg');
  });
});
