// The service host as both UI shells run it (the Electron app in-process, headless web
// mode): the store opened in the data folder, the last settings as the starting point
// (the host answers per-machine assignments from the store's library), settings saved
// after a start, files added to the library taken in by the running services. The same
// wiring as `bootbench serve` and `bootbench entries import`.
import { mkdirSync, rmSync } from 'node:fs';
import { ServiceHost, configFromSettings, saveConfigToSettings, defaultServeConfig, type ServeConfig } from '../host/index.js';
import { storeApi, storeLibraryImporter, unavailableLibraryImporter, type ApiStore, type LibraryImporter } from '../api/index.js';
import { silentLogger, type Logger } from '../core/index.js';
import { openStore, type Store } from '../store/index.js';
import { ensureLocalDiskEntry, uploadsDir } from '../library/index.js';

export interface UiHostOptions {
  dataDir: string;
  /** Adjusts the stored configuration (command-line flags). */
  configure?: (stored: ServeConfig) => ServeConfig;
  logger?: Logger;
}

export interface UiHost {
  host: ServiceHost;
  store?: Store;
  apiStore?: ApiStore;
  /** The Library screen's import (refuses in words when the store could not be opened). */
  library: LibraryImporter;
  /** For the UI's banner: what does not work and why. */
  notices: string[];
  /** Saves the configuration a successful start used, as `bootbench serve` does. */
  saveSettings(): void;
  close(): Promise<void>;
}

export function createUiHost(options: UiHostOptions): UiHost {
  const logger = options.logger ?? silentLogger;
  const notices: string[] = [];
  mkdirSync(options.dataDir, { recursive: true });
  let store: Store | undefined;
  try {
    store = openStore(options.dataDir, { logger });
  } catch (err) {
    // Boot service still runs without history; the banner says why machines are missing.
    notices.push(`${(err as Error).message}. Serving without history: machines, timeline, CSV import and adding boot files are unavailable.`);
  }
  // No upload is in flight before the UI is up: what is there is left from a host that stopped
  // mid-upload.
  rmSync(uploadsDir(options.dataDir), { recursive: true, force: true });
  if (store) {
    // "Boot from the own disk" is a choice on the Machines screen from the first start, not
    // only after a boot once has fallen back to it.
    try {
      ensureLocalDiskEntry(store);
    } catch (err) {
      logger.warn(`the built-in Local disk choice could not be recorded: ${(err as Error).message}`);
    }
  }
  const stored = store ? configFromSettings(store, options.dataDir) : defaultServeConfig(options.dataDir);
  const config = options.configure ? options.configure(stored) : stored;
  const host = new ServiceHost({ config, logger, store });
  return {
    host,
    store,
    apiStore: store
      ? storeApi(store, {
          dataDir: () => host.config().dataDir,
          imagingStream: (jobId) => host.imagingStream(jobId),
          imagingUnicastReason: () => host.imagingUnicastReason(),
        })
      : undefined,
    library: store
      ? storeLibraryImporter({
          store,
          dataDir: () => host.config().dataDir,
          // While serving, new entries are mounted at once; a later start mounts them anyway.
          afterChange: async () => {
            if (host.status().running) await host.mountLibrary();
          },
        })
      : unavailableLibraryImporter('Boot files cannot be added: the machine database, which holds the library, could not be opened (see the notice above).'),
    notices,
    saveSettings: () => {
      if (!store?.open) return;
      try {
        saveConfigToSettings(store, host.config());
      } catch (err) {
        // The host is already serving; a database that refuses the write (a full disk) costs
        // the next start its defaults, not this start its boot service.
        logger.warn(`the settings of this start were not saved: ${(err as Error).message}`);
      }
    },
    async close() {
      await host.close();
      store?.close();
    },
  };
}
