// Lab: disk imaging end to end with real firmware and `bootbench serve` (full DHCP, the
// library's iPXE chain, no --boot flags). Jobs are made with the command line beside the
// running host, as a technician's script would.
//   1. Capture: a UEFI PC with a GPT reference disk (ESP whose EFI/BOOT/BOOTX64.EFI is the
//      UEFI marker, ext4 with files, NTFS with a Windows folder) and a BIOS PC with an MBR
//      reference disk (boot code = the BIOS marker, ext4) are captured at once.
//   2. Deploy: two UEFI and two BIOS PCs with blank disks get the images at once.
//   3. Each deployed disk boots on its own (no network): its marker runs and exits QEMU.
//   4. Tables, files, hostnames and the Windows ComputerName are checked on the disk files.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BootLab,
  OVMF_CODE,
  OVMF_VARS,
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
import { BIOS_EXIT_VALUE, UEFI_EXIT_VALUE, markerText, qemuExitStatus } from './marker-nbp.js';
import {
  FILES,
  MIB,
  useImagingGuestMemory,
  extract,
  gptReference,
  mbrReference,
  missingImagingTools,
  partitions,
  run,
  sha256,
  virtioDisk,
} from './imaging-disks.js';

const IMAGING = join(PROJECT_ROOT, 'resources', 'imaging');
const BOOT = join(PROJECT_ROOT, 'resources', 'boot');
const skip =
  labUnavailableReason({ kinds: ['bios', 'uefi'] }) ??
  (existsSync(join(IMAGING, 'initrd.img')) ? undefined : 'the imaging environment is not built: run `npm run build:imaging`') ??
  (existsSync(join(BOOT, 'ipxe', 'snponly.efi')) && existsSync(join(BOOT, 'ipxe', 'undionly.kpxe'))
    ? undefined
    : 'resources/boot is not built: run `npm run build:resources`') ??
  (missingImagingTools.length ? `missing: ${missingImagingTools.join(', ')} (apt-get install fdisk e2fsprogs dosfstools mtools ntfs-3g)` : undefined);

const TIMEOUT_MS = Number(process.env.BOOTBENCH_LAB_IMAGING_TIMEOUT_MS ?? 300_000);
useImagingGuestMemory();

