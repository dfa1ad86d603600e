// Imaging as part of the running host: the agent's HTTP routes, the imaging environment's
// kernel and initramfs in the served namespace, and the iPXE script that sends a PC with a
// pending job into that environment instead of its usual assignment.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Logger, type Clock, type TimerHandle, normalizeMac, systemClock } from '../core/index.js';
import type { Store } from '../store/index.js';
import { ImageCatalog } from './image-catalog.js';
import { ANY_MACHINE, ImagingJobs, type ImageJob, type MachinePhase } from './jobs.js';
import { ImagingRoutes } from './agent-routes.js';
import { MulticastSender, streamGroupFor, type MulticastSenderOptions, type StreamStats } from './multicast-sender.js';

/** Where the environment is served from (HTTP and TFTP). */
export const IMAGING_ENV_MOUNT = '/bootbench/imaging';

/** resources/imaging of this checkout or installation, or the data folder's own build. */
export function locateImagingEnvironment(dataDir: string): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(dataDir, 'imaging-env'), resolve(here, '..', '..', 'resources', 'imaging'), resolve(here, '..', '..', '..', 'resources', 'imaging')];
  return candidates.find((dir) => existsSync(join(dir, 'vmlinuz')) && existsSync(join(dir, 'initrd.img')));
}

const NOT_BUILT = 'the imaging environment is not built on the host (npm run build:imaging)';

/** Kernel arguments of the environment: where the host is, and a serial console for the lab and for headless PCs. */
function environmentArguments(base: string): string {
  return `bootbench.server=${base} console=tty0 console=ttyS0 quiet panic=30`;
}

/** Structurally the library's TaskKernel: paths in the host's TFTP/HTTP namespace. */
export type GrubTaskKernel = { name: string; kernel: string; initrds: string[]; arguments: string } | { name: string; unavailable: string };

interface MountableFiles {
  mount(virtualPath: string, realPath: string): void;
}

export interface ImagingServiceOptions {
  store: Store;
  dataDir: string;
  logger: Logger;
  onProgress?: (job: ImageJob, mac: string, phase: MachinePhase) => void;
  clock?: Clock;
  /** A working PC silent this long is failed: it was switched off or lost the network. */
  silenceSeconds?: number;
  /** A deploy to several PCs is sent once as a multicast stream from this NIC address; without it every PC fetches by HTTP. */
  stream?: { address: string; rate?: MulticastSenderOptions['rate']; querier?: StreamQuerier };
  /** Without `stream`: why deploys go unicast, shown with each deploy to several PCs. */
  unicastReason?: string;
}

/** What a stream needs of the NIC's IGMP querier (main/net/igmp-querier.ts). */
export interface StreamQuerier {
  /** Queries go on until the returned function is called. */
  hold(): () => void;
  /** What was heard on the NIC and what Bootbench does about it. */
  status(): string;
}

/** Phases after which a PC no longer reads the stream. */
const PAST_STREAM = new Set<MachinePhase>(['verifying', 'naming', 'done', 'failed']);

/** The agent reports every second; this leaves room for a slow PC and a busy host. */
export const DEFAULT_SILENCE_SECONDS = 60;
const SILENCE_CHECK_MS = 5000;
/** How often a waiting stream looks for the technician's Go in the store (given here or by another process). */
const GO_CHECK_MS = 250;

const DOING: Partial<Record<MachinePhase, string>> = {
  booting: 'starting the imaging environment',
  checking: 'checking the disk',
  partitioning: 'writing the partition table',
  reading: 'reading',
  writing: 'writing',
  verifying: 'verifying',
  naming: 'naming the PC',
};

/** The phase in words, with the partition for the phases that work on one. */
export function describeWork(phase: MachinePhase, part: number | undefined): string {
  const doing = DOING[phase] ?? phase;
  if (part === undefined || !['reading', 'writing', 'verifying'].includes(phase)) return doing;
  return `${doing} ${part === 0 ? 'the boot area' : `partition ${part}`}`;
}

export class ImagingService {
  readonly catalog: ImageCatalog;
  readonly jobs: ImagingJobs;
  readonly routes: ImagingRoutes;
  readonly environmentDir: string | undefined;

