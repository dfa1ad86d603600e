// The data path on Node's event loop: each transfer gets a dgram socket on a fresh port
// (its TID, RFC 1350 §4) and a ReadTransfer on this thread. It runs wherever the worker
// data path cannot (not Linux x64/arm64, no koffi, an injected clock, a file that is not
// on disk, the worker failed), and windows still leave in one sendmmsg(2) where the Linux
// calls exist (batch-send.ts).
import type { Socket } from 'node:dgram';
import type { Clock } from '../core/index.js';
import type { UdpSocketOptions } from '../net/index.js';
import { createBatchSender } from './batch-send.js';
import { dispatchTransferDatagram, UNKNOWN_TID_ERROR, type TransferDataPath, type TransferHandlers, type TransferSpec } from './data-path.js';
import { ReadTransfer, type RetransmitPolicy } from './transfer.js';

export interface EventLoopDataPathOptions {
  openSocket(options: UdpSocketOptions): Promise<Socket>;
  /** bind address of the transfers' sockets (the server's) */
  address?: string;
  clock: Clock;
  /** Send each window with one sendmmsg(2) where available. Default true. */
  batchSend?: boolean;
  retransmit?: Partial<RetransmitPolicy>;
  progressIntervalMs?: number;
  readAheadBytes?: number;
}

const SEND_BUFFER_BYTES = 4 * 1024 * 1024;
const RECEIVE_BUFFER_BYTES = 256 * 1024;

export class EventLoopDataPath implements TransferDataPath {
  readonly kind = 'event-loop';
  private readonly running = new Set<ReadTransfer>();
  private stopped = false;

  constructor(private readonly options: EventLoopDataPathOptions) {}

  async begin(spec: TransferSpec, handlers: TransferHandlers): Promise<boolean> {
    const { ip, port, file, negotiated } = spec;
    const options = this.options;
    const socket = await options.openSocket({ port: 0, address: options.address });
    if (this.stopped) {
      socket.close();
      throw new Error('server stopping');
    }
    try {
      socket.setSendBufferSize(SEND_BUFFER_BYTES);
      socket.setRecvBufferSize(RECEIVE_BUFFER_BYTES);
    } catch {
      // The kernel caps these (net.core.wmem_max); the defaults still work.
    }
    const batch = options.batchSend === false ? undefined : createBatchSender(socket, ip, port, Math.min(64, negotiated.windowsize));
    const send = batch
      ? (header: Uint8Array, data?: Uint8Array): void => batch.add(header, data)
      : (header: Uint8Array, data?: Uint8Array): void => {
          if (data) socket.send([header, data], port, ip);
          else socket.send(header, port, ip);
        };
    const transfer: ReadTransfer = new ReadTransfer({
      source: file,
      negotiated,
      send,
      flush: batch?.flush,
      clock: options.clock,
      onEnd: (result) => {
        this.running.delete(transfer);
        // dgram resolves the address on the next tick before sending: closing now would drop
        // a final ERROR (abort, give-up) still on its way out.
        setImmediate(() => socket.close());
        handlers.onEnd(result);
      },
      onProgress: (progress) => handlers.onProgress(progress),
      progressIntervalMs: options.progressIntervalMs,
      retransmit: options.retransmit,
      readAheadBytes: options.readAheadBytes,
      sendQueueLength: () => socket.getSendQueueCount(),
    });
    socket.on('message', (msg, from) => {
      const verdict = dispatchTransferDatagram(transfer, msg, msg.length, from.port === port && from.address === ip);
      if (verdict === 'foreign-tid') socket.send(UNKNOWN_TID_ERROR, from.port, from.address);
      else if (verdict === 'junk') handlers.onJunk(msg.length);
    });
    // Send errors (ENOBUFS, a firewall's EPERM) are treated as loss: the retransmit timer
    // recovers or gives up.
    socket.on('error', (err) => handlers.onSendError(err.message));
    this.running.add(transfer);
    handlers.onStart(transfer);
    transfer.start();
    return true;
  }

  async stop(reason: string): Promise<void> {
    this.stopped = true;
    for (const transfer of [...this.running]) transfer.abort(reason);
  }
}
