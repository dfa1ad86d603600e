// scripts/find-electron.mjs (npm start, the Electron smoke test): finds the binary the way the
// electron package does, and never loads the package, whose main downloads a missing binary.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain ESM helper shared with scripts/start.mjs
import { findElectron } from '../../scripts/find-electron.mjs';

const find = findElectron as (root: string) => { binary?: string; reason?: string };
const saved = { override: process.env.ELECTRON_OVERRIDE_DIST_PATH, display: process.env.DISPLAY, wayland: process.env.WAYLAND_DISPLAY };
const roots: string[] = [];

afterEach(() => {
  for (const [key, value] of [
    ['ELECTRON_OVERRIDE_DIST_PATH', saved.override],
    ['DISPLAY', saved.display],
    ['WAYLAND_DISPLAY', saved.wayland],
  ] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  while (roots.length) rmSync(roots.pop()!, { recursive: true, force: true });
});

/** A project with a stand-in electron package whose main, if loaded, leaves a mark (as the real one downloads). */
function project(pathTxt?: string, binaryInDist = false): { root: string; loaded: string; packageDir: string } {
  const root = mkdtempSync(join(tmpdir(), 'bb-find-electron-'));
  roots.push(root);
  writeFileSync(join(root, 'package.json'), '{"name":"p","type":"module"}');
  const packageDir = join(root, 'node_modules', 'electron');
  mkdirSync(packageDir, { recursive: true });
  const loaded = join(root, 'loaded');
  writeFileSync(join(packageDir, 'package.json'), '{"name":"electron","main":"index.js"}');
  writeFileSync(join(packageDir, 'index.js'), `require('fs').writeFileSync(${JSON.stringify(loaded)}, 'x'); module.exports = 'nowhere';`);
  if (pathTxt !== undefined) writeFileSync(join(packageDir, 'path.txt'), pathTxt);
  if (binaryInDist) {
    mkdirSync(join(packageDir, 'dist'));
    writeFileSync(join(packageDir, 'dist', 'electron'), '');
  }
  return { root, loaded, packageDir };
}

test('no path.txt (the download never ran): the reason says how to install, and the package is not loaded', () => {
  delete process.env.ELECTRON_OVERRIDE_DIST_PATH;
  const { root, loaded } = project();
  const found = find(root);
  assert.equal(found.binary, undefined);
  assert.match(found.reason!, /not installed.*npm install-scripts approve electron.*ELECTRON_OVERRIDE_DIST_PATH/);
  assert.equal(existsSync(loaded), false, 'the electron package main ran (it downloads a missing binary)');
});

test('path.txt naming a binary that is not in dist/: missing at that path', () => {
  delete process.env.ELECTRON_OVERRIDE_DIST_PATH;
  const { root, loaded, packageDir } = project('electron');
  assert.match(find(root).reason!, new RegExp(`missing at ${join(packageDir, 'dist', 'electron')}`));
  assert.equal(existsSync(loaded), false);
});

test('the binary in dist/: found; on Linux without a display, found but with the reason no window can open', () => {
  delete process.env.ELECTRON_OVERRIDE_DIST_PATH;
  const { root, packageDir } = project('electron\n', true);
  process.env.DISPLAY = ':99';
  assert.deepEqual(find(root), { binary: join(packageDir, 'dist', 'electron') });
  if (process.platform === 'linux') {
    delete process.env.DISPLAY;
    delete process.env.WAYLAND_DISPLAY;
    assert.match(find(root).reason!, /no graphical display/);
  }
});

test('ELECTRON_OVERRIDE_DIST_PATH: the binary is taken from there', () => {
  const { root } = project();
  const dist = mkdtempSync(join(tmpdir(), 'bb-electron-dist-'));
  roots.push(dist);
  writeFileSync(join(dist, 'electron'), '');
  process.env.ELECTRON_OVERRIDE_DIST_PATH = dist;
  process.env.DISPLAY = ':99';
  assert.deepEqual(find(root), { binary: join(dist, 'electron') });
});

test('no electron package at all: npm ci is the fix', () => {
  const root = mkdtempSync(join(tmpdir(), 'bb-find-electron-'));
  roots.push(root);
  writeFileSync(join(root, 'package.json'), '{"name":"p"}');
  assert.match(find(root).reason!, /electron package is not installed: run `npm ci`/);
});
