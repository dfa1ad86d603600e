// The public entry of main/host/: what other folders may use.
export {
  BOOT_CLASSES,
  ConfigError,
  checkHttpBootFile,
  defaultServeConfig,
  defaultServedFolder,
  imagingMulticastChoice,
  isAllowedHttpBootFile,
  parsePool,
  type BootClassName,
  type HttpBootSetting,
  type ImagingMulticastSetting,
  type ServeConfig,
} from './config.js';
export { ServiceHost } from './service-host.js';
export { configFromSettings, saveConfigToSettings } from './stored-config.js';
export { DEFAULT_MULTICAST_SESSIONS, multicastGroupProblem } from '../tftp/index.js';
