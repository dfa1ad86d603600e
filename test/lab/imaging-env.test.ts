// Lab: the imaging environment (Debian's signed kernel + Bootbench's initramfs, built by
// scripts/build-imaging-env.mjs) boots through the iPXE chain on BIOS and UEFI, takes an
// address, loads the disk drivers and lists the disks with the transport the agent judges
// them by; and through shim -> signed GRUB with Secure Boot on, where the kernel must run in
// lockdown. `bootbench.selftest=1` makes /init print what it found and power off.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { IPXE_EFI, PROJECT_ROOT, SERVER_ADDRESS, bootbenchCommand, clientMac, clientUuid, labUnavailableReason, type ClientKind } from './boot-lab.js';
import { Scenario, assertEventForMac, describeTime, scenarioSkipReason } from './scenario.js';

const IMAGING = join(PROJECT_ROOT, 'resources', 'imaging');
const KERNEL = join(IMAGING, 'vmlinuz');
const INITRD = join(IMAGING, 'initrd.img');
const READY = /BOOTBENCH-IMAGING-ENV-OK kernel=(\S+) lockdown=(\S+) secureboot=(\S+) network=(\S+ \S+|none)/;
const notBuilt =
  existsSync(KERNEL) && existsSync(INITRD)
    ? undefined
    : 'the imaging environment is not built: run `npm run build:imaging` (needs busybox-static, partclone, zstd, udpcast, ntfs-3g, gdisk, fdisk, kmod, cpio and a linux-image-amd64 package)';

const HTTP_PORT = 8080;
const SELFTEST_ARGS = 'console=ttyS0 quiet panic=-1 bootbench.selftest=1';
const clients: ClientKind[] = ['bios', 'uefi'];
const chainSkip =
  notBuilt ?? scenarioSkipReason({ clients, office: true, needsBootbench: true }) ?? labUnavailableReason({ kinds: clients, files: [IPXE_EFI] });

function disk(labDir: string, name: string, mib: number): string {
  const path = join(labDir, name);
  execFileSync('truncate', ['-s', `${mib}M`, path]);
  return path;
}

/** The disks each lab PC has: what the agent must see, by transport. */
const DISKS: { index: number; args: (dir: string) => string[]; expect: { name: string; transport: string; size: number; serial?: string }[] }[] = [
  {
    index: 0, // BIOS: an internal virtio disk and a USB stick
    args: (dir) => [
      '-drive',
      `if=none,id=d0,format=raw,file=${disk(dir, 'bios-virtio.img', 24)}`,
      '-device',
      'virtio-blk-pci,drive=d0,serial=BB-VIRTIO-0',
      '-device',
      'qemu-xhci',
      '-drive',
      `if=none,id=u0,format=raw,file=${disk(dir, 'bios-usb.img', 16)}`,
      '-device',
      'usb-storage,drive=u0',
    ],
    expect: [
      { name: 'vda', transport: 'virtio', size: 24 << 20, serial: 'BB-VIRTIO-0' },
      { name: 'sda', transport: 'usb', size: 16 << 20 },
    ],
  },
  {
    index: 1, // UEFI: an NVMe disk
    args: (dir) => ['-drive', `if=none,id=n1,format=raw,file=${disk(dir, 'uefi-nvme.img', 32)}`, '-device', 'nvme,drive=n1,serial=BB-NVME-1'],
    expect: [{ name: 'nvme0n1', transport: 'nvme', size: 32 << 20, serial: 'BB-NVME-1' }],
  },
];

const SHIM = '/usr/lib/shim/shimx64.efi.signed';
const GRUB_NET = '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed';
const secureClients: ClientKind[] = ['uefi-secure'];
const secureSkip =
  notBuilt ??
  scenarioSkipReason({ clients: secureClients, office: false, needsBootbench: true }) ??
  labUnavailableReason({ kinds: secureClients, files: [SHIM, GRUB_NET] });

async function prepareSecureBootEntry(dataDir: string): Promise<void> {
  mkdirSync(join(dataDir, 'boot', 'secure-boot'), { recursive: true });
  copyFileSync(SHIM, join(dataDir, 'boot', 'secure-boot', 'shimx64.efi'));
  copyFileSync(GRUB_NET, join(dataDir, 'boot', 'secure-boot', 'grubx64.efi'));
  const { cmd, args } = bootbenchCommand();
  const out = execFileSync(cmd, [...args, 'entries', 'import', '--secure-boot', KERNEL, INITRD, '--name', 'imaging', '--data', dataDir, '--json'], {
    cwd: PROJECT_ROOT,
  }).toString();
  const entry = (JSON.parse(out) as { imported: { id: number; kind: string }[] }).imported.find((e) => e.kind === 'secure-boot-chain');
  assert.ok(entry, `entries import --secure-boot made no secure-boot-chain entry: ${out}`);
  const { openStore } = await import('../../main/store/index.js');
  const store = openStore(dataDir);
  try {
    store.entries.update(entry.id, { arguments: SELFTEST_ARGS });
    store.machines.create({ macs: [clientMac('uefi-secure', 0)], uuid: clientUuid('uefi-secure', 0), name: 'lab-secure', entryId: entry.id });
  } finally {
    store.close();
  }
}

