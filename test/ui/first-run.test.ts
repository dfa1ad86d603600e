// The first run a technician meets, end to end: an EMPTY data folder and the README's start
// command (`npm start`, which runs the headless host with the web UI where no Electron binary
// exists) inside the lab's server namespace, beside an office DHCP server. In Chromium: pick
// the NIC on the Start screen, press Start with no flag and no folder chosen, add a kernel +
// initrd on the Library screen, make it what PCs with no assignment boot, and watch a BIOS and
// a UEFI QEMU client boot it (the initrd prints its marker and powers QEMU off), with the Live
// and Timeline screens checked along the way. Then the app is restarted and Live opened again.
// Browser and host both run inside the namespace (Chromium through a wrapper script), so the
// UI is reached on the namespace's loopback and nothing leaves the lab.
// Screenshots: test-output/ui/first-run-*.png
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, launchChromiumInNamespace } from '../helpers/chromium.js';
import { BootLab, IPXE_UNDIONLY, PROJECT_ROOT, QemuClient, labUnavailableReason, logTail, type ClientResult } from '../lab/boot-lab.js';
import { INITRD_EXIT_VALUE, INITRD_MARKER, findLinuxKernel, markerInitrd } from '../lab/marker-initrd.js';
import { qemuExitStatus } from '../lab/marker-nbp.js';
import { missingPrograms, waitFor } from '../helpers/netns.js';
// @ts-expect-error plain ESM helper shared with scripts/start.mjs
import { findElectron } from '../../scripts/find-electron.mjs';

const shots = join(PROJECT_ROOT, 'test-output/ui');
const CLIENT_TIMEOUT_MS = Number(process.env.BOOTBENCH_LAB_CLIENT_TIMEOUT_MS ?? 240_000);
const kernel = findLinuxKernel(existsSync, (p) => readdirSync(p));

const skip =
  // npm start copies the bundled iPXE builds from Debian's ipxe package when resources/boot lacks them.
  labUnavailableReason({ kinds: ['bios', 'uefi'], programs: ['dnsmasq', 'npm'], files: [IPXE_UNDIONLY, '/usr/lib/ipxe/snponly.efi'] }) ??
  missingPrograms(CHROMIUM) ??
  (kernel ? undefined : 'no Linux kernel: install linux-image-amd64 or set BOOTBENCH_LAB_KERNEL=/path/to/vmlinuz (.ci/run does)') ??
  (findElectron(PROJECT_ROOT).reason ? undefined : 'Electron can run here: npm start opens the desktop app instead of the web UI');

let bootLab: BootLab;
let browser: Browser | undefined;
let app: { child: ChildProcess; output: () => string } | undefined;
let failurePage: Page | undefined;
let passed = false;

/** `npm start` as the README says, in the server namespace, with the data folder given by the environment. */
function npmStart(dataDir: string): { child: ChildProcess; output: () => string } {
  let output = '';
  // Its own process group: npm, start.mjs and the host are stopped together, as Ctrl-C would.
  const child = bootLab.lab.spawn(bootLab.serverNs, 'npm', ['start'], { cwd: PROJECT_ROOT, env: { ...process.env, BOOTBENCH_DATA: dataDir }, detached: true });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  return { child, output: () => output };
}

