// Every screen of the real renderer, against the real host in web mode with sample data, at a
// desktop width (1280 px) and a phone width (390 px): axe-core finds no serious or critical
// violation, and at the phone width the page never scrolls sideways (wide tables scroll
// inside their own box).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
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
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'] });
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
    .map((v) => `${v.impact} ${v.id} (${v.help}): ${v.nodes.slice(0, 4).map((n) => `${JSON.stringify(n.target)} ${n.failureSummary?.split('\n').slice(1, 2).join('') ?? ''}`).join('; ')}`);
}

for (const width of [1280, 390]) {
  test(`every screen at ${width} px: no serious accessibility violation${width < 600 ? ', no sideways scrolling' : ''}`, { skip, timeout: 120_000 }, async () => {
    const page = await browser!.newPage({ viewport: { width, height: 860 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e}`));
    await page.goto(sample!.url);
    for (const screen of SCREENS) {
      await openScreen(page, screen);
      for (const v of await seriousViolations(page)) problems.push(`${screen}: ${v}`);
      if (width < 600) {
        const [doc, viewport] = (await page.evaluate('[document.documentElement.scrollWidth, window.innerWidth]')) as [number, number];
        if (doc > viewport) problems.push(`${screen}: the page is ${doc} px wide in a ${viewport} px window`);
      }
    }
    await page.close();
    assert.deepEqual(problems, []);
  });
}
