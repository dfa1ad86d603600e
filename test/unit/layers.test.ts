// The house's rules, read from the import graph of main/: folders form layers, a folder
// imports only its own layer's peers' public entries or lower layers, no folder cycle, and
// electron only in main/app/. docs/architecture.md draws the same order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { PROJECT_ROOT } from '../helpers/serve-process.js';
import { LAYERS, importGraph, layerViolations, folderCycles } from '../helpers/import-graph.js';

const MAIN = join(PROJECT_ROOT, 'main');

test('every folder of main/ has a layer, and every layer folder exists', () => {
  const folders = readdirSync(MAIN).filter((n) => statSync(join(MAIN, n)).isDirectory());
  const known = LAYERS.flat();
  assert.deepEqual(
    folders.filter((f) => !known.includes(f)),
    [],
    'folders missing from LAYERS (test/helpers/import-graph.ts)',
  );
  assert.deepEqual(
    known.filter((f) => !folders.includes(f)),
    [],
    'LAYERS names folders that do not exist',
  );
  const loose = readdirSync(MAIN).filter((n) => n.endsWith('.ts'));
  assert.deepEqual(loose, [], 'every module of main/ lives in a folder');
});

test('no import goes up a layer, across a layer, or past another folder’s index.ts', () => {
  assert.deepEqual(layerViolations(importGraph(MAIN)), []);
});

test('no folder cycle', () => {
  assert.deepEqual(folderCycles(importGraph(MAIN)), []);
});

test('electron is imported in main/app/ only', () => {
  const offenders = importGraph(MAIN)
    .filter((e) => e.specifier === 'electron' && e.fromFolder !== 'app')
    .map((e) => e.file);
  assert.deepEqual(offenders, []);
});

test('the checker catches an upward import and a folder cycle (a made-up graph)', () => {
  const edges = [
    { file: 'main/core/clock.ts', fromFolder: 'core', toFolder: 'host', toFile: 'main/host/index.ts', specifier: '../host/index.js' },
    { file: 'main/tftp/server.ts', fromFolder: 'tftp', toFolder: 'dhcp', toFile: 'main/dhcp/index.ts', specifier: '../dhcp/index.js' },
    { file: 'main/dhcp/service.ts', fromFolder: 'dhcp', toFolder: 'tftp', toFile: 'main/tftp/index.ts', specifier: '../tftp/index.js' },
    { file: 'main/host/x.ts', fromFolder: 'host', toFolder: 'dhcp', toFile: 'main/dhcp/service.ts', specifier: '../dhcp/service.js' },
  ];
  const violations = layerViolations(edges);
  assert.ok(
    violations.some((v) => v.startsWith('main/core/clock.ts: core imports host')),
    violations.join('\n'),
  );
  assert.ok(
    violations.some((v) => v.includes('main/tftp/server.ts: tftp imports dhcp')),
    violations.join('\n'),
  );
  assert.ok(
    violations.some((v) => v.includes('past its index.ts')),
    violations.join('\n'),
  );
  assert.deepEqual(folderCycles(edges), ['dhcp -> tftp -> dhcp']);
});

// Keep the helper honest about the paths it resolves.
test('the graph sees relative imports of this tree', () => {
  const edges = importGraph(MAIN);
  assert.ok(edges.length > 50, `only ${edges.length} cross-folder imports found`);
  for (const e of edges.slice(0, 20)) assert.ok(!relative(MAIN, resolve(dirname(join(PROJECT_ROOT, e.file)))).startsWith('..' + sep), e.file);
  assert.ok(
    readFileSync(join(PROJECT_ROOT, 'docs', 'architecture.md'), 'utf8').includes(LAYERS.map((l) => l.join(', ')).join(' <- ')),
    'docs/architecture.md states the layer order as LAYERS does',
  );
});