  private readonly clock: Clock;
  /** Partition each working PC last said it works on, by `job mac`: for the reason if it goes silent. */
  private readonly partitions = new Map<string, number>();
  private watchTimer: TimerHandle | undefined;
  /** The image stream of each deploy that has one, by job id. */
  private readonly senders = new Map<number, Promise<MulticastSender | undefined>>();
  /** The same once started, for the screens' synchronous reads. */
  private readonly liveSenders = new Map<number, MulticastSender>();
  /** Each running stream's hold on the IGMP querier. */
  private readonly querierHolds = new Map<number, () => void>();
  /** Jobs whose stream waits to start: checked for Go, and their start recorded. */
  private readonly holding = new Set<number>();
  private holdTimer: TimerHandle | undefined;
  /** What was last written of each waiting stream's state (written when it changes). */
  private readonly waitRecorded = new Map<number, string>();

  constructor(private readonly options: ImagingServiceOptions) {
    this.clock = options.clock ?? systemClock;
    this.catalog = new ImageCatalog(options.dataDir);
    this.jobs = new ImagingJobs(options.store.db, () => this.clock.now());
    this.environmentDir = locateImagingEnvironment(options.dataDir);
    this.routes = new ImagingRoutes({
      catalog: this.catalog,
      jobs: this.jobs,
      logger: options.logger,
      machineName: (mac) => options.store.machines.findByMac(mac)?.name || undefined,
      now: () => this.clock.now(),
      streamFor: async (job) => (await this.streamFor(job))?.address,
      streamStart: (session, mac) => {
        const sender = [...this.liveSenders.values()].find((s) => s.session === session);
        if (!sender) return undefined;
        const started = sender.ask(mac);
        const state = sender.startState();
        return { started, ready: state.ready.length, of: state.of };
      },
      onProgress: (job, mac, phase, report) => {
        if (PAST_STREAM.has(phase)) this.leaveStream(job.id, mac);
        const key = `${job.id} ${mac}`;
        if (report.part !== undefined) this.partitions.set(key, report.part);
        if (phase === 'done' || phase === 'failed') this.partitions.delete(key);
        options.onProgress?.(job, mac, phase);
      },
    });
  }

  /**
   * Fails every working PC that has not reported for the silence limit, saying what it was
   * doing; then removes the chunks a failed capture left, unless another capture is working.
   * Returns how many PCs were failed.
   */
  failSilentMachines(): number {
    const limit = this.options.silenceSeconds ?? DEFAULT_SILENCE_SECONDS;
    const now = this.clock.now();
    const silent = this.jobs.silentSince(now - limit * 1000);
    for (const { job, machine } of silent) {
      const key = `${job.id} ${machine.mac}`;
      const seconds = Math.round((now - machine.updatedAt) / 1000);
      const again = job.kind === 'deploy' ? `deploy to it again` : `capture it again`;
      const reason = `no word from the PC for ${seconds} s while ${describeWork(machine.phase, this.partitions.get(key))}: it was switched off or lost the network. Check its power and cable, then ${again}`;
      this.partitions.delete(key);
      this.jobs.report(job.id, machine.mac, { phase: 'failed', reason });
      this.options.logger.warn(`imaging: ${machine.mac} (job ${job.id}): ${reason}`);
      this.options.onProgress?.(job, machine.mac, 'failed');
    }
    if (silent.some((s) => s.job.kind === 'capture') && !this.jobs.captureUnderWay()) this.catalog.collect();
    return silent.length;
  }

  /** Checks for silent PCs every few seconds until stop(). */
  watch(): void {
    this.stop();
    const tick = () => {
      try {
        this.failSilentMachines();
      } catch (error) {
        this.options.logger.error(`imaging: checking for silent PCs failed: ${(error as Error).message}`);
      }
      this.watchTimer = this.clock.setTimeout(tick, SILENCE_CHECK_MS);
    };
    this.watchTimer = this.clock.setTimeout(tick, SILENCE_CHECK_MS);
  }

  stop(): void {
    if (this.watchTimer) this.clock.clearTimeout(this.watchTimer);
    this.watchTimer = undefined;
    if (this.holdTimer) this.clock.clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.holding.clear();
    // No host holds these streams any more: what the store said of their wait no longer stands.
    for (const id of this.waitRecorded.keys()) this.forgetWait(id);
    for (const id of [...this.senders.keys()]) this.endStream(id);
  }

