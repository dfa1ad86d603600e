// RFC 2090 multicast TFTP without sockets: the `multicast` option's negotiation, the group
// range, the session's master rules (hand-over when the master finishes, leaves or goes
// silent, a new master's repairs) on a ManualClock, and which session a request joins.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:dgram';
import { ManualClock } from '../../main/core/clock.js';
import type { BootEvent, BootEventType } from '../../main/core/events.js';
import { silentLogger } from '../../main/core/logger.js';
import type { OpenFile } from '../../main/files/open-file.js';
import { negotiateReadOptions } from '../../main/tftp/options.js';
import { decodeTftpPacket, TftpOpcode, type TftpOption } from '../../main/tftp/packet.js';
import { MulticastDataPath } from '../../main/tftp/multicast-path.js';
import {
  multicastGroupFor,
  multicastGroupProblem,
  MulticastSession,
  type MasterChangeReason,
  type MulticastClient,
  type MulticastSessionCounters,
} from '../../main/tftp/multicast-session.js';
import type { TransferResult } from '../../main/tftp/transfer.js';
import { PatternSource, patternByte } from './tftp-transfer-harness.js';
import { parseFlags, serveConfigFromFlags, SERVE_OPTIONS, UsageError } from '../../main/cli/serve-flags.js';
import { defaultServeConfig } from '../../main/host/config.js';
import { summarizeEvent } from '../../main/api/boot-diagnosis.js';

const o = (name: string, value: string): TftpOption => ({ name, value });
const limits = { maxBlksize: 1468, maxWindowsize: 64 };

describe('negotiating the multicast option', () => {
  test('off on this server: left out of the OACK, with the reason for the log', () => {
    const n = negotiateReadOptions([o('multicast', ''), o('blksize', '1428')], 5000, limits);
    assert.equal(n.multicast, undefined);
    assert.deepEqual(n.oack, [o('blksize', '1428')]);
    assert.deepEqual(n.ignored, [{ name: 'multicast', value: '', reason: 'multicast is off on this server' }]);
  });

  test('on: accepted (the session writes its OACK entry), windowsize dropped since RFC 2090 is lock-step', () => {
    const n = negotiateReadOptions([o('windowsize', '16'), o('multicast', ''), o('blksize', '1428'), o('tsize', '0')], 5000, { ...limits, multicast: true });
    assert.equal(n.multicast, true);
    assert.equal(n.windowsize, 1);
    assert.equal(n.blksize, 1428);
    assert.deepEqual(n.oack, [o('blksize', '1428'), o('tsize', '5000')]);
    assert.equal(n.ignored[0].name, 'windowsize');
    assert.match(n.ignored[0].reason, /not with multicast/);
  });

  test('without multicast, windowsize is granted as before', () => {
    const n = negotiateReadOptions([o('windowsize', '16')], 5000, { ...limits, multicast: true });
    assert.equal(n.multicast, undefined);
    assert.deepEqual(n.oack, [o('windowsize', '16')]);
  });
});

describe('group range', () => {
  test('administratively scoped groups pass; other addresses are named as the problem', () => {
    assert.equal(multicastGroupProblem('239.255.69.1', 16), undefined);
    assert.match(multicastGroupProblem('198.18.0.1')!, /not a multicast address/);
    assert.match(multicastGroupProblem('224.0.0.251')!, /link-local/);
    assert.match(multicastGroupProblem('239.255.255.250', 16)!, /would leave 239/);
    assert.match(multicastGroupProblem('239.1.2')!, /not an IPv4 address/);
  });

  test('session n takes the n-th address after the first', () => {
    assert.equal(multicastGroupFor('239.255.69.1', 0), '239.255.69.1');
    assert.equal(multicastGroupFor('239.255.69.1', 3), '239.255.69.4');
    assert.equal(multicastGroupFor('239.255.69.255', 1), '239.255.70.0');
  });

  test('a file fits when its blocks need no rollover', () => {
    assert.equal(MulticastSession.fits(65535 * 512 - 1, 512), true);
    assert.equal(MulticastSession.fits(65535 * 512, 512), false);
  });
});

// ---------------------------------------------------------------------------------------
// The session, driven by hand: `room` records what went out and what ended.

const BLKSIZE = 512;
const SIZE = 10 * BLKSIZE + 100; // blocks 1..11, the last one short
const LAST = 11;

