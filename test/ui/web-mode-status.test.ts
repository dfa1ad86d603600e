// What the screens say must be true, in the real renderer (Chromium, web mode on loopback):
// HTTP rows without TFTP figures, finished transfers with a rate and a size probe worded as
// normal, the header and services when the host goes away and comes back, and the Live
// screen opening over a history whose old keys repeat. The host side is a stand-in with a
// real EventBus and a real store; everything from the API to the DOM is the real code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { REPO, launchChromium, rendererSkipReason } from '../helpers/chromium.js';
import { EventBus } from '../../main/core/events.js';
import type { ApiServiceHost } from '../../main/api/api.js';
import { storeApi } from '../../main/api/api-store.js';
import { openStore, type Store } from '../../main/store/index.js';
import { startWebMode, type WebMode } from '../../main/web/web-mode.js';
import type { TransferRow } from '../../preload/api.js';

const repo = REPO;
const skip = rendererSkipReason();

const MAC = '52:54:00:00:07:01';
let browser: Browser | undefined;
let store: Store | undefined;
const bus = new EventBus();
const started = Date.now();
const active: TransferRow[] = [
  {
    id: 'r1.http-1',
    mac: MAC,
    ip: '192.0.2.71',
    file: '/library/e2/iso/casper/initrd',
    protocol: 'http',
    size: 80_000_000,
    bytes: 20_000_000,
    rate: 10_000_000,
    retransmits: 0,
    startedAt: started,
  },
  {
    id: 'r1.tftp-1-192.0.2.72:2070',
    ip: '192.0.2.72',
    file: 'bootbench/snponly.efi',
    protocol: 'tftp',
    size: 230_000,
    bytes: 100_000,
    rate: 1_000_000,
    blksize: 1468,
    windowsize: 4,
    retransmits: 2,
    startedAt: started,
  },
];
const host: ApiServiceHost = {
  bus,
  start: async () => host.status(),
  stop: async () => host.status(),
  status: () => ({
    running: true,
    interfaceName: 'bench0',
    address: '192.0.2.1',
    mode: 'proxy',
    services: [
      { name: 'tftp', port: 69, state: 'running' },
      { name: 'http', port: 8080, state: 'running' },
    ],
    problems: [],
  }),
  config: () => ({ interfaceName: 'bench0', mode: 'proxy', root: '/srv', httpPort: 8080, boot: {}, dataDir: '/srv/bootbench' }),
  activeTransfers: () => active,
};
const interfaces = () => [
  { name: 'bench0', mac: '52:54:00:00:00:01', ipv4: [{ address: '192.0.2.1', prefixLength: 24 }], up: true, kind: 'wired' as const, mtu: 1500 },
];

before(async () => {
  if (skip) return;
  store = openStore(':memory:');
  // History written before transfer keys carried the serving run: the same key on two rows.
  for (const [n, end] of [
    [1, 1000],
    [2, 2000],
  ] as const) {
    const id = store.transfers.start({
      transferKey: 'http:http-1',
      mac: MAC,
      ip: '192.0.2.71',
      protocol: 'http',
      file: `/ipxe/boot-${n}.ipxe`,
      size: 300,
      startedAt: started - 10_000 + end,
    });
    store.transfers.finish(id, { outcome: 'done', bytesSent: 300, endedAt: started - 9_000 + end });
  }
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  store?.close();
});

const start = (port?: number) => startWebMode({ host, store: storeApi(store!), listInterfaces: interfaces, staticDir: join(repo, 'dist/renderer'), port });

test('the screens tell the truth: HTTP rows, finished transfers, a host that goes away and comes back', { skip, timeout: 60_000 }, async () => {
  let web: WebMode | undefined = await start();
  const port = Number(new URL(web.url).port);
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(msg.text());
  });
  try {
    await page.goto(web.url);
    const pill = page.locator('[data-testid=serving-pill]');
    await pill.filter({ hasText: 'Serving on bench0' }).waitFor();
    assert.match((await pill.getAttribute('class')) ?? '', /\bok\b/);

    // Live: the history with repeated old keys renders every row; HTTP rows carry no TFTP figures.
    await page.click('[data-screen=live]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=transfer-history] tbody tr').length === 2);
    const http = page.locator('[data-transfer="r1.http-1"]');
    assert.equal((await http.locator('[data-testid=block]').textContent())?.trim(), '–');
    assert.equal((await http.locator('[data-testid=resent]').textContent())?.trim(), '–');
    const tftp = page.locator('[data-transfer="r1.tftp-1-192.0.2.72:2070"]');
    assert.equal((await tftp.locator('[data-testid=block]').textContent())?.trim(), '1468 / 4');
    assert.equal((await tftp.locator('[data-testid=resent]').textContent())?.trim(), '2');

    // Finished: a rate for a whole download; EDK2's size probe is no "aborted" failure.
    bus.publish('http.done', { transferId: 'r1.http-9', mac: MAC, ip: '192.0.2.71', file: 'vmlinuz', bytes: 8_000_000, size: 8_000_000, durationMs: 2000 });
    bus.publish('tftp.probe', {
      transferId: 'r1.tftp-9',
      mac: MAC,
      ip: '192.0.2.71',
      file: 'bootbench/snponly.efi',
      bytes: 0,
      size: 230_000,
      errorCode: 8,
      reason: 'User aborted the transfer.',
    });
    const done = page.locator('[data-record="http:r1.http-9"]');
    await done.waitFor();
    assert.match((await done.locator('[data-testid=rate]').textContent()) ?? '', /MB\/s|MiB\/s/);
    const probe = page.locator('[data-record="tftp:r1.tftp-9"]');
    await probe.waitFor();
    assert.doesNotMatch((await probe.textContent()) ?? '', /aborted/i);
    assert.match((await probe.locator('[data-testid=reason]').textContent()) ?? '', /asked the size first/);

    // The host goes away: no green "Serving", no "running", no stale downloads.
    await web.close();
    web = undefined;
    await pill.filter({ hasText: 'Host not reachable' }).waitFor();
    assert.doesNotMatch((await pill.getAttribute('class')) ?? '', /\bok\b/);
    assert.equal(await page.locator('[data-testid=active-transfers]').count(), 0);
    await page.click('[data-screen=start]');
    await page.locator('[data-testid=host-gone]').waitFor();
    const states = await page.locator('[data-testid=services] td .badge').allTextContents();
    assert.ok(states.length > 0 && states.every((s) => s === 'unknown'), `service states while the host is gone: ${states.join(', ')}`);
    assert.equal(await page.locator('[data-testid=start-stop]').count(), 0, 'no Start or Stop while nothing answers');

    // It comes back on the same address: the page reconnects and reads everything again.
    web = await start(port);
    await pill.filter({ hasText: 'Serving on bench0' }).waitFor({ timeout: 20_000 });
    assert.match((await pill.getAttribute('class')) ?? '', /\bok\b/);
    assert.deepEqual(await page.locator('[data-testid=services] td .badge').allTextContents(), ['running', 'running']);
    await page.click('[data-screen=live]');
    // The stand-in host records nothing, so the history read again is the two stored rows.
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=transfer-history] tbody tr').length === 2);
    mkdirSync(join(repo, 'test-output/ui'), { recursive: true });
    await page.screenshot({ path: join(repo, 'test-output/ui/live-after-host-restart.png'), fullPage: true });
    assert.deepEqual(
      pageErrors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(e)),
      [],
    );
  } finally {
    await page.close();
    await web?.close();
  }
});
