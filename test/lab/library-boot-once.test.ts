// Issue 7, lab: library entries and "boot once, then local disk", end to end.
// A kernel+initrd entry is imported with `bootbench entries import` and assigned in the
// store to two machines: the EDK2 client (boot once) and the iPXE BIOS client. The EDK2
// client chainloads iPXE (the library's snponly.efi by TFTP), gets its per-machine
// script over HTTP, boots the kernel and the marker initrd. Its boot-once assignment must
// then be used up: booted again, the same machine gets no boot answer (local disk), so
// its firmware gives up on network boot and nothing of ours runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  IPXE_EFI,
  IPXE_UNDIONLY,
  PROJECT_ROOT,
  QemuClient,
  bootbenchCommand,
  clientMac,
  clientUuid,
  labUnavailableReason,
  type ClientKind,
} from './boot-lab.js';
import { Scenario, assertEventForMac, describeTime, scenarioSkipReason } from './scenario.js';
import { waitFor } from '../helpers/netns.js';
import { INITRD_EXIT_VALUE, INITRD_MARKER, findLinuxKernel, markerInitrd } from './marker-initrd.js';
import { qemuExitStatus } from './marker-nbp.js';
import { diagnoseBoot } from '../../main/api/boot-diagnosis.js';
import type { BootEvent } from '../../main/core/events.js';

const IPXE_SNPONLY = '/usr/lib/ipxe/snponly.efi';
const clients: ClientKind[] = ['uefi', 'bios'];
const kernel = findLinuxKernel(existsSync, (p) => readdirSync(p));
const skip =
  scenarioSkipReason({ clients, office: true, needsBootbench: true }) ??
  labUnavailableReason({ kinds: clients, files: [IPXE_SNPONLY, IPXE_EFI, IPXE_UNDIONLY] }) ??
  (kernel ? undefined : 'no Linux kernel: install linux-image-amd64 or set BOOTBENCH_LAB_KERNEL=/path/to/vmlinuz');

async function prepareLibrary(dataDir: string): Promise<void> {
  // The user's own iPXE copies (<data>/boot/ipxe/...) so the test needs no build step.
  mkdirSync(join(dataDir, 'boot', 'ipxe'), { recursive: true });
  copyFileSync(IPXE_SNPONLY, join(dataDir, 'boot', 'ipxe', 'snponly.efi'));
  copyFileSync(IPXE_EFI, join(dataDir, 'boot', 'ipxe', 'ipxe.efi'));
  copyFileSync(IPXE_UNDIONLY, join(dataDir, 'boot', 'ipxe', 'undionly.kpxe'));
  const initrd = join(dataDir, '..', 'initrd.img');
  writeFileSync(initrd, markerInitrd());
  const { cmd, args } = bootbenchCommand();
  const out = execFileSync(cmd, [...args, 'entries', 'import', kernel!, initrd, '--data', dataDir, '--json'], { cwd: PROJECT_ROOT }).toString();
  const imported = (JSON.parse(out) as { imported: { id: number; kind: string }[] }).imported;
  const entry = imported.find((e) => e.kind === 'kernel');
  assert.ok(entry, `entries import made no kernel entry: ${out}`);
  // No command assigns machines yet: write the assignments through the store itself.
  const { openStore } = await import('../../main/store/index.js');
  const store = openStore(dataDir);
  try {
    store.machines.create({ macs: [clientMac('uefi', 0)], uuid: clientUuid('uefi', 0), name: 'lab-uefi', entryId: entry.id, bootOnce: true });
    store.machines.create({ macs: [clientMac('bios', 1)], uuid: clientUuid('bios', 1), name: 'lab-bios', entryId: entry.id, bootOnce: false });
  } finally {
    store.close();
  }
}

if (skip) test('library kernel entry and boot once', { skip }, () => {});
else
  describe('library kernel entry and boot once', () => {
    const scenario = new Scenario({
      name: 'library boot once',
      mode: 'proxy',
      office: true,
      clients,
      boot: { bios: 'bootbench/undionly.kpxe', uefi64: 'bootbench/snponly.efi' },
      needsBootbench: true,
      prepareData: prepareLibrary,
    });
    before(() => scenario.start());
    after(() => scenario.stop());

    const ranInitrd = (r: { debugcon: string; exitCode: number | null }): boolean =>
      r.debugcon.includes(INITRD_MARKER) && r.exitCode === qemuExitStatus(INITRD_EXIT_VALUE);

    test('both assigned machines boot the kernel entry through their per-machine iPXE script', async (t) => {
      for (const index of [0, 1]) {
        const result = await scenario.result(index);
        t.diagnostic(describeTime(result, 'the initrd marker', scenario));
        assert.ok(ranInitrd(result), `initrd marker / exit ${qemuExitStatus(INITRD_EXIT_VALUE)} expected\n${scenario.failureReport(result)}`);
        assertEventForMac(scenario, result, 'http.done', 'initrd.img');
      }
    });

    test('the boot-once machine boots its local disk the second time', async (t) => {
      const first = await scenario.result(0);
      assert.ok(ranInitrd(first), 'first boot must have run the entry (see the test above)');
      const eventsBefore = scenario.events().length;
      const client = new QemuClient(scenario.lab!, 'uefi', 0);
      const running = client.run(60_000);
      // EDK2 retries DISCOVER for about a minute when no offer carries boot information;
      // once we have ignored it, a quiet stretch longer than its REQUEST / 4011 / TFTP steps
      // (a few seconds under TCG) and its first DISCOVER retry (4 s) is enough to know nothing
      // more will be served.
      const ignoredMac = (): boolean =>
        scenario
          .events()
          .slice(eventsBefore)
          .some((e) => e.type === 'dhcp.ignored' && e.mac === first.mac);
      await waitFor(() => ignoredMac(), 40_000, `dhcp.ignored for ${first.mac} on the second boot`).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 8000));
      client.stop();
      const second = await running;
      t.diagnostic(
        `second boot: ${second.gaveUp ? 'firmware gave up on network boot' : 'no boot answer; stopped'} after ${(second.elapsedMs / 1000).toFixed(1)} s`,
      );
      const later = scenario
        .events()
        .slice(eventsBefore)
        .filter((e) => e.mac === first.mac);
      const answered = later.filter((e) => ['proxy.offer', 'pxe.ack', 'tftp.done', 'http.done'].includes(e.type));
      assert.ok(!ranInitrd(second) && !second.debugcon.includes('BOOTBENCH'), `the second boot ran our files again\n${scenario.failureReport(second)}`);
      assert.equal(
        answered.length,
        0,
        `the second boot was still served: ${answered.map((e) => JSON.stringify(e)).join('\n')}\n${scenario.failureReport(second)}`,
      );
      assert.ok(
        later.some((e) => e.type === 'dhcp.ignored'),
        `no dhcp.ignored for ${first.mac} on the second boot\n${scenario.failureReport(second)}`,
      );
      // Not answered on purpose, and said so: no "enable PXE in its firmware".
      const ignored = later.find((e) => e.type === 'dhcp.ignored')!;
      assert.equal(ignored.deliberate, true, JSON.stringify(ignored));
      assert.match(String(ignored.reason), /boots from its local disk/);
      const diagnosis = diagnoseBoot(scenario.events().filter((e) => e.mac === first.mac) as BootEvent[]);
      assert.equal(diagnosis.stage, 'local-disk', diagnosis.message);
      assert.match(diagnosis.message, /^Boots from its local disk: boot once was used on \d{4}-\d\d-\d\d/);
    });
  });
