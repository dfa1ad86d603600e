// FileResolver: the one place that decides which bytes a TFTP or HTTP client may read.
// Shared by both servers so path safety is implemented (and tested) once.
//
// Lookup order for a normalised request path:
//   1. generated virtual files (`generate`), exact path; a generator with nothing for this
//      client falls through, so a file the technician put in the root is served instead;
//   2. mounted virtual files or folders (`mount`) and located files (`locate`: a file or a
//      stretch of one, e.g. inside an ISO image, found per request), longest prefix first;
//      a locator that does not know the name falls through;
//   3. each root in order.
// Every step of a walk on disk stays inside its root: each component is lstat'ed, and a
// symlink is followed only when its real path is still inside the root's real path.
// The final object must be a regular file: folders are "not found", devices, FIFOs and
// sockets are refused.
import { constants as fsConstants, close as closeFd, fstat, open as openCallback, type Stats } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { isAbsolute, join, resolve as resolvePath, sep } from 'node:path';
import { DiskExtent, DiskFile, GeneratedFile, SharedDescriptor, type FileContext, type OpenFile } from './open-file.js';
import { foldCase, normalizeRequestPath, type RefusalCode } from './path-safety.js';

export interface FileResolverOptions {
  /** Folders whose files are served (read-only). The first root that has the file wins. */
  roots: string[];
  /** Match names regardless of case (`Boot\BCD` finds `boot/bcd`). Default true. */
  caseInsensitive?: boolean;
  /**
   * Serve regular files with more than one hard link. Default true: a hard link is the
   * same file under another name and cannot be told apart from the original. Set false
   * where untrusted users can create links in the root.
   */
  allowHardLinks?: boolean;
  /** How long a folder listing is reused for case-insensitive lookups (ms). Default 2000. */
  listingCacheMs?: number;
  /** Time source for the listing cache; default Date.now. */
  now?: () => number;
}

export type GenerateFile = (request: FileContext & { path: string }) => Buffer | string | undefined | Promise<Buffer | string | undefined>;

/** Where the bytes of a located file are: `size` bytes from `offset` of the file at `path`. */
export interface LocatedFile {
  path: string;
  offset: number;
  size: number;
}

/**
 * Finds the file for `rest` (the request path below the locator's prefix, as the client
 * spelled it): its bytes, why it cannot be had, or undefined when the name is not its own.
 */
export type LocateFile = (rest: string, context: FileContext) => Promise<LocatedFile | { missing: string } | undefined>;

export type OpenResult = { ok: true; file: OpenFile } | { ok: false; code: RefusalCode; reason: string; path?: string };

interface Mount {
  segments: string[];
  keys: string[];
  /** A mounted file or folder... */
  target?: string;
  /** ...or a locator. */
  locate?: LocateFile;
}

interface ListingCacheEntry {
  at: number;
  byFoldedName: Map<string, string>;
}

const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;
const openFd = promisify(openCallback) as (path: string, flags: number) => Promise<number>;
const fstatFd = promisify(fstat);

export class FileResolver {
  readonly roots: string[];
  readonly caseInsensitive: boolean;
  private readonly allowHardLinks: boolean;
  private readonly listingCacheMs: number;
  private readonly now: () => number;
  private readonly generators = new Map<string, { path: string; fn: GenerateFile }>();
  private readonly mounts: Mount[] = [];
  private readonly descriptors = new Map<string, SharedDescriptor>();
  private readonly opening = new Map<string, Promise<SharedDescriptor>>();
  private readonly listings = new Map<string, ListingCacheEntry>();
  private realRoots: Promise<(string | undefined)[]> | undefined;

  constructor(options: FileResolverOptions) {
    this.roots = options.roots.map((r) => resolvePath(r));
    this.caseInsensitive = options.caseInsensitive ?? true;
    this.allowHardLinks = options.allowHardLinks ?? true;
    this.listingCacheMs = options.listingCacheMs ?? 2000;
    this.now = options.now ?? Date.now;
  }

