// Path safety and file lookup shared by TFTP and HTTP.
export { FileResolver, type FileResolverOptions, type GenerateFile, type LocateFile, type LocatedFile, type OpenResult } from './resolver.js';
export { type FileContext, type OpenFile, type TransferSource } from './open-file.js';
export {
  normalizeRequestPath,
  MAX_REQUEST_PATH_BYTES,
  MAX_SEGMENT_BYTES,
  type RefusalCode,
  type PathRefusal,
  type NormalizedRequestPath,
} from './path-safety.js';
export { DiskFile, GeneratedFile } from './open-file.js';
