// The Images screen's calls (ImagingApi in api.ts) on the imaging catalog and jobs of the data
// folder (main/imaging), the same ones `bootbench image ...` and the running host use. Every
// call reads the store and the catalog afresh, so jobs and images another process made (the
// CLI beside a running host) are seen as they are.
import type { Store } from '../store/index.js';
import { normalizeMac } from '../core/index.js';
import { ANY_MACHINE, type StreamStats, ImageCatalog, ImageError, checkImageName, ImagingJobs, startRule, type ImageJob } from '../imaging/index.js';
import type { ImageCaptureRequest, ImageDeployRequest, ImageInfo, ImagingJob } from '../../preload/api.js';
import { ApiError, uiWording, type ImagingApi } from './api.js';
import { formatBytes } from './boot-diagnosis.js';

const TRANSPORTS: Record<string, string> = { nvme: 'NVMe', sata: 'SATA', virtio: 'virtio', usb: 'USB', loop: 'loop', other: 'other' };

/**
 * The agent lists the disks it saw as its own `name=... size=... transport=...` lines (one
 * report line, `;` between disks); the screen says them as a technician reads them.
 */
export function describeSeenDisks(reason: string): string {
  return reason
    .replace(/name=(\S+) size=(\d+) transport=(\S+) removable=(\d) model=(\S+) serial=([^\s;]+)/g, (_all, name, size, transport, removable, model, serial) => {
      const parts = [TRANSPORTS[transport] ?? transport, formatBytes(Number(size))];
      if (model !== '-') parts.push(model.replace(/_/g, ' '));
      if (serial !== '-') parts.push(`serial ${serial}`);
      if (removable === '1') parts.push('removable');
      return `${name} (${parts.join(', ')})`;
    })
    .replace(/\) ?;(?=\S)/g, '); ');
}

/** Jobs the Images screen lists: the most recent ones. */
export const JOBS_LISTED = 50;

export interface StoreImagingOptions {
  store: Store;
  /** The data folder the images live in; read at each call so it follows the host's settings. */
  dataDir: () => string;
  /** A deploy's multicast stream while the running host sends it. */
  liveStream?: (jobId: number) => StreamStats | undefined;
  /** Why deploys to several PCs go unicast on the running host (multicast off there), if they do. */
  unicastReason?: () => string | undefined;
}

