// The host's side of the agent protocol, on the host's HTTP service under /imaging/:
//   GET  /imaging/task?mac=M                 this PC's task (agent-protocol.ts)
//   GET  /imaging/jobs/ID/manifest?mac=M     the image a deploy writes
//   GET  /imaging/chunks/SHA[?ranges=A-B,..] one stored chunk, or the listed byte ranges of it back to back
//                                            (a stream receiver's repair)
//   POST /imaging/chunks/SHA?job=ID&mac=M    a captured chunk (PUT too); refused unless it hashes to SHA
//                                            (busybox wget can only GET and POST)
//   POST /imaging/jobs/ID/report?mac=M       phase, bytes, total, part, reason
//   POST /imaging/jobs/ID/image?mac=M        a finished capture's manifest; the image exists after this
//   GET  /imaging/streams/SESSION?mac=M      whether a deploy's stream has started (state=waiting|started,
//                                            ready=N, of=N): its receivers wait while it has not
import { closeSync, createReadStream, fstatSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { normalizeMac, type Logger } from '../core/index.js';
import { ZeroCopyBodies } from '../http/index.js';
import { ChunkError } from './chunk-store.js';
import { ImageError, type ImageCatalog } from './image-catalog.js';
import { parseCapturedManifest, parseReport, renderManifest, renderTask } from './agent-protocol.js';
import type { ImageJob, ImagingJobs, MachinePhase, MachineReport } from './jobs.js';

const MAX_TEXT_BYTES = 4 * 1024 * 1024;

export interface ImagingRoutesOptions {
  catalog: ImageCatalog;
  jobs: ImagingJobs;
  /** the machine list's name for a MAC: the deployed PC's hostname */
  machineName: (mac: string) => string | undefined;
  logger: Logger;
  /** the image stream a deploy's PCs join (`GROUP:PORT:SESSION`), when it has one */
  streamFor?: (job: ImageJob) => Promise<string | undefined>;
  /** whether the stream with this session (hex) has started, the asking PC counted as ready; undefined: no such stream */
  streamStart?: (session: number, mac: string) => { started: boolean; ready: number; of: number } | undefined;
  /** told of every per-PC change, for the app's live rows and the machine's timeline */
  onProgress?: (job: ImageJob, mac: string, phase: MachinePhase, report: MachineReport) => void;
  now?: () => number;
  /** Send chunk bodies by sendfile(2) where the platform has it (default true); false streams them. */
  zeroCopy?: boolean;
}

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body.endsWith('\n') ? body : `${body}\n`);
}

async function readText(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const piece of req) {
    size += (piece as Buffer).length;
    if (size > MAX_TEXT_BYTES) throw new ImageError('request body too large', 413);
    parts.push(piece as Buffer);
  }
  return Buffer.concat(parts).toString('utf8');
}

const MAX_PIECE_RANGES = 1024;

/** `FROM-TO,FROM-TO...` (inclusive, within the chunk), or undefined when absent; malformed is refused. */
function pieceRanges(value: string | null, size: number): { start: number; end: number }[] | undefined {
  if (value === null) return undefined;
  const ranges = value.split(',').map((part) => {
    const m = /^(\d+)-(\d+)$/.exec(part);
    const start = Number(m?.[1]);
    const end = Number(m?.[2]);
    if (!m || start > end || end >= size) throw new ImageError(`ranges=: "${part.slice(0, 40)}" is not FROM-TO within the chunk's ${size} bytes`, 416);
    return { start, end };
  });
  if (ranges.length > MAX_PIECE_RANGES) throw new ImageError(`ranges=: at most ${MAX_PIECE_RANGES} ranges`, 416);
  return ranges;
}

export class ImagingRoutes {
  private readonly now: () => number;
  /** Eight PCs deploying at once fetch chunks as fast as the host can send them: by sendfile(2), the bytes never pass through JavaScript. */
  private readonly bodies: ZeroCopyBodies | undefined;

  constructor(private readonly options: ImagingRoutesOptions) {
    this.now = options.now ?? Date.now;
    this.bodies = options.zeroCopy === false ? undefined : new ZeroCopyBodies();
  }

  /** Chunk bodies sent by sendfile(2) so far (the rest were streamed). */
  get zeroCopyBodies(): number {
    return this.bodies?.sent ?? 0;
  }

  /** Stops the zero-copy worker, if one was started. */
  async close(): Promise<void> {
    await this.bodies?.stop();
  }

