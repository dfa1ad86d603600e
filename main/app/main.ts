// Electron main process: the only code that imports `electron`. It runs the service host
// in-process (the same one `bootbench serve` and web mode run), shows the renderer from
// app://bootbench, and carries the contract of preload/api.ts over IPC.
import { app, BrowserWindow, Menu, dialog, ipcMain, protocol, session, type IpcMainInvokeEvent, type MenuItemConstructorOptions } from 'electron';
import { readFile, writeFile } from 'node:fs/promises';
import { extname, join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { API_CALL_NAMES, DIALOG_CHANNELS, type ApiEnvelope, type ServicesStatus } from '../../preload/api.js';
import { HostApi, connectApiEvents } from '../host/api.js';
import { listInterfaces } from '../net/index.js';
import { createUiHost, type UiHost } from '../web/ui-host.js';
import { APP_CONTENT_SECURITY_POLICY, APP_ORIGIN_URL, APP_SCHEME, rendererFileFor, senderAllowed } from './security.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/main/app
const RENDERER_DIR = join(here, '../../renderer');
const PRELOAD = join(here, '../../preload/index.cjs');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json',
};

// Before `ready`: our scheme behaves like https (secure context, own origin), and every
// renderer is sandboxed whatever a window asks for.
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
app.enableSandbox();

let mainWindow: BrowserWindow | undefined;
let ui: UiHost | undefined;
let api: HostApi | undefined;

