// The Electron shell (main/app/main.ts) run under plain Node with a stand-in `electron`
// module: where the binary is missing this is how its wiring is checked: secure window
// options, every contract call registered, untrusted senders refused, the app:// protocol
// with its CSP, navigation and new windows blocked, the Start/Stop menu, pushed events.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { register } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_CALL_NAMES, DIALOG_CHANNELS } from '../../preload/api.js';

const ELECTRON_EXPORTS = ['app', 'BrowserWindow', 'Menu', 'clipboard', 'dialog', 'ipcMain', 'protocol', 'session', 'shell'];
const stubModule = `data:text/javascript,${encodeURIComponent(ELECTRON_EXPORTS.map((n) => `export const ${n} = globalThis.__electronStub.${n};`).join('\n'))}`;
const hooks = `export async function resolve(specifier, context, next) {
  if (specifier === 'electron') return { url: ${JSON.stringify(stubModule)}, shortCircuit: true };
  return next(specifier, context);
}`;

type Handler = (...args: any[]) => any;
const calls = {
  ipc: new Map<string, Handler>(),
  appEvents: new Map<string, Handler>(),
  protocolHandlers: new Map<string, Handler>(),
  privileged: [] as unknown[],
  sandboxEnabled: false,
  windows: [] as any[],
  menus: [] as any[],
  sent: [] as [string, unknown][],
  opened: [] as string[],
  permissionHandlers: [] as Handler[],
};
const dataDir = mkdtempSync(join(tmpdir(), 'bb-app-shell-'));

class FakeWindow {
  readonly webContents: any;
  loaded?: string;
  constructor(readonly options: any) {
    this.webContents = { mainFrame: { url: 'app://bootbench/index.html' }, send: (channel: string, payload: unknown) => calls.sent.push([channel, payload]) };
    calls.windows.push(this);
  }
  once() {}
  on() {}
  isDestroyed() {
    return false;
  }
  loadURL(url: string) {
    this.loaded = url;
    return Promise.resolve();
  }
}

(globalThis as any).__electronStub = {
  app: {
    requestSingleInstanceLock: () => true,
    whenReady: () => Promise.resolve(),
    on: (event: string, fn: Handler) => calls.appEvents.set(event, fn),
    enableSandbox: () => (calls.sandboxEnabled = true),
    getPath: () => dataDir,
    getVersion: () => '0.1.0',
    isPackaged: false,
    quit: () => {},
  },
  BrowserWindow: FakeWindow,
  clipboard: { writeText: () => {} },
  shell: { openExternal: async (url: string) => calls.opened.push(url) },
  Menu: { buildFromTemplate: (t: unknown) => t, setApplicationMenu: (m: unknown) => calls.menus.push(m) },
  dialog: {
    showErrorBox: () => {},
    showMessageBox: async () => ({}),
    showOpenDialog: async () => ({ canceled: true, filePaths: [] }),
    showSaveDialog: async () => ({ canceled: true }),
  },
  ipcMain: { handle: (channel: string, fn: Handler) => calls.ipc.set(channel, fn) },
  protocol: {
    registerSchemesAsPrivileged: (schemes: unknown) => calls.privileged.push(schemes),
    handle: (scheme: string, fn: Handler) => calls.protocolHandlers.set(scheme, fn),
  },
  session: {
    defaultSession: {
      setPermissionRequestHandler: (fn: Handler) => calls.permissionHandlers.push(fn),
      setPermissionCheckHandler: (fn: Handler) => calls.permissionHandlers.push(fn),
    },
  },
};

