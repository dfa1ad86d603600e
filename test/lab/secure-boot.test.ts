// Issue 7, lab: UEFI clients with Secure Boot enforced (OVMF with Microsoft's keys
// enrolled) reach GRUB through the signed chain: shim (signed by Microsoft) by TFTP,
// then Debian's signed netboot GRUB, then grub.cfg. Full-DHCP mode: in proxy mode GRUB
// 2.06 takes its TFTP server from the office server's ACK (see PXE-NOTES).
//
// 1. A chain the user put in --root themselves, with their own grub.cfg. It tries to
//    chainload the unsigned marker NBP, which shim's verifier must refuse: proof that
//    Secure Boot was really on.
// 2. The library's "Secure Boot chain" entry (`entries import --secure-boot`): Debian's
//    signed kernel + the marker initrd, through the generated per-machine grub.cfg. The
//    kernel runs in lockdown, so the initrd cannot reach the debug console ports: its
//    marker must appear on the serial log only, and QEMU powers off (exit 0).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT, bootbenchCommand, clientMac, clientUuid, labUnavailableReason, type ClientKind } from './boot-lab.js';
import { Scenario, assertEventForMac, describeTime, scenarioSkipReason } from './scenario.js';
import { markerText } from './marker-nbp.js';
import { INITRD_MARKER, findLinuxKernel, markerInitrd } from './marker-initrd.js';

const SHIM = '/usr/lib/shim/shimx64.efi.signed';
const GRUB_NET = '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed';
const clients: ClientKind[] = ['uefi-secure'];
const chainSkip = scenarioSkipReason({ clients, office: false }) ?? labUnavailableReason({ kinds: clients, files: [SHIM, GRUB_NET] });

// The signed netboot GRUB's built-in prefix is /grub, so it asks for /grub/grub.cfg.
const grubCfg = `echo BOOTBENCH-GRUB-OK
chainloader /marker.efi
boot
echo BOOTBENCH-UNSIGNED-REFUSED
halt
`;

// The two labs (one PC each) run at once, one PC per core.
describe('Secure Boot chain', { concurrency: true }, () => {
  const rootChainName = 'Secure Boot chain from --root: shim, signed GRUB, own grub.cfg';
  if (chainSkip) test(rootChainName, { skip: chainSkip }, () => {});
  else
    describe(rootChainName, () => {
      const scenario = new Scenario({
        name: 'Secure Boot chain (root)',
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
        if (!result.serial.includes('BOOTBENCH-GRUB-OK')) {
          const generated = /Local disk/.test(result.serial)
            ? ": GRUB showed bootbench's generated menu instead (the library's /grub/grub.cfg shadows the file in --root)"
            : '';
          problems.push(`the grub.cfg from --root did not run (no BOOTBENCH-GRUB-OK on the serial console)${generated}`);
        }
        if (!/bad shim signature|prohibited by secure boot policy/.test(result.serial))
          problems.push('GRUB did not refuse the unsigned marker.efi: is Secure Boot on?');
        if (result.debugcon.includes(markerText('uefi64'))) problems.push('the unsigned marker NBP ran: Secure Boot is not enforced');
        if (!result.serial.includes('BOOTBENCH-UNSIGNED-REFUSED') || result.exitCode !== 0)
          problems.push(`GRUB did not reach "halt" (QEMU exit ${result.exitCode ?? result.signal})`);
        assert.equal(problems.length, 0, `${problems.join('\n')}\n${scenario.failureReport(result)}`);
        assertEventForMac(scenario, result, 'tftp.done', 'shimx64.efi');
        assertEventForMac(scenario, result, 'tftp.done', 'grubx64.efi');
        assertEventForMac(scenario, result, 'tftp.done', 'grub/grub.cfg');
      });
    });

  const kernel = findLinuxKernel(existsSync, (p) => readdirSync(p));
  const entrySkip =
    chainSkip ??
    scenarioSkipReason({ clients, office: false, needsBootbench: true }) ??
    (kernel ? undefined : 'no Linux kernel: install linux-image-amd64 or set BOOTBENCH_LAB_KERNEL=/path/to/vmlinuz');

  async function prepareSecureBootEntry(dataDir: string): Promise<void> {
    // The user's own copies of the signed binaries (<data>/boot/...), so no build step is needed.
    mkdirSync(join(dataDir, 'boot', 'secure-boot'), { recursive: true });
    copyFileSync(SHIM, join(dataDir, 'boot', 'secure-boot', 'shimx64.efi'));
    copyFileSync(GRUB_NET, join(dataDir, 'boot', 'secure-boot', 'grubx64.efi'));
    const initrd = join(dataDir, '..', 'initrd.img');
    writeFileSync(initrd, markerInitrd());
    const { cmd, args } = bootbenchCommand();
    const out = execFileSync(cmd, [...args, 'entries', 'import', '--secure-boot', kernel!, initrd, '--data', dataDir, '--json'], {
      cwd: PROJECT_ROOT,
    }).toString();
    const entry = (JSON.parse(out) as { imported: { id: number; kind: string }[] }).imported.find((e) => e.kind === 'secure-boot-chain');
    assert.ok(entry, `entries import --secure-boot made no secure-boot-chain entry: ${out}`);
    const { openStore } = await import('../../main/store/index.js');
    const store = openStore(dataDir);
    try {
      store.machines.create({ macs: [clientMac('uefi-secure', 0)], uuid: clientUuid('uefi-secure', 0), name: 'lab-secure', entryId: entry.id });
    } finally {
      store.close();
    }
  }

  const entryName = 'library Secure Boot chain entry: signed kernel + initrd through the generated grub.cfg';
  if (entrySkip) test(entryName, { skip: entrySkip }, () => {});
  else
    describe(entryName, () => {
      const scenario = new Scenario({
        name: 'Secure Boot chain (library entry)',
        mode: 'dhcp',
        office: false,
        clients,
        boot: { uefi64: 'marker.efi' },
        needsBootbench: true,
        prepareData: prepareSecureBootEntry,
      });
      before(() => scenario.start());
      after(() => scenario.stop());

      test('the signed kernel boots in lockdown and its initrd prints the marker on the serial log', async (t) => {
        const result = await scenario.result(0);
        t.diagnostic(describeTime(result, 'the initrd marker (then power off)', scenario));
        const problems: string[] = [];
        if (!result.serial.includes(INITRD_MARKER)) problems.push('no initrd marker on the serial log: the chain did not reach the kernel');
        if (result.debugcon.includes(INITRD_MARKER)) problems.push('the initrd reached the debug console ports: the kernel was not in Secure Boot lockdown');
        if (result.exitCode !== 0) problems.push(`QEMU did not power off cleanly (exit ${result.exitCode ?? result.signal})`);
        assert.equal(problems.length, 0, `${problems.join('\n')}\n${scenario.failureReport(result)}`);
        assertEventForMac(scenario, result, 'tftp.done', 'shimx64.efi');
        assertEventForMac(scenario, result, 'tftp.done', 'grubx64.efi');
        assertEventForMac(scenario, result, 'tftp.done', 'grub/grub.cfg');
        assertEventForMac(scenario, result, 'tftp.done', 'initrd.img');
      });
    });
});