  /** Serves `realPath` (a file, or a folder whose contents appear below) at `virtualPath`. */
  mount(virtualPath: string, realPath: string): void {
    const normalized = normalizeRequestPath(virtualPath);
    if (!normalized.ok) throw new Error(`cannot mount at ${JSON.stringify(virtualPath)}: ${normalized.reason}`);
    if (!isAbsolute(realPath)) throw new Error(`mount target must be an absolute path: ${realPath}`);
    this.unmount(virtualPath);
    this.mounts.push({ segments: normalized.segments, keys: normalized.segments.map((s) => this.key(s)), target: resolvePath(realPath) });
    this.mounts.sort((a, b) => b.segments.length - a.segments.length);
  }

  /**
   * Serves what `locate` finds below `virtualPrefix`. The path it names is trusted like a
   * mount target: the locator picks it, no name in a root can lead there.
   */
  locate(virtualPrefix: string, locate: LocateFile): void {
    const normalized = normalizeRequestPath(virtualPrefix);
    if (!normalized.ok) throw new Error(`cannot locate files at ${JSON.stringify(virtualPrefix)}: ${normalized.reason}`);
    this.unmount(virtualPrefix);
    this.mounts.push({ segments: normalized.segments, keys: normalized.segments.map((s) => this.key(s)), locate });
    this.mounts.sort((a, b) => b.segments.length - a.segments.length);
  }

  /** Serves the result of `fn` at `virtualPath` (per request: it may depend on the client). */
  generate(virtualPath: string, fn: GenerateFile): void {
    const normalized = normalizeRequestPath(virtualPath);
    if (!normalized.ok) throw new Error(`cannot generate at ${JSON.stringify(virtualPath)}: ${normalized.reason}`);
    this.generators.set(this.key(normalized.path), { path: normalized.path, fn });
  }

  /** Removes a mount, locator or generator; returns whether there was one. */
  unmount(virtualPath: string): boolean {
    const normalized = normalizeRequestPath(virtualPath);
    if (!normalized.ok) return false;
    const key = this.key(normalized.path);
    let removed = this.generators.delete(key);
    const index = this.mounts.findIndex((m) => this.key('/' + m.segments.join('/')) === key);
    if (index >= 0) {
      this.mounts.splice(index, 1);
      removed = true;
    }
    return removed;
  }

  /**
   * Opens the file a client asked for. Never throws for a bad name: a refusal says whether
   * it is `not-found` (TFTP ERROR 1, HTTP 404) or `access-denied` (TFTP ERROR 2, HTTP 403).
   */
  async open(requested: string, context: FileContext = { protocol: 'tftp' }): Promise<OpenResult> {
    const normalized = normalizeRequestPath(requested);
    if (!normalized.ok) return normalized;
    const { segments, path } = normalized;

    const generator = this.generators.get(this.key(path));
    if (generator) {
      let content: Buffer | string | undefined;
      try {
        content = await generator.fn({ ...context, path: generator.path });
      } catch (err) {
        return { ok: false, code: 'not-found', reason: `generating ${path} failed: ${(err as Error).message}`, path };
      }
      if (content !== undefined) {
        return { ok: true, file: new GeneratedFile(path, typeof content === 'string' ? Buffer.from(content, 'utf8') : content, this.now()) };
      }
    }

    const keys = segments.map((s) => this.key(s));
    for (const mount of this.mounts) {
      if (mount.keys.length > keys.length || !mount.keys.every((k, i) => k === keys[i])) continue;
      const rest = segments.slice(mount.keys.length);
      if (mount.target !== undefined) return this.openInRoot(mount.target, rest, '/' + mount.segments.join('/'));
      let located: LocatedFile | { missing: string } | undefined;
      try {
        located = await mount.locate!(rest.join('/'), context);
      } catch (err) {
        return { ok: false, code: 'not-found', reason: `locating ${path} failed: ${(err as Error).message}`, path };
      }
      if (located === undefined) continue;
      if ('missing' in located) return { ok: false, code: 'not-found', reason: located.missing, path };
      return this.openLocated(located, path);
    }

    let lastRefusal: OpenResult = { ok: false, code: 'not-found', reason: 'no such file', path };
    for (const root of this.roots) {
      const result = await this.openInRoot(root, segments, '');
      if (result.ok || result.code === 'access-denied') return result;
      lastRefusal = result;
    }
    return lastRefusal;
  }

