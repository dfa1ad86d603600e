// Shared set-up for TFTP loopback tests: a root with random files, a server on
// 127.0.0.1 port 0, an event log, and a minimal raw client for protocol-level checks.
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBus, type BootEvent } from '../../main/core/events.js';
import { MemoryLogger } from '../../main/core/logger.js';
import { FileResolver } from '../../main/files/index.js';
import { TftpServer, type TftpServerOptions } from '../../main/tftp/server.js';

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Writes `size` pseudo-random bytes in 1 MiB pieces (large files never sit in memory whole). */
export function writeRandomFile(path: string, size: number): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'w');
  const piece = randomBytes(Math.min(size, 1 << 20));
  for (let written = 0; written < size;) {
    const n = Math.min(piece.length, size - written);
    const chunk = piece.subarray(0, n);
    // vary each MiB so a misplaced block cannot go unnoticed
    if (n >= 4) chunk.writeUInt32BE(written >>> 0, 0);
    writeSync(fd, chunk);
    hash.update(chunk);
    written += n;
  }
  closeSync(fd);
  return hash.digest('hex');
}

export class TftpFixture {
  readonly dir = mkdtempSync(join(tmpdir(), 'bb-tftp-'));
  readonly root = join(this.dir, 'root');
  readonly out = join(this.dir, 'out');
  readonly events: BootEvent[] = [];
  readonly bus = new EventBus();
  readonly logger = new MemoryLogger();
  readonly files: FileResolver;
  server!: TftpServer;
  readonly hashes = new Map<string, string>();

  constructor() {
    for (const d of [this.root, this.out]) mkdirSync(d, { recursive: true });
    this.files = new FileResolver({ roots: [this.root] });
    this.bus.subscribe((e) => this.events.push(e));
  }

  addFile(name: string, size: number): string {
    const hash = writeRandomFile(join(this.root, name), size);
    this.hashes.set(name, hash);
    return hash;
  }

  addText(name: string, text: string): void {
    writeFileSync(join(this.root, name), text);
    this.hashes.set(name, sha256(Buffer.from(text)));
  }

  async start(options: Partial<TftpServerOptions> = {}): Promise<TftpServer> {
    this.server = new TftpServer({
      port: 0,
      address: '127.0.0.1',
      files: this.files,
      publish: this.bus.publish,
      logger: this.logger,
      macForIp: (ip) => (ip === '127.0.0.1' ? '52:54:00:12:34:56' : undefined),
      ...options,
    });
    await this.server.start();
    return this.server;
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  ofType(type: string): BootEvent[] {
    return this.events.filter((e) => e.type === type);
  }
}

/** A bare UDP socket on 127.0.0.1 with a queue of received datagrams. */
export class RawClient {
  readonly socket: Socket = createSocket('udp4');
  private readonly queue: { msg: Buffer; port: number }[] = [];
  private waiter: (() => void) | undefined;

  async open(): Promise<this> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    this.socket.on('message', (msg, rinfo) => {
      this.queue.push({ msg, port: rinfo.port });
      this.waiter?.();
    });
    return this;
  }

  private readonly pending = new Set<Promise<void>>();

  send(packet: Uint8Array, port: number): void {
    // dgram sends asynchronously; close() waits for these so a final ACK is not lost.
    const sent = new Promise<void>((resolve) => this.socket.send(packet, port, '127.0.0.1', () => resolve()));
    this.pending.add(sent);
    void sent.then(() => this.pending.delete(sent));
  }

  async receive(timeoutMs = 2000): Promise<{ msg: Buffer; port: number }> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no datagram received');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.queue.shift()!;
  }

  /** Waits briefly and returns whatever arrived (possibly nothing). */
  async drain(ms: number): Promise<{ msg: Buffer; port: number }[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.queue.splice(0);
  }

  async close(): Promise<void> {
    await Promise.all(this.pending);
    this.socket.close();
  }
}
