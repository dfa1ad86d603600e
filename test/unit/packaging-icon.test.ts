// The app icon electron-builder turns into the .ico, .icns and Linux icons: present where
// electron-builder.yml says, a square PNG of at least 512x512 with transparency (macOS wants
// 512 or more for its .icns), and exactly what build/draw-icon.mjs draws (no hand-edited or
// downloaded picture).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadBuilderConfig } from './packaging-selection.js';

const root = resolve(import.meta.dirname, '../..');
const config = loadBuilderConfig(root) as { icon?: string; mac?: { icon?: string }; win?: { icon?: string }; linux?: { icon?: string } };

/** Width, height and colour type from a PNG's IHDR chunk (ISO/IEC 15948 11.2.2). */
function pngHeader(file: Buffer): { width: number; height: number; colourType: number } {
  assert.deepEqual([...file.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  assert.equal(file.toString('ascii', 12, 16), 'IHDR');
  return { width: file.readUInt32BE(16), height: file.readUInt32BE(20), colourType: file[25]! };
}

test('every platform gets an icon of at least 512x512 with an alpha channel', () => {
  for (const platform of ['mac', 'win', 'linux'] as const) {
    const icon = config[platform]?.icon ?? config.icon;
    assert.ok(icon, `${platform}: an icon is configured`);
    const { width, height, colourType } = pngHeader(readFileSync(join(root, icon)));
    assert.equal(width, height, `${icon} is square`);
    assert.ok(width >= 512, `${icon} is ${width}x${height}`);
    assert.equal(colourType, 6, 'RGBA: the rounded corners are transparent');
  }
});

test('build/icon.png is what build/draw-icon.mjs draws', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bb-icon-'));
  try {
    const drawn = join(dir, 'icon.png');
    const run = spawnSync(process.execPath, [join(root, 'build/draw-icon.mjs'), drawn], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.ok(readFileSync(drawn).equals(readFileSync(join(root, config.icon!))), 'run `node build/draw-icon.mjs` after changing the drawing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
