// Starting a worker thread from one of our own modules, built or from source.
//
// Built (dist/, the installed app) the module is .js and a Worker loads it directly. Run from
// source (tsx: tests, bench, npm start from a checkout) it is .ts, which a worker cannot load
// by itself (it does not inherit the --import tsx hooks). It is then bundled once with
// esbuild (tsx's own compiler) into node_modules/.cache, so koffi still resolves from there;
// registering tsx inside the worker also works, but costs a loader thread and ~30 MiB per
// worker, so it is only the fallback.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * A worker running `built` (a .js URL next to the caller) or, when the caller itself runs
 * from source (`sourceMode`: its import.meta.url ends in .ts), `source` (the .ts beside it).
 */
export async function startModuleWorker(built: URL, source: URL, sourceMode: boolean, options: WorkerOptions): Promise<Worker> {
  if (!sourceMode) return new Worker(built, options);
  try {
    return new Worker(pathToFileURL(await bundledWorker(fileURLToPath(source))), options);
  } catch {
    const tsx = import.meta.resolve('tsx/esm/api');
    const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(source.href)}); });`;
    return new Worker(bootstrap, { ...options, eval: true });
  }
}

const bundles = new Map<string, Promise<string>>();

function bundledWorker(entry: string): Promise<string> {
  let bundling = bundles.get(entry);
  if (bundling) return bundling;
  bundling = (async () => {
    const esbuild = (await import('esbuild')) as typeof import('esbuild'); // @source-mode-only: built workers are plain .js
    const result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      write: false,
      // koffi is native; esbuild is only reached through this module (core's index re-exports it)
      // and never runs inside a worker.
      external: ['koffi', 'esbuild'],
      logLevel: 'silent',
    });
    const code = result.outputFiles[0].text;
    const dir = join(dirname(fileURLToPath(import.meta.resolve('koffi'))), '..', '.cache', 'bootbench');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${basename(entry, '.ts')}-${createHash('sha256').update(code).digest('hex').slice(0, 12)}.mjs`);
    writeFileSync(file, code);
    return file;
  })();
  bundles.set(entry, bundling);
  bundling.catch(() => bundles.delete(entry));
  return bundling;
}
