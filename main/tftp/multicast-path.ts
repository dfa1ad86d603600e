// Where RFC 2090 multicast sessions run: on Node's event loop, one dgram socket per
// session. That socket is every member's TID (atftp drops DATA whose source address and
// port differ from its OACK's), sends the OACKs and ERRORs to each member and the DATA to
// the session's group, with TTL 1 and out of the server's NIC only. Multicast transfers are
// lock-step and rare (no firmware asks for them), so they stay off the worker data path,
// which carries the unicast transfers unchanged.
import type { Socket } from 'node:dgram';
import type { Clock, Logger, Publish } from '../core/index.js';
import type { OpenFile } from '../files/index.js';
import type { UdpSocketOptions } from '../net/index.js';
import { dispatchTransferDatagram, UNKNOWN_TID_ERROR, type TransferHandlers, type TransferSpec } from './data-path.js';
import {
  DEFAULT_MULTICAST_GROUP,
  DEFAULT_MULTICAST_PORT,
  DEFAULT_MULTICAST_SESSIONS,
  multicastGroupFor,
  MulticastSession,
  type MulticastClient,
} from './multicast-session.js';
import type { NegotiatedTransfer } from './options.js';
import type { RetransmitPolicy } from './transfer.js';

export interface TftpMulticastOptions {
  /** First session's group; session n takes the n-th address after it. Default 239.255.69.1. */
  group?: string;
  /** First session's port; session n takes the n-th port after it. Default 1758 (RFC 2090). */
  port?: number;
  /** Sessions at once (different files); a request past them is served unicast. Default 16. */
  sessions?: number;
  /** How long a silent master keeps the role (see MulticastSession). Default 10 s. */
  masterTimeoutMs?: number;
  /** How long a new session waits after its first client's ACK 0 for others to join (see MulticastSession). Default 0. */
  startDelayMs?: number;
}

export interface MulticastDataPathOptions extends TftpMulticastOptions {
  openSocket(options: UdpSocketOptions): Promise<Socket>;
  /** the server's address: the sessions' sockets bind it and multicast out of its NIC */
  address?: string;
  clock: Clock;
  publish: Publish;
  logger: Logger;
  retransmit?: Partial<RetransmitPolicy>;
  readAheadBytes?: number;
  macForIp?: (ip: string) => string | undefined;
}

/** A session, its socket (once open) and its members' handlers. */
interface SessionEntry {
  id: string;
  key: string;
  slot: number;
  group: string;
  port: number;
  file: OpenFile;
  session: MulticastSession;
  socket?: Socket;
  ready: Promise<boolean>;
  members: Map<string, MulticastClient & { handlers: TransferHandlers }>;
}

export class MulticastDataPath {
  private readonly sessions = new Map<string, SessionEntry>();
  private readonly slots: (SessionEntry | undefined)[];
  private counter = 0;
  private stopped = false;

  constructor(private readonly options: MulticastDataPathOptions) {
    this.slots = new Array<SessionEntry | undefined>(Math.max(1, options.sessions ?? DEFAULT_MULTICAST_SESSIONS)).fill(undefined);
  }

  /**
   * The session a request joins: a running one for the same file whose block size the client
   * can take (its OACK then names the session's blksize, RFC 2348 lets a server answer less),
   * or a new one. Undefined when the file cannot go multicast (too many blocks, every slot
   * taken): the server serves it unicast. Adjusts `negotiated` to the session's blksize.
   */
  sessionFor(file: OpenFile, negotiated: NegotiatedTransfer): { entry: SessionEntry; joining: boolean } | undefined {
    if (this.stopped) return undefined;
    const key = `${file.etag}\0${file.path}`;
    const askedBlksize = negotiated.oack.some((o) => o.name === 'blksize');
    for (const entry of this.sessions.values()) {
      const blksize = entry.session.blksize;
      if (entry.key !== key || entry.session.isClosed) continue;
      if (blksize !== negotiated.blksize && !(askedBlksize && blksize < negotiated.blksize)) continue;
      negotiated.blksize = blksize;
      for (const o of negotiated.oack) if (o.name === 'blksize') o.value = String(blksize);
      return { entry, joining: true };
    }
    if (!MulticastSession.fits(file.size, negotiated.blksize)) return undefined;
    const slot = this.slots.indexOf(undefined);
    if (slot < 0) return undefined;
    return { entry: this.newSession(slot, key, file, negotiated.blksize), joining: false };
  }