export function storeImaging(options: StoreImagingOptions): ImagingApi {
  const { store } = options;
  const jobs = new ImagingJobs(store.db);
  const catalog = () => new ImageCatalog(options.dataDir());

  const deploying = (list: ImageJob[], image: string) =>
    list.filter((j) => j.kind === 'deploy' && j.image === image && j.machines.some((m) => !m.result)).map((j) => j.id);

  // A deploy to several PCs still under way that the running host does not stream: the setting's reason.
  const unicastReason = (job: ImageJob, live: StreamStats | undefined) => {
    if (job.kind !== 'deploy' || live || job.machines.filter((m) => !m.result).length < 2) return undefined;
    const reason = options.unicastReason?.();
    return reason ? { unicast: reason } : undefined;
  };

  const toApiJob = (job: ImageJob): ImagingJob => {
    const live = job.kind === 'deploy' ? options.liveStream?.(job.id) : undefined;
    // While the stream runs its receivers' counts are the news; a PC that left it keeps what was stored then.
    const fromStream = (mac: string) => {
      const r = live?.receivers.find((x) => x.lastHeard > 0 && normalizeMac(x.mac) === mac);
      return r ? { streamed: r.streamKiB * 1024, repaired: r.repairKiB * 1024 } : {};
    };
    const held = live && !live.start.started ? new Set(live.start.ready.map((m) => normalizeMac(m))) : undefined;
    const { start, ...rest } = job;
    return {
      ...rest,
      // A capture, or a deploy to one PC, has no stream to start.
      ...(job.kind === 'deploy' && job.machines.length > 1 ? { start } : {}),
      ...(live
        ? {
            stream: {
              group: `${live.group}:${live.port}`,
              rate: live.rate,
              chunks: live.chunks,
              chunksSent: live.chunksSent,
              passes: live.passes,
              bytesSent: live.bytesSent,
              ...(live.querier ? { querier: live.querier } : {}),
              start: {
                started: live.start.started,
                startedAt: live.start.startedAt,
                ready: live.start.ready.length,
                of: live.start.of,
                deadline: live.start.deadline,
              },
            },
          }
        : {}),
      ...(unicastReason(job, live) ?? {}),
      machines: job.machines.map((m) => {
        if (m.mac === ANY_MACHINE) return { ...m, mac: '', anyMachine: true, reason: m.reason && uiWording(m.reason) };
        const machine = store.machines.findByMac(m.mac);
        return {
          ...m,
          ...(m.result || m.streamed !== undefined ? {} : fromStream(m.mac)),
          ...(!m.result && held?.has(m.mac) ? { waitingForStream: true } : {}),
          reason: m.reason && uiWording(describeSeenDisks(m.reason)),
          machineId: machine?.id,
          machine: machine?.name || undefined,
        };
      }),
    };
  };

  const imageName = (name: string, field: string) => {
    try {
      checkImageName(name);
    } catch (err) {
      throw new ApiError('invalid-request', `${field}: ${(err as Error).message}.`);
    }
  };

  /** The one MAC the host knows this machine by (the first of its NICs). */
  const macOfMachine = (id: number): string => {
    const machine = store.machines.get(id);
    if (!machine) throw new ApiError('not-found', `There is no machine number ${id} (it may have been removed): reload the machine list.`);
    if (!machine.macs[0])
      throw new ApiError(
        'invalid-request',
        `Machine "${machine.name || `number ${id}`}" has no MAC address, so it cannot be told its task: add its MAC on the Machines screen.`,
      );
    return machine.macs[0];
  };

  return {
    list: () => {
      const c = catalog();
      const all = jobs.list();
      return c.list().map((manifest): ImageInfo => {
        const { chunks: _chunks, ...summary } = c.summary(manifest);
        return { ...summary, deployingJobs: deploying(all, manifest.name) };
      });
    },

    capture: (request: ImageCaptureRequest) => {
      imageName(request.name, 'Image name');
      if (catalog().has(request.name))
        throw new ApiError('invalid-request', `An image named "${request.name}" exists: choose another name, or delete it first.`);
      const mac = request.nextMachine ? ANY_MACHINE : request.machineId !== undefined ? macOfMachine(request.machineId) : request.mac!;
      return toApiJob(jobs.create({ kind: 'capture', image: request.name, macs: [mac], disk: request.disk || undefined, then: request.then }));
    },

    deploy: (request: ImageDeployRequest) => {
      imageName(request.image, 'Image');
      if (!catalog().has(request.image))
        throw new ApiError('not-found', `There is no image named "${request.image}" (it may have been deleted): reload the image list.`);
      let macs: string[];
      if (request.group !== undefined) {
        const members = store.machines.list({ group: request.group });
        if (members.length === 0)
          throw new ApiError('invalid-request', `Group "${request.group}" has no machines: put machines in it on the Machines screen, or pick machines.`);
        const noMac = members.filter((m) => m.macs.length === 0).map((m) => m.name || `number ${m.id}`);
        if (noMac.length)
          throw new ApiError(
            'invalid-request',
            `Machines of group "${request.group}" without a MAC address cannot be told their task: ${noMac.join(', ')}. Add their MACs on the Machines screen.`,
          );
        macs = members.map((m) => m.macs[0]!);
      } else {
        macs = [...(request.machineIds ?? []).map(macOfMachine), ...(request.macs ?? [])];
      }
      try {
        startRule(request.start, macs.length);
      } catch (err) {
        throw new ApiError('invalid-request', `Stream start: ${(err as Error).message}.`);
      }
      return toApiJob(jobs.create({ kind: 'deploy', image: request.image, macs, disk: request.disk || undefined, then: request.then, start: request.start }));
    },

    remove: (name: string) => {
      imageName(name, 'Image');
      const users = deploying(jobs.list(), name);
      if (users.length)
        throw new ApiError(
          'invalid-request',
          `Image "${name}" is being deployed (job ${users.join(', ')}): wait until its PCs are done or failed, then delete it.`,
        );
      try {
        return { name, ...catalog().remove(name) };
      } catch (err) {
        if (err instanceof ImageError && err.status === 404)
          throw new ApiError('not-found', `There is no image named "${name}" (it may have been deleted already).`);
        throw err;
      }
    },

    verify: async (name: string) => {
      imageName(name, 'Image');
      try {
        const result = await catalog().verify(name);
        return { name, ...result, ok: result.bad.length === 0 && result.missing.length === 0 };
      } catch (err) {
        if (err instanceof ImageError && err.status === 404) throw new ApiError('not-found', `There is no image named "${name}" (it may have been deleted).`);
        throw err;
      }
    },

    go: (jobId: number) => {
      const job = jobs.get(jobId);
      if (!job) throw new ApiError('not-found', `There is no job ${jobId} (it may have been removed): reload the Images screen.`);
      if (job.kind !== 'deploy' || job.machines.length < 2)
        throw new ApiError('invalid-request', `Job ${jobId} has no stream to start: only a deploy to two PCs or more is sent as one stream.`);
      if (job.machines.every((m) => m.result)) throw new ApiError('invalid-request', `Job ${jobId} has ended: every PC of it is done or failed.`);
      return toApiJob(jobs.go(jobId));
    },

    jobs: () => jobs.recent(JOBS_LISTED).map(toApiJob),

    job: (id: number) => {
      const job = jobs.get(id);
      return job && toApiJob(job);
    },
  };
}
