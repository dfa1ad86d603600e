// The library: boot entries from dropped files, iPXE/GRUB scripts, boot once.
// Other folders import from here.
export {
  detectFile,
  decodePe,
  cpioFormat,
  describeBytes,
  UnusableFileError,
  LIBRARY_ARCHITECTURES,
  BIOS_NBP_EXTENSIONS,
  BIOS_NBP_MAX_SIZE,
  type Detection,
  type DetectedKind,
  type LibraryArchitecture,
  type NbpDetection,
  type KernelDetection,
  type InitrdDetection,
  type IsoDetection,
  type IsoLinuxInfo,
  type IsoWindowsInfo,
  type WimDetection,
  type IpxeScriptDetection,
  type LiveFlavour,
} from './detect.js';
export { UdfImage, UdfFormatError } from './udf.js';
export {
  IsoImage,
  IsoFormatError,
  openIsoFile,
  listIsoDirectory,
  extractIsoFile,
  decodeBootCatalog,
  type IsoDirectoryEntry,
  type IsoExtent,
  type ElToritoCatalog,
} from './iso9660.js';
export {
  importPaths,
  importPath,
  hashFile,
  toSecureBootChain,
  libraryDir,
  uploadsDir,
  resolveEntryFilePath,
  architectureForBootClass,
  BOOT_CLASS_FOR_ARCHITECTURE,
  type ImportOptions,
  type ImportProgress,
  type ImportResult,
  type ImportedEntry,
  type ImportedFile,
  type StorageMode,
} from './import.js';
export { importIntoLibrary, findSameContent, LibraryImportError, type LibraryImportOptions, type LibraryImportResult } from './import-into-library.js';
export {
  buildIpxeScript,
  buildIpxeBootstrap,
  buildGrubConfig,
  buildGrubBootstrapConfig,
  buildGrubTaskConfig,
  grubCanBoot,
  liveKernelArguments,
  architectureFromIpxe,
  filesForArchitecture,
  entryBootsOn,
  entryFileUrl,
  isoInnerUrl,
  entryFileServedPath,
  isoInnerServedPath,
  type BootRequest,
  type ScriptEntry,
  type ScriptContext,
  type GrubContext,
  type TaskKernel,
} from './ipxe-script.js';
export { nextAssignmentAfterFetch, finishingPaths, assignOnce, type BootOnceAssignment, type BootOnceTransition, type FetchEvent } from './boot-once.js';
export {
  BOOT_BINARIES,
  BOOT_BINARY_MOUNTS,
  CHAINLOAD_BOOT_FILES,
  chainloadPolicy,
  locateBootBinary,
  defaultResourcesBootDir,
  type BootBinaryName,
  type BootBinaryLocation,
} from './boot-binaries.js';
export {
  LibraryBootService,
  ensureLocalDiskEntry,
  assignOnceInStore,
  LOCAL_DISK_ENTRY_NAME,
  type LibraryBootServiceOptions,
  type LibraryMachineAssignment,
  type MountableFiles,
} from './boot-service.js';
export {
  editEntry,
  entryDiskSize,
  pairInitrd,
  removeEntry,
  entryUsers,
  describeEntryUsers,
  isBuiltInEntry,
  ARGUMENT_KINDS,
  type EntryEdit,
  type EntryEditResult,
  type EntryRemoval,
  type EntryUsers,
} from './entry-edit.js';
export { chainloadBootPrograms } from './boot-binaries.js';
export { samePath } from './boot-once.js';
export { MENU_TIMEOUT_SECONDS } from './boot-service.js';
export { nextAssignmentAfterInstall } from './boot-once.js';
export {
  ANSWER_DIALECTS,
  ANSWER_DIALECT_LABELS,
  ANSWER_FILE_NAMES,
  MACHINE_VARIABLES,
  HOST_VARIABLES,
  WINPESHL_INI,
  answerFolderPath,
  checkTemplate,
  fieldVariableName,
  knownVariables,
  renderAnswerFiles,
  templateVariables,
  type AnswerDialect,
  type AnswerHost,
  type AnswerMachine,
  type AnswerRefusal,
  type AnswerRendering,
  type AnswerTemplate,
  type RenderedAnswerFile,
} from './answer-files.js';
export { answersDir, readAnswerTemplate, writeAnswerTemplate, removeAnswerTemplate, answerTemplateIds, type StoredAnswerTemplate } from './answer-files-store.js';
export {
  AnswerFileService,
  answerMachine,
  answerRefusals,
  answerRequest,
  machinesBooting,
  type AnswerFileServiceOptions,
  type AnswerResponse,
} from './answer-files-service.js';
