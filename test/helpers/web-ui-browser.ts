// Chromium against the built renderer on loopback: what the web mode UI tests need, and why
// a test is skipped when it is not there.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const REPO = resolve(new URL('.', import.meta.url).pathname, '../..');
export const RENDERER_DIR = join(REPO, 'dist/renderer');
export const CHROMIUM = '/usr/bin/chromium';

/** Why a loopback UI test cannot run here, or undefined. */
export function webUiSkipReason(): string | undefined {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing (apt-get install chromium)`;
  if (!existsSync(join(RENDERER_DIR, 'index.html'))) return 'the renderer is not built: run `npm run build:renderer` (npm test builds it)';
  return undefined;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}
