// Electron main process: the only code that imports `electron`. It shows the renderer from
// app://bootbench and carries the contract of preload/api.ts over IPC to the service host
// (the same one `bootbench serve` and web mode run). On Linux that host is a separate
// process started through the bootbench-host launcher, which alone holds the network
// capabilities (main/app/host-link.ts); on Windows and macOS it runs in this process.
import {
  app,
  BrowserWindow,
  Menu,
  clipboard,
  dialog,
  ipcMain,
  protocol,
  session,
  shell,
  type IpcMainInvokeEvent,
  type MenuItemConstructorOptions,
} from 'electron';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { extname, join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { API_CALL_NAMES, DIALOG_CHANNELS, type ApiEnvelope, type ApiEventName, type ApiEvents, type ServicesStatus } from '../../preload/api.js';
import { connectApiEvents } from '../api/index.js';
import { createAppHost } from './host-process.js';
import { HostProcessClient, chooseHostLaunch, describeExit, privilegeRemedy, type HostHello, type HostLaunch, type RemedyTools } from './host-link.js';
import { APP_CONTENT_SECURITY_POLICY, APP_ORIGIN_URL, APP_SCHEME, externalUrlAllowed, permissionAllowed, rendererFileFor, senderAllowed } from './security.js';

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
let host: HostConnection | undefined;

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
  contents.setWindowOpenHandler(({ url }) => {
    // Never a window of ours; a plain https link goes to the user's browser.
    if (externalUrlAllowed(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
});

app.on('window-all-closed', () => app.quit());

let quitting = false;
app.on('before-quit', (event) => {
  if (quitting || !host) return;
  // Stop the services and flush the history before the process goes.
  event.preventDefault();
  quitting = true;
  void host.close().finally(() => app.quit());
});

/** The contract, wherever the host runs. */
interface HostConnection {
  call(call: string, request: unknown): Promise<ApiEnvelope<unknown>>;
  close(): Promise<void>;
}

let lastStatus: ServicesStatus | undefined;

function pushToWindow<E extends ApiEventName>(event: E, payload: ApiEvents[E]): void {
  if (event === 'services:state') buildMenu((lastStatus = payload as ServicesStatus));
  if (mainWindow && !mainWindow.isDestroyed()) mainWindow.webContents.send(event, payload);
}

async function start(): Promise<void> {
  session.defaultSession.setPermissionRequestHandler((_wc, permission, callback) => callback(permissionAllowed(permission)));
  session.defaultSession.setPermissionCheckHandler((_wc, permission) => permissionAllowed(permission));

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
  const dataDir = process.env.BOOTBENCH_DATA ?? join(app.getPath('userData'), 'data');
  const launch = chooseHostLaunch({
    platform: process.platform,
    isPackaged: app.isPackaged,
    execPath: process.execPath,
    hostScript: hostProcessScript(),
    typeScriptLoader: typeScriptLoader(),
    dataDir,
    appVersion: app.getVersion(),
    env: process.env,
  });
  registerIpc();
  createWindow();
  host = launch.kind === 'in-process' ? startInProcessHost(dataDir) : startHostProcess(launch);
  const status = await host.call('services:status', undefined);
  if ('result' in status) buildMenu(status.result as ServicesStatus);
}

/** Windows and macOS: no privilege to separate, so the host runs here (see chooseHostLaunch). */
function startInProcessHost(dataDir: string): HostConnection {
  const { ui, api } = createAppHost(dataDir, app.getVersion());
  const unsubscribe = connectApiEvents({ host: ui.host, store: ui.apiStore, sink: pushToWindow });
  return {
    call: (call, request) => api.handle(call, request),
    close: async () => {
      unsubscribe();
      await ui.close();
    },
  };
}

/** hostProcessScript: host-process.js beside this file once built, .ts when run from sources (tests). */
function hostProcessScript(): string {
  const built = join(here, 'host-process.js');
  return existsSync(built) ? built : join(here, 'host-process.ts'); // @source-mode-only: tests run main.ts under tsx
}

function typeScriptLoader(): string | undefined {
  try {
    return import.meta.resolve('tsx');
  } catch {
    return undefined;
  }
}

// A host that dies on its own is started again, a few times, with the reason on the Start screen.
const RESTARTS_PER_MINUTE = 3;
let recentRestarts: number[] = [];
let remedyOffered = false;

function startHostProcess(launch: Extract<HostLaunch, { kind: 'child' }>): HostConnection {
  let client = spawnHost(launch);
  const watch = (current: HostProcessClient) => {
    void current.exited.then(async (exit) => {
      if (exit.expected || quitting) return;
      const now = Date.now();
      recentRestarts = recentRestarts.filter((t) => now - t < 60_000);
      const restarting = recentRestarts.length < RESTARTS_PER_MINUTE;
      pushToWindow('services:state', {
        running: false,
        mode: lastStatus?.mode ?? 'proxy',
        services: [],
        problems: [
          `The service host stopped (${describeExit(exit.code, exit.signal)}). ${restarting ? 'Starting it again.' : 'It stopped too often: restart Bootbench.'}` +
            (exit.stderrTail.trim() ? ` Last words: ${exit.stderrTail.trim().split('\n').slice(-3).join(' / ')}` : ''),
        ],
      });
      if (!restarting) return;
      recentRestarts.push(now);
      client = spawnHost(launch);
      watch(client);
      await afterHello(client, launch);
    });
  };
  watch(client);
  // Calls wait in the pipe until the host is ready; the privilege dialog must not hold them up.
  void afterHello(client, launch);
  // Restarts swap the client under the same connection.
  return {
    call: (call, request) => client.call(call, request),
    close: async () => {
      await client.close();
    },
  };

  async function afterHello(current: HostProcessClient, how: typeof launch): Promise<void> {
    let hello: HostHello;
    try {
      hello = await current.hello;
    } catch (err) {
      if (mainWindow)
        await dialog.showMessageBox(mainWindow, {
          type: 'error',
          title: 'Bootbench',
          message: 'The service host did not start',
          detail: (err as Error).message,
        });
      return;
    }
    if (remedyOffered) return;
    const remedy = privilegeRemedy(hello.privileges, hello.packaging, remedyTools());
    if (!remedy || !mainWindow) return;
    remedyOffered = true;
    const buttons = remedy.consentCommand ? ['Allow…', 'Copy the command', 'Not now'] : ['Copy the command', 'Not now'];
    const { response } = await dialog.showMessageBox(mainWindow, {
      type: 'warning',
      title: 'Bootbench',
      message: remedy.message,
      detail: remedy.detail,
      buttons,
      defaultId: 0,
      cancelId: buttons.length - 1,
    });
    const choice = buttons[response];
    if (choice === 'Copy the command') clipboard.writeText(remedy.manualCommand);
    if (choice !== 'Allow…' || !remedy.consentCommand) return;
    const [program, ...args] = remedy.consentCommand;
    const granted = await new Promise<string | undefined>((done) =>
      execFile(program!, args, (err, _out, stderr) => done(err ? stderr.trim() || err.message : undefined)),
    );
    if (granted !== undefined) {
      await dialog.showMessageBox(mainWindow, {
        type: 'error',
        title: 'Bootbench',
        message: 'The permission was not granted',
        detail: `${granted}\n\nYou can run this instead:\n${remedy.manualCommand}`,
      });
      return;
    }
    // File capabilities count from the next exec: a new host process picks them up.
    const old = client;
    client = spawnHost(how);
    await old.close();
    watch(client);
    await afterHello(client, how);
  }
}

function spawnHost(launch: Extract<HostLaunch, { kind: 'child' }>): HostProcessClient {
  const child = spawn(launch.command, launch.args, { env: launch.env, stdio: ['pipe', 'pipe', 'pipe'] });
  return new HostProcessClient(child, {
    onEvent: pushToWindow,
    onLog: (text) => process.stderr.write(text),
  });
}

function remedyTools(): RemedyTools {
  const find = (...candidates: string[]) => candidates.find((path) => existsSync(path));
  let noNewPrivs = false;
  try {
    noNewPrivs = /^NoNewPrivs:\s*1\s*$/m.test(readFileSync('/proc/self/status', 'utf8'));
  } catch {
    // not Linux, or no /proc: nothing to say
  }
  return {
    noNewPrivs,
    pkexec: find('/usr/bin/pkexec', '/bin/pkexec'),
    setcap: find('/usr/sbin/setcap', '/sbin/setcap'),
    sysctl: find('/usr/sbin/sysctl', '/sbin/sysctl'),
  };
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
const STARTING: ApiEnvelope<never> = { error: { code: 'unavailable', message: 'The service host is still starting; try again in a moment.' } };

const openFilesRequest = z
  .object({
    title: z.string().max(200),
    filters: z
      .array(z.object({ name: z.string().max(100), extensions: z.array(z.string().max(20)).max(50) }).strict())
      .max(20)
      .optional(),
  })
  .strict();
const saveTextRequest = z.object({ title: z.string().max(200), defaultPath: z.string().max(255), text: z.string().max(50_000_000) }).strict();

function registerIpc(): void {
  for (const call of API_CALL_NAMES) {
    ipcMain.handle(call, (event, request: unknown) => (!isTrusted(event) ? REFUSED : host ? host.call(call, request) : STARTING));
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
  if (!host) return;
  const reply = start ? await host.call('services:start', {}) : await host.call('services:stop', undefined);
  if ('error' in reply && mainWindow) {
    await dialog.showMessageBox(mainWindow, {
      type: 'error',
      title: 'Bootbench',
      message: start ? 'The services did not start' : 'The services did not stop',
      detail: reply.error.message,
    });
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
    {
      label: 'View',
      submenu: [
        { role: 'reload' },
        { role: 'toggleDevTools', visible: !app.isPackaged },
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
      ],
    },
  ];
  Menu.setApplicationMenu(Menu.buildFromTemplate(template));
}
