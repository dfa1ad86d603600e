// "A bench of 50 PCs stays smooth": 50 transfers reporting progress 200 times a second in
// all reach the real renderer (Chromium, web mode on loopback) as a few pushes and a few
// screen updates per second. The host side is a stand-in publishing on a real EventBus;
// everything from connectApiEvents to the DOM is the real code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium, RENDERER_DIR, REPO, webUiSkipReason } from '../helpers/web-ui-browser.js';
import { EventBus } from '../../main/core/events.js';
import type { ApiServiceHost } from '../../main/api/api.js';
import { startWebMode, type WebMode } from '../../main/web/web-mode.js';
import type { TransferRow } from '../../preload/api.js';

const skip = webUiSkipReason();

const PCS = 50;
let web: WebMode | undefined;
let browser: Browser | undefined;
let ticker: NodeJS.Timeout | undefined;

before(async () => {
  if (skip) return;
  const bus = new EventBus();
  const started = Date.now();
  const rows = (): TransferRow[] =>
    Array.from({ length: PCS }, (_, i) => {
      const size = 50_000_000;
      const rate = 2_000_000 + i * 10_000;
      return {
        id: `t${i}`,
        mac: `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`,
        ip: `192.0.2.${100 + i}`,
        file: 'images/rescue.img',
        protocol: 'tftp',
        size,
        bytes: Math.min(size, ((Date.now() - started) / 1000) * rate),
        rate,
        blksize: 1468,
        windowsize: 4,
        retransmits: 0,
        startedAt: started,
      };
    });
  const host: ApiServiceHost = {
    bus,
    start: async () => ({ running: true, mode: 'proxy', services: [], problems: [] }),
    stop: async () => ({ running: false, mode: 'proxy', services: [], problems: [] }),
    status: () => ({ running: true, interfaceName: 'bench0', address: '192.0.2.1', mode: 'proxy', services: [], problems: [] }),
    config: () => ({ mode: 'proxy', root: '/srv', httpPort: 8080, boot: {}, dataDir: '/srv/bootbench' }),
    activeTransfers: rows,
  };
  // 50 transfers, each reporting 4 times a second: one progress event every 5 ms.
  let n = 0;
  ticker = setInterval(() => bus.publish('tftp.progress', { transferId: `t${n++ % PCS}`, bytes: n }), 5);
  web = await startWebMode({ host, listInterfaces: () => [], staticDir: RENDERER_DIR });
  browser = await launchChromium();
});

after(async () => {
  if (ticker) clearInterval(ticker);
  await browser?.close();
  await web?.close();
});

test('50 transfers at 200 events/s: a few pushes and a few redraws per second', { skip, timeout: 60_000 }, async () => {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  const pushes: number[] = [];
  page.on('websocket', (ws) =>
    ws.on('framereceived', (frame) => {
      if (typeof frame.payload === 'string' && frame.payload.startsWith('{"event":"transfer:progress"')) pushes.push(Date.now());
    }),
  );
  await page.goto(web!.url);
  await page.click('[data-screen=live]');
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=active-transfers] tbody tr').length === n, PCS);

  // Count the animation frames in which the table changed, over 3 seconds.
  // (A string, not a function: tsx would wrap named inner functions in a helper the page lacks.)
  const redraws = (await page.evaluate(`new Promise((done) => {
    const table = document.querySelector('[data-testid=active-transfers]');
    let changed = false;
    let frames = 0;
    const observer = new MutationObserver(() => { changed = true; });
    observer.observe(table, { subtree: true, childList: true, characterData: true, attributes: true });
    const end = performance.now() + 3000;
    function tick() {
      if (changed) frames++;
      changed = false;
      if (performance.now() < end) requestAnimationFrame(tick);
      else { observer.disconnect(); done(frames); }
    }
    requestAnimationFrame(tick);
  })`)) as number;
  const since = Date.now() - 3000;
  const recentPushes = pushes.filter((t) => t >= since).length;
  assert.ok(recentPushes >= 6 && recentPushes <= 15, `progress pushes in 3 s: ${recentPushes} (expected about 12: four a second)`);
  assert.ok(redraws >= 6 && redraws <= 15, `table redraws in 3 s: ${redraws} (expected about 12: at most four a second)`);
  mkdirSync(join(REPO, 'test-output/ui'), { recursive: true });
  await page.screenshot({ path: join(REPO, 'test-output/ui/08-live-50-pcs.png'), fullPage: false });
  await page.close();
});
