// The public entry of main/api/: what other folders may use.
export { storeLibraryImporter } from './api-library.js';
export { storeApi, toApiMachine } from './api-store.js';
export { HostApi, connectApiEvents, unavailableLibraryImporter, type ApiServiceHost, type ApiStore, type HostApiOptions, type LibraryImporter } from './api.js';
export { wakeRequested, resolveWakeTargets, chooseWakeInterface, WakeRefusal, WAKE_REPEAT, type WakeDeps, type WakeTarget } from './wake.js';
