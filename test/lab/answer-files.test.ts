// Lab: two PCs boot Debian's netboot installer from the library with their own preseed.
// Both are in the machine list under their own names and boot-once assigned to the
// installer entry, which carries a preseed template that uses {{name}}. Each PC chainloads
// iPXE, gets its script (kernel arguments auto=true priority=critical url=<its preseed>),
// boots the installer, which fetches its preseed over HTTP; the preseed's early_command
// (added by Bootbench) reports the hostname the installer runs under. The test checks the
// host's events: each preseed went to its own PC, and each reported hostname is the
// machine-list name. Then it stops the PCs: no install is needed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { IPXE_UNDIONLY, PROJECT_ROOT, QemuClient, bootbenchCommand, clientMac, labUnavailableReason, type ClientResult } from './boot-lab.js';
import { Scenario, scenarioSkipReason } from './scenario.js';
import { waitFor } from '../helpers/netns.js';

const INSTALLER = '/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64';
const KERNEL = join(INSTALLER, 'linux');
const INITRD = join(INSTALLER, 'initrd.gz');
const NAMES = ['lab-pc-a', 'lab-pc-b'];
// The installer's kernel and 40 MB initrd under TCG, then its first steps: minutes, not seconds.
const INSTALLER_TIMEOUT_MS = Number(process.env.BOOTBENCH_LAB_INSTALLER_TIMEOUT_MS ?? 480_000);

const skip =
  scenarioSkipReason({ clients: ['bios'], office: false, needsBootbench: true }) ??
  labUnavailableReason({ kinds: ['bios'], files: [IPXE_UNDIONLY] }) ??
  (existsSync(KERNEL) && existsSync(INITRD) ? undefined : `no Debian installer at ${INSTALLER}: apt-get install debian-installer-12-netboot-amd64`);

// Only what the installer needs until its early_command; the rest is never reached.
const PRESEED = `# Bootbench lab preseed for {{name}} ({{mac}})
d-i debian-installer/locale string en_US.UTF-8
d-i keyboard-configuration/xkb-keymap select us
d-i netcfg/choose_interface select auto
d-i netcfg/get_hostname string {{name}}
d-i netcfg/get_domain string lab.invalid
d-i mirror/country string manual
d-i mirror/http/hostname string {{server_address}}
d-i mirror/http/directory string /debian
d-i mirror/http/proxy string
`;

async function prepareInstaller(dataDir: string): Promise<void> {
  mkdirSync(join(dataDir, 'boot', 'ipxe'), { recursive: true });
  copyFileSync(IPXE_UNDIONLY, join(dataDir, 'boot', 'ipxe', 'undionly.kpxe'));
  const { cmd, args } = bootbenchCommand();
  const out = execFileSync(cmd, [...args, 'entries', 'import', KERNEL, INITRD, '--reference', '--data', dataDir, '--json'], { cwd: PROJECT_ROOT }).toString();
  const entry = (JSON.parse(out) as { imported: { id: number; kind: string }[] }).imported.find((e) => e.kind === 'kernel');
  assert.ok(entry, `entries import made no kernel entry: ${out}`);
  const { openStore } = await import('../../main/store/index.js');
  const { writeAnswerTemplate, answerRefusals } = await import('../../main/library/index.js');
  const store = openStore(dataDir);
  try {
    // The installer's console on the serial port, so a failure report shows where it stopped.
    // The lab's DHCP gives no router and no name server, and the installer would ask about
    // both before it reads its preseed: the answers go on the kernel command line. Under TCG
    // on a busy machine the kernel's IO-APIC timer check can fail and panic: no_timer_check.
    // The lab's router advertiser is for the firmware; the installer would spend its IPv6
    // autoconfiguration steps on it before DHCP: ipv6.disable=1.
    const stored = store.entries.update(entry.id, {
      arguments: 'console=ttyS0,115200 no_timer_check ipv6.disable=1 netcfg/no_default_route=true netcfg/get_nameservers=192.0.2.1',
    });
    writeAnswerTemplate(dataDir, stored, { dialect: 'preseed', text: PRESEED }, Date.now());
    NAMES.forEach((name, index) => store.machines.create({ macs: [clientMac('bios', index)], name, group: 'lab-room', entryId: entry.id, bootOnce: true }));
    const refusals = answerRefusals({ store, dataDir, serverAddress: '192.0.2.1', httpBaseUrl: 'http://192.0.2.1:8080' }, stored);
    assert.deepEqual(refusals, [], 'both machines have every value the template needs');
  } finally {
    store.close();
  }
}

if (skip) test('Debian installer with per-machine preseeds', { skip }, () => {});
else
  describe('Debian installer with per-machine preseeds', () => {
    const scenario = new Scenario({
      name: 'answer files',
      mode: 'dhcp',
      office: false,
      // The PCs are started below with the installer's own time limit.
      clients: [],
      boot: { bios: 'bootbench/undionly.kpxe' },
      needsBootbench: true,
      prepareData: prepareInstaller,
    });
    const clients: QemuClient[] = [];
    let results: Promise<ClientResult[]> | undefined;
    before(async () => {
      // The installer's initrd unpacks into RAM: 768 MB still sends it into low-memory mode, whose notice waits for a key.
      process.env.BOOTBENCH_LAB_MEMORY_MB ??= '1536';
      await scenario.start();
      for (const index of [0, 1]) clients.push(new QemuClient(scenario.lab!, 'bios', index));
      results = Promise.all(clients.map((c) => c.run(INSTALLER_TIMEOUT_MS)));
    });
    after(async () => {
      for (const c of clients) c.stop();
      await results;
      await scenario.stop();
    });

    const reported = (mac: string) => scenario.events().find((e) => e.type === 'install.started' && e.mac === mac);

    test('each installer fetches its own preseed and reports the name from the machine list', async (t) => {
      const started = Date.now();
      try {
        await waitFor(() => clients.every((c) => reported(c.mac)), INSTALLER_TIMEOUT_MS, 'install.started from both installers');
      } catch {
        for (const c of clients) c.stop();
        const done = await results!;
        assert.fail(done.map((r) => scenario.failureReport(r)).join('\n\n'));
      }
      t.diagnostic(`both installers reported after ${((Date.now() - started) / 1000).toFixed(0)} s`);
      NAMES.forEach((name, index) => {
        const mac = clientMac('bios', index);
        const served = scenario.events().filter((e) => e.type === 'answers.served' && e.mac === mac);
        assert.ok(
          served.some((e) => String(e.file).endsWith(`/${mac.replace(/:/g, '')}/preseed.cfg`)),
          `${name} fetched its preseed: ${JSON.stringify(served)}`,
        );
        assert.equal(
          served.every((e) => e.machine === name),
          true,
          `every file served to ${mac} was ${name}'s`,
        );
        assert.equal(reported(mac)!.hostname, name, `the installer on ${mac} runs as ${name}`);
        assert.equal(reported(mac)!.machine, name);
      });
      assert.deepEqual(
        scenario.events().filter((e) => e.type === 'answers.refused'),
        [],
        'no answer-file request was refused',
      );
    });

    test('boot once is used up: both PCs boot their disk next time', async () => {
      for (const index of [0, 1]) {
        const mac = clientMac('bios', index);
        assert.ok(
          scenario.events().some((e) => e.type === 'host.warning' && e.mac === mac && e.bootOnce === 'completed'),
          `boot once of ${mac} ended after the installer's files`,
        );
      }
    });
  });
