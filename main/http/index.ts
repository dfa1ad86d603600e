// The public entry of main/http/: what other folders may use.
export { scriptFileRoute } from './script-file-route.js';
export { HttpFileServer } from './server.js';
export { ZeroCopyBodies } from './zero-copy-response.js';
