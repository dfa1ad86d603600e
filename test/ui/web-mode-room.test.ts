// The room view on a phone: Chromium at 390 px against the real host in web mode, with the
// token the UI asks for off loopback. A room of four PCs imported from CSV shows four tiles
// asleep; "Wake all" makes them woken (the magic packets stay on loopback: the NIC is lo);
// then the host's bus carries what the PCs do and the tiles follow without a reload:
// booting, installing (kernel and initrd fetched), writing N % (an imaging row), and the one
// that never answered turns failed with why once the host's clock (a manual one) passes the
// minute. Seats are arranged by tapping a PC and an empty seat, and stay after a reload.
// Then "Reinstall this room" gives every PC the installer as boot once and wakes them.
// Screenshots: test-output/ui/room-390.png, room-1280.png
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
import { importMachinesCsv, openStore, type Store } from '../../main/store/index.js';
import { ImagingJobs } from '../../main/imaging/index.js';
import { ManualClock } from '../../main/core/clock.js';
import { launchChromium, RENDERER_DIR, REPO, webUiSkipReason } from '../helpers/web-ui-browser.js';

const shots = join(REPO, 'test-output/ui');
const skip = webUiSkipReason();
const TOKEN = 'room-view-test-token-0123456789';
const PC = { a: '52:54:00:ee:00:01', b: '52:54:00:ee:00:02', c: '52:54:00:ee:00:03', d: '52:54:00:ee:00:04' };

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
  work = mkdtempSync(join(tmpdir(), 'bb-ui-room-'));
  const dataDir = join(work, 'data');
  store = openStore(dataDir);
  const imported = importMachinesCsv(
    store,
    `mac,name,group\n${PC.a},room3-01,room3\n${PC.b},room3-02,room3\n${PC.c},room3-03,room3\n${PC.d},room3-04,room3\n52:54:00:ee:00:99,teacher,staff\n`,
  );
  assert.equal(imported.created, 5);
  store.entries.create({
    name: 'Debian installer',
    kind: 'kernel',
    files: [{ arch: 'any', role: 'kernel', path: 'e/linux', size: 10, sha256: 'a'.repeat(64) }],
  });
  host = new ServiceHost({ config: { ...configFromSettings(store, dataDir), interfaceName: 'lo' }, store, watchInterface: false, dhcpThread: false });
  web = await startWebMode({
    host,
    store: storeApi(store, { dataDir: () => dataDir }),
    listInterfaces: () => [{ name: 'lo', mac: '', ipv4: [{ address: '127.0.0.1', prefixLength: 8 }], up: true, kind: 'loopback', mtu: 65536 }],
    staticDir: RENDERER_DIR,
    token: TOKEN,
    clock,
  });
  browser = await launchChromium();
});

