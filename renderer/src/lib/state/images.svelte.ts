// Disk images and imaging jobs: the image list with capture, deploy, verify and delete, and
// one row per PC of each job, kept live by the host's 'imaging:progress' pushes (each a
// snapshot of the jobs that changed) and drawn at most a few times a second.
import type { ApiClient } from '../transport.js';
import {
  type ImageCaptureRequest,
  type ImageDeployRequest,
  type ImageInfo,
  type ImagingJob,
  type ImagingMachineRow,
  type ImagingProgress,
  type ImagingStartRule,
  type ImagingStreamStart,
  IMAGING_PHASE_WORDS,
} from '../../../../preload/api.js';
import { createThrottle, type Scheduler, type Throttle } from '../throttle.js';

/** Jobs shown: the most recent ones. */
export const JOBS_SHOWN = 50;
/** An unfinished PC whose agent was silent this long is shown as such (it reports every second). */
export const SILENT_AFTER_MS = 15_000;

/** What the row says the PC is doing, in plain words. */
export function phaseLabel(row: Pick<ImagingMachineRow, 'phase' | 'part'>): string {
  const words = IMAGING_PHASE_WORDS[row.phase] ?? row.phase;
  if (row.part === undefined || !MOVING.has(row.phase)) return words;
  const where = row.part === 0 ? 'the boot area' : `partition ${row.part}`;
  // "reading the disk" becomes "reading partition 2"; "writing" becomes "writing partition 2".
  return `${words.replace(/ the disk$/, '')} ${where}`;
}

/** Phases with bytes to count (the others have no size). */
const MOVING = new Set<ImagingMachineRow['phase']>(['reading', 'writing', 'verifying']);

/** Seconds left in the current phase, when it has a size and a rate. */
export function rowEta(row: Pick<ImagingMachineRow, 'phase' | 'bytes' | 'total' | 'rate' | 'result'>): number | undefined {
  if (row.result || !MOVING.has(row.phase) || row.total <= 0 || row.rate <= 0) return undefined;
  return Math.max(0, (row.total - row.bytes) / row.rate);
}

/** 0..1 of the current phase, or undefined when it has no size. */
export function rowFraction(row: Pick<ImagingMachineRow, 'phase' | 'bytes' | 'total' | 'result'>): number | undefined {
  if (row.result === 'done') return 1;
  if (!MOVING.has(row.phase) || row.total <= 0) return undefined;
  return Math.min(1, Math.max(0, row.bytes / row.total));
}

/** An unfinished PC that stopped reporting mid-way (powered off, network gone). */
export function isSilent(row: Pick<ImagingMachineRow, 'phase' | 'result' | 'updatedAt'>, now: number): boolean {
  return !row.result && row.phase !== 'waiting' && now - row.updatedAt > SILENT_AFTER_MS;
}

/**
 * Where a deploy's stream stands on its start, in words: "3 of 8 PCs ready, starts when all
 * are ready or at 10:42", "waiting for Go", or undefined once it started.
 */
export function streamStartWords(job: Pick<ImagingJob, 'start' | 'goAt' | 'streamStartedAt' | 'stream'>, clock: (time: number) => string): string | undefined {
  const rule: ImagingStartRule | undefined = job.start;
  const now: ImagingStreamStart | undefined = job.stream?.start;
  if (!rule || now?.started || job.streamStartedAt !== undefined) return undefined;
  const ready = now ? `${now.ready} of ${now.of} PCs ready` : 'no PC ready yet';
  if (job.goAt !== undefined) return `Go given at ${clock(job.goAt)}: the stream starts as its PCs get ready`;
  if (rule.manual) return `waiting for Go (${ready})`;
  const when = rule.count === undefined ? 'all are ready' : `${rule.count} are ready`;
  const timer =
    now?.deadline !== undefined ? ` or at ${clock(now.deadline)}` : rule.afterSeconds !== undefined ? ` or ${rule.afterSeconds} s after the first` : '';
  return `${ready}, starts when ${when}${timer}`;
}

