// Imaging as part of the running host: the agent's HTTP routes, the imaging environment's
// kernel and initramfs in the served namespace, and the iPXE script that sends a PC with a
// pending job into that environment instead of its usual assignment.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../host/logger.js';
import type { Store } from '../store/index.js';
import { ImageCatalog } from './image-catalog.js';
import { ImagingJobs, type ImageJob, type MachinePhase } from './jobs.js';
import { ImagingRoutes } from './agent-routes.js';

/** Where the environment is served from (HTTP and TFTP). */
export const IMAGING_ENV_MOUNT = '/bootbench/imaging';

/** resources/imaging of this checkout or installation, or the data folder's own build. */
export function locateImagingEnvironment(dataDir: string): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(dataDir, 'imaging-env'), resolve(here, '..', '..', 'resources', 'imaging'), resolve(here, '..', '..', '..', 'resources', 'imaging')];
  return candidates.find((dir) => existsSync(join(dir, 'vmlinuz')) && existsSync(join(dir, 'initrd.img')));
}

interface MountableFiles {
  mount(virtualPath: string, realPath: string): void;
}

export interface ImagingServiceOptions {
  store: Store;
  dataDir: string;
  logger: Logger;
  onProgress?: (job: ImageJob, mac: string, phase: MachinePhase) => void;
}

export class ImagingService {
  readonly catalog: ImageCatalog;
  readonly jobs: ImagingJobs;
  readonly routes: ImagingRoutes;
  readonly environmentDir: string | undefined;

  constructor(private readonly options: ImagingServiceOptions) {
    this.catalog = new ImageCatalog(options.dataDir);
    this.jobs = new ImagingJobs(options.store.db);
    this.environmentDir = locateImagingEnvironment(options.dataDir);
    this.routes = new ImagingRoutes({
      catalog: this.catalog,
      jobs: this.jobs,
      logger: options.logger,
      machineName: (mac) => options.store.machines.findByMac(mac)?.name || undefined,
      onProgress: options.onProgress,
    });
  }

  /**
   * At start no capture can be under way: its PC talked to the host that is gone. Its
   * chunks, and whatever an interrupted write left, are removed.
   */
  recover(): void {
    const failed = this.jobs.failUnfinishedCaptures('the host stopped during the capture: capture again');
    const removed = this.catalog.collect();
    if (failed || removed.chunks) {
      this.options.logger.info(`imaging: ${failed} interrupted capture(s) ended, ${removed.chunks} chunk(s) no image uses removed`);
    }
  }

  mountInto(files: MountableFiles): string | undefined {
    if (!this.environmentDir) return 'the imaging environment (resources/imaging: run npm run build:imaging)';
    files.mount(`${IMAGING_ENV_MOUNT}/vmlinuz`, join(this.environmentDir, 'vmlinuz'));
    files.mount(`${IMAGING_ENV_MOUNT}/initrd.img`, join(this.environmentDir, 'initrd.img'));
    return undefined;
  }

  hasPendingJob(mac: string | undefined): boolean {
    return !!mac && !!this.jobs.pendingFor(mac);
  }

  /** MACs with a job waiting for their next boot. */
  pendingMacs(): Set<string> {
    const macs = new Set<string>();
    for (const job of this.jobs.list()) for (const m of job.machines) if (!m.result) macs.add(m.mac);
    return macs;
  }

  /** The iPXE script that boots the imaging environment, for a PC with a pending job. */
  ipxeScript(mac: string | undefined, httpBaseUrl: string): string | undefined {
    if (!mac || !this.jobs.pendingFor(mac)) return undefined;
    const base = httpBaseUrl.replace(/\/+$/, '');
    if (!this.environmentDir) {
      return `#!ipxe\necho Bootbench: this PC has an imaging task, but the imaging environment is not built on the host (npm run build:imaging)\nprompt --timeout 30000 Press a key to continue || exit\nexit\n`;
    }
    return [
      '#!ipxe',
      'echo Bootbench: starting the imaging environment',
      `kernel ${base}${IMAGING_ENV_MOUNT}/vmlinuz initrd=initrd.img bootbench.server=${base} console=tty0 console=ttyS0 quiet panic=30`,
      `initrd ${base}${IMAGING_ENV_MOUNT}/initrd.img`,
      'boot',
      '',
    ].join('\n');
  }

  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    return this.routes.handle(req, res, url);
  }
}
