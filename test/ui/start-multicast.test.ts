// The Start screen's multicast choice for deploys, in Chromium against the real host and store
// (web mode on loopback; services on loopback with free ports, so nothing leaves this machine):
// in proxy mode the default keeps deploys unicast and says why; "on, also in proxy mode" is
// sent with Start, serves, and is kept for the next start; full DHCP mode streams by default.
// Screenshot: test-output/ui/start-multicast.png
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
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
  dir = mkdtempSync(join(tmpdir(), 'bootbench-start-multicast-'));
  const dataDir = join(dir, 'data');
  store = openStore(dataDir);
  const config = { ...configFromSettings(store, dataDir), httpPort: 0, ports: { dhcp: 0, pxe: 0, tftp: 0, dhcpClient: 0 } };
  host = new ServiceHost({ config, store, resolveInterface: () => loopback, watchInterface: false, dhcpThread: false });
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

test('multicast for deploys: off in proxy mode with the reason, on only when chosen, kept for the next start', { skip, timeout: 60_000 }, async () => {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(web!.url);
  await page.getByTestId('multicast').waitFor({ timeout: 10_000 });
  await page.locator('label.nic', { hasText: 'lo' }).click();

  const choice = page.getByTestId('multicast-choice');
  const note = page.getByTestId('multicast-note');
  assert.equal(await choice.inputValue(), 'auto');
  assert.match(
    await note.innerText(),
    /Proxy mode: deploys go by unicast HTTP\. Multicast on an office network reaches every switch port that asks for it; turn it on only if the network team agrees/,
  );
  // Full DHCP mode (a bench network) streams by default, and says what it does about snooping switches.
  await page.locator('input[name="mode"][value="dhcp"]').check();
  assert.match(await note.innerText(), /sent once, as a multicast stream .*IGMP querier/);
  await page.locator('input[name="mode"][value="proxy"]').check();

  await choice.selectOption('on');
  assert.match(await note.innerText(), /sent once, as a multicast stream/);
  const startStop = page.getByTestId('start-stop');
  await startStop.click();
  await page.getByTestId('serving-text').waitFor({ timeout: 20_000 });
  assert.equal(host!.config().imagingMulticast, 'on');
  assert.equal(await choice.isDisabled(), true, 'not changed while serving');
  for (let i = 0; i < 50 && store!.settings.get('imagingMulticast') !== 'on'; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(store!.settings.get('imagingMulticast'), 'on');
  await page.screenshot({ path: join(shots, 'start-multicast.png'), fullPage: true });

  await page.reload();
  await page.getByTestId('multicast').waitFor({ timeout: 10_000 });
  assert.equal(await page.getByTestId('multicast-choice').inputValue(), 'on');
  assert.deepEqual(errors, []);
});
