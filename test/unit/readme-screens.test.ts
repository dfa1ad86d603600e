// The README's "Screens" section shows every screen at both widths scripts/screenshots.ts
// takes, and every picture it links is in docs/images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SCREENS } from '../helpers/sample-ui.js';

const root = resolve(import.meta.dirname, '../..');

test('the README shows each screen at 1280 and 390 px, from pictures that exist', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Screens');
  assert.ok(start >= 0, 'README.md has a "Screens" section');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  assert.match(section, /npm run screenshots/);
  for (const screen of SCREENS) {
    for (const width of [1280, 390]) assert.ok(section.includes(`docs/images/screen-${screen}-${width}.png`), `the ${screen} screen at ${width} px is shown`);
  }
  for (const [, path] of section.matchAll(/src="([^"]+)"/g)) assert.ok(existsSync(join(root, path)), `${path} exists`);
});
