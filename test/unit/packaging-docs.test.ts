// The install guide the README points to: every OS has its install, first start, privilege
// and uninstall steps, and every picture it shows is in docs/images (a PNG).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const guide = readFileSync(join(root, 'docs/install.md'), 'utf8');

/** The text of one `## ` section of the guide. */
function section(title: string): string {
  const start = guide.indexOf(`\n## ${title}`);
  assert.ok(start >= 0, `docs/install.md has a section "${title}"`);
  const next = guide.indexOf('\n## ', start + 1);
  return guide.slice(start, next < 0 ? undefined : next);
}

test('the README links the install guide and the security checklist', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  assert.match(readme, /\]\(docs\/install\.md\)/);
  assert.match(readme, /\]\(docs\/security\.md\)/);
});

test('each OS: install, first start, the privilege step, uninstall', () => {
  const expected: Record<string, RegExp[]> = {
    Windows: [/### Install/, /### First start/, /firewall/i, /### Uninstall/],
    macOS: [/### Install/, /### First start/, /Local Network/, /### Uninstall/],
    'Linux (.deb': [/### Install/, /### First start and the privilege step/, /bootbench-host/, /### Uninstall/],
    'Linux (AppImage)': [/### Install/, /### First start and the privilege step/, /ip_unprivileged_port_start=67/, /### Uninstall/],
  };
  for (const [title, patterns] of Object.entries(expected)) {
    const text = section(title);
    for (const pattern of patterns) assert.match(text, pattern, `${title}: ${pattern}`);
  }
});

test('every picture the guide shows exists and is a PNG', () => {
  const pictures = [...guide.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]!);
  assert.ok(pictures.length >= 4, 'first start, privilege step (.deb and AppImage), after the grant');
  for (const picture of pictures) {
    const file = join(root, 'docs', picture);
    assert.ok(existsSync(file), `${picture} is missing`);
    assert.equal(readFileSync(file).subarray(1, 4).toString('ascii'), 'PNG', picture);
  }
});