  /** Descriptors currently open (for tests and diagnostics). */
  openDescriptorCount(): number {
    return this.descriptors.size;
  }

  private key(name: string): string {
    return this.caseInsensitive ? foldCase(name) : name;
  }

  /**
   * Walks `segments` below `root`. `prefix` is the virtual path of the root ('' for a
   * configured root); the opened file's `path` is prefix + the names as found on disk, so
   * events show `/boot/bcd` however the client spelled it.
   */
  private async openInRoot(root: string, segments: string[], prefix: string): Promise<OpenResult> {
    let path = prefix + '/' + segments.join('/');
    const found: string[] = [];
    let realRoot: string;
    try {
      realRoot = await realpath(root);
    } catch {
      return { ok: false, code: 'not-found', reason: `root ${root} is missing`, path };
    }
    // A mount of a single file: the request must name exactly it.
    let current = realRoot;
    let rootStat;
    try {
      rootStat = await stat(realRoot);
    } catch {
      return { ok: false, code: 'not-found', reason: `root ${root} is missing`, path };
    }
    if (!rootStat.isDirectory()) {
      if (segments.length > 0) return { ok: false, code: 'not-found', reason: 'no such file', path };
      return this.openRegularFile(realRoot, realRoot, prefix || path);
    }
    if (segments.length === 0) return { ok: false, code: 'not-found', reason: 'a folder is not a file', path };

    for (let i = 0; i < segments.length; i++) {
      const name = await this.findEntry(current, segments[i]);
      if (name === undefined) return { ok: false, code: 'not-found', reason: 'no such file', path };
      found.push(name);
      const candidate = join(current, name);
      let info;
      try {
        info = await lstat(candidate);
      } catch {
        return { ok: false, code: 'not-found', reason: 'no such file', path };
      }
      if (info.isSymbolicLink()) {
        let target: string;
        try {
          target = await realpath(candidate);
        } catch {
          return { ok: false, code: 'not-found', reason: 'dangling symbolic link', path };
        }
        if (!isInside(realRoot, target)) return { ok: false, code: 'access-denied', reason: 'symbolic link leads outside the root', path };
        current = target;
      } else {
        current = candidate;
      }
      if (i < segments.length - 1) {
        try {
          if (!(await stat(current)).isDirectory()) return { ok: false, code: 'not-found', reason: 'no such file', path };
        } catch {
          return { ok: false, code: 'not-found', reason: 'no such file', path };
        }
      }
    }
    path = prefix + '/' + found.join('/');
    return this.openRegularFile(realRoot, current, path);
  }

  private async openRegularFile(realRoot: string, realFile: string, path: string): Promise<OpenResult> {
    let info;
    try {
      info = await stat(realFile);
    } catch {
      return { ok: false, code: 'not-found', reason: 'no such file', path };
    }
    if (info.isDirectory()) return { ok: false, code: 'not-found', reason: 'a folder is not a file', path };
    if (!info.isFile()) return { ok: false, code: 'access-denied', reason: 'not a regular file (device, FIFO or socket)', path };
    if (!this.allowHardLinks && info.nlink > 1) return { ok: false, code: 'access-denied', reason: 'file has several hard links', path };
    if (realFile !== realRoot && !isInside(realRoot, realFile)) return { ok: false, code: 'access-denied', reason: 'outside the root', path };

    const descriptor = await this.acquireDescriptor(realFile, info, path);
    if (!(descriptor instanceof SharedDescriptor)) return descriptor;
    const etag = `"${info.ino.toString(16)}-${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    return { ok: true, file: new DiskFile(path, realFile, info.size, info.mtimeMs, etag, descriptor) };
  }

  private async openLocated(located: LocatedFile, path: string): Promise<OpenResult> {
    let realFile: string;
    let info;
    try {
      // The shared descriptor is opened with O_NOFOLLOW: resolve a referenced file's symlinks first.
      realFile = await realpath(located.path);
      info = await stat(realFile);
    } catch {
      return { ok: false, code: 'not-found', reason: `${located.path} is gone`, path };
    }
    if (!info.isFile()) return { ok: false, code: 'access-denied', reason: `${located.path} is not a regular file`, path };
    if (located.offset < 0 || located.size < 0 || located.offset + located.size > info.size) {
      return { ok: false, code: 'not-found', reason: `bytes ${located.offset}+${located.size} are past the end of ${located.path}`, path };
    }
    const descriptor = await this.acquireDescriptor(realFile, info, path);
    if (!(descriptor instanceof SharedDescriptor)) return descriptor;
    const etag = `"${info.ino.toString(16)}-${located.offset.toString(16)}-${located.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    return { ok: true, file: new DiskExtent(path, realFile, located.offset, located.size, info.mtimeMs, etag, descriptor) };
  }

