// Test harness for ReadTransfer: a fake file source, a simulated RFC 7440 client and a
// lossy wire, all driven by a ManualClock so loss and timeouts cost no real time.
import { createHash } from 'node:crypto';
import { ManualClock } from '../../main/core/clock.js';
import type { TransferSource } from '../../main/files/open-file.js';
import { negotiateReadOptions } from '../../main/tftp/options.js';
import { decodeTftpPacket, TftpOpcode, type TftpOption, type TftpPacket } from '../../main/tftp/packet.js';
import { ReadTransfer, type ReadTransferOptions, type RetransmitPolicy, type TransferProgress, type TransferResult } from '../../main/tftp/transfer.js';

/** Byte `p` of the fake file; varies with both low and high bits so shifted blocks differ. */
export function patternByte(p: number): number {
  return (p * 131 + Math.floor(p / 65521) * 7 + 13) & 0xff;
}

/** A file of `size` bytes generated on the fly (nothing held in memory). */
export class PatternSource implements TransferSource {
  reads = 0;
  maxReadLength = 0;
  constructor(readonly size: number) {}
  read(target: Uint8Array, targetOffset: number, length: number, position: number): number {
    this.reads++;
    this.maxReadLength = Math.max(this.maxReadLength, length);
    const n = Math.max(0, Math.min(length, this.size - position));
    for (let i = 0; i < n; i++) target[targetOffset + i] = patternByte(position + i);
    return n;
  }
  sha256(): string {
    const hash = createHash('sha256');
    const chunk = Buffer.alloc(1 << 20);
    for (let p = 0; p < this.size; p += chunk.length) {
      const n = this.read(chunk, 0, chunk.length, p);
      hash.update(chunk.subarray(0, n));
    }
    return hash.digest('hex');
  }
}

export interface SentPacket {
  packet: TftpPacket;
  raw: Buffer;
}

/**
 * Wire + client. `dropToClient(packet, index)` decides loss of server->client packets,
 * `dropToServer` of client->server ACKs. The client follows RFC 7440: it ACKs after
 * `windowsize` in-order blocks or the final block, and on its own timeout re-ACKs the
 * last in-order block.
 */
export class SimulatedExchange {
  readonly clock = new ManualClock(1_000_000);
  readonly sent: SentPacket[] = [];
  readonly progress: TransferProgress[] = [];
  result: TransferResult | undefined;
  transfer!: ReadTransfer;
  /** client state */
  nextExpected = 1;
  clientDone = false;
  readonly hash = createHash('sha256');
  bytesReceived = 0;
  acksSent = 0;
  private inFlightToClient: Buffer[] = [];
  private inFlightToServer: Buffer[] = [];
  private sinceAck = 0;
  private clientTimer: ReturnType<ManualClock['setTimeout']> | undefined;
  private toClientIndex = 0;
  private toServerIndex = 0;
  blksize = 512;
  windowsize = 1;
  negotiated = false;

  constructor(
    readonly source: TransferSource,
    readonly requestOptions: TftpOption[],
    readonly settings: {
      maxBlksize?: number;
      maxWindowsize?: number;
      retransmit?: Partial<RetransmitPolicy>;
      dropToClient?: (raw: Buffer, index: number) => boolean;
      dropToServer?: (raw: Buffer, index: number) => boolean;
      /** client's own retransmit timeout (ms) */
      clientTimeoutMs?: number;
      /**
       * Like atftp 0.8: any DATA that arrives restarts the client's timer, and repeated or
       * out-of-order blocks are dropped without an ACK, so it re-ACKs only after a silence.
       */
      lazyClient?: boolean;
      /** client answers the OACK with this ERROR instead of ACK 0 (size probe) */
      probeWithError?: number;
      /** client never answers */
      silentClient?: boolean;
      readAheadBytes?: number;
      /** one-way delay in ms for each packet (ACK processing happens after it) */
      delayMs?: number;
    } = {},
  ) {}

  start(): void {
    const negotiated = negotiateReadOptions(this.requestOptions, this.source.size, {
      maxBlksize: this.settings.maxBlksize ?? 1468,
      maxWindowsize: this.settings.maxWindowsize ?? 64,
    });
    const options: ReadTransferOptions = {
      source: this.source,
      negotiated,
      clock: this.clock,
      send: (header, data) => {
        const raw = data ? Buffer.concat([header, data]) : Buffer.from(header);
        this.sent.push({ packet: decodeTftpPacket(raw), raw });
        this.inFlightToClient.push(raw);
      },
      onEnd: (r) => {
        this.result = r;
      },
      onProgress: (p) => this.progress.push(p),
      retransmit: this.settings.retransmit,
      readAheadBytes: this.settings.readAheadBytes,
    };
    this.transfer = new ReadTransfer(options);
    if (negotiated.oack.length === 0) this.negotiated = true;
    this.transfer.start();
  }

