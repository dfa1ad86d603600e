// Lab: deploys that must stop before writing anything, with real firmware and the imaging
// environment's own view of the hardware: a PC with two internal disks and no selector, a
// PC whose only disk is a USB stick, a PC whose disk is smaller than the image needs. Each
// job row must end failed with a reason naming the disks seen, and each disk file must be
// byte for byte what it was.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BootLab,
  PROJECT_ROOT,
  QemuClient,
  bootbenchCommand,
  clientMac,
  labUnavailableReason,
  startPxeServer,
  type ClientKind,
  type RunningServer,
} from './boot-lab.js';
import { FULL_DHCP_POOL } from './scenario.js';
import { waitFor } from '../helpers/netns.js';
import { MIB, sha256, useImagingGuestMemory } from './imaging-disks.js';
import { ImageCatalog } from '../../main/imaging/index.js';

const IMAGING = join(PROJECT_ROOT, 'resources', 'imaging');
const BOOT = join(PROJECT_ROOT, 'resources', 'boot');
const skip =
  labUnavailableReason({ kinds: ['bios', 'uefi'], programs: ['zstd'] }) ??
  (existsSync(join(IMAGING, 'initrd.img')) ? undefined : 'the imaging environment is not built: run `npm run build:imaging`') ??
  (existsSync(join(BOOT, 'ipxe', 'snponly.efi')) ? undefined : 'resources/boot is not built: run `npm run build:resources`');

useImagingGuestMemory();

/** An image of one raw 32 MiB partition: it needs a disk of about 33 MiB. */
async function addImage(dataDir: string, dir: string): Promise<void> {
  const raw = join(dir, 'raw-partition.bin');
  writeFileSync(raw, Buffer.alloc(4 * MIB, 0x5a));
  execFileSync('zstd', ['-q', '-f', '-3', raw, '-o', `${raw}.zst`]);
  const chunk = readFileSync(`${raw}.zst`);
  const catalog = new ImageCatalog(dataDir);
  async function* body() {
    yield chunk;
  }
  await catalog.chunks.put(sha256(chunk), body());
  catalog.add({
    format: 1,
    name: 'big',
    createdAt: Date.now(),
    source: { mac: '52:54:00:00:00:99', disk: 'vda' },
    diskBytes: 40 * MIB,
    table: 'label: gpt\nstart=2048, size=65536, type=0FC63DAF-8483-4772-8E79-3D69C47D8E4D\n',
    label: 'gpt',
    partitions: [
      { number: 1, start: 2048, sectors: 65536, fs: '', tool: 'dd', streamBytes: 4 * MIB, streamSha256: sha256(readFileSync(raw)), chunks: [sha256(chunk)] },
    ],
  });
}

interface Pc {
  kind: ClientKind;
  index: number;
  disks: { file: string; usb?: boolean }[];
  reason: RegExp;
}

if (skip) test('imaging refusals with real firmware: two disks, USB only, too small', { skip }, () => {});
else
  describe('imaging refusals with real firmware: two disks, USB only, too small', () => {
    const lab = new BootLab('ir');
    const dataDir = join(lab.dir, 'data');
    let server: RunningServer;
    const disk = (name: string, mib: number): string => {
      const file = join(lab.dir, name);
      const pattern = Buffer.alloc(mib * MIB);
      for (let i = 0; i < pattern.length; i += 512) pattern.write(`${name} sector ${i / 512}\n`, i);
      writeFileSync(file, pattern);
      return file;
    };
    const pcs: Pc[] = [];
    const before_: Map<string, string> = new Map();

    function cli(...args: string[]): string {
      const { cmd, args: base } = bootbenchCommand();
      try {
        return execFileSync(cmd, [...base, ...args, '--data', dataDir], { cwd: PROJECT_ROOT }).toString();
      } catch (err) {
        return String((err as { stdout?: Buffer }).stdout ?? '');
      }
    }

    before(async () => {
      mkdirSync(dataDir, { recursive: true });
      await addImage(dataDir, lab.dir);
      pcs.push(
        {
          kind: 'uefi',
          index: 0,
          disks: [{ file: disk('two-a.img', 48) }, { file: disk('two-b.img', 48) }],
          reason: /2 internal disks and the task names none.*disks seen: name=vda .*name=vdb /,
        },
        {
          kind: 'bios',
          index: 0,
          disks: [{ file: disk('usb-only.img', 48), usb: true }],
          reason: /no internal disk to use \(USB and removable disks are never written\); disks seen: name=sda .*transport=usb/,
        },
        { kind: 'bios', index: 1, disks: [{ file: disk('small.img', 16) }], reason: /disk vda has 16777216 bytes, the image needs \d+: use a larger disk/ },
      );
      for (const pc of pcs) for (const d of pc.disks) before_.set(d.file, sha256(readFileSync(d.file)));
      lab.startRouterAdvertiser();
      server = startPxeServer(lab, { dataDir, mode: 'dhcp', root: lab.makeRoot({}), boot: {}, pool: FULL_DHCP_POOL, httpPort: 8080 });
      await server.ready();
    });
    after(() => lab.destroy());

    test('each PC stops before writing, says which disks it saw, and its disks are unchanged', async () => {
      for (const pc of pcs) cli('image', 'deploy', 'big', '--machine', clientMac(pc.kind, pc.index));
      const clients = pcs.map((pc) => {
        const args = pc.disks.flatMap((d, i) => {
          const id = `d${i}`;
          const drive = ['-drive', `if=none,id=${id},format=raw,file=${d.file}`];
          return d.usb
            ? [...drive, '-device', 'qemu-xhci', '-device', `usb-storage,drive=${id}`]
            : [...drive, '-device', `virtio-blk-pci,drive=${id},serial=RF-${pc.index}-${i}`];
        });
        return new QemuClient(lab, pc.kind, pc.index, args);
      });
      // A failed agent leaves the PC at its console (for the technician): stop each PC once its row says failed.
      // The host's progress events say when each PC ended (done or failed); polling the
      // command line instead would start a process every few seconds beside the PCs' CPUs.
      const runs = clients.map((c) => c.run(240_000));
      const ended = (mac: string) => server.events.some((e) => e.type === 'imaging.progress' && e.mac === mac && (e.phase === 'done' || e.phase === 'failed'));
      await waitFor(() => pcs.every((pc) => ended(clientMac(pc.kind, pc.index))), 240_000, 'every PC to end its deploy').catch(() => undefined);
      let rows: { mac: string; result?: string; reason?: string; phase: string }[] = [];
      for (let tries = 0; tries < 5; tries++) {
        rows = (JSON.parse(cli('image', 'status', '--json') || '[]') as { machines: typeof rows }[]).flatMap((j) => j.machines);
        if (rows.length === pcs.length && rows.every((r) => r.result)) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      for (const c of clients) c.stop();
      const results = await Promise.all(runs);
      pcs.forEach((pc, i) => {
        const row = rows.find((r) => r.mac === clientMac(pc.kind, pc.index));
        const serial = results[i].serial.split('\n').slice(-12).join('\n');
        assert.equal(row?.result, 'failed', `${pc.kind}-${pc.index}: ${JSON.stringify(row)}\n${serial}`);
        assert.match(row?.reason ?? '', pc.reason, serial);
        for (const d of pc.disks) assert.equal(sha256(readFileSync(d.file)), before_.get(d.file), `${d.file} was written`);
      });
    });
  });