/**
 * The answer to an action, in words. One about a job can turn into history while it is shown
 * ("the next network boot ... deploys", "the stream starts within a second"): `over` says when,
 * and the notice then goes, as the job's own lines tell the rest.
 */
export interface ImagesNotice {
  kind: 'ok' | 'warn' | 'bad';
  text: string;
  job?: { id: number; over: (job: ImagingJob) => boolean };
}

/** "At the next network boot" is history once every PC of the job has booted (or ended): its rows go on from there. */
export function everyPcBooted(job: Pick<ImagingJob, 'machines'>): boolean {
  return job.machines.every((m) => m.result !== undefined || m.phase !== 'waiting');
}

/** "The stream starts within a second" is history once it started (its line then says so) or the job ended. */
export function streamUnderWay(job: Pick<ImagingJob, 'machines' | 'stream' | 'streamStartedAt'>): boolean {
  return job.streamStartedAt !== undefined || job.stream?.start?.started === true || job.machines.every((m) => m.result !== undefined);
}

/** Whether a notice about a job is now history, given the jobs as shown (a job no longer shown leaves it be). */
export function noticeOver(notice: ImagesNotice | undefined, jobs: readonly ImagingJob[]): boolean {
  if (!notice?.job) return false;
  const job = jobs.find((j) => j.id === notice.job!.id);
  return job !== undefined && notice.job.over(job);
}

/** Newest first; a pushed job replaces the one with its id. */
export function mergeJobs(current: ImagingJob[], changed: ImagingJob[]): ImagingJob[] {
  const byId = new Map(current.map((j) => [j.id, j]));
  for (const job of changed) byId.set(job.id, job);
  return [...byId.values()].sort((a, b) => b.id - a.id).slice(0, JOBS_SHOWN);
}

export class ImagesState {
  images = $state.raw<ImageInfo[]>([]);
  jobs = $state.raw<ImagingJob[]>([]);
  /** PCs still at work over all jobs shown. */
  working = $derived(this.jobs.reduce((n, j) => n + j.machines.filter((m) => !m.result).length, 0));
  error = $state<string | undefined>(undefined);
  /** The answer to the last action, in words, while it is not history. */
  notice = $state.raw<ImagesNotice | undefined>(undefined);
  /** An image being verified (it re-hashes every chunk: it takes a while for a big one). */
  verifying = $state<string | undefined>(undefined);
  busy = $state(false);

  private pending: ImagingJob[] = [];
  private readonly throttle: Throttle;

  constructor(
    private readonly api: ApiClient,
    intervalMs = 250,
    scheduler?: Scheduler,
  ) {
    this.throttle = createThrottle(() => this.flush(), intervalMs, scheduler);
  }

  async load(): Promise<void> {
    try {
      const [images, jobs] = await Promise.all([this.api.call('images:list'), this.api.call('imaging:jobs')]);
      this.images = images;
      this.throttle.cancel();
      this.pending = [];
      this.setJobs(mergeJobs([], jobs));
      this.error = undefined;
    } catch (err) {
      this.error = (err as Error).message;
    }
  }

  /** Re-reads the jobs (made elsewhere too: the CLI on the same data folder). */
  async refreshJobs(): Promise<void> {
    try {
      const jobs = await this.api.call('imaging:jobs');
      this.setJobs(mergeJobs([], jobs));
    } catch (err) {
      this.error = (err as Error).message;
    }
  }

  /** One pushed 'imaging:progress'. */
  apply(progress: ImagingProgress): void {
    this.pending.push(...progress.jobs);
    this.throttle.request();
  }