before(async () => {
  process.env.BOOTBENCH_DATA = join(dataDir, 'data');
  register(`data:text/javascript,${encodeURIComponent(hooks)}`);
  await import('../../main/app/main.js');
  // start() runs after whenReady(): let it finish.
  for (let i = 0; i < 50 && calls.windows.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
});

after(async () => {
  // before-quit stops the host and closes the store.
  calls.appEvents.get('before-quit')?.({ preventDefault() {} });
  await new Promise((r) => setTimeout(r, 100));
  rmSync(dataDir, { recursive: true, force: true });
});

const trusted = () => {
  const win = calls.windows[0];
  return { sender: win.webContents, senderFrame: win.webContents.mainFrame };
};

test('the window is sandboxed, isolated, without Node, loading app://bootbench', () => {
  assert.equal(calls.sandboxEnabled, true);
  assert.equal(calls.windows.length, 1);
  const prefs = calls.windows[0].options.webPreferences;
  assert.equal(prefs.contextIsolation, true);
  assert.equal(prefs.sandbox, true);
  assert.equal(prefs.nodeIntegration, false);
  assert.equal(prefs.webviewTag, false);
  assert.equal(prefs.nodeIntegrationInWorker, false);
  assert.equal(prefs.webSecurity, true);
  assert.equal(prefs.allowRunningInsecureContent, false);
  assert.equal(prefs.experimentalFeatures, undefined);
  assert.equal(prefs.enableBlinkFeatures, undefined);
  assert.match(prefs.preload, /preload[\\/]index\.cjs$/);
  assert.equal(calls.windows[0].loaded, 'app://bootbench/index.html');
  assert.deepEqual((calls.privileged[0] as any[])[0].scheme, 'app');
});

test("every contract call and the dialogs are registered; only our window's top frame is answered", async () => {
  for (const name of [...API_CALL_NAMES, DIALOG_CHANNELS.openFiles, DIALOG_CHANNELS.saveText]) assert.ok(calls.ipc.has(name), name);
  const status = await calls.ipc.get('services:status')!(trusted(), undefined);
  assert.equal(typeof status.result.running, 'boolean');
  const info = await calls.ipc.get('app:info')!(trusted(), undefined);
  assert.equal(info.result.shell, 'electron');
  const iframe = { ...trusted(), senderFrame: { url: 'app://bootbench/index.html' } }; // not the main frame
  const navigatedAway = { ...trusted(), senderFrame: Object.assign(trusted().senderFrame, {}) };
  navigatedAway.senderFrame = calls.windows[0].webContents.mainFrame;
  assert.match((await calls.ipc.get('services:status')!(iframe, undefined)).error.message, /did not come from the Bootbench window/);
  const frame = calls.windows[0].webContents.mainFrame;
  frame.url = 'https://example.com/';
  assert.ok('error' in (await calls.ipc.get('services:status')!(navigatedAway, undefined)), 'the top frame shows a foreign page');
  frame.url = 'app://bootbench/index.html';
  const otherWindow = { sender: { mainFrame: {} }, senderFrame: {} };
  assert.ok('error' in (await calls.ipc.get('machines:list')!(otherWindow, undefined)));
  assert.deepEqual(await calls.ipc.get(DIALOG_CHANNELS.openFiles)!(otherWindow, { title: 'x' }), []);
  // Arguments are still validated at the host's edge.
  const bad = await calls.ipc.get('services:start')!(trusted(), { mode: 'nope' });
  assert.equal(bad.error.code, 'invalid-request');
});

test('app:// serves the renderer with the CSP and nothing outside it', async () => {
  const handler = calls.protocolHandlers.get('app')!;
  const index: Response = await handler({ url: 'app://bootbench/index.html' });
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-security-policy')!, /script-src 'self'/);
  assert.equal((await handler({ url: 'app://bootbench/..%2f..%2fpackage.json' })).status, 404);
  assert.equal((await handler({ url: 'app://elsewhere/index.html' })).status, 404);
});

test('navigation and new windows are refused for every webContents', () => {
  const listeners = new Map<string, Handler>();
  let openHandler: Handler | undefined;
  calls.appEvents.get('web-contents-created')!(
    {},
    { on: (e: string, fn: Handler) => listeners.set(e, fn), setWindowOpenHandler: (fn: Handler) => (openHandler = fn) },
  );
  for (const event of ['will-navigate', 'will-redirect', 'will-attach-webview']) {
    let prevented = false;
    listeners.get(event)!({ preventDefault: () => (prevented = true) });
    assert.equal(prevented, true, event);
  }
  assert.deepEqual(openHandler!({ url: 'https://example.com/docs' }), { action: 'deny' });
  assert.deepEqual(openHandler!({ url: 'file:///etc/passwd' }), { action: 'deny' });
  assert.deepEqual(calls.opened, ['https://example.com/docs'], 'only the https link went to the browser');
});

test('every permission request and check is refused', () => {
  assert.equal(calls.permissionHandlers.length, 2);
  const [request, check] = calls.permissionHandlers;
  let granted: boolean | undefined;
  request!({}, 'media', (allow: boolean) => (granted = allow));
  assert.equal(granted, false);
  assert.equal(check!({}, 'notifications'), false);
});

test(
  'on Linux the service host is a child process: the main process runs no services',
  { skip: process.platform !== 'linux' && 'the host runs in-process off Linux' },
  async () => {
    const { execFileSync } = await import('node:child_process');
    const children = execFileSync('ps', ['--ppid', String(process.pid), '-o', 'args='], { encoding: 'utf8' });
    assert.match(children, /host-process\.ts --data /, children);
    const info = await calls.ipc.get('app:info')!(trusted(), undefined);
    assert.equal(info.result.shell, 'electron');
  },
);

test('the menu has Start and Stop; service state is pushed to the window and updates the menu', async () => {
  const menu = calls.menus.at(-1) as any[];
  const services = menu.find((m) => m.label === 'Services');
  const labels = services.submenu.map((i: any) => i.label);
  assert.ok(labels.includes('Start') && labels.includes('Stop'));
  assert.equal(services.submenu.find((i: any) => i.label === 'Start').enabled, true);
  // Stopping (already stopped) still publishes the state: it must reach the renderer.
  const before = calls.sent.length;
  await calls.ipc.get('services:stop')!(trusted(), undefined);
  assert.ok(calls.sent.slice(before).some(([channel]) => channel === 'services:state'));
});
