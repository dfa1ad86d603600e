// The Start screen before the first boot, in Chromium against the real host and store (web
// mode on loopback; services on loopback with free ports, so nothing leaves this machine):
// a NIC remembered from before that is gone is named as gone; a missing boot program is shown
// with its fix before Start, and after Start the screen says not every PC can boot instead of
// "power on the machines"; a typed served folder that does not exist is refused in words.
// Screenshots: test-output/ui/start-*.png
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { ServiceHost } from '../../main/host/service-host.js';
import { storeApi } from '../../main/api/api-store.js';
import { configFromSettings, saveConfigToSettings } from '../../main/host/stored-config.js';
import { startWebMode, type WebMode } from '../../main/web/web-mode.js';
import { openStore, type Store } from '../../main/store/index.js';
import type { NetInterface } from '../../main/net/index.js';
import { launchChromium, rendererSkipReason } from '../helpers/chromium.js';
import { PROJECT_ROOT } from '../lab/boot-lab.js';

const shots = join(PROJECT_ROOT, 'test-output/ui');
const skip = rendererSkipReason();

const loopback: NetInterface = {
  name: 'lo',
  mac: '',
  ipv4: [{ address: '127.0.0.1', netmask: '255.0.0.0', prefixLength: 8 }],
  ipv6: [],
  up: true,
  kind: 'wired',
  mtu: 65536,
};
let dir: string;
let store: Store | undefined;
let host: ServiceHost | undefined;
let web: WebMode | undefined;
let browser: Browser | undefined;