async function stopApp(): Promise<void> {
  const running = app;
  app = undefined;
  if (!running) return;
  const group = -running.child.pid!;
  const groupAlive = (): boolean => {
    try {
      process.kill(group, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!groupAlive()) return;
  // Ctrl-C: the host closes its services and its database, then every process of the group ends.
  process.kill(group, 'SIGINT');
  const until = Date.now() + 15_000;
  while (groupAlive() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  if (groupAlive()) process.kill(group, 'SIGKILL');
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(shots, `first-run-${name}.png`), fullPage: true });
}

function watchConsole(page: Page, problems: string[]): void {
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
}

before(async () => {
  if (skip) return;
  mkdirSync(shots, { recursive: true });
  bootLab = new BootLab('first');
  bootLab.addOffice();
  browser = await launchChromiumInNamespace(bootLab.serverNs, bootLab.dir);
});

after(async () => {
  if (failurePage && !passed) await shot(failurePage, 'failure').catch(() => {});
  if (!passed && app) process.stderr.write(`npm start output:\n${logTail(app.output(), 60)}\n`);
  await browser?.close().catch(() => {});
  await stopApp().catch(() => {});
  await bootLab?.destroy();
});

test(
  'first run: empty data folder, npm start, Start with no flags, a kernel from the Library boots on BIOS and UEFI, Live survives a restart',
  { skip, timeout: 15 * 60_000 },
  async (t) => {
    const dataDir = join(bootLab.dir, 'data');
    assert.equal(existsSync(dataDir), false, 'the data folder does not exist yet');
    app = npmStart(dataDir);
    const url = await waitFor(
      () => /Bootbench web UI: (http:\/\/\S+)/.exec(app!.output())?.[1],
      120_000,
      `the web UI address from npm start (output: ${app.output()})`,
    );
    assert.match(app.output(), /Not starting the desktop app/);

    const consoleProblems: string[] = [];
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    failurePage = page;
    watchConsole(page, consoleProblems);
    await page.goto(url);

    // --- Start: the lab's bridge is the NIC to pick; the served folder is already the library
    // folder, the bundled boot programs are ready, and a PC with no assignment gets the menu.
    const nic = page.locator('label.nic', { hasText: 'br0' });
    await nic.waitFor({ timeout: 20_000 });
    await nic.click();
    assert.equal(await nic.locator('input').isChecked(), true);
    assert.equal(await page.getByTestId('served-folder').inputValue(), join(dataDir, 'library'));
    const programs = page.getByTestId('boot-programs');
    assert.match(await programs.innerText(), /ready\s*BIOS PCs get ipxe\/undionly\.kpxe[\s\S]*ready\s*UEFI PCs get ipxe\/snponly\.efi/);
    assert.match(await page.getByTestId('default-boot-text').innerText(), /The library is empty/);
    await shot(page, '01-start');
    await page.getByTestId('start-stop').click();
    await page.locator('[data-service=tftp] .badge', { hasText: 'running' }).waitFor({ timeout: 30_000 });
    await page.locator('[data-service=proxy-dhcp] .badge', { hasText: 'running' }).waitFor({ timeout: 30_000 });
    assert.match(await page.getByTestId('serving-text').innerText(), /Serving on br0 \(192\.0\.2\.1\) in Proxy DHCP mode\. Power on the machines/);
    assert.equal(await page.getByTestId('problems').count(), 0, 'no problems after the first Start');
    assert.ok(existsSync(join(dataDir, 'library')), 'the library folder was made');

    // --- Library: a kernel and its initrd, added by typing their folder's path on the host.
    const drop = join(bootLab.dir, 'lab-kernel');
    mkdirSync(drop);
    copyFileSync(kernel!, join(drop, 'vmlinuz'));
    writeFileSync(join(drop, 'initrd.img'), markerInitrd());
    await page.click('[data-screen=library]');
    await page.getByLabel('Path on the host').fill(drop);
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    const imported = page.getByTestId('import-result');
    await imported.filter({ hasText: 'Added 1 entry' }).waitFor({ timeout: 60_000 });
    const entryRow = page.getByTestId('entries').locator('tbody tr').first();
    assert.match(await entryRow.innerText(), /kernel/);
    const entryName = (await imported.innerText()).match(/Added 1 entry: ([^.\n]+)\./)?.[1];
    assert.ok(entryName, await imported.innerText());
    await shot(page, '02-library');

    // --- Back on Start: what a PC with no assignment boots is said before it boots; choose the kernel.
    await page.click('[data-screen=start]');
    assert.match(
      await page.getByTestId('default-boot-text').innerText(),
      /A menu of the 1 library entry; with no key pressed, the PC boots its local disk after 10 s/,
    );
    await page.getByTestId('default-boot').selectOption({ label: entryName });
    await page
      .getByTestId('default-boot-text')
      .filter({ hasText: `${entryName}, at once.` })
      .waitFor({ timeout: 10_000 });
    await shot(page, '03-start-default');

    // --- Power on a BIOS (SeaBIOS + iPXE ROM) and a UEFI (OVMF, EDK2's own PXE) PC.
    const clients = [new QemuClient(bootLab, 'bios', 0), new QemuClient(bootLab, 'uefi', 0)];
    const runs = clients.map((c) => c.run(CLIENT_TIMEOUT_MS));

    // Live: the boot files show up as they are sent.
    await page.click('[data-screen=live]');
    const history = page.getByTestId('transfer-history');
    await history.locator('tr', { hasText: 'snponly.efi' }).first().waitFor({ timeout: CLIENT_TIMEOUT_MS });
    await shot(page, '04-live');

    const results: ClientResult[] = await Promise.all(runs);
    for (const result of results) {
      t.diagnostic(`${result.kind}: ${(result.elapsedMs / 1000).toFixed(1)} s to the initrd marker`);
      assert.ok(
        result.debugcon.includes(INITRD_MARKER) && result.exitCode === qemuExitStatus(INITRD_EXIT_VALUE),
        `${result.kind} client: initrd marker / exit ${qemuExitStatus(INITRD_EXIT_VALUE)} expected, got exit ${result.exitCode}${result.timedOut ? ' (timed out)' : ''}${result.gaveUp ? ' (firmware gave up)' : ''}\n--- serial ---\n${logTail(result.serial, 30)}\n--- npm start ---\n${logTail(app.output(), 30)}`,
      );
    }
    for (const file of ['vmlinuz', 'initrd.img']) {
      await history.locator('tr', { hasText: file }).filter({ hasText: 'done' }).first().waitFor({ timeout: 10_000 });
    }
    await shot(page, '05-live-booted');

    // --- Timeline of each machine: its steps from the DHCP request to the kernel's files.
    for (const client of clients) {
      await page.click('[data-screen=machines]');
      const row = page.locator(`tr[data-mac="${client.mac}"]`);
      await row.waitFor({ timeout: 10_000 });
      await row.getByRole('button', { name: /Timeline/ }).click();
      await page.getByTestId('diagnosis').waitFor();
      const steps = page.getByTestId('timeline-events');
      await waitFor(async () => /initrd\.img/.test(await steps.innerText()), 10_000, `the ${client.kind} timeline to show the initrd download`);
      const text = await steps.innerText();
      if (client.kind === 'uefi') assert.match(text, /snponly\.efi/, 'EDK2 was handed the bundled iPXE by TFTP');
      assert.match(text, /vmlinuz/);
      assert.notEqual(
        await page
          .getByTestId('diagnosis')
          .getAttribute('class')
          .then((c) => /\bbad\b/.test(c ?? '')),
        true,
        'no problem diagnosed for a machine that booted',
      );
      await shot(page, `06-timeline-${client.kind}`);
    }
    assert.deepEqual(consoleProblems, [], 'no console errors before the restart');

    assert.doesNotMatch(app.output(), /MaxListenersExceededWarning/, 'copying the kernel into the library leaves no listeners behind');

    // --- Restart the app: the same command, the same data folder; Live must open again.
    await page.close();
    await stopApp();
    app = npmStart(dataDir);
    const url2 = await waitFor(
      () => /Bootbench web UI: (http:\/\/\S+)/.exec(app!.output())?.[1],
      120_000,
      `the web UI address after the restart (output: ${app.output()})`,
    );
    const again = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    failurePage = again;
    const problemsAfter: string[] = [];
    watchConsole(again, problemsAfter);
    await again.goto(url2);
    const remembered = again.locator('label.nic', { hasText: 'br0' });
    await remembered.waitFor({ timeout: 20_000 });
    assert.equal(await remembered.locator('input').isChecked(), true, 'the NIC of the first run is remembered');
    await again.click('[data-screen=live]');
    await again.getByTestId('transfer-history').locator('tr', { hasText: 'initrd.img' }).first().waitFor({ timeout: 15_000 });
    await shot(again, '07-live-after-restart');
    assert.deepEqual(problemsAfter, [], 'the Live screen opens after a restart without errors');

    // A boot in this second run: its transfers join the first run's in the history, and the
    // Live screen must still open after a reload (it then lists both runs' transfers).
    await again.click('[data-screen=start]');
    assert.equal(await again.getByTestId('served-folder').inputValue(), join(dataDir, 'library'));
    await again
      .getByTestId('default-boot-text')
      .filter({ hasText: `${entryName}, at once.` })
      .waitFor({ timeout: 10_000 });
    await again.getByTestId('start-stop').click();
    await again.getByTestId('serving-text').filter({ hasText: 'Power on the machines' }).waitFor({ timeout: 30_000 });
    const second = await new QemuClient(bootLab, 'bios', 1).run(CLIENT_TIMEOUT_MS);
    assert.ok(second.debugcon.includes(INITRD_MARKER), `the BIOS PC boots the default again after the restart\n${logTail(second.serial, 30)}`);
    await again.reload();
    await again.click('[data-screen=live]');
    const rows = again.getByTestId('transfer-history').locator('tr', { hasText: 'initrd.img' });
    const listed = await waitFor(async () => (await rows.count()) >= 3, 15_000, "both runs' initrd downloads").catch((err: Error) => err);
    await shot(again, '08-live-after-restart-and-reload');
    assert.deepEqual(problemsAfter, [], 'the Live screen opens after a restart and a reload without errors');
    assert.equal(listed, true, 'the history lists the initrd downloads of both runs');
    passed = true;
  },
);
