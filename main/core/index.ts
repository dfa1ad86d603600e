// The public entry of main/core/: what other folders may use.
export { systemClock, type Clock, type TimerHandle } from './clock.js';
export {
  EventBus,
  isDhcpEvent,
  isPerRequestDhcpEvent,
  isTransferEvent,
  isTransferEventType,
  transferIdKey,
  transferOutcomeOf,
  transferProtocolOf,
  type BootEvent,
  type BootEventFields,
  type BootEventOf,
  type BootEventType,
  type DhcpClientFields,
  type Publish,
  type PublishAt,
  type TransferEvent,
  type TransferFields,
  type TransferProtocol,
  type TftpMulticastFields,
} from './events.js';
export { silentLogger, type Logger } from './logger.js';
export { PerSecondBudget } from './per-second-budget.js';
export { nextMessage, onWorkerGone, startPortWorker, stopPortWorker, type PortWorker } from './worker-handshake.js';
export { isPlaceholderUuid, normalizeMac, normalizeUuid } from './identifiers.js';
export {
  ARCHITECTURES,
  BOOT_CLASS_FOR_ARCHITECTURE,
  BOOT_CLASS_NAMES,
  LIBRARY_ARCHITECTURES,
  architectureForBootClass,
  architectureName,
  bootClassForArch,
  isHttpBootClass,
  type BootClass,
  type LibraryArchitecture,
} from './boot-classes.js';
