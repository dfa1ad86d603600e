// Where the Electron binary is, or why there is none that can open a window here.
// Used by `npm start` and by the Electron smoke test (which reports the reason as a skip).
//
// This reads what the electron package's own lookup reads (path.txt, dist/,
// ELECTRON_OVERRIDE_DIST_PATH) instead of `require('electron')`: since Electron 45 that
// require downloads the binary when it is missing, so `npm start` and the tests reached out
// to the internet (and printed "Downloading Electron binary... fetch failed") every time.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const NOT_INSTALLED =
  "Electron's binary is not installed: its download script is not approved in this project. " +
  'Where downloads are allowed run ' +
  '`npm install-scripts approve electron && npm rebuild electron`, or set ELECTRON_OVERRIDE_DIST_PATH to an unpacked Electron.';

/** @returns {{ binary?: string, reason?: string }} */
export function findElectron(root) {
  const require = createRequire(join(root, 'package.json'));
  let packageDir;
  try {
    packageDir = dirname(require.resolve('electron/package.json'));
  } catch {
    return { reason: 'the electron package is not installed: run `npm ci` in the project folder.' };
  }
  const pathFile = join(packageDir, 'path.txt');
  // path.txt names the executable inside dist/; the package's install script writes it.
  const executable = existsSync(pathFile) ? readFileSync(pathFile, 'utf8').trim() : '';
  let binary;
  if (process.env.ELECTRON_OVERRIDE_DIST_PATH) binary = join(process.env.ELECTRON_OVERRIDE_DIST_PATH, executable || 'electron');
  else if (executable) binary = join(packageDir, 'dist', executable);
  else return { reason: NOT_INSTALLED };
  if (!existsSync(binary)) {
    return {
      reason: `Electron's binary is missing at ${binary}; set ELECTRON_OVERRIDE_DIST_PATH to an unpacked Electron, or reinstall it where downloads are allowed.`,
    };
  }
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    return { binary, reason: 'there is no graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set), so no window can open' };
  }
  return { binary };
}
