// What TFTP and HTTP read from: a file opened once and shared by every transfer that
// reads it (descriptor refcounted), or generated content held in memory. Reads are
// positional (pread), so many transfers share one descriptor without seeking.
import { close as closeFd, createReadStream, read as readFd } from 'node:fs';
import { Readable } from 'node:stream';

export interface FileContext {
  protocol: 'tftp' | 'http';
  /** client IPv4 */
  ip?: string;
  /** client MAC, when the host knows it from DHCP */
  mac?: string;
}

/** A byte source a transfer reads from. Sync results let unit tests run without awaiting. */
export interface TransferSource {
  readonly size: number;
  /** Reads up to `length` bytes at `position` into `target[targetOffset...]`; returns the count. */
  read(target: Uint8Array, targetOffset: number, length: number, position: number): number | Promise<number>;
}

export interface OpenFile extends TransferSource {
  /** Canonical request path (`/boot/bcd`), as asked, after normalisation. */
  readonly path: string;
  /** The file on disk (undefined for generated content). */
  readonly realPath?: string;
  readonly mtimeMs: number;
  /** Strong validator: changes when the file's inode, size or mtime changes. */
  readonly etag: string;
  readonly generated: boolean;
  /** Streams bytes start..end inclusive (HTTP). The stream never closes the shared descriptor. */
  createReadStream(start: number, end: number, highWaterMark?: number): Readable;
  /** Drops this reader's reference; the descriptor closes when the last reader releases. */
  release(): void;
}

/** One open descriptor shared by readers of the same inode. */
export class SharedDescriptor {
  private refs = 0;
  private closed = false;

  constructor(
    readonly fd: number,
    readonly key: string,
    private readonly onLastRelease: (descriptor: SharedDescriptor) => void,
  ) {}

  acquire(): void {
    this.refs++;
  }

  release(): void {
    if (this.closed) return;
    if (--this.refs > 0) return;
    this.closed = true;
    this.onLastRelease(this);
    closeFd(this.fd, () => {});
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get references(): number {
    return this.refs;
  }
}

export class DiskFile implements OpenFile {
  readonly generated = false;
  private released = false;

  constructor(
    readonly path: string,
    readonly realPath: string,
    readonly size: number,
    readonly mtimeMs: number,
    readonly etag: string,
    private readonly descriptor: SharedDescriptor,
  ) {}

  /** The shared descriptor, for readers on another thread (TFTP worker); valid until `release`. */
  get descriptorFd(): number {
    return this.descriptor.fd;
  }

  read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      readFd(this.descriptor.fd, target, targetOffset, length, position, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead)));
    });
  }

  createReadStream(start: number, end: number, highWaterMark = 1024 * 1024): Readable {
    // `fd` + `start` makes the stream use positional reads; autoClose false keeps the
    // shared descriptor open for the other readers.
    return createReadStream('', { fd: this.descriptor.fd, start, end, autoClose: false, highWaterMark });
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.descriptor.release();
  }
}

/**
 * A stretch of a file on disk served as a file of its own: a file inside an ISO image, read
 * in place. Positions are relative to the stretch; reads never go past its end. Not a
 * DiskFile: readers that take the descriptor itself (sendfile, the TFTP worker) would read
 * the whole image.
 */
export class DiskExtent implements OpenFile {
  readonly generated = false;
  private released = false;

  constructor(
    readonly path: string,
    readonly realPath: string,
    private readonly offset: number,
    readonly size: number,
    readonly mtimeMs: number,
    readonly etag: string,
    private readonly descriptor: SharedDescriptor,
  ) {}

  read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number> {
    const wanted = Math.max(0, Math.min(length, this.size - position));
    if (wanted === 0) return Promise.resolve(0);
    return new Promise((resolve, reject) => {
      readFd(this.descriptor.fd, target, targetOffset, wanted, this.offset + position, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead)));
    });
  }

  createReadStream(start: number, end: number, highWaterMark = 1024 * 1024): Readable {
    return createReadStream('', {
      fd: this.descriptor.fd,
      start: this.offset + start,
      end: this.offset + Math.min(end, this.size - 1),
      autoClose: false,
      highWaterMark,
    });
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.descriptor.release();
  }
}

export class GeneratedFile implements OpenFile {
  readonly generated = true;
  readonly realPath = undefined;
  readonly size: number;
  readonly etag: string;

  constructor(
    readonly path: string,
    private readonly content: Buffer,
    readonly mtimeMs: number,
  ) {
    this.size = content.length;
    this.etag = `"g-${content.length.toString(16)}-${hashForEtag(content)}"`;
  }

  read(target: Uint8Array, targetOffset: number, length: number, position: number): number {
    if (position >= this.content.length) return 0;
    return this.content.copy(target, targetOffset, position, Math.min(this.content.length, position + length));
  }

  createReadStream(start: number, end: number): Readable {
    return Readable.from([this.content.subarray(start, end + 1)], { objectMode: false });
  }

  release(): void {}
}

/** FNV-1a over the content: cheap, and enough for a cache validator of small generated files. */
function hashForEtag(content: Buffer): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < content.length; i++) {
    hash ^= content[i];
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16);
}
