// Where the Electron binary is, or why there is none that can open a window here.
// Used by `npm start` and by the Electron smoke test (which reports the reason as a skip).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** @returns {{ binary?: string, reason?: string }} */
export function findElectron(root) {
  const require = createRequire(join(root, 'package.json'));
  let binary;
  try {
    binary = require('electron'); // the package's main exports the binary's path
  } catch {
    // electron/index.js throws when its postinstall download never ran (path.txt missing).
    return {
      reason:
        "Electron's binary is not installed: its download script is not approved in this project. " +
        'Where downloads are allowed run ' +
        '`npm install-scripts approve electron && npm rebuild electron`, or set ELECTRON_OVERRIDE_DIST_PATH to an unpacked Electron.',
    };
  }
  if (typeof binary !== 'string' || !existsSync(binary)) {
    return { reason: `Electron's binary is missing at ${binary}; set ELECTRON_OVERRIDE_DIST_PATH to an unpacked Electron, or reinstall it where downloads are allowed.` };
  }
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    return { binary, reason: 'there is no graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set), so no window can open' };
  }
  return { binary };
}
