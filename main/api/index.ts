// The public entry of main/api/: what other folders may use.
export { storeLibraryImporter } from './api-library.js';
export { storeApi } from './api-store.js';
export { HostApi, connectApiEvents, unavailableLibraryImporter, type ApiServiceHost, type ApiStore, type HostApiOptions, type LibraryImporter } from './api.js';