/** Boots a disk with no network at all and returns QEMU's exit status and debug console. */
function bootDisk(dir: string, kind: 'bios' | 'uefi', disk: string): Promise<{ code: number | null; debugcon: string }> {
  const debugcon = join(dir, `${kind}-${Date.now()}.debugcon`);
  const args = [
    '-machine',
    'q35,accel=tcg',
    '-cpu',
    'qemu64',
    '-m',
    '256',
    '-nodefaults',
    '-display',
    'none',
    '-no-reboot',
    '-nic',
    'none',
    '-debugcon',
    `file:${debugcon}`,
    '-global',
    'isa-debugcon.iobase=0x402',
    '-device',
    'isa-debug-exit,iobase=0xf4,iosize=0x04',
    ...virtioDisk('d0', disk, 'BOOTCHECK'),
  ];
  if (kind === 'uefi') {
    const vars = join(dir, `vars-${Date.now()}.fd`);
    copyFileSync(OVMF_VARS, vars);
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`);
  } else {
    args.push('-boot', 'order=c');
  }
  return new Promise((resolve) => {
    const child = spawn('qemu-system-x86_64', args, { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, debugcon: existsSync(debugcon) ? readFileSync(debugcon, 'latin1') : '' });
    });
  });
}

interface Pc {
  kind: ClientKind;
  index: number;
  disk: string;
  name: string;
}

if (skip) test('disk imaging with real firmware: capture, deploy to four PCs, boot the deployed disks', { skip }, () => {});
else
  describe('disk imaging with real firmware: capture, deploy to four PCs, boot the deployed disks', () => {
    const lab = new BootLab('ig');
    const dataDir = join(lab.dir, 'data');
    let server: RunningServer;
    let gptRef = '';
    let mbrRef = '';
    const targets: Pc[] = [];

    function cli(...args: string[]): string {
      const { cmd, args: base } = bootbenchCommand();
      return execFileSync(cmd, [...base, ...args, '--data', dataDir], { cwd: PROJECT_ROOT }).toString();
    }
    /** `image status`, which exits 1 when a PC failed: its text either way. */
    function jobsText(): string {
      try {
        return cli('image', 'status');
      } catch (err) {
        return String((err as { stdout?: Buffer }).stdout ?? err);
      }
    }
    function runPcs(pcs: { kind: ClientKind; index: number; disk: string }[]): Promise<ClientResult[]> {
      return Promise.all(
        pcs.map((pc) => new QemuClient(lab, pc.kind, pc.index, virtioDisk(`d${pc.index}`, pc.disk, `BB-${pc.kind}-${pc.index}`)).run(TIMEOUT_MS)),
      );
    }
    function report(results: ClientResult[]): string {
      return (
        results
          .map(
            (r) =>
              `${r.kind} ${r.mac}: exit ${r.exitCode ?? r.signal} after ${(r.elapsedMs / 1000).toFixed(0)} s\n${r.serial.split('\n').slice(-15).join('\n')}`,
          )
          .join('\n---\n') + `\n--- jobs ---\n${jobsText()}\n${lab.processReport(20)}`
      );
    }

    before(async () => {
      mkdirSync(dataDir, { recursive: true });
      gptRef = gptReference(lab.dir);
      mbrRef = mbrReference(lab.dir);
      for (const [kind, index] of [
        ['uefi', 1],
        ['uefi', 2],
        ['bios', 1],
        ['bios', 2],
      ] as const) {
        const disk = join(lab.dir, `target-${kind}-${index}.img`);
        run('truncate', ['-s', kind === 'uefi' ? '64M' : '48M', disk]);
        targets.push({ kind, index, disk, name: `pc-${kind}-${index}` });
      }
      const csv = [
        'mac,uuid,name,group,entry',
        ...targets.map((t) => `${clientMac(t.kind, t.index)},,${t.name},${t.kind === 'uefi' ? 'row-u' : 'row-b'},`),
      ].join('\n');
      writeFileSync(join(lab.dir, 'machines.csv'), `${csv}\n`);
      cli('machines', 'import', join(lab.dir, 'machines.csv'));
      lab.startRouterAdvertiser();
      server = startPxeServer(lab, { dataDir, mode: 'dhcp', root: lab.makeRoot({}), boot: {}, pool: FULL_DHCP_POOL, httpPort: 8080 });
      await server.ready();
    });
    after(() => lab.destroy());

    test('a UEFI PC (GPT) and a BIOS PC (MBR) are captured at once, each chunk checked; the BIOS PC as "the next machine that boots"', async () => {
      cli('image', 'capture', '--machine', clientMac('uefi', 0), '--name', 'gpt-ref', '--then', 'poweroff');
      // The UEFI PC keeps its own job; the BIOS PC, which no job names, claims this one.
      cli('image', 'capture', '--next-machine', '--name', 'mbr-ref', '--then', 'poweroff');
      const results = await runPcs([
        { kind: 'uefi', index: 0, disk: gptRef },
        { kind: 'bios', index: 0, disk: mbrRef },
      ]);
      const images = JSON.parse(cli('image', 'list', '--json')) as {
        name: string;
        partitions: number;
        usedBytes: number;
        storedBytes: number;
        source: { mac: string };
      }[];
      assert.deepEqual(
        images.map((i) => [i.name, i.source.mac]),
        [
          ['gpt-ref', clientMac('uefi', 0)],
          ['mbr-ref', clientMac('bios', 0)],
        ],
        report(results),
      );
      assert.equal(images[0].partitions, 4, 'GPT image: boot area + ESP + ext4 + NTFS');
      assert.equal(images[1].partitions, 2, 'MBR image: boot area + ext4');
      // Each file system read by its own reader (used blocks only), none as a raw copy.
      const tools = (name: string) =>
        (JSON.parse(readFileSync(join(dataDir, 'images', 'catalog', `${name}.json`), 'utf8')) as { partitions: { tool: string }[] }).partitions.map(
          (p) => p.tool,
        );
      assert.deepEqual(tools('gpt-ref'), ['boot', 'fat', 'extfs', 'ntfs']);
      assert.deepEqual(tools('mbr-ref'), ['boot', 'extfs']);
      for (const r of results) assert.equal(r.exitCode, 0, `the PC should power off after its capture\n${report(results)}`);
      assert.match(cli('image', 'verify', 'gpt-ref'), /all \d+ chunks check out/);
    });

    test('four PCs deploy at once, each verified and named, then set to boot their own disk', async (t) => {
      cli('image', 'deploy', 'gpt-ref', '--group', 'row-u', '--then', 'disk');
      cli('image', 'deploy', 'mbr-ref', '--group', 'row-b', '--then', 'disk');
      const results = await runPcs(targets);
      for (const r of results)
        t.diagnostic(
          `${r.kind} ${r.mac}: ${(r.elapsedMs / 1000).toFixed(0)} s; ${r.serial
            .split('\n')
            .filter((l) => l.includes('bootbench-agent'))
            .join(' | ')}`,
        );
      const jobs = JSON.parse(cli('image', 'status', '--json')) as {
        kind: string;
        machines: { mac: string; phase: string; result?: string; reason?: string }[];
      }[];
      const deployed = jobs.filter((j) => j.kind === 'deploy').flatMap((j) => j.machines);
      assert.equal(deployed.length, 4);
      for (const m of deployed) assert.equal(m.result, 'done', `${m.mac}: ${m.phase} ${m.reason ?? ''}\n${report(results)}`);
      const machines = JSON.parse(cli('machines', 'list', '--json')) as { name: string; entryId: number | null }[];
      for (const t of targets) assert.ok(machines.find((m) => m.name === t.name)?.entryId, `${t.name} should be assigned its local disk after the deploy`);
    });

    test('each deployed disk boots by itself: the marker it carries runs', async () => {
      const boots = await Promise.all(targets.map((t) => bootDisk(lab.dir, t.kind === 'uefi' ? 'uefi' : 'bios', t.disk)));
      targets.forEach((t, i) => {
        const marker = t.kind === 'uefi' ? markerText('uefi64') : markerText('bios');
        const status = qemuExitStatus(t.kind === 'uefi' ? UEFI_EXIT_VALUE : BIOS_EXIT_VALUE);
        assert.ok(
          boots[i].debugcon.includes(marker) && boots[i].code === status,
          `${t.name}: marker "${marker}" / exit ${status} expected, got exit ${boots[i].code}`,
        );
      });
    });

    test('tables, files, hostnames and the Windows ComputerName are on the deployed disks', () => {
      for (const t of targets) {
        const ref = t.kind === 'uefi' ? gptRef : mbrRef;
        assert.deepEqual(partitions(t.disk), partitions(ref), `${t.name}: partition table`);
        const root = partitions(t.disk)[t.kind === 'uefi' ? 1 : 0];
        const rootFile = extract(t.disk, root, join(lab.dir, `${t.name}-root.img`));
        for (const [name, hash] of FILES) {
          const data = execFileSync('debugfs', ['-R', `cat /${name}`, rootFile], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 16 * MIB });
          assert.equal(sha256(data), hash, `${t.name}: ${name}`);
        }
        const hostname = execFileSync('debugfs', ['-R', 'cat /etc/hostname', rootFile], { stdio: ['ignore', 'pipe', 'ignore'] })
          .toString()
          .trim();
        assert.equal(hostname, t.name, `${t.name}: /etc/hostname`);
        if (t.kind === 'uefi') {
          const windows = extract(t.disk, partitions(t.disk)[2], join(lab.dir, `${t.name}-windows.img`));
          const unattend = execFileSync('ntfscat', [windows, 'Windows/Panther/unattend.xml']).toString();
          assert.match(unattend, new RegExp(`<ComputerName>${t.name}</ComputerName>`));
        }
      }
    });
  });