  /** The file's shared descriptor, acquired for one more user, or the refusal that names why it cannot be opened. */
  private async acquireDescriptor(realFile: string, info: Stats, path: string): Promise<SharedDescriptor | OpenResult> {
    const key = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`;
    let descriptor: SharedDescriptor;
    try {
      descriptor = await this.sharedDescriptor(key, realFile, info.dev, info.ino);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM' || code === 'ELOOP') return { ok: false, code: 'access-denied', reason: `cannot open: ${code}`, path };
      if (code === 'ESTALE') return { ok: false, code: 'access-denied', reason: 'file changed while opening', path };
      return { ok: false, code: 'not-found', reason: `cannot open: ${code ?? (err as Error).message}`, path };
    }
    descriptor.acquire();
    return descriptor;
  }

  private async sharedDescriptor(key: string, realFile: string, dev: number, ino: number): Promise<SharedDescriptor> {
    const existing = this.descriptors.get(key);
    if (existing && !existing.isClosed) return existing;
    const pending = this.opening.get(key);
    if (pending) return pending;
    const opening = (async () => {
      // O_NOFOLLOW: the path was resolved above; if it became a symlink since, refuse.
      // Plain descriptor numbers (not FileHandle): the descriptor is shared and closed
      // explicitly by the last reader.
      const fd = await openFd(realFile, fsConstants.O_RDONLY | O_NOFOLLOW);
      let info;
      try {
        info = await fstatFd(fd);
      } catch (err) {
        closeFd(fd, () => {});
        throw err;
      }
      if (info.dev !== dev || info.ino !== ino || !info.isFile()) {
        closeFd(fd, () => {});
        throw Object.assign(new Error('file replaced while opening'), { code: 'ESTALE' });
      }
      const descriptor = new SharedDescriptor(fd, key, (d) => {
        if (this.descriptors.get(d.key) === d) this.descriptors.delete(d.key);
      });
      this.descriptors.set(key, descriptor);
      return descriptor;
    })();
    this.opening.set(key, opening);
    try {
      return await opening;
    } finally {
      this.opening.delete(key);
    }
  }

  /** The real name in `dir` for `name`: exact when it exists, else a case-folded match. */
  private async findEntry(dir: string, name: string): Promise<string | undefined> {
    try {
      await lstat(join(dir, name));
      return name;
    } catch {
      if (!this.caseInsensitive) return undefined;
    }
    const listing = await this.listing(dir);
    return listing?.get(foldCase(name));
  }

  private async listing(dir: string): Promise<Map<string, string> | undefined> {
    const now = this.now();
    const cached = this.listings.get(dir);
    if (cached && now - cached.at < this.listingCacheMs) return cached.byFoldedName;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return undefined;
    }
    names.sort(); // deterministic choice when two names differ only in case
    const byFoldedName = new Map<string, string>();
    for (const n of names) if (!byFoldedName.has(foldCase(n))) byFoldedName.set(foldCase(n), n);
    if (this.listings.size > 256) this.listings.clear();
    this.listings.set(dir, { at: now, byFoldedName });
    return byFoldedName;
  }
}

function isInside(realRoot: string, realPath: string): boolean {
  if (realPath === realRoot) return false;
  const prefix = realRoot.endsWith(sep) ? realRoot : realRoot + sep;
  return realPath.startsWith(prefix);
}
