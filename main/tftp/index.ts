// The public entry of main/tftp/: what other folders may use.
export { TftpServer } from './server.js';
export { shortAbandonPolicy } from './transfer.js';
export { DEFAULT_MULTICAST_GROUP, DEFAULT_MULTICAST_PORT, DEFAULT_MULTICAST_SESSIONS, multicastGroupProblem } from './multicast-session.js';
export type { TftpMulticastOptions } from './multicast-path.js';
export { createBatchSender, type BatchSender } from './batch-send.js';
