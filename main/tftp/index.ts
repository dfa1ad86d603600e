// The public entry of main/tftp/: what other folders may use.
export { TftpServer } from './server.js';
