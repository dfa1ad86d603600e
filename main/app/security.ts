// Security decisions of the Electron shell as plain functions (no `electron` import), so
// they are unit-tested under Node. docs/security.md goes through Electron's security
// checklist item by item and names the test of each.
import { normalize, relative, resolve, sep, isAbsolute } from 'node:path';

/** The renderer is served from this origin only (a standard, secure custom scheme). */
export const APP_SCHEME = 'app';
export const APP_HOST = 'bootbench';
export const APP_ORIGIN_URL = `${APP_SCHEME}://${APP_HOST}/index.html`;

/** Same policy as web mode, minus connect-src (the app talks over IPC only). */
export const APP_CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'none'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

/** True for URLs of our own renderer (app://bootbench/...), nothing else. */
export function isAppUrl(url: string | undefined): boolean {
  if (!url) return false;
  try {
    const parsed = new URL(url);
    return parsed.protocol === `${APP_SCHEME}:` && parsed.host === APP_HOST && parsed.username === '' && parsed.password === '';
  } catch {
    return false;
  }
}

export interface SenderFacts {
  /** URL of the frame that sent the message (undefined when the frame is gone). */
  frameUrl: string | undefined;
  /** The frame is the window's top frame (not an iframe). */
  isMainFrame: boolean;
  /** The message came from our own window's webContents. */
  isOurWindow: boolean;
}

/** Whether an IPC message may be handled: our window, its top frame, our origin. */
export function senderAllowed(facts: SenderFacts): boolean {
  return facts.isOurWindow && facts.isMainFrame && isAppUrl(facts.frameUrl);
}

/**
 * The file of the renderer build an app:// URL names, or undefined when the URL is not
 * ours or leaves the build folder (encoded dots, backslashes, absolute paths).
 */
export function rendererFileFor(url: string, rendererDir: string): string | undefined {
  if (!isAppUrl(url)) return undefined;
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(url).pathname);
  } catch {
    return undefined;
  }
  if (pathname.includes('\0') || pathname.includes('\\')) return undefined;
  if (pathname === '/' || pathname === '') pathname = '/index.html';
  const root = resolve(rendererDir);
  const file = normalize(resolve(root, `.${pathname}`));
  const rel = relative(root, file);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || rel.split(sep).includes('..')) return undefined;
  return file;
}

/**
 * Session permission requests and checks (camera, notifications, geolocation, clipboard
 * reads, HID, serial...): the UI needs none, so every one is refused, including names
 * Electron adds later (checklist item "Handle session permission requests").
 */
export function permissionAllowed(_permission: string): boolean {
  return false;
}

/**
 * Whether a link the page tries to open may go to the user's browser (shell.openExternal).
 * Only plain https URLs to a named host: no file:, smb:, custom schemes (they start local
 * programs), no credentials in the URL, nothing our own origin.
 */
export function externalUrlAllowed(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  return parsed.protocol === 'https:' && parsed.hostname !== '' && parsed.username === '' && parsed.password === '';
}
