// The Electron preload (preload/index.ts) under Node with a stand-in `electron`: what the
// renderer receives as window.bootbench is one fixed function per contract call and a
// subscribe that hands over the payload only, never ipcRenderer, an IpcRendererEvent (its
// `sender` reaches back into Electron) or a channel of the page's choosing (checklist item 20).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { register } from 'node:module';
import { API_CALL_NAMES, BRIDGE_GLOBAL, DIALOG_CHANNELS } from '../../preload/api.js';

type Listener = (...args: unknown[]) => void;
const stub = {
  exposed: [] as [string, any][],
  invoked: [] as [string, unknown][],
  listeners: new Map<string, Set<Listener>>(),
  reply: { result: 'ok' } as unknown,
};
const ipcRenderer = {
  invoke: async (channel: string, request: unknown) => {
    stub.invoked.push([channel, request]);
    return stub.reply;
  },
  on: (channel: string, fn: Listener) => {
    if (!stub.listeners.has(channel)) stub.listeners.set(channel, new Set());
    stub.listeners.get(channel)!.add(fn);
  },
  removeListener: (channel: string, fn: Listener) => stub.listeners.get(channel)?.delete(fn),
};
(globalThis as any).__electronPreloadStub = {
  contextBridge: { exposeInMainWorld: (name: string, value: unknown) => stub.exposed.push([name, value]) },
  ipcRenderer,
  webUtils: { getPathForFile: () => '/home/tech/disk.iso' },
};
const exportsOf = ['contextBridge', 'ipcRenderer', 'webUtils'].map((n) => `export const ${n} = globalThis.__electronPreloadStub.${n};`).join('\n');
const hooks = `export async function resolve(specifier, context, next) {
  if (specifier === 'electron') return { url: ${JSON.stringify(`data:text/javascript,${encodeURIComponent(exportsOf)}`)}, shortCircuit: true };
  return next(specifier, context);
}`;

let bridge: any;
before(async () => {
  register(`data:text/javascript,${encodeURIComponent(hooks)}`);
  await import('../../preload/index.js');
  assert.equal(stub.exposed.length, 1, 'one object is exposed');
  assert.equal(stub.exposed[0]![0], BRIDGE_GLOBAL);
  bridge = stub.exposed[0]![1];
});

/** Every value reachable from the bridge (functions included), to look for Electron objects. */
function reachable(value: unknown, seen = new Set<unknown>()): unknown[] {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value)) return [];
  seen.add(value);
  return [value, ...Object.values(value as object).flatMap((v) => reachable(v, seen))];
}

test('the bridge is calls, subscribe, pathForFile and two dialogs; no Electron object is reachable', () => {
  assert.deepEqual(Object.keys(bridge).sort(), ['calls', 'dialogs', 'pathForFile', 'subscribe']);
  assert.deepEqual(Object.keys(bridge.calls).sort(), [...API_CALL_NAMES].sort());
  assert.deepEqual(Object.keys(bridge.dialogs).sort(), ['openFiles', 'saveText']);
  const all = reachable(bridge);
  for (const electronObject of [ipcRenderer, ipcRenderer.invoke, ipcRenderer.on, (globalThis as any).__electronPreloadStub.webUtils]) {
    assert.ok(!all.includes(electronObject), 'an Electron object leaks through the bridge');
  }
});

test('each call goes to its own fixed channel; an error envelope becomes an Error with the code', async () => {
  stub.reply = { result: { running: false } };
  assert.deepEqual(await bridge.calls['services:status'](), { running: false });
  assert.deepEqual(stub.invoked.at(-1), ['services:status', undefined]);
  stub.reply = { error: { code: 'invalid-request', message: 'mode must be proxy or dhcp' } };
  await assert.rejects(bridge.calls['services:start']({ mode: 'x' }), /^Error: \[invalid-request\] mode must be proxy or dhcp$/);
  await bridge.dialogs.openFiles({ title: 'Add boot files' });
  assert.equal(stub.invoked.at(-1)![0], DIALOG_CHANNELS.openFiles);
});

test('subscribe passes the payload only, to known events only, and unsubscribes', () => {
  const got: unknown[][] = [];
  const unsubscribe = bridge.subscribe('services:state', (...args: unknown[]) => got.push(args));
  const [forward] = [...stub.listeners.get('services:state')!];
  forward!({ sender: { send() {} }, ports: [] }, { running: true });
  assert.deepEqual(got, [[{ running: true }]], 'the IpcRendererEvent stays in the preload');
  unsubscribe();
  assert.equal(stub.listeners.get('services:state')!.size, 0);
  assert.throws(() => bridge.subscribe('ELECTRON_BROWSER_WINDOW_ALERT', () => {}), /Unknown event/);
  assert.equal(stub.listeners.has('ELECTRON_BROWSER_WINDOW_ALERT'), false);
});
