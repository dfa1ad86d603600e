// The Library screen's answer files in Chromium against the real host in web mode (loopback,
// services not started): a template is attached to a kernel entry; one with a variable no
// machine provides is refused naming it; saved, the screen lists the machine that lacks a
// value and the row shows the format and the refusal. Screenshot: test-output/ui/library-answers.png
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

let work: string;
let ui: UiHost | undefined;
let web: WebMode | undefined;
let browser: Browser | undefined;
let failurePage: Page | undefined;
let passed = false;

before(async () => {
  if (skip) return;
  mkdirSync(shots, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'bb-ui-answers-'));
  const dataDir = join(work, 'data');
  writeFileSync(join(work, 'vmlinuz'), Buffer.concat([buildBzImage({ version: '6.1.0-bench', efiStub: true }), Buffer.alloc(64 * 1024, 0x90)]));
  writeFileSync(join(work, 'initrd.gz'), buildCpioNewc('init', Buffer.alloc(4096, 0x41)));
  ui = createUiHost({ dataDir });
  const imported = await ui.library.importFiles([join(work, 'vmlinuz'), join(work, 'initrd.gz')]);
  assert.equal(imported.entries.length, 1, imported.problems.join('\n'));
  await ui.library.update({ id: imported.entries[0].id, name: 'Debian installer' });
  const csv = ui.apiStore!.machines.importCsv(
    'mac,name,entry,locale\n52:54:00:00:00:01,pc01,Debian installer,de_DE.UTF-8\n52:54:00:00:00:02,pc02,Debian installer,\n',
  );
  assert.deepEqual(csv.problems, []);
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
  if (failurePage && !passed) await failurePage.screenshot({ path: join(shots, 'library-answers-failure.png'), fullPage: true }).catch(() => {});
  await browser?.close().catch(() => {});
  await web?.close();
  await ui?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('library: attach a preseed to an entry; an unknown variable is refused; missing values name the machine', { skip, timeout: 60_000 }, async () => {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 1000 } });
  failurePage = page;
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(web!.url);
  await page.click('[data-screen=library]');
  const row = page.locator('tr[data-entry="Debian installer"]');
  await row.getByRole('button', { name: 'Add answer file of Debian installer' }).click();
  const editor = page.getByTestId('answer-editor');
  await editor.waitFor();
  assert.match(await page.getByTestId('answer-variables').innerText(), /\{\{name\}\}.*\{\{http_base_url\}\}.*\{\{locale\}\}/s);

  await editor.getByLabel('Answer file format').selectOption('preseed');
  await editor.getByLabel('Answer file template').fill('d-i netcfg/get_hostname string {{name}}\nd-i x string {{favourite_colour}}\n');
  await editor.getByRole('button', { name: 'Save answer file' }).click();
  const error = page.getByTestId('answer-error');
  await error.waitFor();
  assert.match(await error.innerText(), /Not saved\..*\{\{favourite_colour\}\}/s);

  await editor.getByLabel('Answer file template').fill('d-i netcfg/get_hostname string {{name}}\nd-i debian-installer/locale string {{locale}}\n');
  await editor.getByRole('button', { name: 'Save answer file' }).click();
  const refusals = page.getByTestId('answer-refusals');
  await refusals.waitFor();
  assert.match(await refusals.innerText(), /pc02 has no value for \{\{locale\}\}/);
  assert.equal(await error.count(), 0, 'the earlier error is gone');
  assert.match(await row.getByTestId('answer-file').innerText(), /answer file: Debian preseed\s+1 refused/);
  await page.screenshot({ path: join(shots, 'library-answers.png'), fullPage: true });

  // Reopened after a reload, the editor shows what the host stored.
  await page.reload();
  await page.click('[data-screen=library]');
  await page.locator('tr[data-entry="Debian installer"]').getByRole('button', { name: 'Edit answer file of Debian installer' }).click();
  assert.match(await page.getByTestId('answer-editor').getByLabel('Answer file template').inputValue(), /string \{\{locale\}\}/);
  assert.deepEqual(pageErrors, []);
  passed = true;
});