// The two labs run at once: three PCs on the two cores instead of two and then one, which
// would leave a core idle for the Secure Boot PC's half minute.
describe('imaging environment', { concurrency: true }, () => {
  const chainName = 'imaging environment through the iPXE chain (BIOS, UEFI): network, drivers, disks';
  if (chainSkip) test(chainName, { skip: chainSkip }, () => {});
  else
    describe(chainName, () => {
      const script = `#!ipxe
  kernel http://${SERVER_ADDRESS}:${HTTP_PORT}/vmlinuz initrd=initrd.img ${SELFTEST_ARGS}
  initrd http://${SERVER_ADDRESS}:${HTTP_PORT}/initrd.img
  boot
  `;
      const scenario = new Scenario({
        name: 'imaging environment',
        mode: 'proxy',
        office: true,
        clients,
        rootFiles: { 'ipxe.efi': IPXE_EFI, vmlinuz: KERNEL, 'initrd.img': INITRD },
        boot: { bios: 'marker.0', uefi64: 'ipxe.efi' },
        ipxeScript: script,
        httpPort: HTTP_PORT,
        needsBootbench: true,
        clientDisks: (index, dir) => DISKS.find((d) => d.index === index)?.args(dir) ?? [],
      });
      before(() => scenario.start());
      after(() => scenario.stop());

      clients.forEach((kind, index) => {
        test(`${kind} client boots the environment, gets an address and sees its disks by transport`, async (t) => {
          const result = await scenario.result(index);
          t.diagnostic(describeTime(result, 'the environment reported and powered off', scenario));
          const ready = READY.exec(result.serial);
          assert.ok(ready, `no BOOTBENCH-IMAGING-ENV-OK on the serial console\n${scenario.failureReport(result)}`);
          assert.match(ready[4], /^\S+ 192\.0\.2\.\d+$/, `the environment took no address in the lab's network: ${ready[4]}`);
          const filesystems = /filesystems: (.*)/.exec(result.serial)?.[1]?.trim().split(/\s+/) ?? [];
          for (const fs of ['ext4', 'xfs', 'btrfs', 'vfat', 'fuseblk'])
            assert.ok(filesystems.includes(fs), `the kernel cannot mount ${fs} in the environment (has: ${filesystems.join(' ')})`);
          for (const want of DISKS[index].expect) {
            const line = result.serial.split('\n').find((l) => l.startsWith(`disk name=${want.name} `));
            assert.ok(line, `disk ${want.name} not listed\n${scenario.failureReport(result)}`);
            assert.match(line, new RegExp(` size=${want.size} transport=${want.transport} `), `disk ${want.name}: ${line}`);
            if (want.serial) assert.match(line, new RegExp(` serial=${want.serial}\\b`), `disk ${want.name}: ${line}`);
          }
          assert.equal(result.exitCode, 0, `the environment did not power off cleanly\n${scenario.failureReport(result)}`);
          assertEventForMac(scenario, result, 'http.done', 'initrd.img');
        });
      });
    });

  const secureName = 'imaging environment through shim and signed GRUB with Secure Boot on';
  if (secureSkip) test(secureName, { skip: secureSkip }, () => {});
  else
    describe(secureName, () => {
      const scenario = new Scenario({
        name: 'imaging environment (Secure Boot)',
        mode: 'dhcp',
        office: false,
        clients: secureClients,
        boot: { uefi64: 'marker.efi' },
        needsBootbench: true,
        prepareData: prepareSecureBootEntry,
      });
      before(() => scenario.start());
      after(() => scenario.stop());

      test('the signed kernel runs our initramfs in lockdown, with no key of ours', async (t) => {
        const result = await scenario.result(0);
        t.diagnostic(describeTime(result, 'the environment reported and powered off', scenario));
        const ready = READY.exec(result.serial);
        assert.ok(ready, `no BOOTBENCH-IMAGING-ENV-OK on the serial console: the chain did not reach our /init\n${scenario.failureReport(result)}`);
        assert.equal(ready[3], '1', `the firmware's SecureBoot variable should read 1, read ${ready[3]}`);
        assert.match(ready[2], /^(integrity|confidentiality)$/, `the kernel should be in lockdown under Secure Boot, lockdown=${ready[2]}`);
        assert.equal(result.exitCode, 0, `the environment did not power off cleanly\n${scenario.failureReport(result)}`);
        assertEventForMac(scenario, result, 'tftp.done', 'shimx64.efi');
        assertEventForMac(scenario, result, 'tftp.done', 'grubx64.efi');
      });
    });
});