  /**
   * The deploy's stream, started when its first PC asks for its task: only for a deploy to
   * two or more PCs not yet finished (the schedule's minReceivers, which the bench lowers to
   * one to measure the stream alone), and only when the host has a NIC address to send from.
   */
  private streamFor(job: ImageJob): Promise<MulticastSender | undefined> {
    const existing = this.senders.get(job.id);
    if (existing) return existing;
    const stream = this.options.stream;
    const pcs = job.machines.filter((m) => !m.result).map((m) => m.mac);
    const manifest = job.kind === 'deploy' ? this.catalog.get(job.image) : undefined;
    if (!stream && pcs.length >= 2 && manifest && this.options.unicastReason) {
      this.options.logger.info(`imaging: job ${job.id} goes to its ${pcs.length} PCs by unicast HTTP: ${this.options.unicastReason}`);
      this.senders.set(job.id, Promise.resolve(undefined));
    }
    if (!stream || pcs.length < (stream.rate?.minReceivers ?? 2) || !manifest) return Promise.resolve(undefined);
    const sender = new MulticastSender({
      address: stream.address,
      group: streamGroupFor(job.id),
      chunkPaths: manifest.partitions.flatMap((p) => p.chunks.map((sha) => this.catalog.chunks.path(sha))),
      expected: pcs,
      logger: this.options.logger,
      rate: stream.rate,
      start: { manual: job.start.manual, count: job.start.count, afterMs: job.start.afterSeconds === undefined ? undefined : job.start.afterSeconds * 1000 },
    });
    if (job.goAt !== undefined) sender.go();
    const started = sender.start().then(
      () => {
        if (this.senders.get(job.id) === started) {
          this.liveSenders.set(job.id, sender);
          const release = stream.querier?.hold();
          if (release) this.querierHolds.set(job.id, release);
          this.hold(job.id);
        }
        return sender;
      },
      (error: Error) => {
        this.options.logger.warn(`imaging: no multicast stream for job ${job.id} (${error.message}): its PCs fetch by HTTP`);
        return undefined;
      },
    );
    this.senders.set(job.id, started);
    return started;
  }

  /** Watches the job's stream until it starts: Go from the store, and the start recorded with the job. */
  private hold(jobId: number): void {
    this.holding.add(jobId);
    if (this.holdTimer) return;
    const tick = () => {
      this.holdTimer = undefined;
      for (const id of [...this.holding]) {
        const sender = this.liveSenders.get(id);
        if (!sender) {
          this.holding.delete(id);
          continue;
        }
        try {
          if (this.jobs.goAt(id) !== undefined) sender.go();
          const state = sender.startState();
          if (!state.started) {
            this.recordWait(id, state);
            continue;
          }
          this.holding.delete(id);
          this.jobs.recordStreamStart(id, state.startedAt!);
          this.forgetWait(id);
          const ready = `${state.ready.length} of ${state.of} PCs ready`;
          this.options.logger.info(`imaging: stream of job ${id} started (${state.goAt !== undefined ? `Go given; ${ready}` : ready})`);
        } catch (error) {
          this.options.logger.error(`imaging: the start of job ${id}'s stream could not be checked: ${(error as Error).message}`);
        }
      }
      if (this.holding.size) this.holdTimer = this.clock.setTimeout(tick, GO_CHECK_MS);
    };
    this.holdTimer = this.clock.setTimeout(tick, GO_CHECK_MS);
  }

  /**
   * The waiting stream's state in the store when it changed, with this process's id: another
   * process (bootbench image status) trusts it only while this one lives.
   */
  private recordWait(id: number, state: { ready: string[]; deadline?: number }): void {
    const key = `${[...state.ready].sort().join(',')} ${state.deadline ?? ''}`;
    if (this.waitRecorded.get(id) === key) return;
    this.jobs.recordStreamWait(id, { ...state, pid: process.pid });
    this.waitRecorded.set(id, key);
  }

  private forgetWait(id: number): void {
    if (!this.waitRecorded.delete(id)) return;
    try {
      this.jobs.forgetStreamWait(id);
    } catch (error) {
      this.options.logger.warn(`imaging: the wait of job ${id}'s stream could not be cleared in the store: ${(error as Error).message}`);
    }
  }

  private leaveStream(jobId: number, mac: string): void {
    void this.senders.get(jobId)?.then((sender) => {
      const got = sender?.stats().receivers.find((r) => normalizeMac(r.mac) === normalizeMac(mac));
      if (got && got.lastHeard > 0) this.jobs.recordStream(jobId, mac, got.streamKiB * 1024, got.repairKiB * 1024);
      sender?.leave(mac);
      if (sender?.finished()) this.endStream(jobId);
    });
  }