before(async () => {
  if (skip) return;
  mkdirSync(shots, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'bootbench-start-screen-'));
  // Only the BIOS iPXE is there: UEFI PCs would be handed a file that does not exist.
  const resources = join(dir, 'resources');
  mkdirSync(join(resources, 'ipxe'), { recursive: true });
  writeFileSync(join(resources, 'ipxe', 'undionly.kpxe'), 'bios ipxe');
  const dataDir = join(dir, 'data');
  store = openStore(dataDir);
  store.settings.set('interface', 'uixbr0');
  const config = { ...configFromSettings(store, dataDir), httpPort: 0, ports: { dhcp: 0, pxe: 0, tftp: 0, dhcpClient: 0 } };
  host = new ServiceHost({ config, store, resolveInterface: () => loopback, watchInterface: false, dhcpThread: false, resourcesDir: resources });
  const saved = store;
  web = await startWebMode({
    host,
    store: storeApi(store),
    listInterfaces: () => [{ name: 'lo', mac: '', ipv4: [{ address: '127.0.0.1', prefixLength: 8 }], up: true, kind: 'wired', mtu: 65536 }],
    staticDir: join(PROJECT_ROOT, 'dist/renderer'),
    afterStart: () => saveConfigToSettings(saved, host!.config()),
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await web?.close();
  await host?.close();
  store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('gone NIC, missing UEFI boot program and a wrong folder: each said on the Start screen, never all green', { skip, timeout: 60_000 }, async () => {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(web!.url);

  const hint = page.getByTestId('start-hint');
  await hint
    .filter({ hasText: 'uixbr0, the network card used last time, is not on this computer any more: choose a network card above.' })
    .waitFor({ timeout: 10_000 });
  assert.equal(await page.getByTestId('start-stop').isDisabled(), true, 'no Start on a NIC that is gone');
  assert.doesNotMatch(await hint.innerText(), /Will serve on uixbr0/);

  const programs = await page.getByTestId('boot-programs').innerText();
  assert.match(programs, /ready\s*BIOS PCs get ipxe\/undionly\.kpxe/);
  assert.match(
    programs,
    /missing\s*UEFI PCs cannot boot: the iPXE they are handed \(ipxe\/snponly\.efi\) is missing\. Fix: install the Debian package ipxe \(sudo apt-get install ipxe\)/,
  );
  assert.match(await hint.innerText(), /UEFI PCs cannot boot until the missing boot program is in place/);
  await page.screenshot({ path: join(shots, 'start-missing-program.png'), fullPage: true });

  await page.locator('label.nic', { hasText: 'lo' }).click();
  await page.getByTestId('served-folder').fill(join(dir, 'no-such-folder'));
  await page.getByTestId('start-stop').click();
  const problems = page.getByTestId('problems');
  await problems
    .filter({ hasText: /The served folder .*no-such-folder does not exist: give the folder that holds your boot files/ })
    .waitFor({ timeout: 10_000 });

  await page.getByRole('button', { name: 'Use the library folder' }).click();
  assert.equal(await page.getByTestId('served-folder').inputValue(), join(dir, 'data', 'library'));
  await page.getByTestId('start-stop').click();
  const serving = page.getByTestId('serving-text');
  // The services' state and the host's problems arrive as separate pushes: wait for both.
  await serving.filter({ hasText: /Not every PC can boot yet: see Problems below/ }).waitFor({ timeout: 20_000 });
  assert.doesNotMatch(await serving.innerText(), /Power on the machines/);
  assert.match(await problems.innerText(), /UEFI PCs cannot boot: the iPXE they are handed \(ipxe\/snponly\.efi\) is missing/);
  await page.screenshot({ path: join(shots, 'start-serving-missing-program.png'), fullPage: true });

  // Phone width: the section that says what PCs boot fits, long paths and fixes wrap.
  await page.setViewportSize({ width: 390, height: 844 });
  const section = page.getByTestId('what-boots');
  const fits = await section.evaluate((el) => el.scrollWidth <= el.clientWidth + 1 && el.getBoundingClientRect().right <= window.innerWidth + 1);
  await page.screenshot({ path: join(shots, 'start-what-boots-390.png'), fullPage: true });
  assert.equal(fits, true, 'the "What PCs boot" section fits a 390 px screen');
  assert.deepEqual(errors, []);
});

async function storedHttpBoot(expected: unknown): Promise<void> {
  const until = Date.now() + 5000;
  while (Date.now() < until && JSON.stringify(store!.settings.get('httpBoot')) !== JSON.stringify(expected)) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(store!.settings.get('httpBoot'), expected);
}

test(
  'UEFI HTTP boot: shown with when to use it, turned off and on again, and the host starts with what the screen says',
  { skip, timeout: 90_000 },
  async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(web!.url);
    // The host's settings are on the screen once the boot programs are (both come with the first load).
    await page.getByTestId('boot-programs').waitFor({ timeout: 10_000 });
    // The first test may have left the services running: the setting is chosen while stopped.
    const startStop = page.getByTestId('start-stop');
    if ((await startStop.innerText()).includes('Stop serving')) {
      await startStop.click();
      await startStop.filter({ hasText: 'Start serving' }).waitFor({ timeout: 10_000 });
    }
    await page.locator('label.nic', { hasText: 'lo' }).click();

    const box = page.getByTestId('http-boot');
    const answer = page.getByTestId('http-boot-answer');
    assert.equal(await answer.isChecked(), true, 'answered by default');
    assert.match(await box.innerText(), /UEFI PCs whose firmware offers HTTP boot .*faster than TFTP for big files\. PXE stays the default/s);
    assert.equal(await page.getByTestId('http-boot-what').inputValue(), 'same');

    // Off: the host serves with HTTP boot not answered, and stores that for the next start.
    await answer.uncheck();
    assert.match(await page.getByTestId('http-boot-off-text').innerText(), /does not answer them/);
    await startStop.click();
    await page.getByTestId('serving-text').waitFor({ timeout: 20_000 });
    assert.deepEqual(host!.config().httpBoot, { answer: false });
    // Saved after the start call returns, which may be after the screen shows the services running.
    await storedHttpBoot({ answer: false });
    assert.equal(await answer.isDisabled(), true, 'not changed while serving');
    await page.screenshot({ path: join(shots, 'start-http-boot-off.png'), fullPage: true });

    // On again, with a file of its own; a fresh page load shows what the host keeps.
    await startStop.click();
    await startStop.filter({ hasText: 'Start serving' }).waitFor({ timeout: 10_000 });
    await answer.check();
    await page.getByTestId('http-boot-what').selectOption('file');
    assert.equal(await startStop.isDisabled(), true, 'no Start with the file left empty');
    await page.getByTestId('http-boot-file').fill('efi/ipxe.efi');
    await startStop.click();
    await page.getByTestId('serving-text').waitFor({ timeout: 20_000 });
    assert.deepEqual(host!.config().httpBoot, { answer: true, file: 'efi/ipxe.efi' });
    await storedHttpBoot({ answer: true, file: 'efi/ipxe.efi' });
    await page.reload();
    await page.getByTestId('http-boot-file').waitFor({ timeout: 10_000 });
    assert.equal(await page.getByTestId('http-boot-file').inputValue(), 'efi/ipxe.efi');
    assert.equal(await page.getByTestId('http-boot-answer').isChecked(), true);
    await page.screenshot({ path: join(shots, 'start-http-boot-file.png'), fullPage: true });
    assert.deepEqual(errors, []);
  },
);
