// The folder-level import graph of main/, for the layer test (test/unit/layers.test.ts).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/**
 * The layers, lowest first. A folder may import its own files, the index.ts of a folder in a
 * lower layer, and nothing else of ours. Peers in one layer do not import each other.
 */
export const LAYERS: string[][] = [
  ['core'],
  ['net', 'files', 'store'],
  ['pxe'],
  ['dhcp', 'tftp', 'http'],
  ['library', 'imaging'],
  ['host'],
  ['api'],
  ['web'],
  ['app', 'cli'],
];

export interface ImportEdge {
  /** The importing file, relative to the project (main/...). */
  file: string;
  fromFolder: string;
  /** The imported folder; undefined for a package. */
  toFolder?: string;
  toFile?: string;
  specifier: string;
}

const SPECIFIER = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** Imports that leave their folder (relative ones into another folder of main/, and packages). */
export function importGraph(mainDir: string): ImportEdge[] {
  const project = dirname(mainDir);
  const folderOf = (abs: string) => relative(mainDir, abs).split(sep)[0];
  const edges: ImportEdge[] = [];
  for (const abs of tsFiles(mainDir)) {
    const source = readFileSync(abs, 'utf8');
    const fromFolder = folderOf(abs);
    for (const m of source.matchAll(SPECIFIER)) {
      const specifier = m[1] ?? m[2] ?? m[3];
      const file = relative(project, abs);
      if (!specifier.startsWith('.')) {
        edges.push({ file, fromFolder, specifier });
        continue;
      }
      const target = resolve(dirname(abs), specifier).replace(/\.js$/, '.ts');
      if (relative(mainDir, target).startsWith('..')) continue; // package.json and the like
      const toFolder = folderOf(target);
      if (toFolder === fromFolder) continue;
      edges.push({ file, fromFolder, toFolder, toFile: relative(project, target), specifier });
    }
  }
  return edges;
}

const layerOf = (folder: string) => LAYERS.findIndex((l) => l.includes(folder));

/** One line per import that breaks the rules, empty when the house is in order. */
export function layerViolations(edges: ImportEdge[]): string[] {
  const out: string[] = [];
  for (const e of edges) {
    if (!e.toFolder) continue;
    const from = layerOf(e.fromFolder);
    const to = layerOf(e.toFolder);
    if (to > from) out.push(`${e.file}: ${e.fromFolder} imports ${e.toFolder}, a higher layer (${e.specifier})`);
    else if (to === from) out.push(`${e.file}: ${e.fromFolder} imports ${e.toFolder}, a peer in its own layer (${e.specifier})`);
    if (e.toFile !== `main/${e.toFolder}/index.ts`) out.push(`${e.file}: imports ${e.toFile} past its index.ts (${e.specifier})`);
  }
  return out;
}

/** Each strongly connected set of folders, as one cycle through it ("a -> b -> a"). */
export function folderCycles(edges: ImportEdge[]): string[] {
  const next = new Map<string, Set<string>>();
  for (const e of edges) if (e.toFolder) (next.get(e.fromFolder) ?? next.set(e.fromFolder, new Set()).get(e.fromFolder)!).add(e.toFolder);
  const reaches = (from: string, to: string): string[] | undefined => {
    // Shortest path from -> ... -> to, breadth first.
    const prev = new Map<string, string>();
    const queue = [from];
    while (queue.length) {
      const at = queue.shift()!;
      for (const n of [...(next.get(at) ?? [])].sort()) {
        if (prev.has(n)) continue;
        prev.set(n, at);
        if (n === to) {
          const path = [to];
          for (let p = at; p !== from; p = prev.get(p)!) path.unshift(p);
          return [from, ...path];
        }
        queue.push(n);
      }
    }
    return undefined;
  };
  const seen = new Set<string>();
  const cycles: string[] = [];
  for (const folder of [...next.keys()].sort()) {
    if (seen.has(folder)) continue;
    const cycle = reaches(folder, folder);
    if (!cycle) continue;
    cycle.forEach((f) => seen.add(f));
    cycles.push(cycle.join(' -> '));
  }
  return cycles;
}
