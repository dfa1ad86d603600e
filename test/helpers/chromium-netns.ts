// Debian's Chromium for the UI tests, headless, optionally inside a network namespace (through
// a wrapper script), so a UI served on that namespace's loopback is reached and nothing leaves it.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];

/** Launches Chromium inside `ns`; the wrapper script is written into `dir`. */
export function launchChromiumInNamespace(ns: string, dir: string): Promise<Browser> {
  const wrapper = join(dir, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  return chromium.launch({ executablePath: wrapper, args: CHROMIUM_ARGS });
}