  private flush(): void {
    const changed = this.pending;
    this.pending = [];
    const finishedCapture = changed.some(
      (j) => j.kind === 'capture' && j.machines.some((m) => m.result === 'done') && !this.images.some((i) => i.name === j.image),
    );
    const finishedDeploy = changed.some(
      (j) => j.kind === 'deploy' && j.machines.every((m) => m.result) && this.images.some((i) => i.deployingJobs.includes(j.id)),
    );
    this.setJobs(mergeJobs(this.jobs, changed));
    // A capture that ended well is a new image; a deploy that ended frees its image for deletion.
    if (finishedCapture || finishedDeploy) void this.reloadImages();
  }

  /** The jobs as they now stand; a notice about one of them that they made history goes. */
  private setJobs(jobs: ImagingJob[]): void {
    this.jobs = jobs;
    if (noticeOver(this.notice, jobs)) this.notice = undefined;
  }

  private async reloadImages(): Promise<void> {
    try {
      this.images = await this.api.call('images:list');
    } catch (err) {
      this.error = (err as Error).message;
    }
  }

  /** Runs an action; its answer (words, or words about a job with when they turn into history) becomes the notice. */
  private async act(work: () => Promise<string | Omit<ImagesNotice, 'kind'>>): Promise<boolean> {
    this.busy = true;
    this.notice = undefined;
    try {
      const answer = await work();
      this.notice = typeof answer === 'string' ? { kind: 'ok', text: answer } : { kind: 'ok', ...answer };
      return true;
    } catch (err) {
      this.notice = { kind: 'bad', text: (err as Error).message };
      return false;
    } finally {
      this.busy = false;
    }
  }

  capture(request: ImageCaptureRequest, machineLabel: string): Promise<boolean> {
    return this.act(async () => {
      const job = await this.api.call('images:capture', request);
      this.jobs = mergeJobs(this.jobs, [job]);
      return {
        text: `Job ${job.id}: the next network boot of ${machineLabel} captures its disk into "${job.image}".`,
        job: { id: job.id, over: everyPcBooted },
      };
    });
  }

  deploy(request: ImageDeployRequest): Promise<boolean> {
    return this.act(async () => {
      const job = await this.api.call('images:deploy', request);
      this.jobs = mergeJobs(this.jobs, [job]);
      await this.reloadImages();
      const count = job.machines.length;
      return {
        text: `Job ${job.id}: the next network boot of ${count === 1 ? 'the PC' : `each of the ${count} PCs`} deploys "${job.image}".`,
        job: { id: job.id, over: everyPcBooted },
      };
    });
  }

  /** Go: the deploy's stream starts now with the PCs that are ready. */
  go(jobId: number): Promise<boolean> {
    return this.act(async () => {
      const job = await this.api.call('images:go', { jobId });
      this.jobs = mergeJobs(this.jobs, [job]);
      return {
        text: `Job ${job.id}: Go given. The stream starts within a second; PCs not ready yet join it when they are.`,
        job: { id: job.id, over: streamUnderWay },
      };
    });
  }

  remove(name: string): Promise<boolean> {
    return this.act(async () => {
      const result = await this.api.call('images:delete', { name });
      this.images = this.images.filter((i) => i.name !== name);
      return `Deleted "${name}": ${result.chunks} chunk${result.chunks === 1 ? '' : 's'} no other image used ${result.chunks === 1 ? 'was' : 'were'} removed.`;
    });
  }

  async verify(name: string): Promise<void> {
    this.verifying = name;
    try {
      const result = await this.api.call('images:verify', { name });
      const damaged = [...result.bad, ...result.missing];
      this.notice = result.ok
        ? { kind: 'ok', text: `"${name}": all ${result.chunks} chunks check out.` }
        : {
            kind: 'bad',
            text: `"${name}": ${result.bad.length} damaged and ${result.missing.length} missing of ${result.chunks} chunks (first: ${damaged[0]}). Capture the image again.`,
          };
    } catch (err) {
      this.notice = { kind: 'bad', text: (err as Error).message };
    } finally {
      this.verifying = undefined;
    }
  }

  dispose(): void {
    this.throttle.cancel();
  }
}
