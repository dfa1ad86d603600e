// Where a negotiated read transfer runs: the server (server.ts) keeps port 69, path safety,
// file opening, option negotiation and events, and hands each transfer to a data path.
// Two exist: the worker thread that polls its transfers' descriptors itself
// (worker-data-path.ts, Linux) and dgram sockets on Node's event loop
// (event-loop-data-path.ts, everywhere else and as the fallback). Both run the same
// ReadTransfer state machine and read their transfer's port through the one dispatcher below.
import type { OpenFile } from '../files/index.js';
import type { NegotiatedTransfer } from './options.js';
import { encodeError, TftpErrorCode, TftpOpcode } from './packet.js';
import type { TransferPhase, TransferProgress, TransferResult } from './transfer.js';

export interface TransferSpec {
  /** the client and its port (its TID) */
  ip: string;
  port: number;
  file: OpenFile;
  negotiated: NegotiatedTransfer;
}

/** What the server reads of a running transfer, wherever it runs. */
export interface RunningTransfer {
  readonly phase: TransferPhase;
  readonly size: number;
  readonly bytesAcknowledged: number;
  readonly retransmits: number;
  readonly startedAt: number;
  readonly blksize: number;
  readonly windowsize: number;
  abort(reason: string): void;
  /** The client repeated its request on port 69 (see ReadTransfer.handleRepeatedRequest). */
  handleRepeatedRequest(): void;
}

export interface TransferHandlers {
  /** Called once, just before the first packet goes out. */
  onStart(transfer: RunningTransfer): void;
  onProgress(progress: TransferProgress): void;
  onEnd(result: TransferResult): void;
  /** The path could not take the transfer after onStart (nothing was sent to the client). */
  onRefused(reason: string): void;
  /** A datagram on the transfer's port that is neither ACK nor ERROR. */
  onJunk(bytes: number): void;
  /** A send failed; the transfer treats it as loss. */
  onSendError(message: string): void;
}

export interface TransferDataPath {
  readonly kind: 'worker' | 'event-loop';
  /**
   * Starts the transfer; false when this path cannot take it (the server tries the other).
   * Throws when it should have and could not (no socket).
   */
  begin(spec: TransferSpec, handlers: TransferHandlers): Promise<boolean>;
  /** Ends every transfer of this path (each client gets an ERROR) and releases the path. */
  stop(reason: string): Promise<void>;
}

/** What the transfer is told of the datagram (`handleAck`, `handleError`). */
export interface DatagramTarget {
  handleAck(wireBlock: number): void;
  handleError(code: number, message: string): void;
}

/** RFC 1350 §4: a packet from a foreign TID gets ERROR 5; the transfer goes on. */
export const UNKNOWN_TID_ERROR = encodeError(TftpErrorCode.UnknownTransferId, 'unknown transfer ID');

/**
 * Reads one datagram that arrived on a transfer's port: an ACK or ERROR from the client is
 * handed to the transfer ('handled'); a datagram from another address or port is a foreign
 * TID (the caller answers UNKNOWN_TID_ERROR); anything else is junk (the caller logs it).
 * `length`: the datagram's bytes at the start of `datagram`.
 */
export function dispatchTransferDatagram(target: DatagramTarget, datagram: Buffer, length: number, fromClient: boolean): 'handled' | 'foreign-tid' | 'junk' {
  if (!fromClient) return 'foreign-tid';
  if (length >= 4 && datagram[0] === 0) {
    if (datagram[1] === TftpOpcode.ACK) {
      target.handleAck((datagram[2] << 8) | datagram[3]);
      return 'handled';
    }
    if (datagram[1] === TftpOpcode.ERROR) {
      const end = datagram.indexOf(0, 4);
      target.handleError((datagram[2] << 8) | datagram[3], datagram.toString('utf8', 4, end < 0 || end > length ? length : end));
      return 'handled';
    }
  }
  return 'junk';
}