  /** Adds the client to the session; false when the session's socket could not be opened. */
  async join(entry: SessionEntry, spec: TransferSpec, handlers: TransferHandlers): Promise<boolean> {
    if (!(await entry.ready) || entry.session.isClosed) return false;
    const { ip, port, negotiated } = spec;
    const client = { key: `${ip}:${port}`, ip, port, handlers };
    entry.members.set(client.key, client);
    handlers.onStart(
      entry.session.join({
        key: client.key,
        ip,
        port,
        oack: negotiated.oack,
        tsizeRequested: negotiated.tsizeRequested,
        timeoutMs: negotiated.timeoutMs,
        onEnd: (result) => {
          entry.members.delete(client.key);
          handlers.onEnd(result);
        },
        onProgress: (progress) => handlers.onProgress(progress),
      }),
    );
    return true;
  }

  /** Ends every session (each client gets an ERROR). */
  async stop(reason: string): Promise<void> {
    this.stopped = true;
    for (const entry of [...this.sessions.values()]) {
      await entry.ready;
      entry.session.abort(reason);
    }
  }

  private newSession(slot: number, key: string, file: OpenFile, blksize: number): SessionEntry {
    const o = this.options;
    const group = multicastGroupFor(o.group ?? DEFAULT_MULTICAST_GROUP, slot);
    const port = (o.port ?? DEFAULT_MULTICAST_PORT) + slot;
    const id = `mtftp-${(++this.counter).toString(36)}`;
    const base = { sessionId: id, file: file.path, group, groupPort: port, size: file.size, blksize };
    const entry: SessionEntry = {
      id,
      key,
      slot,
      group,
      port,
      // The session owns the first member's handle; later members' handles are released on joining.
      file,
      members: new Map(),
      ready: Promise.resolve(false),
      session: new MulticastSession({
        source: file,
        blksize,
        group,
        port,
        clock: o.clock,
        retransmit: o.retransmit,
        readAheadBytes: o.readAheadBytes,
        masterTimeoutMs: o.masterTimeoutMs,
        startDelayMs: o.startDelayMs,
        sendTo: (client, packet) => entry.socket?.send(packet, client.port, client.ip),
        sendToGroup: (header, data) => entry.socket?.send([header, data], port, group),
        onMasterChange: (master, reason) => {
          if (!master) return;
          o.publish('tftp-multicast.master', { ...base, ip: master.ip, port: master.port, mac: o.macForIp?.(master.ip), reason });
        },
        onProgress: (p) => o.publish('tftp-multicast.progress', { ...base, ...p }),
        onEmpty: (counters) => {
          this.sessions.delete(id);
          if (this.slots[slot] === entry) this.slots[slot] = undefined;
          const socket = entry.socket;
          // dgram sends on the next tick: a final ERROR must leave before the socket closes.
          if (socket) setImmediate(() => socket.close());
          entry.file.release();
          o.publish('tftp-multicast.end', { ...base, ...counters, durationMs: o.clock.now() - entry.session.startedAt });
        },
      }),
    };
    this.sessions.set(id, entry);
    this.slots[slot] = entry;
    entry.ready = this.openSocket(entry).then(
      (socket) => {
        entry.socket = socket;
        o.publish('tftp-multicast.start', base);
        return true;
      },
      (err: Error) => {
        o.logger.warn(`TFTP multicast: no socket for ${group}:${port} (${err.message}); ${file.path} is served unicast`);
        this.sessions.delete(id);
        this.slots[slot] = undefined;
        return false; // the server serves the file unicast with the same handle
      },
    );
    return entry;
  }

  private async openSocket(entry: SessionEntry): Promise<Socket> {
    const o = this.options;
    const socket = await o.openSocket({ port: 0, address: o.address });
    try {
      // TTL 1: the stream stays on the link (RFC 2090 sessions have no business past a router).
      socket.setMulticastTTL(1);
      socket.setMulticastLoopback(false);
      // Out of the server's NIC only, whatever the routing table says about the group.
      if (o.address && o.address !== '0.0.0.0') socket.setMulticastInterface(o.address);
    } catch (err) {
      socket.close();
      throw err;
    }
    socket.on('message', (msg, from) => {
      const member = entry.members.get(`${from.address}:${from.port}`);
      const target = member && {
        handleAck: (block: number) => entry.session.handleAck(member, block),
        handleError: (code: number, message: string) => entry.session.handleError(member, code, message),
      };
      const verdict = target ? dispatchTransferDatagram(target, msg, msg.length, true) : 'foreign-tid';
      if (verdict === 'foreign-tid') socket.send(UNKNOWN_TID_ERROR, from.port, from.address);
      else if (verdict === 'junk') member?.handlers.onJunk(msg.length);
    });
    // Send errors are loss: the session's timer re-sends or passes the master role on.
    socket.on('error', (err) => {
      for (const member of entry.members.values()) member.handlers.onSendError(err.message);
    });
    return socket;
  }
}