interface Unicast {
  to: string;
  opcode: TftpOpcode;
  mc?: string;
  options?: TftpOption[];
  code?: number;
}

function room(masterTimeoutMs = 3000, startDelayMs = 0) {
  const clock = new ManualClock(1_000_000);
  const unicast: Unicast[] = [];
  const data: { block: number; bytes: Buffer }[] = [];
  const ends = new Map<string, TransferResult>();
  const masters: [string | undefined, MasterChangeReason][] = [];
  let empty: MulticastSessionCounters | undefined;
  let emptyCalls = 0;
  const session = new MulticastSession({
    source: new PatternSource(SIZE),
    blksize: BLKSIZE,
    group: '239.255.69.1',
    port: 1758,
    clock,
    masterTimeoutMs,
    startDelayMs,
    retransmit: { initialRtoMs: 200, minRtoMs: 20, maxRtoMs: 1000 },
    sendTo: (client, packet) => {
      const p = decodeTftpPacket(Buffer.from(packet));
      if (p.opcode === TftpOpcode.OACK)
        unicast.push({ to: client.key, opcode: p.opcode, options: p.options, mc: p.options.find((x) => x.name === 'multicast')?.value });
      else if (p.opcode === TftpOpcode.ERROR) unicast.push({ to: client.key, opcode: p.opcode, code: p.code });
      else unicast.push({ to: client.key, opcode: p.opcode });
    },
    sendToGroup: (header, payload) => data.push({ block: (header[2] << 8) | header[3], bytes: Buffer.from(payload) }),
    onMasterChange: (master, reason) => masters.push([master?.key, reason]),
    onEmpty: (counters) => {
      empty = { ...counters };
      emptyCalls++;
    },
  });
  const client = (n: number, options: TftpOption[] = [o('blksize', String(BLKSIZE))], tsizeRequested = false): MulticastClient => {
    const c = { key: `198.18.0.${10 + n}:${2000 + n}`, ip: `198.18.0.${10 + n}`, port: 2000 + n };
    session.join({ ...c, oack: options, tsizeRequested, onEnd: (r) => ends.set(c.key, r) });
    return c;
  };
  /** The master ACKs block by block from `from` up to `to` (each ACK answered with DATA to+1). */
  const drive = (c: MulticastClient, from: number, to: number) => {
    for (let b = from; b <= to; b++) {
      session.handleAck(c, b);
      clock.advance(1);
    }
  };
  return {
    clock,
    session,
    unicast,
    data,
    ends,
    masters,
    client,
    drive,
    get empty() {
      return empty;
    },
    get emptyCalls() {
      return emptyCalls;
    },
  };
}

