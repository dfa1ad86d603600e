// Lab: imaging with Secure Boot on, end to end with `bootbench serve` (full DHCP, no --boot
// flags, jobs made by the command line). A UEFI x64 PC with an imaging task is handed shim,
// and the signed GRUB's per-machine grub.cfg boots the imaging environment (Debian's signed
// kernel; the initramfs is not verified, so no key of ours is needed).
//   1. A plain UEFI PC (Secure Boot off) captures the GPT reference disk through that chain:
//      the chain boots with Secure Boot off as well.
//   2. A PC with Secure Boot enforced (OVMF with Microsoft's keys) deploys it to its blank
//      disk: the environment reports lockdown, the job ends done (verified), and the table,
//      files and hostname are on the disk.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BootLab,
  PROJECT_ROOT,
  QemuClient,
  bootbenchCommand,
  clientMac,
  labUnavailableReason,
  type ClientKind,
  type ClientResult,
  type RunningServer,
  startPxeServer,
} from './boot-lab.js';
import { FULL_DHCP_POOL } from './scenario.js';
import { FILES, MIB, useImagingGuestMemory, extract, gptReference, missingImagingTools, partitions, run, sha256, virtioDisk } from './imaging-disks.js';

const IMAGING = join(PROJECT_ROOT, 'resources', 'imaging');
const SIGNED = join(PROJECT_ROOT, 'resources', 'boot', 'secure-boot');
const skip =
  labUnavailableReason({ kinds: ['uefi', 'uefi-secure'] }) ??
  (existsSync(join(IMAGING, 'initrd.img')) ? undefined : 'the imaging environment is not built: run `npm run build:imaging`') ??
  (existsSync(join(SIGNED, 'shimx64.efi')) && existsSync(join(SIGNED, 'grubx64.efi'))
    ? undefined
    : 'shim and the signed GRUB are not in resources/boot: run `npm run build:resources` (needs shim-signed, grub-efi-amd64-signed)') ??
  (missingImagingTools.length ? `missing: ${missingImagingTools.join(', ')} (apt-get install fdisk e2fsprogs dosfstools mtools ntfs-3g)` : undefined);

const TIMEOUT_MS = Number(process.env.BOOTBENCH_LAB_IMAGING_TIMEOUT_MS ?? 300_000);
useImagingGuestMemory();
/** What /init says on every start. */
const KERNEL_LINE = /bootbench-imaging: kernel (\S+), lockdown (\S+), secureboot (\S+), network/;