if (!app.requestSingleInstanceLock()) {
  // A second Bootbench would fight the first one for ports 67/69/4011.
  app.quit();
} else {
  app.on('second-instance', () => {
    if (!mainWindow) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
  app.whenReady().then(start, (err) => {
    dialog.showErrorBox('Bootbench could not start', String(err));
    app.quit();
  });
}

// Every webContents ever created (windows, devtools, anything) is held to the same rules.
app.on('web-contents-created', (_event, contents) => {
  contents.on('will-navigate', (e) => e.preventDefault());
  contents.on('will-redirect', (e) => e.preventDefault());
  contents.on('will-attach-webview', (e) => e.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
});

app.on('window-all-closed', () => app.quit());

let quitting = false;
app.on('before-quit', (event) => {
  if (quitting || !ui) return;
  // Stop the services and flush the history before the process goes.
  event.preventDefault();
  quitting = true;
  void ui.close().finally(() => app.quit());
});

async function start(): Promise<void> {
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);

  protocol.handle(APP_SCHEME, async (request) => {
    const file = rendererFileFor(request.url, RENDERER_DIR);
    if (!file) return new Response('Not found', { status: 404 });
    try {
      const body = await readFile(file);
      return new Response(body, {
        headers: {
          'content-type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
          'content-security-policy': APP_CONTENT_SECURITY_POLICY,
          'x-content-type-options': 'nosniff',
        },
      });
    } catch {
      return new Response('Not found', { status: 404 });
    }
  });

  // BOOTBENCH_DATA: same variable as `bootbench serve`; tests point it at a temporary folder.
  ui = createUiHost({ dataDir: process.env.BOOTBENCH_DATA ?? join(app.getPath('userData'), 'data') });
  api = new HostApi({
    host: ui.host,
    store: ui.apiStore,
    library: ui.library,
    listInterfaces: () => listInterfaces(),
    shell: 'electron',
    version: app.getVersion(),
    fileDialogs: true,
    notices: () => ui?.notices ?? [],
    afterStart: () => ui?.saveSettings(),
  });
  registerIpc(api);
  connectApiEvents({
    host: ui.host,
    store: ui.apiStore,
    sink: (event, payload) => {
      if (event === 'services:state') buildMenu(payload as ServicesStatus);
      if (mainWindow && !mainWindow.isDestroyed()) mainWindow.webContents.send(event, payload);
    },
  });
  buildMenu(ui.host.status());
  createWindow();
}

function createWindow(): void {
  mainWindow = new BrowserWindow({
    width: 1280,
    height: 860,
    minWidth: 900,
    minHeight: 600,
    title: 'Bootbench',
    show: false,
    webPreferences: {
      preload: PRELOAD,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
      devTools: !app.isPackaged,
    },
  });
  mainWindow.once('ready-to-show', () => mainWindow?.show());
  mainWindow.on('closed', () => (mainWindow = undefined));
  void mainWindow.loadURL(APP_ORIGIN_URL);
}

function isTrusted(event: IpcMainInvokeEvent): boolean {
  const frame = event.senderFrame;
  return senderAllowed({
    frameUrl: frame?.url,
    isMainFrame: frame !== null && frame === event.sender.mainFrame,
    isOurWindow: mainWindow !== undefined && event.sender === mainWindow.webContents,
  });
}

const REFUSED: ApiEnvelope<never> = { error: { code: 'failed', message: 'Refused: the request did not come from the Bootbench window.' } };

const openFilesRequest = z
  .object({
    title: z.string().max(200),
    filters: z.array(z.object({ name: z.string().max(100), extensions: z.array(z.string().max(20)).max(50) }).strict()).max(20).optional(),
  })
  .strict();
const saveTextRequest = z.object({ title: z.string().max(200), defaultPath: z.string().max(255), text: z.string().max(50_000_000) }).strict();

function registerIpc(hostApi: HostApi): void {
  for (const call of API_CALL_NAMES) {
    ipcMain.handle(call, (event, request: unknown) => (isTrusted(event) ? hostApi.handle(call, request) : REFUSED));
  }
  ipcMain.handle(DIALOG_CHANNELS.openFiles, async (event, request: unknown) => {
    if (!isTrusted(event) || !mainWindow) return [];
    const options = openFilesRequest.parse(request);
    const result = await dialog.showOpenDialog(mainWindow, { title: options.title, filters: options.filters, properties: ['openFile', 'multiSelections'] });
    return result.canceled ? [] : result.filePaths;
  });
  ipcMain.handle(DIALOG_CHANNELS.saveText, async (event, request: unknown) => {
    if (!isTrusted(event) || !mainWindow) return false;
    const options = saveTextRequest.parse(request);
    // Only a bare file name is taken from the page; the folder is the user's choice.
    const defaultPath = join(app.getPath('documents'), options.defaultPath.replace(/[\\/]/g, '_'));
    const result = await dialog.showSaveDialog(mainWindow, { title: options.title, defaultPath });
    if (result.canceled || !result.filePath) return false;
    await writeFile(result.filePath, options.text, 'utf8');
    return true;
  });
}

async function menuStartStop(start: boolean): Promise<void> {
  if (!api) return;
  const reply = start ? await api.handle('services:start', {}) : await api.handle('services:stop', undefined);
  if ('error' in reply && mainWindow) {
    await dialog.showMessageBox(mainWindow, { type: 'error', title: 'Bootbench', message: start ? 'The services did not start' : 'The services did not stop', detail: reply.error.message });
  }
}

function buildMenu(status: ServicesStatus): void {
  const template: MenuItemConstructorOptions[] = [
    ...(process.platform === 'darwin' ? [{ role: 'appMenu' as const }] : []),
    { label: 'File', submenu: [{ role: process.platform === 'darwin' ? 'close' : 'quit' }] },
    {
      label: 'Services',
      submenu: [
        { label: status.running ? `Serving on ${status.interfaceName ?? '?'}` : 'Stopped', enabled: false },
        { type: 'separator' },
        { label: 'Start', accelerator: 'CmdOrCtrl+Shift+S', enabled: !status.running, click: () => void menuStartStop(true) },
        { label: 'Stop', accelerator: 'CmdOrCtrl+Shift+X', enabled: status.running, click: () => void menuStartStop(false) },
      ],
    },
    { label: 'View', submenu: [{ role: 'reload' }, { role: 'toggleDevTools', visible: !app.isPackaged }, { type: 'separator' }, { role: 'resetZoom' }, { role: 'zoomIn' }, { role: 'zoomOut' }] },
  ];
  Menu.setApplicationMenu(Menu.buildFromTemplate(template));
}

