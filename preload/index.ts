// Electron preload: runs sandboxed beside the renderer and exposes the contract as
// `window.bootbench`, one function per call plus a subscribe for events. The renderer
// never sees ipcRenderer, an IpcRendererEvent (it carries `sender`), or a channel it
// could choose freely. Bundled to one CommonJS file (sandboxed preloads cannot import).
import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron';
import {
  API_CALL_NAMES,
  BRIDGE_GLOBAL,
  DIALOG_CHANNELS,
  isApiEventName,
  type ApiEnvelope,
  type ApiEventName,
  type ApiEvents,
  type BootbenchBridge,
  type BootbenchCalls,
} from './api.js';

// Only an Error's message crosses contextBridge, so the code travels in it: "[code] message".
async function invoke(call: string, request: unknown): Promise<unknown> {
  const envelope = (await ipcRenderer.invoke(call, request)) as ApiEnvelope<unknown>;
  if ('error' in envelope) throw new Error(`[${envelope.error.code}] ${envelope.error.message}`);
  return envelope.result;
}

const calls = Object.fromEntries(API_CALL_NAMES.map((name) => [name, (request?: unknown) => invoke(name, request)])) as unknown as BootbenchCalls;

const bridge: BootbenchBridge = {
  calls,
  subscribe<E extends ApiEventName>(event: E, listener: (payload: ApiEvents[E]) => void): () => void {
    if (!isApiEventName(event)) throw new Error(`Unknown event "${String(event)}".`);
    const forward = (_event: IpcRendererEvent, payload: ApiEvents[E]) => listener(payload);
    ipcRenderer.on(event, forward);
    return () => {
      ipcRenderer.removeListener(event, forward);
    };
  },
  pathForFile: (file) => webUtils.getPathForFile(file),
  dialogs: {
    openFiles: (options) => ipcRenderer.invoke(DIALOG_CHANNELS.openFiles, options),
    saveText: (options) => ipcRenderer.invoke(DIALOG_CHANNELS.saveText, options),
  },
};

contextBridge.exposeInMainWorld(BRIDGE_GLOBAL, bridge);
