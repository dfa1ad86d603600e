// The Library screen in Chromium against the real host in web mode (loopback, services not
// started): a kernel uploaded from the browser with its progress shown, an initrd added by
// host path and paired with it, rename, kernel command line, removal of an entry machines
// boot (confirmed twice, naming them), and a kernel + initrd dropped together becoming one
// entry. Screenshots: test-output/ui/library-*.png
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, RENDERER_DIR, REPO, webUiSkipReason } from '../helpers/web-ui-browser.js';
import { createUiHost, type UiHost } from '../../main/web/ui-host.js';
import { startWebMode, type WebMode } from '../../main/web/web-mode.js';
import { uploadsDir } from '../../main/library/import.js';
import { buildBzImage, buildCpioNewc } from '../unit/library-fixtures.js';

const shots = join(REPO, 'test-output/ui');
const skip = webUiSkipReason();

const KERNEL_SIZE = 3 * 1024 * 1024;
const kernel = Buffer.concat([buildBzImage({ version: '6.1.0-bench', efiStub: true }), Buffer.alloc(KERNEL_SIZE - 0x2000, 0x90)]);
const initrd = buildCpioNewc('init', Buffer.alloc(200 * 1024, 0x41));

let work: string;
let dataDir: string;
let ui: UiHost | undefined;
let web: WebMode | undefined;
let browser: Browser | undefined;
let failurePage: Page | undefined;
let passed = false;

before(async () => {
  if (skip) return;
  mkdirSync(shots, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'bb-ui-library-'));
  dataDir = join(work, 'data');
  writeFileSync(join(work, 'initrd.img'), initrd);
  ui = createUiHost({ dataDir });
  web = await startWebMode({
    host: ui.host,
    store: ui.apiStore,
    library: ui.library,
    listInterfaces: () => [],
    staticDir: RENDERER_DIR,
    uploadDir: () => uploadsDir(dataDir),
  });
  browser = await launchChromium();
});

after(async () => {
  if (failurePage && !passed) await failurePage.screenshot({ path: join(shots, 'library-failure.png'), fullPage: true }).catch(() => {});
  await browser?.close().catch(() => {});
  await web?.close();
  await ui?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('library: upload with progress, pair, rename, arguments, remove, drop two files as one entry', { skip, timeout: 120_000 }, async () => {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  failurePage = page;
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(web!.url);
  await page.click('[data-screen=library]');
  assert.match(await page.getByTestId('pairing-hint').innerText(), /drop or choose both files at once and they become one entry/);
  assert.match(await page.getByTestId('built-in').innerText(), /Built in: Local disk/);

  // --- Upload from the browser, slowed to ~1 MiB/s so the progress can be watched.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1024 * 1024 });
  await page.getByTestId('upload-input').setInputFiles({ name: 'vmlinuz', mimeType: 'application/octet-stream', buffer: kernel });
  const progress = page.getByTestId('upload-progress');
  await progress.waitFor({ timeout: 5000 });
  const seen = new Set<number>();
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && (await progress.count()) > 0) {
    const now = await progress
      .getByRole('progressbar')
      .getAttribute('aria-valuenow')
      .catch(() => null);
    if (now !== null) seen.add(Number(now));
    if (seen.size >= 2 && [...seen].some((v) => v > 0 && v < 100)) await page.screenshot({ path: join(shots, 'library-upload.png') });
    await page.waitForTimeout(150);
  }
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  assert.ok(
    [...seen].some((v) => v > 0 && v < 100),
    `the bar moved through the upload (values seen: ${[...seen].join(', ')})`,
  );
  const result = page.getByTestId('import-result');
  await result.filter({ hasText: 'Added 1 entry: vmlinuz' }).waitFor({ timeout: 10_000 });
  assert.deepEqual(readdirSync(uploadsDir(dataDir)), [], 'the upload was moved into the library');

  // --- The initrd on its own, by host path: its own entry, not bootable, until paired.
  await page.getByLabel('Path on the host').fill(join(work, 'initrd.img'));
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await result.filter({ hasText: 'Added 1 entry: initrd' }).waitFor({ timeout: 10_000 });
  const rows = page.getByTestId('entries').locator('tbody tr');
  const initrdRow = page.locator('tr[data-entry="initrd"]');
  assert.match(await initrdRow.getByTestId('bootable').innerText(), /not bootable/);
  assert.match(await initrdRow.innerText(), /pair it with its kernel/);
  await initrdRow.getByLabel('Pair initrd with kernel').selectOption({ label: 'vmlinuz' });
  await page.getByTestId('library-notice').filter({ hasText: 'The initrd now boots with "vmlinuz"' }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=entries] tbody tr').length === 1);
  const kernelRow = page.locator('tr[data-entry="vmlinuz"]');
  assert.match(await kernelRow.getByTestId('bootable').innerText(), /^bootable$/);
  // Each file once, in binary units: 3 MiB + 200 KiB, not once per boot class.
  assert.equal(await kernelRow.getByTestId('size').innerText(), '3.2 MiB');
  assert.match(await kernelRow.innerText(), /Linux kernel \(bzImage/);
  await page.screenshot({ path: join(shots, 'library-paired.png'), fullPage: true });

  // --- Rename and kernel command line, saved on the host.
  await kernelRow.getByLabel('Name of vmlinuz').fill('Debian rescue');
  await kernelRow.getByLabel('Name of vmlinuz').press('Enter');
  await page.getByTestId('library-notice').filter({ hasText: 'Saved "Debian rescue"' }).waitFor();
  const renamed = page.locator('tr[data-entry="Debian rescue"]');
  await renamed.getByLabel('Kernel command line of Debian rescue').fill('console=ttyS0 quiet');
  await renamed.getByLabel('Kernel command line of Debian rescue').press('Enter');
  await page.waitForFunction(() => document.querySelector('[data-testid=library-notice]')?.textContent?.includes('Saved'));
  await waitForStore(() => ui!.store!.entries.findByName('Debian rescue')?.arguments === 'console=ttyS0 quiet', 'the arguments to be stored');
  await renamed.getByLabel('Kernel command line of Debian rescue').fill('root=$x');
  await renamed.getByLabel('Kernel command line of Debian rescue').press('Enter');
  await page.getByTestId('library-notice').filter({ hasText: 'one line without "$"' }).waitFor();
  assert.equal(await renamed.getByLabel('Kernel command line of Debian rescue').inputValue(), 'console=ttyS0 quiet', 'the refused edit is put back');

  // --- Remove an entry a machine boots: confirmed, then confirmed again naming the machine.
  const entryId = ui!.store!.entries.findByName('Debian rescue')!.id;
  ui!.store!.machines.create({ macs: ['52:54:00:00:00:07'], name: 'bench-07', entryId });
  await renamed.getByRole('button', { name: 'Remove Debian rescue' }).click();
  await page.getByTestId('confirm-remove').getByRole('button', { name: 'Remove', exact: true }).click();
  const inUse = page.getByTestId('confirm-remove-in-use');
  await inUse.waitFor();
  assert.match(await inUse.innerText(), /"Debian rescue" is booted by machine bench-07/);
  await page.screenshot({ path: join(shots, 'library-remove-in-use.png'), fullPage: true });
  await inUse.getByRole('button', { name: 'Remove anyway' }).click();
  await page.getByTestId('library-notice').filter({ hasText: 'Removed "Debian rescue" and its 2 files' }).waitFor();
  assert.equal(await rows.count(), 0);
  assert.equal(ui!.store!.entries.findByName('Debian rescue'), undefined);

  // --- Drop a kernel and its initrd together: one entry.
  const dataTransfer = await page.evaluateHandle(
    ([k, i]) => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(k), (c) => c.charCodeAt(0))], 'vmlinuz'));
      dt.items.add(new File([Uint8Array.from(atob(i), (c) => c.charCodeAt(0))], 'initrd.img'));
      return dt;
    },
    [kernel.toString('base64'), initrd.toString('base64')],
  );
  await page.dispatchEvent('main', 'dragover', { dataTransfer });
  await page.dispatchEvent('main', 'drop', { dataTransfer });
  await result.filter({ hasText: 'Added 1 entry: vmlinuz' }).waitFor({ timeout: 15_000 });
  assert.equal(await rows.count(), 1);
  const dropped = ui!.store!.entries.findByName('vmlinuz')!;
  assert.equal(dropped.kind, 'kernel');
  assert.deepEqual([...new Set(dropped.files.map((f) => f.role))], ['kernel', 'initrd']);
  await page.screenshot({ path: join(shots, 'library-dropped.png'), fullPage: true });
  assert.deepEqual(pageErrors, []);
  passed = true;
});