describe('a multicast session', () => {
  test('the first client is master (mc=1), later ones listen (mc=0); every OACK names group and port', () => {
    const r = room();
    const a = r.client(1, [o('blksize', '512'), o('tsize', String(SIZE))]);
    const b = r.client(2);
    assert.deepEqual(
      r.unicast.map((u) => [u.to, u.mc]),
      [
        [a.key, '239.255.69.1,1758,1'],
        [b.key, '239.255.69.1,1758,0'],
      ],
    );
    assert.deepEqual(r.unicast[0].options!.slice(0, 2), [o('blksize', '512'), o('tsize', String(SIZE))]);
    assert.deepEqual(r.masters, [[a.key, 'first client']]);
    assert.equal(r.session.master?.key, a.key);
    assert.equal(r.data.length, 0, 'no DATA before the master ACKs the OACK');
  });

  test('the master drives the stream; the next client takes over when it finishes and repairs only what it missed', () => {
    const r = room();
    const a = r.client(1);
    r.drive(a, 0, 2); // DATA 1..3 go out before B joins
    const b = r.client(2);
    r.drive(a, 3, LAST - 1);
    assert.deepEqual(
      r.data.map((d) => d.block),
      Array.from({ length: LAST }, (_, i) => i + 1),
    );
    // Payload of block 4 and the short last block, as in the file.
    assert.equal(r.data[3].bytes[0], patternByte(3 * BLKSIZE));
    assert.equal(r.data[LAST - 1].bytes.length, 100);
    r.session.handleAck(a, LAST);
    assert.equal(r.ends.get(a.key)?.outcome, 'done');
    assert.equal(r.ends.get(a.key)?.bytes, SIZE);
    assert.deepEqual(r.masters.at(-1), [b.key, 'master finished']);
    assert.deepEqual(r.unicast.at(-1), { to: b.key, opcode: TftpOpcode.OACK, options: r.unicast.at(-1)!.options, mc: '239.255.69.1,1758,1' });
    // B heard 4..11 on the group: it ACKs 0 (it lacks block 1), then 1, 2, then the last.
    r.drive(b, 0, 2);
    assert.deepEqual(
      r.data.slice(LAST).map((d) => d.block),
      [1, 2, 3],
    );
    r.session.handleAck(b, LAST);
    assert.equal(r.ends.get(b.key)?.outcome, 'done');
    assert.equal(r.emptyCalls, 1);
    assert.deepEqual(r.empty, { dataPackets: LAST + 3, dataBytes: SIZE + 3 * BLKSIZE, repeats: 3, clientsDone: 2, clientsFailed: 0, handOvers: 1 });
  });

  test('a silent master is re-sent its block, then passed over: it gets an ERROR and the next client the role', () => {
    const r = room(3000);
    const a = r.client(1);
    const b = r.client(2);
    r.drive(a, 0, 4); // DATA 1..5
    const before = r.data.length;
    r.clock.advance(2900);
    assert.ok(r.data.length - before >= 3, 'block 5 re-sent to the group while the master is silent');
    assert.ok(r.data.slice(before).every((d) => d.block === 5));
    assert.equal(r.session.master?.key, a.key, 'not passed over before the master timeout');
    r.clock.advance(200);
    assert.equal(r.ends.get(a.key)?.outcome, 'failed');
    assert.match(r.ends.get(a.key)!.reason!, /stopped ACKing as master/);
    assert.ok(r.unicast.some((u) => u.to === a.key && u.opcode === TftpOpcode.ERROR));
    assert.deepEqual(r.masters.at(-1), [b.key, 'master timed out']);
    assert.equal(r.unicast.at(-1)!.mc, '239.255.69.1,1758,1');
    r.drive(b, 5, LAST);
    assert.equal(r.ends.get(b.key)?.outcome, 'done');
    assert.equal(r.empty?.clientsFailed, 1);
    assert.equal(r.empty?.clientsDone, 1);
  });

  test('a client offered the role that never answers is passed over to the next oldest', () => {
    const r = room(3000);
    const a = r.client(1);
    const b = r.client(2);
    const c = r.client(3);
    r.drive(a, 0, LAST);
    assert.deepEqual(r.masters.at(-1), [b.key, 'master finished']);
    r.clock.advance(2000);
    const offersToB = r.unicast.filter((u) => u.to === b.key && u.mc?.endsWith(',1')).length;
    assert.ok(offersToB >= 2, `the OACK with mc=1 is re-sent while B is silent (${offersToB})`);
    r.clock.advance(1100);
    assert.equal(r.ends.get(b.key)?.outcome, 'failed');
    assert.match(r.ends.get(b.key)!.reason!, /did not answer the OACK/);
    assert.deepEqual(r.masters.at(-1), [c.key, 'master timed out']);
    r.session.handleAck(c, LAST);
    assert.equal(r.ends.get(c.key)?.outcome, 'done');
    assert.equal(r.emptyCalls, 1);
  });

  test('a master that sends an ERROR leaves at once and hands the role on; a listener that leaves changes nothing', () => {
    const r = room();
    const a = r.client(1);
    const b = r.client(2);
    const c = r.client(3);
    r.drive(a, 0, 3);
    r.session.handleError(b, 0, 'user cancelled');
    assert.equal(r.ends.get(b.key)?.outcome, 'aborted');
    assert.equal(r.session.master?.key, a.key);
    r.session.handleError(a, 0, 'user cancelled');
    assert.equal(r.ends.get(a.key)?.outcome, 'aborted');
    assert.deepEqual(r.masters.at(-1), [c.key, 'master left']);
    assert.equal(r.session.clientCount, 1);
  });

  test('a listener may end with an ACK of the last block (RFC 2090); other listener ACKs are ignored', () => {
    const r = room();
    const a = r.client(1);
    const b = r.client(2);
    r.drive(a, 0, 2);
    const sent = r.data.length;
    r.session.handleAck(b, 1);
    assert.equal(r.data.length, sent, 'only the master asks for blocks');
    r.session.handleAck(b, LAST);
    assert.equal(r.ends.get(b.key)?.outcome, 'done');
    assert.equal(r.session.master?.key, a.key);
  });

  test('a duplicate ACK right after the DATA went out is not answered (Sorcerer’s Apprentice); a late one is', () => {
    const r = room();
    const a = r.client(1);
    r.drive(a, 0, 3); // DATA 1..4, block 4 in flight
    const sent = r.data.length;
    r.session.handleAck(a, 3);
    assert.equal(r.data.length, sent);
    r.clock.advance(150);
    r.session.handleAck(a, 3);
    assert.equal(r.data.at(-1)!.block, 4);
    assert.ok(r.data.length > sent);
  });

  test('with a start delay, the first block waits for the room; clients joining meanwhile miss nothing', () => {
    const r = room(3000, 1000);
    const a = r.client(1);
    r.session.handleAck(a, 0);
    r.clock.advance(500);
    r.session.handleAck(a, 0); // atftp re-ACKs on its own timer: still waiting
    const b = r.client(2);
    assert.equal(r.data.length, 0);
    r.clock.advance(499);
    assert.equal(r.data.length, 0);
    r.clock.advance(1);
    assert.deepEqual(
      r.data.map((d) => d.block),
      [1],
    );
    r.drive(a, 1, LAST);
    assert.equal(r.ends.get(a.key)?.outcome, 'done');
    r.session.handleAck(b, LAST); // B heard every block
    assert.equal(r.ends.get(b.key)?.outcome, 'done');
    assert.equal(r.empty?.repeats, 0);
  });

  test('a repeated request gets its OACK again; a size probe (tsize, then ERROR 8) ends as a probe', () => {
    const r = room();
    const a = r.client(1);
    const b = r.client(2, [o('tsize', String(SIZE))], true);
    r.session.handleRepeatedRequest(b);
    assert.deepEqual(
      r.unicast.filter((u) => u.to === b.key).map((u) => u.mc),
      ['239.255.69.1,1758,0', '239.255.69.1,1758,0'],
    );
    r.session.handleError(b, 8, 'tsize only');
    assert.equal(r.ends.get(b.key)?.outcome, 'probe');
    assert.equal(r.session.master?.key, a.key);
  });

  test('abort ends every client with an ERROR, offers the role to nobody, and ends the session once', () => {
    const r = room();
    const a = r.client(1);
    const b = r.client(2);
    r.drive(a, 0, 2);
    r.session.abort('server stopping');
    assert.equal(r.ends.get(a.key)?.outcome, 'failed');
    assert.equal(r.ends.get(b.key)?.outcome, 'failed');
    assert.equal(r.unicast.filter((u) => u.to === b.key && u.mc?.endsWith(',1')).length, 0);
    assert.equal(r.unicast.filter((u) => u.opcode === TftpOpcode.ERROR).length, 2);
    assert.equal(r.emptyCalls, 1);
    r.clock.advance(60_000);
    assert.equal(r.emptyCalls, 1);
  });
});

