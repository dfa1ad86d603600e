// Takes each screen of the real renderer at a desktop width (1280 px) and a phone width
// (390 px) into docs/images/screen-<name>-<width>.png, for the README's "Screens" section.
//   npm run screenshots        (builds the renderer first)
// The host runs in web mode on a fresh temporary data folder with sample data added through
// its API and sample boot events on its bus (test/helpers/sample-ui.ts); its services are
// never started and nothing is sent beyond loopback. The NIC list is a sample too, so the
// pictures do not show the NICs of the machine that took them.
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import type { NetInterfaceInfo } from '../preload/api.js';
import { openScreen, SCREENS, startSampleUi } from '../test/helpers/sample-ui.js';

const repo = resolve(import.meta.dirname, '..');
const images = join(repo, 'docs/images');
const CHROMIUM = '/usr/bin/chromium';
const WIDTHS = [1280, 390];

const SAMPLE_NICS: NetInterfaceInfo[] = [
  { name: 'enp3s0', mac: '3c:52:82:4a:10:7e', ipv4: [{ address: '192.0.2.1', prefixLength: 24 }], up: true, kind: 'wired', mtu: 1500 },
  { name: 'wlp2s0', mac: 'a4:c3:f0:85:2b:19', ipv4: [{ address: '198.51.100.23', prefixLength: 24 }], up: true, kind: 'wifi', mtu: 1500 },
];

if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Chromium (apt-get install chromium)`);
if (!existsSync(join(repo, 'dist/renderer/index.html')))
  throw new Error('the renderer is not built: run `npm run build:renderer` (or `npm run screenshots`, which builds it)');

const work = mkdtempSync(join(tmpdir(), 'bb-screens-'));
const sample = await startSampleUi({ dataDir: join(work, 'data'), interfaces: SAMPLE_NICS });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
});
try {
  mkdirSync(images, { recursive: true });
  // The recorder writes the sample boot events to the store a moment after they happen.
  await new Promise((r) => setTimeout(r, 500));
  let total = 0;
  for (const width of WIDTHS) {
    // A short window: a full-page picture is then as tall as the screen's content, with no empty space below.
    const page = await browser.newPage({ viewport: { width, height: 360 } });
    await page.goto(sample.url);
    for (const screen of SCREENS) {
      await openScreen(page, screen);
      // No caret or hover state in the pictures.
      await page.mouse.move(0, 0);
      await page.evaluate('document.activeElement && document.activeElement.blur()');
      const path = join(images, `screen-${screen}-${width}.png`);
      await page.screenshot({ path, fullPage: true });
      total += statSync(path).size;
      console.log(`${path} (${Math.round(statSync(path).size / 1024)} KB)`);
    }
    await page.close();
  }
  console.log(`${SCREENS.length * WIDTHS.length} pictures, ${Math.round(total / 1024)} KB in all`);
} finally {
  await browser.close();
  await sample.close();
  rmSync(work, { recursive: true, force: true });
}
