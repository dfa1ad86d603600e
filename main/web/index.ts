// The public entry of main/web/: what other folders may use.
export { createUiHost, type UiHost } from './ui-host.js';
export { startWebMode } from './web-mode.js';
export { isLoopbackAddress, type ApiCallHandler, type ApiEventSource } from './web-ui-server.js';
