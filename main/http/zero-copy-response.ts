// A whole response body by sendfile(2), for routes outside the file server that serve files
// of their own (the imaging chunk store): the same hand-over as HttpFileServer's, the
// headers through Node, the body by the zero-copy worker, the end through Node again.
import type { ServerResponse } from 'node:http';
import { ZeroCopySender } from './zero-copy.js';

const EMPTY = Buffer.alloc(0);

/** The connection's descriptor, when Node's socket has one (a TCP socket on Linux). */
function socketDescriptor(res: ServerResponse): number | undefined {
  const fd = (res.socket as unknown as { _handle?: { fd?: number } } | null)?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * A zero-copy sender started on first use and shared by every response after it; where
 * there is none (no sendfile on this platform, the worker failed) `body` says so and the
 * caller streams.
 */
export class ZeroCopyBodies {
  private starting: Promise<ZeroCopySender | undefined> | undefined;
  private reason = 'not started';
  /** bodies sent by sendfile so far */
  sent = 0;

  /** Why bodies are not sent by sendfile, once a start was tried and failed. */
  get unavailableReason(): string {
    return this.reason;
  }

  private sender(): Promise<ZeroCopySender | undefined> {
    this.starting ??= ZeroCopySender.start().then(
      (started) => {
        if (started.reason) this.reason = started.reason;
        return started.sender;
      },
      (error: Error) => {
        this.reason = error.message;
        return undefined;
      },
    );
    return this.starting;
  }

  /**
   * Sends `length` bytes of `fd` from `start` as the body of `res` (status and headers set,
   * content-length among them, nothing of the body written yet), and ends it. Resolves to false, having sent nothing, where
   * sendfile cannot be used (the caller then streams); true once the body is sent. Rejects
   * after destroying the response when the client went away or sendfile failed. `fd` must
   * stay open until the promise settles.
   */
  async body(res: ServerResponse, fd: number, start: number, length: number): Promise<boolean> {
    const sender = await this.sender();
    const socketFd = socketDescriptor(res);
    if (!sender?.usable || socketFd === undefined) return false;
    const socket = res.socket!;
    return new Promise<boolean>((resolve, reject) => {
      let abort: ((reason: string) => void) | undefined;
      let closedEarly = false;
      const onClose = (): void => {
        closedEarly = true;
        abort?.('client closed the connection');
      };
      const fail = (reason: string): void => {
        res.off('close', onClose);
        res.destroy();
        reject(new Error(reason));
      };
      res.once('close', onClose);
      res.flushHeaders();
      // The write's callback runs once the headers are in the kernel: only then may the
      // worker write the body behind them.
      socket.write(EMPTY, (err) => {
        if (err || closedEarly || socket.destroyed) return fail('client closed the connection');
        try {
          abort = sender.send(socketFd, fd, start, length, 1000, {
            onProgress: () => {},
            onEnd: (_bytes, error) => {
              if (error) return fail(error);
              res.off('close', onClose);
              res.end();
              this.sent += 1;
              resolve(true);
            },
          });
        } catch (e) {
          fail((e as Error).message);
        }
      });
    });
  }

  /** Stops the worker; a later `body` starts another. */
  async stop(): Promise<void> {
    const starting = this.starting;
    this.starting = undefined;
    await (await starting)?.stop();
  }
}