// ---------------------------------------------------------------------------------------
// Which session a request joins (MulticastDataPath.sessionFor), with a fake socket.

function fakeFile(path: string, size: number, etag = `e-${path}`): OpenFile {
  return { path, size, etag, mtimeMs: 0, generated: false, read: () => 0, release: () => {}, createReadStream: () => undefined as never } as OpenFile;
}

function fakeSocket(): Socket {
  return { setMulticastTTL() {}, setMulticastLoopback() {}, setMulticastInterface() {}, on() {}, send() {}, close() {} } as unknown as Socket;
}

describe('which session a request joins', () => {
  const path = () => {
    const published: BootEventType[] = [];
    return {
      published,
      path: new MulticastDataPath({
        openSocket: async () => fakeSocket(),
        address: '198.18.0.1',
        clock: new ManualClock(0),
        publish: (type) => published.push(type),
        logger: silentLogger,
        sessions: 2,
      }),
    };
  };
  const asked = (blksize?: number) =>
    negotiateReadOptions([o('multicast', ''), ...(blksize ? [o('blksize', String(blksize))] : [])], 100_000, { ...limits, multicast: true });

  test('the same file joins the running session; its OACK names the session’s smaller blksize', () => {
    const { path: p } = path();
    const file = fakeFile('/boot.img', 100_000);
    const first = p.sessionFor(file, asked(1024))!;
    assert.equal(first.joining, false);
    const n = asked(1428);
    const second = p.sessionFor(fakeFile('/boot.img', 100_000), n)!;
    assert.equal(second.joining, true);
    assert.equal(second.entry, first.entry);
    assert.equal(n.blksize, 1024);
    assert.deepEqual(n.oack, [o('blksize', '1024')]);
  });

  test('a client that cannot take the session’s blksize, or another file, gets its own session and group', () => {
    const { path: p } = path();
    const first = p.sessionFor(fakeFile('/boot.img', 100_000), asked(1024))!;
    const smaller = p.sessionFor(fakeFile('/boot.img', 100_000), asked(512))!;
    assert.equal(smaller.joining, false);
    assert.notEqual(smaller.entry, first.entry);
    assert.equal(smaller.entry.group, '239.255.69.2');
    assert.equal(smaller.entry.port, 1759);
    // Every slot taken (2 here): served unicast.
    assert.equal(p.sessionFor(fakeFile('/other.img', 100_000), asked(1024)), undefined);
    // No blksize asked: 512 is what the client expects, and the 512 session takes it.
    assert.equal(p.sessionFor(fakeFile('/boot.img', 100_000), asked())!.entry, smaller.entry);
  });

  test('a changed file (new etag) is not mixed into the old stream; a file too big for 16-bit blocks goes unicast', () => {
    const { path: p } = path();
    const first = p.sessionFor(fakeFile('/boot.img', 100_000, 'v1'), asked(1024))!;
    assert.notEqual(p.sessionFor(fakeFile('/boot.img', 100_000, 'v2'), asked(1024))?.entry, first.entry);
    const { path: q } = path();
    assert.equal(q.sessionFor(fakeFile('/huge.img', 65535 * 512), asked()), undefined);
  });

  test('the session announces itself once its socket is open', async () => {
    const { path: p, published } = path();
    const plan = p.sessionFor(fakeFile('/boot.img', 100_000), asked(1024))!;
    assert.equal(await plan.entry.ready, true);
    assert.deepEqual(published, ['tftp-multicast.start']);
  });
});

