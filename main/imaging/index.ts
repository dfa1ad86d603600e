export { ChunkStore, ChunkError, CHUNK_NAME } from './chunk-store.js';
export { ImageCatalog, ImageError, checkImageName, requiredDiskBytes, type ImageManifest, type ImagePartition, type ImageSummary } from './image-catalog.js';
export {
  ANY_MACHINE,
  ImagingJobs,
  DEFAULT_START_AFTER_SECONDS,
  startRule,
  PHASES,
  WORKING_PHASES,
  type ImageJob,
  type MachineReport,
  type JobMachine,
  type JobKind,
  type MachinePhase,
  type ThenAction,
  type StreamStartRule,
  type StreamStartRequest,
} from './jobs.js';
export { ImagingRoutes, type ImagingRoutesOptions } from './agent-routes.js';
export { parseCapturedManifest, parseReport, renderManifest, renderTask } from './agent-protocol.js';
export { ImagingService, type StreamQuerier } from './imaging-service.js';
export type { StreamStats } from './multicast-sender.js';
