// Issue 7, lab: a UEFI client chainloads iPXE (ipxe.efi by TFTP) and boots a Linux
// kernel + initrd over HTTP; the initrd's /init prints a marker and exits QEMU. The BIOS
// client (iPXE ROM) takes the same script. The script is the one given with
// --ipxe-script; once machine assignments can be made from the command line this
// scenario should use a library entry and its generated script instead.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { IPXE_EFI, SERVER_ADDRESS, labUnavailableReason, type ClientKind } from './boot-lab.js';
import { Scenario, assertEventForMac, describeTime, scenarioSkipReason } from './scenario.js';
import { INITRD_EXIT_VALUE, INITRD_MARKER, findLinuxKernel, markerInitrd } from './marker-initrd.js';
import { qemuExitStatus } from './marker-nbp.js';

const clients: ClientKind[] = ['uefi', 'bios'];
const HTTP_PORT = 8080;
const kernel = findLinuxKernel(existsSync, (p) => readdirSync(p));
const skip =
  scenarioSkipReason({ clients, office: true, needsBootbench: true }) ??
  labUnavailableReason({ kinds: clients, files: [IPXE_EFI] }) ??
  (kernel ? undefined : 'no Linux kernel: install linux-image-amd64 or set BOOTBENCH_LAB_KERNEL=/path/to/vmlinuz');

// initrd= on the command line: the EFI stub loads the initrd from the file system iPXE
// exposes (iPXE 2019 offers no LoadFile2 initrd); the BIOS bzImage loader ignores it.
const script = `#!ipxe
echo bootbench lab: kernel+initrd on \${platform}
kernel http://${SERVER_ADDRESS}:${HTTP_PORT}/vmlinuz initrd=initrd.img console=ttyS0 quiet panic=-1
initrd http://${SERVER_ADDRESS}:${HTTP_PORT}/initrd.img
boot
`;

if (skip) test('kernel + initrd over HTTP after chainloading iPXE', { skip }, () => {});
else
  describe('kernel + initrd over HTTP after chainloading iPXE', () => {
    const scenario = new Scenario({
      name: 'kernel+initrd',
      mode: 'proxy',
      office: true,
      clients,
      rootFiles: { 'ipxe.efi': IPXE_EFI, vmlinuz: kernel ?? '', 'initrd.img': markerInitrd() },
      boot: { bios: 'marker.0', uefi64: 'ipxe.efi' },
      ipxeScript: script,
      httpPort: HTTP_PORT,
      needsBootbench: true,
    });
    before(() => scenario.start());
    after(() => scenario.stop());

    clients.forEach((kind, index) => {
      test(`${kind} client boots the kernel and the initrd prints its marker`, async (t) => {
        const result = await scenario.result(index);
        t.diagnostic(describeTime(result, 'the initrd marker', scenario));
        const ok = result.debugcon.includes(INITRD_MARKER) && result.exitCode === qemuExitStatus(INITRD_EXIT_VALUE);
        assert.ok(ok, `initrd marker / exit ${qemuExitStatus(INITRD_EXIT_VALUE)} expected\n${scenario.failureReport(result)}`);
        if (kind === 'uefi') assertEventForMac(scenario, result, 'tftp.done', 'ipxe.efi');
        assertEventForMac(scenario, result, 'http.done', 'vmlinuz');
        assertEventForMac(scenario, result, 'http.done', 'initrd.img');
      });
    });
  });