  /** Answers /imaging/ requests; false for any other path. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (!url.pathname.startsWith('/imaging/')) return false;
    try {
      await this.route(req, res, url);
    } catch (error) {
      const status = error instanceof ImageError || error instanceof ChunkError ? error.status : 500;
      if (status === 500) this.options.logger.error(`imaging: ${req.method} ${url.pathname}: ${(error as Error).message}`);
      if (!res.headersSent) send(res, status, (error as Error).message);
      else res.destroy();
    }
    return true;
  }

  private mac(url: URL): string {
    const mac = normalizeMac(url.searchParams.get('mac') ?? '');
    if (!mac) throw new ImageError('mac= is missing or not a MAC address');
    return mac;
  }

  private job(id: string, mac: string): ImageJob {
    const job = this.options.jobs.get(Number(id));
    if (!job || !job.machines.some((m) => m.mac === mac)) throw new ImageError(`job ${id} has no machine ${mac}`, 404);
    return job;
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const { catalog, jobs } = this.options;
    const path = url.pathname;
    let m: RegExpExecArray | null;
    if (req.method === 'GET' && path === '/imaging/task') {
      const mac = this.mac(url);
      const job = jobs.claimFor(mac);
      if (job) this.progress(job, mac, { phase: 'booting' });
      const stream = job?.kind === 'deploy' ? await this.options.streamFor?.(job) : undefined;
      send(res, 200, renderTask(job, this.options.machineName(mac), stream));
    } else if (req.method === 'GET' && (m = /^\/imaging\/streams\/([0-9a-f]{8})$/.exec(path))) {
      const state = this.options.streamStart?.(parseInt(m[1], 16), this.mac(url));
      if (!state) throw new ImageError(`no stream ${m[1]} on this host (it ended, or the host restarted)`, 404);
      // With its length: the receiver reads a sized body, not a chunked one.
      const body = `state=${state.started ? 'started' : 'waiting'}\nready=${state.ready}\nof=${state.of}\n`;
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    } else if (req.method === 'GET' && (m = /^\/imaging\/jobs\/(\d+)\/manifest$/.exec(path))) {
      const job = this.job(m[1], this.mac(url));
      const manifest = job.kind === 'deploy' ? catalog.get(job.image) : undefined;
      if (!manifest) throw new ImageError(`image "${job.image}" does not exist (deleted after the job was made?)`, 404);
      send(res, 200, renderManifest(manifest));
    } else if ((req.method === 'GET' || req.method === 'HEAD') && (m = /^\/imaging\/chunks\/([0-9a-f]{64})$/.exec(path))) {
      if (url.searchParams.has('ranges')) {
        if (!catalog.chunks.has(m[1])) throw new ImageError(`no chunk ${m[1]}`, 404);
        // A stream receiver repairs only the byte ranges it missed, all of a chunk's in one
        // request: one Range request per hole would be hundreds per chunk at 10% loss.
        const ranges = pieceRanges(url.searchParams.get('ranges'), catalog.chunks.size(m[1]))!;
        const bytes = await readFile(catalog.chunks.path(m[1]));
        const body = Buffer.concat(ranges.map((r) => bytes.subarray(r.start, r.end + 1)));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      await this.sendChunk(req, res, m[1]);
    } else if ((req.method === 'PUT' || req.method === 'POST') && (m = /^\/imaging\/chunks\/([0-9a-f]{64})$/.exec(path))) {
      const mac = this.mac(url);
      const job = this.job(url.searchParams.get('job') ?? '', mac);
      if (job.kind !== 'capture' || job.machines[0].result) throw new ImageError(`job ${job.id} is not a capture under way`, 409);
      const stored = await catalog.chunks.put(m[1], req as AsyncIterable<Buffer>);
      send(res, stored ? 201 : 200, stored ? 'stored' : 'already stored');
    } else if (req.method === 'POST' && (m = /^\/imaging\/jobs\/(\d+)\/report$/.exec(path))) {
      const mac = this.mac(url);
      const job = this.job(m[1], mac);
      this.progress(job, mac, parseReport(await readText(req)));
      send(res, 200, 'ok');
    } else if (req.method === 'POST' && (m = /^\/imaging\/jobs\/(\d+)\/image$/.exec(path))) {
      const mac = this.mac(url);
      const job = this.job(m[1], mac);
      if (job.kind !== 'capture') throw new ImageError(`job ${job.id} is a deploy, not a capture`, 409);
      const text = await readText(req);
      try {
        const manifest = parseCapturedManifest(text, { name: job.image, mac, machine: this.options.machineName(mac), now: this.now() });
        catalog.add(manifest);
        this.options.logger.info(`imaging: image "${job.image}" captured from ${mac}: ${manifest.partitions.length} partition(s)`);
        this.progress(job, mac, { phase: 'done' });
        send(res, 201, 'image stored');
      } catch (error) {
        this.progress(job, mac, { phase: 'failed', reason: `the host refused the captured image: ${(error as Error).message}` });
        throw error;
      }
    } else {
      throw new ImageError(`no such imaging request: ${req.method} ${path}`, 404);
    }
  }

  /**
   * One stored chunk, by sendfile where possible. The size comes from the open file, so a
   * chunk removed meanwhile is a 404, never a short body. Open, fstat and close are direct
   * calls: a chunk file's are a few microseconds, and through fs/promises each was a trip to
   * the thread pool and back that cost the main thread more than sending the chunk.
   */
  private async sendChunk(req: IncomingMessage, res: ServerResponse, sha: string): Promise<void> {
    let fd: number;
    try {
      fd = openSync(this.options.catalog.chunks.path(sha), 'r');
    } catch (error) {
      throw (error as NodeJS.ErrnoException).code === 'ENOENT' ? new ImageError(`no chunk ${sha}`, 404) : error;
    }
    let streamOwnsFd = false;
    try {
      const { size } = fstatSync(fd);
      res.writeHead(200, { 'content-type': 'application/zstd', 'content-length': size });
      if (req.method === 'HEAD' || size === 0) {
        res.end();
        return;
      }
      try {
        if (this.bodies && (await this.bodies.body(res, fd, 0, size))) return;
        // A chunk is a few MiB: 1 MiB reads take a sixteenth of the calls the 64 KiB default does.
        // The stream closes the descriptor itself, after any read still under way.
        streamOwnsFd = true;
        await pipeline(createReadStream('', { fd, start: 0, highWaterMark: 1024 * 1024 }), res);
      } catch (error) {
        // The PC went away mid-chunk (rebooted, cable): its agent retries or reports; nothing here to fix.
        this.options.logger.debug(`imaging: chunk ${sha} to ${req.socket.remoteAddress ?? '?'} ended early: ${(error as Error).message}`);
        res.destroy();
      }
    } finally {
      if (!streamOwnsFd) closeSync(fd);
    }
  }

  private progress(job: ImageJob, mac: string, update: MachineReport): void {
    this.options.jobs.report(job.id, mac, update);
    this.options.onProgress?.(job, mac, update.phase, update);
  }
}
