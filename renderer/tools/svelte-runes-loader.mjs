// Node module hook that compiles `*.svelte.ts` / `*.svelte.js` modules (rune state
// classes) with Svelte's compiler, so unit tests run them under plain node:test, the
// same way Vite compiles them for the browser. Register before importing them:
//   register('../../renderer/tools/svelte-runes-loader.mjs', import.meta.url)
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const RUNES_MODULE = /\.svelte\.(ts|js)$/;

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !RUNES_MODULE.test(new URL(url).pathname)) return nextLoad(url, context);
  const filename = fileURLToPath(url);
  let code = await readFile(filename, 'utf8');
  if (filename.endsWith('.ts')) {
    const ts = (await import('typescript')).default;
    code = ts.transpileModule(code, {
      fileName: filename,
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, useDefineForClassFields: true, sourceMap: false },
    }).outputText;
  }
  const { compileModule } = await import('svelte/compiler');
  const compiled = compileModule(code, { filename, generate: 'client', dev: false });
  return { format: 'module', source: compiled.js.code, shortCircuit: true };
}