  private endStream(jobId: number): void {
    const pending = this.senders.get(jobId);
    this.senders.delete(jobId);
    this.liveSenders.delete(jobId);
    this.querierHolds.get(jobId)?.();
    this.querierHolds.delete(jobId);
    void pending?.then(async (sender) => {
      if (!sender) return;
      const stats = sender.stats();
      // The stream ends once every PC has everything, often before most of them left it. A PC
      // never heard from (no receiver in its environment) has no counts to keep.
      for (const r of stats.receivers) if (r.lastHeard > 0) this.jobs.recordStream(jobId, r.mac, r.streamKiB * 1024, r.repairKiB * 1024);
      await sender.stop();
      const pcs = stats.receivers.map((r) => `${r.mac} ${r.streamKiB} KiB streamed, ${r.repairKiB} KiB repaired`).join('; ');
      this.options.logger.info(
        `imaging: stream of job ${jobId} ended: ${stats.chunksSent} chunks (${stats.passes + 1} pass(es)), ${stats.bytesSent} bytes sent at up to ${Math.round(stats.peakRate)} B/s; ${pcs}`,
      );
    });
  }

  /** Where the job's stream stands now, while it runs (the Images screen's job line). */
  streamNow(jobId: number): StreamStats | undefined {
    const stats = this.liveSenders.get(jobId)?.stats();
    const querier = this.options.stream?.querier?.status();
    return stats && querier ? { ...stats, querier } : stats;
  }

  /** Why a deploy to several PCs goes unicast (multicast off here), or undefined when it streams. */
  get unicastReason(): string | undefined {
    return this.options.stream ? undefined : this.options.unicastReason;
  }

  /** Where the job's stream stands, while it has one. */
  async streamStats(jobId: number): Promise<StreamStats | undefined> {
    const stats = (await this.senders.get(jobId))?.stats();
    const querier = this.options.stream?.querier?.status();
    return stats && querier ? { ...stats, querier } : stats;
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
    for (const job of this.jobs.list()) for (const m of job.machines) if (!m.result && m.mac !== ANY_MACHINE) macs.add(m.mac);
    return macs;
  }

  /** True while a capture waits for the next machine that boots: every PC that network-boots is sent to the environment. */
  waitingForAnyMachine(): boolean {
    return this.jobs.waitingForAnyMachine();
  }

  /** The PC's job, claiming a capture that waits for the next machine that boots if it has none. */
  private jobForBoot(mac: string | undefined): ImageJob | undefined {
    if (!mac) return undefined;
    const waiting = this.jobs.waitingForAnyMachine();
    const job = this.jobs.claimFor(mac);
    if (job && waiting && !this.jobs.waitingForAnyMachine()) {
      this.options.logger.info(`imaging: ${mac} is the next machine that booted: it runs capture job ${job.id} ("${job.image}")`);
      this.options.onProgress?.(job, mac, 'waiting');
    }
    return job;
  }

  /** The iPXE script that boots the imaging environment, for a PC with a pending job. */
  ipxeScript(mac: string | undefined, httpBaseUrl: string): string | undefined {
    if (!this.jobForBoot(mac)) return undefined;
    const base = httpBaseUrl.replace(/\/+$/, '');
    if (!this.environmentDir) {
      return `#!ipxe\necho Bootbench: this PC has an imaging task, but ${NOT_BUILT}\nprompt --timeout 30000 Press a key to continue || exit\nexit\n`;
    }
    return [
      '#!ipxe',
      'echo Bootbench: starting the imaging environment',
      `kernel ${base}${IMAGING_ENV_MOUNT}/vmlinuz initrd=initrd.img ${environmentArguments(base)}`,
      `initrd ${base}${IMAGING_ENV_MOUNT}/initrd.img`,
      'boot',
      '',
    ].join('\n');
  }

  /**
   * The same for GRUB, reached through shim when Secure Boot is on: Debian's signed kernel
   * passes shim's check, and the initramfs is not verified, so no key of ours is needed.
   */
  grubKernel(mac: string | undefined, httpBaseUrl: string): GrubTaskKernel | undefined {
    if (!this.jobForBoot(mac)) return undefined;
    const name = 'the imaging environment';
    if (!this.environmentDir) return { name, unavailable: NOT_BUILT };
    return {
      name,
      kernel: `${IMAGING_ENV_MOUNT}/vmlinuz`,
      initrds: [`${IMAGING_ENV_MOUNT}/initrd.img`],
      arguments: environmentArguments(httpBaseUrl.replace(/\/+$/, '')),
    };
  }

  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    return this.routes.handle(req, res, url);
  }
}
