// The store: one SQLite file per data folder. Other code uses these functions and types; only
// the repositories in this folder write SQL.
export {
  openStore,
  resolveDatabasePath,
  DATABASE_FILE_NAME,
  StoreVersionError,
  StoreOpenError,
  onLocalWrites,
  type Store,
  type OpenStoreOptions,
} from './open-store.js';
export { watchStoreChanges } from './change-watch.js';
export { recordIgmpListening, recordIgmpQuerierHeard, forgetIgmpListening, readIgmpListening, type IgmpListenRecord } from './igmp-listen.js';
export { LATEST_SCHEMA_VERSION, MIGRATIONS, migrate, readSchemaVersion, type Migration } from './migrations.js';
export { normalizeMac, normalizeUuid, isPlaceholderUuid } from '../core/index.js';
export { MachineRepository, MachineInputError, type Machine, type MachineGroup, type MachinePatch, type NewMachine, type SeenClient } from './machines.js';
export { EntryRepository, EntryInputError, ENTRY_KINDS, type BootEntry, type EntryFile, type EntryKind, type NewBootEntry } from './entries.js';
export {
  TransferRepository,
  type Transfer,
  type TransferFinish,
  type TransferOutcome,
  type FinishedOutcome,
  type TransferProgress,
  type TransferProtocol,
  type TransferStart,
} from './transfers.js';
export { BootEventRepository, DEFAULT_RETENTION, type NewBootEvent, type RetentionPolicy, type StoredBootEvent } from './boot-events.js';
export { SettingsRepository, SettingError, SETTING_SCHEMAS, type SettingKey, type Settings } from './settings.js';
export { LeaseRepository, type Lease } from './leases.js';
export { RoomSeatRepository, type RoomSeat } from './room-seats.js';
export {
  resolveBootAssignment,
  defaultBootEntry,
  completeBootOnce,
  completeBootOnceIfLastFile,
  type AssignmentSource,
  type StoredBootAssignment,
} from './boot-assignment.js';
export { StoreReadCache, storeReadCache, type StoreReadCacheOptions } from './read-cache.js';
export {
  parseCsv,
  exportMachinesCsv,
  importMachinesCsv,
  exportMachineHistory,
  CSV_COLUMNS,
  type CsvImportResult,
  type CsvRowProblem,
  type MachineHistory,
} from './machine-csv.js';
export { attachStoreToBus, type AttachStoreOptions, type RecorderDegradation, type RecorderStats, type StoreBusAttachment } from './bus-recorder.js';
export {
  checkDataFolderSpace,
  classifyWriteFailure,
  LOW_DATA_FOLDER_SPACE_BYTES,
  savingTo,
  StoreWriteError,
  type DataFolderSpace,
  type WriteFailure,
  type WriteFailureKind,
} from './write-failure.js';
export { machineFields, machineFieldName, type MachineFieldRepository } from './machine-fields.js';
export { installStates, type InstallState } from './install-state.js';
