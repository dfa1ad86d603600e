// Web mode's file upload: a browser never learns where a dropped file lives on the host, so
// the file itself is sent (POST /upload?name=...) and streamed into the library's upload
// area, then imported with `entries:import-uploads`. Each upload gets a folder of its own
// named by a random id; the file is written as <name>.partial and renamed when complete, and
// anything that goes wrong removes the folder, so no half file is ever imported or left.
import { createWriteStream, statfsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable, type Writable } from 'node:stream';

/** Refused with an HTTP status and words for the technician. */
export class UploadError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'UploadError';
  }
}

const MAX_NAME_BYTES = 200;

/**
 * The file's own name, as the one path component it becomes: no folders (no / or \), no
 * "..", nothing hidden, no control characters. Anything else is refused, not cleaned up, so
 * the entry is named after what the technician dropped.
 */
export function uploadFileName(raw: string | null | undefined): string {
  const name = (raw ?? '').trim();
  if (name === '') throw new UploadError(400, 'The upload has no file name: give it as ?name=FILE.');
  if (/[/\\]/.test(name)) throw new UploadError(400, `"${name}" is a path: upload a file by its name only (no folders).`);
  if (name.startsWith('.')) throw new UploadError(400, `"${name}" starts with a dot: hidden names and ".." are not accepted; rename the file.`);
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new UploadError(400, 'The file name contains control characters: rename the file.');
  if (/^[a-zA-Z]:/.test(name)) throw new UploadError(400, `"${name}" names a drive: upload a file by its name only.`);
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new UploadError(400, `The file name is longer than ${MAX_NAME_BYTES} bytes: rename the file.`);
  return name;
}

export interface SaveUploadOptions {
  /** The upload area (main/library uploadsDir). */
  dir: string;
  name: string;
  /** Content-Length: checked against the free space first, and against what arrived. */
  size: number;
  /** Free bytes on the disk holding `dir` (default: statfs). */
  freeBytes?: (dir: string) => number;
  /** For tests: where the bytes go (default: a new file). */
  openWrite?: (path: string) => Writable;
  /** Called as bytes arrive. */
  onBytes?: (received: number) => void;
}

export interface SavedUpload {
  id: string;
  name: string;
  size: number;
}

function freeBytesOf(dir: string): number {
  // The upload area may not exist yet: ask the nearest folder that does.
  for (let d = dir; ; d = dirname(d)) {
    try {
      const fs = statfsSync(d);
      return fs.bavail * fs.bsize;
    } catch {
      if (dirname(d) === d) return Number.POSITIVE_INFINITY;
    }
  }
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/** Streams `body` into `<dir>/<id>/<name>`; on any failure nothing of it is left. */
export async function saveUpload(body: Readable, options: SaveUploadOptions): Promise<SavedUpload> {
  const name = uploadFileName(options.name);
  const free = (options.freeBytes ?? freeBytesOf)(options.dir);
  if (options.size > free) {
    throw new UploadError(
      507,
      `The host's disk holding ${options.dir} has ${mib(free)} free and ${name} needs ${mib(options.size)}: free space there, then drop the file again.`,
    );
  }
  const id = randomBytes(16).toString('hex');
  const folder = join(options.dir, id);
  const partial = join(folder, `${name}.partial`);
  let received = 0;
  try {
    await mkdir(folder, { recursive: true });
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        received += chunk.length;
        if (received > options.size) return done(new UploadError(400, `More bytes arrived than the ${options.size} announced: send the file again.`));
        options.onBytes?.(received);
        done(null, chunk);
      },
    });
    const out = options.openWrite ? options.openWrite(partial) : createWriteStream(partial, { flags: 'wx' });
    await pipeline(body, counter, out);
    if (received !== options.size) throw new UploadError(400, `The upload of ${name} ended after ${received} of ${options.size} bytes: drop the file again.`);
    await rename(partial, join(folder, name));
    return { id, name, size: received };
  } catch (err) {
    await rm(folder, { recursive: true, force: true });
    if (err instanceof UploadError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new UploadError(
        507,
        `The host's disk holding ${options.dir} filled up while ${name} was uploaded (${mib(received)} of ${mib(options.size)}); nothing was kept. Free space there, then drop the file again.`,
      );
    }
    if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'ABORT_ERR') {
      throw new UploadError(400, `The upload of ${name} stopped after ${mib(received)} of ${mib(options.size)} (the browser went away); nothing was kept.`);
    }
    throw new UploadError(500, `${name} could not be saved on the host: ${(err as Error).message}`);
  }
}