async function waitForStore(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('machines: after a boot once the dropdown says Local disk (boot once used); a mistyped group can be removed', { skip, timeout: 60_000 }, async () => {
  const store = ui!.store!;
  const sha = 'a'.repeat(64);
  const tool = store.entries.create({
    name: 'Memtest',
    kind: 'nbp',
    files: [{ arch: 'uefi64', role: 'nbp', path: join(work, 'memtest.efi'), size: 1, sha256: sha }],
  });
  const mac = '52:54:00:00:00:09';
  const bench = store.machines.create({ macs: [mac], name: 'bench-09', group: 'row-c', entryId: tool.id, bootOnce: true });
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  failurePage = page;
  passed = false;
  await page.goto(web!.url);
  await page.click('[data-screen=machines]');
  const select = page.locator(`tr[data-mac="${mac}"] select`);
  await select.waitFor();
  const shown = () => select.evaluate((s: HTMLSelectElement) => s.selectedOptions[0]?.textContent ?? '');
  assert.equal(await shown(), 'Memtest');

  // What the boot service does when the machine fetched its last file: Local disk from now on.
  const disk = store.entries.list().find((e) => e.kind === 'local-disk')!;
  store.machines.update(bench.id, { entryId: disk.id, bootOnce: false });
  ui!.host.bus.publish('host.warning', { mac, message: 'bench-09 fetched its last file: boot once done', bootOnce: 'completed', entryId: tool.id });
  await page.waitForFunction(
    (m) =>
      (document.querySelector(`tr[data-mac="${m}"] select`) as HTMLSelectElement | null)?.selectedOptions[0]?.textContent === 'Local disk (boot once used)',
    mac,
    { timeout: 5000 },
  );
  await page.screenshot({ path: join(REPO, 'test-output/ui/machines-boot-once-used.png'), fullPage: true });

  // A typo in the group form: the screen says no machine is in it, and × removes it.
  await page.getByLabel('Group', { exact: true }).fill('rwo-c');
  await page.getByLabel('Group boot entry').selectOption({ label: 'Memtest' });
  await page.getByRole('button', { name: 'Assign' }).click();
  await page.getByTestId('machines-message').filter({ hasText: 'No machine is in group rwo-c: check the spelling' }).waitFor();
  await page.getByRole('button', { name: 'Remove empty group rwo-c' }).click();
  await page.getByTestId('machines-message').filter({ hasText: 'Group rwo-c removed' }).waitFor();
  assert.equal(await page.locator('[data-group="rwo-c"]').count(), 0);
  assert.equal(store.machines.getGroup('rwo-c'), undefined);
  passed = true;
});