describe('--tftp-multicast and --tftp-multicast-group', () => {
  const flags = (...args: string[]) => serveConfigFromFlags(parseFlags(args, SERVE_OPTIONS).values, defaultServeConfig('/tmp/bb'));
  test('off unless asked for; the flag alone takes the default group, a group implies the flag', () => {
    assert.equal(flags().tftpMulticast, undefined);
    assert.deepEqual(flags('--tftp-multicast').tftpMulticast, {});
    assert.deepEqual(flags('--tftp-multicast-group', '239.192.10.1').tftpMulticast, { group: '239.192.10.1' });
    assert.deepEqual(flags('--tftp-multicast-group', '239.192.10.1:4000').tftpMulticast, { group: '239.192.10.1', port: 4000 });
    assert.deepEqual(flags('--tftp-multicast-wait', '1.5').tftpMulticast, { startDelayMs: 1500 });
    assert.throws(() => flags('--tftp-multicast-wait', '30'), /from 0 to 20/);
  });
  test('a group that is not multicast, or reserved, is refused with the reason and a suggestion', () => {
    for (const [value, reason] of [
      ['198.18.0.1', /not a multicast address/],
      ['224.0.0.9', /link-local/],
      ['239.255.69.1:65530', /no room for 16 sessions/],
    ] as const) {
      assert.throws(
        () => flags('--tftp-multicast-group', value),
        (err: Error) => err instanceof UsageError && reason.test(err.message) && /239\.255\.69\.1/.test(err.message),
        value,
      );
    }
  });
});

describe('the session on a machine’s timeline', () => {
  test('becoming master is said in words, with why', () => {
    const fields = {
      sessionId: 'm1',
      file: '/boot.img',
      group: '239.255.69.1',
      groupPort: 1758,
      size: 1,
      blksize: 1428,
      mac: '52:54:00:00:00:01',
      ip: '198.18.0.12',
    };
    const line = (reason: string) => summarizeEvent({ ...fields, reason, type: 'tftp-multicast.master', time: 1 } as BootEvent).summary;
    assert.equal(line('first client'), 'Leads the multicast TFTP download of /boot.img (group 239.255.69.1): it ACKs for every client, as the first to ask');
    assert.match(line('master timed out'), /as the previous master timed out$/);
  });
});