after(async () => {
  if (failurePage && !passed) await failurePage.screenshot({ path: join(shots, 'room-failure.png'), fullPage: true }).catch(() => {});
  await browser?.close().catch(() => {});
  await web?.close();
  await host?.close();
  store?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const tile = (page: Page, name: string) => page.locator(`[data-testid=room] [data-machine="${name}"]`);
async function waitForState(page: Page, name: string, state: string, word?: RegExp): Promise<void> {
  const t = tile(page, name);
  await page.waitForFunction(
    ([sel, want]) => document.querySelector(sel)?.getAttribute('data-state') === want,
    [`[data-testid=room] [data-machine="${name}"]`, state] as const,
    { timeout: 15_000 },
  );
  if (word) assert.match(await t.innerText(), word);
}

test('room on a phone: tiles asleep, woken, booting, installing, writing N %, failed + why; seats arranged and kept', { skip, timeout: 120_000 }, async () => {
  assert.match(web!.url, /#token=/, 'the UI asks for its token');
  const page = await browser!.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  failurePage = page;
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(web!.url);
  await page.click('[data-screen=room]');
  await page.getByRole('combobox', { name: 'Group' }).selectOption('room3');
  await tile(page, 'room3-04').waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('[data-testid=room] .tile').count(), 4, 'the teacher is in another group');
  for (const name of ['room3-01', 'room3-02', 'room3-03', 'room3-04']) await waitForState(page, name, 'asleep', /asleep/);

  await page.getByRole('button', { name: 'Wake all' }).click();
  await page.getByTestId('room-message').filter({ hasText: 'Woke room3-01, room3-02, room3-03, room3-04' }).waitFor({ timeout: 10_000 });
  for (const name of ['room3-01', 'room3-02', 'room3-03', 'room3-04']) await waitForState(page, name, 'woken', /woken/);

  // Three PCs answer; the events arrive on the host's bus as its services would publish them.
  const { publish } = host!.bus;
  const firmware = { msgType: 'DISCOVER', arch: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003016' };
  for (const mac of [PC.a, PC.b, PC.c]) publish('dhcp.received', { mac, ...firmware });
  publish('proxy.offer', { mac: PC.a, file: 'bootbench/ipxe/snponly.efi', bootClass: 'uefi64' });
  await waitForState(page, 'room3-01', 'booting', /booting/);
  publish('tftp.done', { mac: PC.b, file: '/library/e1/vmlinuz', size: 1000, bytes: 1000 });
  publish('tftp.done', { mac: PC.b, file: '/library/e1/initrd.gz', size: 1000, bytes: 1000 });
  await waitForState(page, 'room3-02', 'installing', /installing/);
  const jobs = new ImagingJobs(store!.db);
  const job = jobs.create({ kind: 'deploy', image: 'lab-image', macs: [PC.c] });
  jobs.report(job.id, PC.c, { phase: 'writing', bytes: 42 * 1024 * 1024, total: 100 * 1024 * 1024, part: 2 });
  publish('imaging.progress', { mac: PC.c, job: job.id, kind: 'deploy', image: 'lab-image', phase: 'writing' });
  await waitForState(page, 'room3-03', 'installing', /writing 42 %/);

  // room3-04 never asks: a minute later on the host's clock it is failed, and says why.
  clock.advance(Date.now() - clock.now() + 61_000);
  await waitForState(page, 'room3-04', 'failed', /failed/);
  await page.getByTestId('room-failed').getByText('No answer to Wake-on-LAN: check the BIOS setting or the cable').waitFor({ timeout: 10_000 });
  assert.equal(await tile(page, 'room3-01').getAttribute('data-state'), 'booting', 'the PCs that answered are not flagged');
  assert.match(await page.getByTestId('room-counts').innerText(), /1 booting[\s\S]*2 installing[\s\S]*1 failed/);

  // The phone shows the whole room without sideways scrolling.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the phone`);
  await page.screenshot({ path: join(shots, 'room-390.png'), fullPage: true });

  // Arrange: room3-04 to the second row, first seat (by the door, say).
  await page.getByRole('button', { name: 'Arrange seats' }).click();
  await tile(page, 'room3-04').click();
  await page.getByRole('button', { name: 'Empty seat, row 2, column 1' }).click();
  await page.waitForFunction(() => document.querySelector('[data-testid=room] [data-machine="room3-04"]')?.getAttribute('data-row') === '2', null, {
    timeout: 10_000,
  });
  await page.getByRole('button', { name: 'Done arranging' }).click();
  const seats = store!.seats.list().map((s) => [store!.machines.get(s.machineId)!.name, s.row, s.column]);
  assert.deepEqual(seats, [
    ['room3-01', 1, 1],
    ['room3-02', 1, 2],
    ['room3-03', 1, 3],
    ['room3-04', 2, 1],
  ]);
  // Swap two by tapping one onto the other.
  await page.getByRole('button', { name: 'Arrange seats' }).click();
  await tile(page, 'room3-01').click();
  await tile(page, 'room3-03').click();
  await page.waitForFunction(() => document.querySelector('[data-testid=room] [data-machine="room3-01"]')?.getAttribute('data-column') === '3', null, {
    timeout: 10_000,
  });
  await page.getByRole('button', { name: 'Done arranging' }).click();

  await page.reload();
  await page.click('[data-screen=room]');
  await page.getByRole('combobox', { name: 'Group' }).selectOption('room3');
  await tile(page, 'room3-04').waitFor({ timeout: 10_000 });
  assert.deepEqual(
    await page
      .locator('[data-testid=room] .tile')
      .evaluateAll((els) => els.map((e) => [e.getAttribute('data-machine'), e.getAttribute('data-row'), e.getAttribute('data-column')])),
    [
      ['room3-03', '1', '1'],
      ['room3-02', '1', '2'],
      ['room3-01', '1', '3'],
      ['room3-04', '2', '1'],
    ],
  );
  // A tile opens the PC's Timeline.
  await tile(page, 'room3-04').click();
  await page.getByTestId('diagnosis').getByText('No answer to Wake-on-LAN: check the BIOS setting or the cable.').waitFor({ timeout: 10_000 });

  const wide = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
  await wide.goto(web!.url);
  await wide.click('[data-screen=room]');
  await wide.getByRole('combobox', { name: 'Group' }).selectOption('room3');
  await tile(wide, 'room3-04').waitFor({ timeout: 10_000 });
  await wide.screenshot({ path: join(shots, 'room-1280.png'), fullPage: true });
  await wide.close();
  assert.deepEqual(pageErrors, []);
  passed = true;
});

test('reinstall the room from the phone: boot once for each PC, then they are woken', { skip, timeout: 60_000 }, async () => {
  const page = await browser!.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  failurePage = page;
  passed = false;
  await page.goto(web!.url);
  await page.click('[data-screen=room]');
  await page.getByRole('combobox', { name: 'Group' }).selectOption('room3');
  const form = page.getByTestId('room-start');
  await form.waitFor({ timeout: 10_000 });
  await form.getByRole('combobox', { name: 'What the room gets' }).selectOption({ label: 'Debian installer' });
  await form.getByRole('button', { name: 'Start now' }).click();
  await page
    .getByTestId('room-message')
    .filter({ hasText: 'Room room3: 4 PCs get Debian installer, booted once, and were woken through lo.' })
    .waitFor({ timeout: 10_000 });
  const entry = store!.entries.list().find((e) => e.name === 'Debian installer')!;
  for (const mac of Object.values(PC)) {
    const m = store!.machines.findByMac(mac)!;
    assert.deepEqual([m.name, m.entryId, m.bootOnce], [m.name, entry.id, true]);
  }
  for (const name of ['room3-01', 'room3-02', 'room3-03', 'room3-04']) await waitForState(page, name, 'woken', /woken/);
  await page.screenshot({ path: join(shots, 'room-start-390.png'), fullPage: true });
  passed = true;
});