const name = 'disk imaging with Secure Boot on: shim, signed GRUB, the signed kernel in lockdown';
if (skip) test(name, { skip }, () => {});
else
  describe(name, () => {
    const lab = new BootLab('is');
    const dataDir = join(lab.dir, 'data');
    let server: RunningServer;
    let reference = '';
    let target = '';

    function cli(...args: string[]): string {
      const { cmd, args: base } = bootbenchCommand();
      return execFileSync(cmd, [...base, ...args, '--data', dataDir], { cwd: PROJECT_ROOT }).toString();
    }
    function jobs(): { kind: string; image: string; machines: { mac: string; phase: string; result?: string; reason?: string }[] }[] {
      try {
        return JSON.parse(cli('image', 'status', '--json'));
      } catch (err) {
        return JSON.parse(String((err as { stdout?: Buffer }).stdout ?? '[]'));
      }
    }
    function report(r: ClientResult): string {
      return (
        `${r.kind} ${r.mac}: exit ${r.exitCode ?? r.signal} after ${(r.elapsedMs / 1000).toFixed(0)} s\n${r.serial.split('\n').slice(-25).join('\n')}` +
        `\n--- jobs ---\n${JSON.stringify(jobs(), null, 1)}\n${lab.processReport(20)}`
      );
    }
    function fetchedBy(mac: string, file: string): boolean {
      return server.events.some((e) => e.type === 'tftp.done' && e.mac === mac && String(e.file).endsWith(file));
    }
    function boot(kind: ClientKind, disk: string): Promise<ClientResult> {
      return new QemuClient(lab, kind, 0, virtioDisk('d0', disk, `BB-${kind}`)).run(TIMEOUT_MS);
    }

    before(async () => {
      mkdirSync(dataDir, { recursive: true });
      reference = gptReference(lab.dir);
      target = join(lab.dir, 'target-secure.img');
      run('truncate', ['-s', '64M', target]);
      writeFileSync(join(lab.dir, 'machines.csv'), `mac,uuid,name,group,entry\n${clientMac('uefi-secure', 0)},,pc-secure,,\n`);
      cli('machines', 'import', join(lab.dir, 'machines.csv'));
      lab.startRouterAdvertiser();
      server = startPxeServer(lab, { dataDir, mode: 'dhcp', root: lab.makeRoot({}), boot: {}, pool: FULL_DHCP_POOL, httpPort: 8080 });
      await server.ready();
    });
    after(() => lab.destroy());

    test('a UEFI PC with Secure Boot off is captured through shim and signed GRUB', async (t) => {
      cli('image', 'capture', '--machine', clientMac('uefi', 0), '--name', 'ref', '--then', 'poweroff');
      const result = await boot('uefi', reference);
      t.diagnostic(`captured in ${(result.elapsedMs / 1000).toFixed(0)} s from power-on`);
      const capture = jobs().find((j) => j.kind === 'capture')!.machines[0];
      assert.equal(capture.result, 'done', `${capture.phase} ${capture.reason ?? ''}\n${report(result)}`);
      assert.ok(fetchedBy(result.mac, 'shimx64.efi') && fetchedBy(result.mac, 'grubx64.efi'), `the PC was not handed shim and GRUB\n${report(result)}`);
      assert.ok(fetchedBy(result.mac, 'initrd.img'), `GRUB did not fetch the environment's initramfs by TFTP\n${report(result)}`);
      const line = KERNEL_LINE.exec(result.serial);
      assert.ok(line, `no "bootbench-imaging: kernel" line on the serial console\n${report(result)}`);
      assert.equal(line[2], 'none', 'with Secure Boot off the kernel is not locked down');
      assert.equal(result.exitCode, 0, `the PC should power off after its capture\n${report(result)}`);
    });

    test('a PC with Secure Boot enforced deploys the image in lockdown, verified and named', async (t) => {
      cli('image', 'deploy', 'ref', '--machine', clientMac('uefi-secure', 0), '--then', 'poweroff');
      const result = await boot('uefi-secure', target);
      t.diagnostic(
        `deployed in ${(result.elapsedMs / 1000).toFixed(0)} s from power-on; ${result.serial
          .split('\n')
          .filter((l) => l.includes('bootbench-'))
          .join(' | ')}`,
      );
      const line = KERNEL_LINE.exec(result.serial);
      assert.ok(line, `no "bootbench-imaging: kernel" line: the signed chain did not reach our /init\n${report(result)}`);
      assert.equal(line[3], '1', `the firmware's SecureBoot variable should read 1, read ${line[3]}`);
      assert.match(line[2], /^(integrity|confidentiality)$/, `the kernel should run in lockdown under Secure Boot, lockdown=${line[2]}`);
      assert.ok(
        fetchedBy(result.mac, 'shimx64.efi') && fetchedBy(result.mac, 'grub/grub.cfg'),
        `the PC was not handed shim and its grub.cfg\n${report(result)}`,
      );
      const deploy = jobs().find((j) => j.kind === 'deploy')!.machines[0];
      assert.equal(deploy.result, 'done', `${deploy.phase} ${deploy.reason ?? ''}\n${report(result)}`);
      assert.equal(result.exitCode, 0, `the PC should power off after its deploy\n${report(result)}`);

      assert.deepEqual(partitions(target), partitions(reference), 'partition table');
      const root = extract(target, partitions(target)[1], join(lab.dir, 'secure-root.img'));
      for (const [file, hash] of FILES) {
        const data = execFileSync('debugfs', ['-R', `cat /${file}`, root], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 16 * MIB });
        assert.equal(sha256(data), hash, file);
      }
      const hostname = execFileSync('debugfs', ['-R', 'cat /etc/hostname', root], { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim();
      assert.equal(hostname, 'pc-secure', '/etc/hostname');
    });
  });
