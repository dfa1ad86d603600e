// Every screen of the real renderer, against the real host in web mode with sample data, at a
// desktop width (1280 px) and a phone width (390 px): axe-core finds no serious or critical
// violation, and at the phone width the page never scrolls sideways (wide tables scroll
// inside their own box). The serving state with a problem cannot be reached here without a
// network (starting the services would answer DHCP on this machine's NICs), so the Start
// screen in that state is checked against a stand-in host that reports it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { EventBus } from '../../main/core/events.js';
import type { ApiServiceHost } from '../../main/api/api.js';
import { startWebMode } from '../../main/web/web-mode.js';
import type { ServicesStatus } from '../../preload/api.js';
import { openScreen, SCREENS, startSampleUi, type SampleUi } from '../helpers/sample-ui.js';

const repo = resolve(new URL('.', import.meta.url).pathname, '../..');
const CHROMIUM = '/usr/bin/chromium';
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const skip = !existsSync(CHROMIUM)
  ? `${CHROMIUM} is missing (apt-get install chromium)`
  : !existsSync(join(repo, 'dist/renderer/index.html'))
    ? 'the renderer is not built: run `npm run build:renderer` (npm test builds it)'
    : undefined;

let work: string | undefined;
let sample: SampleUi | undefined;
let browser: Browser | undefined;

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'bb-a11y-'));
  sample = await startSampleUi({ dataDir: join(work, 'data') });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  await sample?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[]; failureSummary?: string }[];
}

async function seriousViolations(page: Page): Promise<string[]> {
  // Evaluated rather than added as a <script>: the page's CSP (script-src 'self') rightly refuses inline scripts.
  if (!(await page.evaluate('typeof window.axe === "object"'))) await page.evaluate(readFileSync(AXE, 'utf8'));
  const violations = (await page.evaluate(`window.axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations)`)) as AxeViolation[];
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map(
      (v) =>
        `${v.impact} ${v.id} (${v.help}): ${v.nodes
          .slice(0, 4)
          .map((n) => `${JSON.stringify(n.target)} ${n.failureSummary?.split('\n').slice(1, 2).join('') ?? ''}`)
          .join('; ')}`,
    );
}

/** Serious and critical violations on the screen shown, and sideways scrolling at phone width. */
async function screenProblems(page: Page, screen: string, width: number): Promise<string[]> {
  const problems = (await seriousViolations(page)).map((v) => `${screen}: ${v}`);
  if (width < 600) {
    const [doc, viewport] = (await page.evaluate('[document.documentElement.scrollWidth, window.innerWidth]')) as [number, number];
    if (doc > viewport) problems.push(`${screen}: the page is ${doc} px wide in a ${viewport} px window`);
  }
  return problems;
}

for (const width of [1280, 390]) {
  test(
    `every screen at ${width} px: no serious accessibility violation${width < 600 ? ', no sideways scrolling' : ''}`,
    { skip, timeout: 120_000 },
    async () => {
      const page = await browser!.newPage({ viewport: { width, height: 860 } });
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(`page error: ${e}`));
      await page.goto(sample!.url);
      for (const screen of SCREENS) {
        await openScreen(page, screen);
        problems.push(...(await screenProblems(page, screen, width)));
      }
      await page.close();
      assert.deepEqual(problems, []);
    },
  );
}

test('the Start screen while serving, with a failed service and its problem: fits 390 px, commands shown as code', { skip, timeout: 60_000 }, async () => {
  const problem = 'UDP port 69 on 192.0.2.1 is already in use by dnsmasq (pid 812): stop it (`sudo systemctl stop dnsmasq`) and try again';
  const status: ServicesStatus = {
    running: true,
    interfaceName: 'enp3s0',
    address: '192.0.2.1',
    mode: 'proxy',
    services: [
      { name: 'proxy-dhcp', state: 'running', port: 67 },
      { name: 'pxe', state: 'running', port: 4011 },
      { name: 'tftp', state: 'failed', port: 69, error: problem },
      { name: 'http', state: 'running', port: 8080 },
    ],
    problems: [problem],
  };
  const host: ApiServiceHost = {
    bus: new EventBus(),
    start: async () => status,
    stop: async () => status,
    status: () => status,
    config: () => ({
      mode: 'proxy',
      root: '/home/tech/.local/share/bootbench/library',
      httpPort: 8080,
      boot: { bios: 'bootbench/undionly.kpxe', uefi64: 'bootbench/snponly.efi' },
      dataDir: '/home/tech/.local/share/bootbench',
    }),
    activeTransfers: () => [],
  };
  const nics = [
    { name: 'enp3s0', mac: '3c:52:82:4a:10:7e', ipv4: [{ address: '192.0.2.1', prefixLength: 24 }], up: true, kind: 'wired' as const, mtu: 1500 },
    { name: 'enx00e04c680001', mac: '00:e0:4c:68:00:01', ipv4: [], up: false, kind: 'wired' as const, mtu: 1500 },
  ];
  const web = await startWebMode({ host, listInterfaces: () => nics, port: 0 });
  try {
    const problems: string[] = [];
    for (const width of [1280, 390]) {
      const page = await browser!.newPage({ viewport: { width, height: 860 } });
      await page.goto(web.url);
      await page.locator('[data-service=tftp] .badge', { hasText: 'failed' }).waitFor();
      problems.push(...(await screenProblems(page, `start (serving, ${width} px)`, width)));
      const shown = page.getByTestId('problems');
      assert.equal(await shown.locator('code').innerText(), 'sudo systemctl stop dnsmasq');
      assert.doesNotMatch(await shown.innerText(), /`/, 'no raw backticks on screen');
      await page.close();
    }
    assert.deepEqual(problems, []);
  } finally {
    await web.close();
  }
});
