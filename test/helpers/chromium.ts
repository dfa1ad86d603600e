// Debian's Chromium for the UI tests against the built renderer: where it is, why a test
// cannot run without it (or without the build), and the flags every UI test launches it with.
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const REPO = resolve(new URL('.', import.meta.url).pathname, '../..');
export const CHROMIUM = '/usr/bin/chromium';

/** Why a test of the web renderer cannot run here, or undefined. */
export function rendererSkipReason(): string | undefined {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing (apt-get install chromium)`;
  if (!existsSync(join(REPO, 'dist/renderer/index.html'))) return 'the renderer is not built: run `npm run build:renderer` (npm test builds it)';
  return undefined;
}

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/**
 * Chromium inside network namespace `ns` (through a wrapper script written into `dir`), so a UI
 * served on that namespace's loopback is reached and nothing leaves the lab.
 */
export function launchChromiumInNamespace(ns: string, dir: string): Promise<Browser> {
  const wrapper = join(dir, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  return chromium.launch({ executablePath: wrapper, args: CHROMIUM_ARGS });
}