  /** Delivers queued packets both ways until the wire is quiet; returns packets moved. */
  deliver(): number {
    let moved = 0;
    for (;;) {
      if (this.inFlightToClient.length) {
        const raw = this.inFlightToClient.shift()!;
        moved++;
        if (this.settings.dropToClient?.(raw, this.toClientIndex++)) continue;
        if (this.settings.delayMs) this.clock.advance(this.settings.delayMs);
        this.clientReceive(raw);
        continue;
      }
      if (this.inFlightToServer.length) {
        const raw = this.inFlightToServer.shift()!;
        moved++;
        if (this.settings.dropToServer?.(raw, this.toServerIndex++)) continue;
        if (this.settings.delayMs) this.clock.advance(this.settings.delayMs);
        const opcode = raw.readUInt16BE(0);
        if (opcode === TftpOpcode.ACK) this.transfer.handleAck(raw.readUInt16BE(2));
        else if (opcode === TftpOpcode.ERROR) this.transfer.handleError(raw.readUInt16BE(2), raw.toString('utf8', 4, raw.length - 1));
        continue;
      }
      return moved;
    }
  }

  /** Runs until the transfer ends or `maxMs` of simulated time passes. */
  run(maxMs = 600_000): void {
    const end = this.clock.now() + maxMs;
    while (!this.result && this.clock.now() < end) {
      if (this.deliver() === 0) this.clock.advance(1);
    }
    this.deliver();
  }

  ackFromClient(wireBlock: number): void {
    const raw = Buffer.from([0, TftpOpcode.ACK, (wireBlock >> 8) & 0xff, wireBlock & 0xff]);
    this.acksSent++;
    this.inFlightToServer.push(raw);
  }

  errorFromClient(code: number, message: string): void {
    const raw = Buffer.concat([Buffer.from([0, TftpOpcode.ERROR, 0, code]), Buffer.from(message + '\0')]);
    this.inFlightToServer.push(raw);
  }

  private armClientTimer(): void {
    if (this.clientTimer) this.clock.clearTimeout(this.clientTimer);
    this.clientTimer = this.clock.setTimeout(() => {
      this.clientTimer = undefined;
      if (this.clientDone || this.result) return;
      // RFC 7440 §4: on timeout, ACK the last block received in order.
      this.sinceAck = 0;
      this.ackFromClient((this.nextExpected - 1) & 0xffff);
      this.armClientTimer();
    }, this.settings.clientTimeoutMs ?? 1000);
  }

  private clientReceive(raw: Buffer): void {
    if (this.settings.silentClient) return;
    const packet = decodeTftpPacket(raw);
    if (packet.opcode === TftpOpcode.OACK) {
      if (this.negotiated && this.nextExpected > 1) return;
      for (const o of packet.options) {
        if (o.name === 'blksize') this.blksize = Number(o.value);
        if (o.name === 'windowsize') this.windowsize = Number(o.value);
      }
      if (this.settings.probeWithError !== undefined) {
        this.errorFromClient(this.settings.probeWithError, 'size probe done');
        return;
      }
      this.negotiated = true;
      this.ackFromClient(0);
      this.armClientTimer();
      return;
    }
    if (packet.opcode !== TftpOpcode.DATA) return;
    if (this.settings.lazyClient && !this.clientDone) this.armClientTimer();
    if (this.clientDone) {
      // Dallying (RFC 1350 §6): re-ACK a repeated final block.
      this.ackFromClient(packet.block);
      return;
    }
    if (packet.block === (this.nextExpected & 0xffff)) {
      this.hash.update(packet.data);
      this.bytesReceived += packet.data.length;
      this.nextExpected++;
      this.sinceAck++;
      const final = packet.data.length < this.blksize;
      if (final) this.clientDone = true;
      if (final || this.sinceAck >= this.windowsize) {
        this.sinceAck = 0;
        this.ackFromClient(packet.block);
      }
      this.armClientTimer();
    } else if (this.windowsize === 1 && !this.settings.lazyClient && packet.block === ((this.nextExpected - 1) & 0xffff)) {
      // RFC 1350 lock-step client: a repeated block is acknowledged again.
      this.ackFromClient(packet.block);
    }
    // Out-of-order blocks inside a window are dropped; the client's timer re-ACKs.
  }

  dataSent(): number[] {
    return this.sent.filter((s) => s.packet.opcode === TftpOpcode.DATA).map((s) => (s.packet as { block: number }).block);
  }

  clientSha256(): string {
    return this.hash.copy().digest('hex');
  }
}
