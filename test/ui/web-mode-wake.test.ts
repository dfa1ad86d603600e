// Wake-on-LAN from the Machines screen, in Chromium against the real host in web mode. The
// bench NIC is loopback (the socket is tied to lo, so the magic packets to 127.255.255.255 and
// 255.255.255.255 never leave this machine; the wire itself is test/integration/wake-netns).
// A machine's Wake button, a selection and a group each answer in words; the machine's Timeline
// shows "Woken", and when the host's clock (a manual one here) passes the minute without a
// DISCOVER, the flag arrives live: "No answer to Wake-on-LAN: check the BIOS setting or the cable".
// Screenshot: test-output/ui/wake-timeline.png
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ServiceHost } from '../../main/host/service-host.js';
import { storeApi } from '../../main/api/api-store.js';
import { configFromSettings } from '../../main/host/stored-config.js';
import { startWebMode, type WebMode } from '../../main/web/web-mode.js';
import { openStore, type Store } from '../../main/store/index.js';
import { ManualClock } from '../../main/core/clock.js';
import { launchChromium, RENDERER_DIR, REPO, webUiSkipReason } from '../helpers/web-ui-browser.js';

const shots = join(REPO, 'test-output/ui');
const skip = webUiSkipReason();

let work: string;
let store: Store | undefined;
let host: ServiceHost | undefined;
let web: WebMode | undefined;
let browser: Browser | undefined;
let failurePage: Page | undefined;
let passed = false;
const clock = new ManualClock(Date.now());

before(async () => {
  if (skip) return;
  mkdirSync(shots, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'bb-ui-wake-'));
  const dataDir = join(work, 'data');
  store = openStore(dataDir);
  store.machines.create({ macs: ['52:54:00:dd:00:01'], name: 'pc-01', group: 'room3' });
  store.machines.create({ macs: ['52:54:00:dd:00:02'], name: 'pc-02', group: 'room3' });
  store.machines.create({ macs: ['52:54:00:dd:00:03'], name: 'pc-03', group: 'room4' });
  // The host is not serving: a wake needs only the NIC it last used.
  host = new ServiceHost({ config: { ...configFromSettings(store, dataDir), interfaceName: 'lo' }, store, watchInterface: false, dhcpThread: false });
  web = await startWebMode({
    host,
    store: storeApi(store, { dataDir: () => dataDir }),
    listInterfaces: () => [{ name: 'lo', mac: '', ipv4: [{ address: '127.0.0.1', prefixLength: 8 }], up: true, kind: 'loopback', mtu: 65536 }],
    staticDir: RENDERER_DIR,
    clock,
  });
  browser = await launchChromium();
});

after(async () => {
  if (failurePage && !passed) await failurePage.screenshot({ path: join(shots, 'wake-failure.png'), fullPage: true }).catch(() => {});
  await browser?.close().catch(() => {});
  await web?.close();
  await host?.close();
  store?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('wake a machine, a selection and a group; the Timeline shows "woken", then the flag a minute later', { skip, timeout: 60_000 }, async () => {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  failurePage = page;
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(web!.url);
  await page.click('[data-screen=machines]');
  const message = page.getByTestId('machines-message');

  await page.getByRole('button', { name: 'Wake pc-01' }).click();
  await message.filter({ hasText: 'Woke pc-01:' }).waitFor({ timeout: 10_000 });
  assert.match(await message.innerText(), /Woke pc-01: 3 rounds of magic packets through lo \(to 127\.255\.255\.255 and 255\.255\.255\.255\)/);

  await page.getByRole('checkbox', { name: 'Select pc-02' }).check();
  await page.getByRole('checkbox', { name: 'Select pc-03' }).check();
  await page.getByTestId('wake-selected').click();
  await message.filter({ hasText: 'Woke pc-02, pc-03:' }).waitFor({ timeout: 10_000 });

  await page.getByRole('combobox', { name: 'Group to wake' }).selectOption('room3');
  await page.getByTestId('wake-group').click();
  await message.filter({ hasText: 'Woke pc-01, pc-02:' }).waitFor({ timeout: 10_000 });

  // pc-03's Timeline: woken, waiting for it.
  await page.getByRole('button', { name: 'Timeline of pc-03' }).click();
  const events = page.getByTestId('timeline-events');
  await events.getByText(/^Woken: 6 magic packets sent through lo/).waitFor({ timeout: 10_000 });
  await page
    .getByTestId('diagnosis')
    .getByText(/waiting for it to ask for a network boot/)
    .waitFor({ timeout: 10_000 });

  // A minute passes on the host's clock and pc-03 never asked: the flag arrives live.
  // (The wakes were stamped by the host's own clock, real time; the minute is judged on the manual one.)
  clock.advance(Date.now() - clock.now() + 61_000);
  await events.getByText('No answer to Wake-on-LAN: check the BIOS setting or the cable').waitFor({ timeout: 10_000 });
  await page.getByTestId('diagnosis').getByText('No answer to Wake-on-LAN: check the BIOS setting or the cable.').waitFor({ timeout: 10_000 });
  assert.match(await page.getByTestId('diagnosis').innerText(), /Problem/);
  await page.screenshot({ path: join(shots, 'wake-timeline.png'), fullPage: true });

  // Recorded in the data folder: two wakes of pc-01 (its own button, then its group).
  const pc01 = store!.machines.findByMac('52:54:00:dd:00:01')!;
  await waitForRows(() => store!.bootEvents.listForMachine(pc01.id).filter((e) => e.type === 'wake.sent').length, 2);
  assert.equal(store!.machines.get(pc01.id)!.lastSeen, null, 'a wake is not a sighting');
  assert.deepEqual(pageErrors, []);
  passed = true;
});

async function waitForRows(count: () => number, want: number): Promise<void> {
  const end = Date.now() + 5000;
  while (count() < want && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  assert.equal(count(), want);
}
