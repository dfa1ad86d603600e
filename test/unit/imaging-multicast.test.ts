// The image stream without sockets: the two datagram layouts (round trips and refusals),
// the schedule's pacing and rate on an injected clock, the task's stream= line, and the
// chunk route's byte ranges that a receiver repairs with.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DATA_HEADER_BYTES,
  DATA_PAYLOAD,
  decodeData,
  decodeFeedback,
  encodeData,
  encodeFeedback,
  type Feedback,
} from '../../main/imaging/multicast-datagram.js';
import { DEFAULT_START_AFTER_MS, StreamSchedule, type FeedbackInput } from '../../main/imaging/multicast-schedule.js';
import { streamGroupFor } from '../../main/imaging/multicast-sender.js';
import { parseFlags, serveConfigFromFlags, SERVE_OPTIONS } from '../../main/cli/serve-flags.js';
import { defaultServeConfig } from '../../main/host/config.js';
import { ImageCatalog, ImagingJobs, ImagingRoutes, renderTask } from '../../main/imaging/index.js';
import { silentLogger } from '../../main/core/logger.js';
import { openStore, type Store } from '../../main/store/index.js';
import { makeTempDir } from '../helpers/store-temp.js';

describe('stream datagrams', () => {
  test('a data datagram round-trips, header before payload, big-endian', () => {
    const payload = Buffer.alloc(DATA_PAYLOAD, 7);
    const header = { session: 0xdeadbeef, seq: 0xffffffff, chunk: 3, chunkLength: 3 * DATA_PAYLOAD + 10, offset: DATA_PAYLOAD, chunks: 9 };
    const packet = encodeData(header, payload);
    assert.equal(packet.length, DATA_HEADER_BYTES + DATA_PAYLOAD);
    assert.equal(packet.subarray(0, 4).toString('latin1'), 'BBS1');
    assert.equal(packet.readUInt32BE(4), 0xdeadbeef);
    assert.equal(packet.readUInt32BE(12), 3);
    assert.deepEqual(decodeData(packet), { header, payload });
    // The last piece of a chunk is shorter.
    const last = encodeData({ ...header, offset: 3 * DATA_PAYLOAD }, Buffer.alloc(10, 1));
    assert.equal(decodeData(last)?.payload.length, 10);
  });

  test('no datagram fits an IPv4 packet of more than 1500 bytes (no fragments)', () => {
    assert.ok(DATA_HEADER_BYTES + DATA_PAYLOAD + 20 + 8 <= 1500);
    assert.throws(() => encodeData({ session: 1, seq: 0, chunk: 0, chunkLength: 5000, offset: 0, chunks: 1 }, Buffer.alloc(DATA_PAYLOAD + 1)), RangeError);
  });

  test('malformed data datagrams are refused, not guessed at', () => {
    const good = { session: 1, seq: 0, chunk: 0, chunkLength: 2 * DATA_PAYLOAD, offset: 0, chunks: 2 };
    const packet = encodeData(good, Buffer.alloc(DATA_PAYLOAD));
    assert.equal(decodeData(packet.subarray(0, DATA_HEADER_BYTES - 1)), undefined, 'short header');
    assert.equal(decodeData(Buffer.concat([Buffer.from('XXXX'), packet.subarray(4)])), undefined, 'wrong magic');
    assert.equal(decodeData(encodeData({ ...good, offset: 7 }, Buffer.alloc(DATA_PAYLOAD))), undefined, 'offset not on a piece boundary');
    assert.equal(decodeData(encodeData(good, Buffer.alloc(100))), undefined, 'a piece shorter than the chunk leaves');
    assert.equal(decodeData(encodeData({ ...good, chunk: 2 }, Buffer.alloc(DATA_PAYLOAD))), undefined, 'chunk index past the image');
    assert.equal(decodeData(encodeData({ ...good, offset: 2 * DATA_PAYLOAD }, Buffer.alloc(0))), undefined, 'offset at the end of the chunk');
  });

  test('feedback round-trips, counters wrap at 2^32', () => {
    const f: Feedback = {
      session: 0x01020304,
      mac: '52:54:00:aa:31:0f',
      done: true,
      window: 16,
      position: 1234,
      need: 1240,
      received: 2 ** 32 - 1,
      lost: 17,
      overrun: 2,
      streamKiB: 4096,
      repairKiB: 12,
    };
    const packet = encodeFeedback(f);
    assert.equal(packet.length, 44);
    assert.equal(packet.subarray(0, 4).toString('latin1'), 'BBR1');
    assert.deepEqual(decodeFeedback(packet), f);
    assert.equal(encodeFeedback({ ...f, received: 2 ** 32 + 5 }).readUInt32BE(20), 5);
    assert.equal(decodeFeedback(packet.subarray(0, 43)), undefined);
    assert.equal(decodeFeedback(encodeData({ session: 1, seq: 0, chunk: 0, chunkLength: 10, offset: 0, chunks: 1 }, Buffer.alloc(10))), undefined);
  });

  test('each job streams to its own group in the IPv4 Local Scope, never SSDP or SLP', () => {
    const groups = new Set<string>();
    for (let id = 1; id <= 1000; id++) {
      const g = streamGroupFor(id);
      assert.match(g, /^239\.255\.66\.\d+$/);
      assert.ok(!['239.255.255.250', '239.255.255.253'].includes(g));
      groups.add(g);
    }
    assert.equal(groups.size, 250);
    assert.notEqual(streamGroupFor(7), streamGroupFor(8));
  });
});

const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';
const C = '52:54:00:00:00:0c';
const D = '52:54:00:00:00:0d';

function fb(mac: string, position: number, extra: Partial<FeedbackInput> = {}): FeedbackInput {
  return { mac, position, need: position, window: 8, done: false, received: 0, lost: 0, overrun: 0, streamKiB: 0, repairKiB: 0, ...extra };
}

/** Sends from the schedule until it says wait; returns the chunks. */
function drain(s: StreamSchedule, now: number): number[] {
  const out: number[] = [];
  for (let c = s.next(now); c !== undefined; c = s.next(now)) out.push(c);
  return out;
}

describe('stream schedule: pacing', () => {
  test('by default waits for the room: starts once every PC is ready, or a minute after the first', () => {
    const s = new StreamSchedule({ chunks: 100, expected: [A, B, C] });
    assert.equal(s.next(0), undefined, 'nobody heard');
    s.feedback(0, fb(A, 0));
    s.feedback(100, fb(B, 0));
    assert.equal(s.startState(30_000).started, false, 'C not ready, the minute not over');
    for (const mac of [A, B, C]) s.feedback(30_100, fb(mac, 0)); // receivers report every 100 ms
    assert.equal(s.next(30_100), 0, 'all three ready: go');

    const late = new StreamSchedule({ chunks: 100, expected: [A, B, C] });
    late.feedback(0, fb(A, 0));
    late.feedback(0, fb(B, 0));
    assert.equal(late.startState(DEFAULT_START_AFTER_MS - 1).started, false);
    for (const mac of [A, B]) late.feedback(DEFAULT_START_AFTER_MS, fb(mac, 0));
    assert.equal(late.next(DEFAULT_START_AFTER_MS), 0, 'a minute after the first: C joins the running stream later');
    assert.equal(late.startState(DEFAULT_START_AFTER_MS).startedAt, DEFAULT_START_AFTER_MS);
  });

  test('start when K PCs are ready: the K-th starts it, the others join it later', () => {
    const s = new StreamSchedule({ chunks: 100, expected: [A, B, C, D], start: { count: 2 } });
    s.feedback(0, fb(A, 0));
    assert.equal(s.startState(10_000_000).started, false, 'one of two, and no timer');
    assert.deepEqual(s.startState(0), {
      started: false,
      startedAt: undefined,
      ready: [A],
      of: 4,
      manual: false,
      count: 2,
      deadline: undefined,
      goAt: undefined,
    });
    s.feedback(5, fb(B, 0));
    s.feedback(5, fb(A, 0));
    assert.equal(s.next(5), 0);
    assert.equal(s.startState(5).started, true);
  });

  test('start T after the first PC is ready, or when K are, whichever comes first', () => {
    const timer = new StreamSchedule({ chunks: 100, expected: [A, B, C, D], start: { count: 3, afterMs: 10_000 } });
    timer.feedback(1000, fb(A, 0));
    timer.feedback(2000, fb(B, 0));
    assert.equal(timer.startState(2000).deadline, 11_000, 'counted from the first PC');
    assert.equal(timer.startState(10_999).started, false);
    for (const mac of [A, B]) timer.feedback(11_000, fb(mac, 0));
    assert.equal(timer.next(11_000), 0, 'the timer');

    const count = new StreamSchedule({ chunks: 100, expected: [A, B, C, D], start: { count: 3, afterMs: 10_000 } });
    for (const mac of [A, B, C]) count.feedback(1000, fb(mac, 0));
    assert.equal(count.next(1000), 0, 'three ready before the timer');
  });

  test('manual: every PC ready is not enough; Go starts it, and a receiver asking is counted as ready', () => {
    const s = new StreamSchedule({ chunks: 100, expected: [A, B, C], start: { manual: true } });
    s.feedback(0, fb(A, 0));
    s.feedback(0, fb(B, 0));
    // C's feedback never reaches the host, but it asks over HTTP whether the stream started.
    s.ready(0, C);
    assert.equal(s.next(3_600_000), undefined, 'an hour on, still waiting for Go');
    const waiting = s.startState(3_600_000);
    assert.equal(waiting.started, false);
    assert.equal(waiting.manual, true);
    assert.equal(waiting.deadline, undefined);
    assert.deepEqual(waiting.ready.sort(), [A, B, C]);
    s.go(3_600_001);
    for (const mac of [A, B]) s.feedback(3_600_001, fb(mac, 0));
    assert.equal(s.next(3_600_001), 0);
    assert.equal(s.startState(3_600_001).goAt, 3_600_001);
  });

  test('Go before anyone is ready: the first PCs to come find the stream started', () => {
    const s = new StreamSchedule({ chunks: 100, expected: [A, B, C], start: { manual: true } });
    s.go(0);
    assert.equal(s.started(0), true);
    s.feedback(10, fb(A, 0));
    assert.equal(s.next(10), undefined, 'one PC alone gets no stream');
    s.feedback(20, fb(B, 0));
    assert.equal(s.next(20), 0);
  });

  test('a PC gone before it was ready (failed, or by HTTP) is not waited for', () => {
    const s = new StreamSchedule({ chunks: 100, expected: [A, B, C] });
    s.feedback(0, fb(A, 0));
    s.feedback(0, fb(B, 0));
    assert.equal(s.next(10), undefined);
    s.leave(C);
    assert.equal(s.next(20), 0);
  });

  test('a PC that comes after the start joins the running stream where it is', () => {
    const s = new StreamSchedule({ chunks: 100, expected: [A, B, C], start: { count: 2 } });
    s.feedback(0, fb(A, 0, { window: 8 }));
    s.feedback(0, fb(B, 0, { window: 8 }));
    assert.deepEqual(drain(s, 0), [0, 1, 2, 3, 4, 5]);
    s.feedback(50, fb(A, 4, { window: 8 }));
    s.feedback(50, fb(B, 4, { window: 8 }));
    assert.deepEqual(drain(s, 50), [6, 7, 8, 9]);
    s.feedback(100, fb(A, 40, { window: 8 }));
    s.feedback(100, fb(B, 40, { window: 8 }));
    // C starts at chunk 0, whose window the stream has passed: it does not go back for it (it repairs 0..39 by HTTP).
    s.feedback(100, fb(C, 0, { window: 8 }));
    assert.equal(s.next(100), 40);
    assert.equal(s.startState(100).ready.length, 3);
  });

  test('one PC alone gets no stream: it fetches by HTTP', () => {
    const s = new StreamSchedule({ chunks: 100, expected: [A, B], start: { afterMs: 0 } });
    s.feedback(0, fb(A, 0));
    assert.equal(s.next(10), undefined);
    s.feedback(20, fb(B, 0));
    assert.equal(s.next(20), 0);
  });

  test('stays within the receivers window (less a margin for feedback in flight)', () => {
    const s = new StreamSchedule({ chunks: 100, expected: [A, B] });
    s.feedback(0, fb(A, 0, { window: 8 }));
    s.feedback(0, fb(B, 0, { window: 8 }));
    assert.deepEqual(drain(s, 0), [0, 1, 2, 3, 4, 5]);
    s.feedback(50, fb(A, 3, { window: 8 }));
    s.feedback(50, fb(B, 3, { window: 8 }));
    assert.deepEqual(drain(s, 50), [6, 7, 8]);
  });

  test('paced by the position half the room has reached: a slow PC that loses datagrams is left to repair, nobody waits for it', () => {
    const s = new StreamSchedule({ chunks: 1000, expected: [A, B, C, D] });
    for (const m of [A, B, C, D]) s.feedback(0, fb(m, 0));
    drain(s, 0);
    // Three write fast, D (a slow or lossy port) is stuck at 2 and loses datagrams.
    s.feedback(100, fb(A, 50, { received: 1000 }));
    s.feedback(100, fb(B, 48, { received: 1000 }));
    s.feedback(100, fb(C, 49, { received: 1000 }));
    s.feedback(100, fb(D, 2, { received: 600, lost: 400 }));
    s.adapt(100, false);
    const sent = drain(s, 100);
    // Half the room (2 of 4) is at 49 or beyond; B, a chunk behind and loss-free, is waited for: the stream jumps to 48 and runs a window ahead of it.
    assert.deepEqual(sent, [48, 49, 50, 51, 52, 53]);
  });

  test('with two fast and two slow PCs that lose datagrams, the faster half sets the pace', () => {
    const s = new StreamSchedule({ chunks: 1000, expected: [A, B, C, D] });
    for (const m of [A, B, C, D]) s.feedback(0, fb(m, 0));
    drain(s, 0);
    s.feedback(100, fb(A, 40, { received: 1000 }));
    s.feedback(100, fb(B, 41, { received: 1000 }));
    s.feedback(100, fb(C, 10, { received: 900, lost: 100 }));
    s.feedback(100, fb(D, 5, { received: 900, lost: 100 }));
    s.adapt(100, false);
    assert.equal(s.next(100), 40);
  });

  test('a slower PC that reads the stream without loss (a busy CPU) is waited for while the stream is within its window', () => {
    const s = new StreamSchedule({ chunks: 1000, expected: [A, B, C, D] });
    for (const m of [A, B, C, D]) s.feedback(0, fb(m, 0, { window: 16 }));
    assert.deepEqual(drain(s, 0), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    for (const m of [A, B, C]) s.feedback(100, fb(m, 12, { window: 16, received: 1000 }));
    s.feedback(100, fb(D, 2, { window: 16, received: 1000 }));
    s.adapt(100, false);
    // Half the room alone would let it run to 25; D holds it at the edge of its window.
    assert.deepEqual(drain(s, 100), [14, 15]);
  });

  test('waiting for slower loss-free PCs is bounded: past its share of the stream time the room goes on without them', () => {
    const s = new StreamSchedule({ chunks: 1000, expected: [A, B, C, D] });
    for (const m of [A, B, C, D]) s.feedback(0, fb(m, 0, { window: 16 }));
    drain(s, 0);
    let now = 0;
    let sent: number[] = [];
    for (; now <= 4000 && sent.length === 0; now += 50) {
      for (const m of [A, B, C]) s.feedback(now, fb(m, 12, { window: 16 }));
      s.feedback(now, fb(D, 0, { window: 16 }));
      sent = drain(s, now);
    }
    // A second of grace, then 15% of the stream's time: about 1.2 s.
    assert.ok(now > 1100 && now < 1400, `held until ${now} ms`);
    assert.deepEqual(sent, [14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
  });

  test('a PC that stops reporting does not pace the stream', () => {
    const s = new StreamSchedule({ chunks: 1000, expected: [A, B, C], silenceMs: 3000 });
    for (const m of [A, B, C]) s.feedback(0, fb(m, 0));
    drain(s, 0);
    s.feedback(3500, fb(A, 20));
    s.feedback(3500, fb(B, 20));
    // C last spoke at 0 (position 0): only A and B count now.
    assert.equal(s.next(3500), 20);
  });

  test('after the last chunk a new pass starts for the PCs still writing, once half the room is through', () => {
    const s = new StreamSchedule({ chunks: 10, expected: [A, B, C, D] });
    for (const m of [A, B, C, D]) s.feedback(0, fb(m, 0, { window: 16 }));
    assert.deepEqual(drain(s, 0), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    s.sent(9, 50);
    s.feedback(100, fb(A, 9, { window: 16 }));
    s.feedback(100, fb(B, 8, { window: 16 }));
    s.feedback(100, fb(C, 3, { window: 16 }));
    s.feedback(100, fb(D, 4, { window: 16 }));
    assert.equal(s.next(100), undefined, 'A and B still hold the tail: no pass yet');
    s.feedback(200, fb(A, 10, { window: 16, done: true }));
    s.feedback(200, fb(B, 10, { window: 16, done: true }));
    // C holds 3..5 complete and lacks 6 on; D holds 4..6 and lacks 7 on.
    s.feedback(200, fb(C, 3, { window: 16, need: 6 }));
    s.feedback(200, fb(D, 4, { window: 16, need: 7 }));
    assert.deepEqual(drain(s, 200), [6, 7, 8, 9], 'second pass from what the faster half lacks, and 6 for C, which reads the stream without loss');
    assert.equal(s.passes, 1);
    assert.equal(s.next(200), undefined, 'the pass has not ended: its last chunk is still going out');
    s.sent(9, 300);
    s.feedback(350, fb(C, 5, { window: 16, need: 6 }));
    s.feedback(350, fb(D, 5, { window: 16, need: 7 }));
    assert.equal(s.next(350), undefined, 'feedback sent right after the pass ended may predate its last datagrams');
    s.feedback(500, fb(C, 5, { window: 16, need: 10 }));
    s.feedback(500, fb(D, 5, { window: 16, need: 10 }));
    assert.equal(s.next(500), undefined, 'C and D hold everything they still write: nothing to send');
  });

  test('no new pass while a PC still reads datagrams of the last one: what it reports lacking is still on its way in', () => {
    const s = new StreamSchedule({ chunks: 10, expected: [A, B, C, D] });
    for (const m of [A, B, C, D]) s.feedback(0, fb(m, 0, { window: 16 }));
    assert.deepEqual(drain(s, 0), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    s.sent(9, 50);
    s.feedback(200, fb(A, 10, { window: 16, done: true }));
    s.feedback(200, fb(B, 10, { window: 16, done: true }));
    s.feedback(200, fb(C, 3, { window: 16, need: 3 }));
    // D, a busy PC, still reads its socket: its count grows from report to report.
    s.feedback(200, fb(D, 4, { window: 16, need: 7, received: 5000 }));
    s.feedback(300, fb(D, 4, { window: 16, need: 8, received: 6000 }));
    assert.equal(s.next(300), undefined, 'D is still taking datagrams in');
    s.feedback(500, fb(D, 4, { window: 16, need: 10, received: 7100 }));
    assert.equal(s.next(500), undefined, 'still growing 200 ms ago');
    s.feedback(900, fb(C, 3, { window: 16, need: 10 }));
    s.feedback(900, fb(D, 6, { window: 16, need: 10, received: 7100 }));
    assert.equal(s.next(900), undefined, 'once its queue drained, D holds everything: nothing to send again');
    assert.equal(s.passes, 0);
  });

  test('a pass counts only once it sends: one that finds nothing to send for the pacing half is not a pass', () => {
    const s = new StreamSchedule({ chunks: 10, expected: [A, B, C, D] });
    for (const m of [A, B, C, D]) s.feedback(0, fb(m, 0, { window: 16 }));
    assert.deepEqual(drain(s, 0), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    s.sent(9, 50);
    s.feedback(200, fb(A, 10, { window: 16, done: true }));
    s.feedback(200, fb(B, 10, { window: 16, done: true }));
    // C loses datagrams (a lossy port): it does not hold the stream.
    s.feedback(100, fb(C, 3, { window: 16, need: 3, received: 500, lost: 500 }));
    s.feedback(100, fb(D, 4, { window: 16, need: 4, received: 1000 }));
    s.adapt(100, false);
    // C lacks 6 on, D holds everything: the pacing half (D) needs nothing, so nothing is sent.
    s.feedback(200, fb(C, 3, { window: 16, need: 6, received: 500, lost: 500 }));
    s.feedback(200, fb(D, 4, { window: 16, need: 10, received: 1000 }));
    for (let t = 200; t < 400; t += 10) assert.equal(s.next(t), undefined);
    assert.equal(s.passes, 0);
    s.feedback(400, fb(D, 4, { window: 16, need: 8, received: 1000 }));
    assert.deepEqual(drain(s, 400), [8, 9]);
    assert.equal(s.passes, 1);
  });

  test('finished once every PC is done or has left', () => {
    const s = new StreamSchedule({ chunks: 10, expected: [A, B, C] });
    s.feedback(0, fb(A, 10, { done: true }));
    s.leave(B);
    assert.equal(s.finished(), false);
    s.leave(C.toUpperCase());
    assert.equal(s.finished(), true);
    s.feedback(10, fb('52:54:00:00:00:99', 0));
    assert.equal(s.view().length, 3, 'a PC of another job is not counted');
  });
});

describe('stream schedule: rate', () => {
  function room(macs: string[], startRate = 10_000_000): StreamSchedule {
    const s = new StreamSchedule({ chunks: 1000, expected: macs, startRate, minRate: 1_000_000, maxRate: 50_000_000 });
    for (const m of macs) s.feedback(0, fb(m, 0));
    return s;
  }
  function report(s: StreamSchedule, now: number, counts: Record<string, [received: number, lost: number]>): void {
    for (const [mac, [received, lost]] of Object.entries(counts)) s.feedback(now, fb(mac, 0, { received, lost }));
  }

  test('grows while the median PC sees no loss and sending was held by the rate; up to the maximum', () => {
    const s = room([A, B, C]);
    report(s, 250, { [A]: [1000, 0], [B]: [1000, 0], [C]: [1000, 0] });
    s.adapt(250, true);
    assert.equal(s.rate, 20_000_000, 'no loss seen yet: it doubles');
    report(s, 500, { [A]: [2000, 0], [B]: [2000, 0], [C]: [2000, 0] });
    s.adapt(500, false);
    assert.equal(s.rate, 20_000_000, 'not held by the rate (pacing or idle): no reason to grow');
    for (let i = 0; i < 20; i++) {
      report(s, 750 + i * 250, { [A]: [3000 + i * 1000, 0], [B]: [3000 + i * 1000, 0], [C]: [3000 + i * 1000, 0] });
      s.adapt(750 + i * 250, true);
    }
    assert.equal(s.rate, 50_000_000);
  });

  test('doubles until the median PC first sees loss; then goes to what the median PC got per second, a little below', () => {
    const s = room([A, B, C]);
    report(s, 100, { [A]: [700, 0], [B]: [700, 0], [C]: [700, 0] });
    s.adapt(100, true);
    assert.equal(s.rate, 20_000_000);
    // 1000 datagrams of 1494 bytes on the wire in 100 ms: the path carries 14.94 MB/s.
    report(s, 200, { [A]: [1700, 300], [B]: [1700, 250], [C]: [1800, 0] });
    s.adapt(200, true);
    assert.ok(Math.abs(s.rate - 14_940_000 * 0.97) < 1, `rate ${s.rate}: not x0.7 of the sending rate, nor the doubling undone`);
    report(s, 300, { [A]: [2700, 300], [B]: [2700, 250], [C]: [2800, 0] });
    s.adapt(450, true);
    assert.ok(Math.abs(s.rate - 14_940_000 * 0.97 * 1.01) < 1, 'no loss near the rate loss was seen at: it grows by 1%, not by a quarter');
  });

  test('near the rate loss was last seen at it grows by 1%, beyond 10% above it by a tenth, beyond 50% above it forgets it', () => {
    const s = room([A, B], 40_000_000);
    // Loss at 40 MB/s while the path carried 19.92 MB/s (1000 datagrams in 75 ms).
    report(s, 75, { [A]: [1000, 500], [B]: [1000, 500] });
    s.adapt(100, true);
    assert.ok(Math.abs(s.rate - 20_000_000) < 1, `halved at most: ${s.rate}`);
    let now = 100;
    const factors: number[] = [];
    for (let i = 0; i < 30; i++) {
      now += 250;
      report(s, now, { [A]: [1000 + now * 10, 500], [B]: [1000 + now * 10, 500] });
      const before = s.rate;
      s.adapt(now, true);
      factors.push(Math.round((s.rate / before) * 100) / 100);
    }
    const near = factors.findIndex((f) => f !== 1.01);
    assert.equal(near, 10, `ten steps of 1% take it 10% past 19.92 MB/s: ${factors.join(' ')}`);
    assert.deepEqual(factors.slice(10, 14), [1.1, 1.1, 1.1, 1.1]);
    assert.equal(factors[14], 1.25, 'past 50% above: as before any loss');
    assert.equal(s.rate, 50_000_000);
  });

  test("loss between 0.5% and 2% right after growth cuts; without growth it is the path's own and holds the rate", () => {
    const s = room([A, B], 20_000_000);
    report(s, 100, { [A]: [1000, 10], [B]: [1000, 10] });
    s.adapt(100, true);
    assert.ok(Math.abs(s.rate - 14_940_000 * 0.97) < 1, `1% while doubling: the path is full (${s.rate})`);
    const cut = s.rate;
    report(s, 350, { [A]: [3000, 30], [B]: [3000, 30] });
    s.adapt(350, true);
    report(s, 600, { [A]: [5000, 50], [B]: [5000, 50] });
    s.adapt(600, true);
    assert.equal(s.rate, cut, '1% loss with no growth before it: held');
    report(s, 850, { [A]: [7000, 50], [B]: [7000, 50] });
    s.adapt(850, true);
    assert.ok(s.rate > cut, 'no loss: grows');
    report(s, 1100, { [A]: [9000, 70], [B]: [9000, 70] });
    s.adapt(1100, true);
    assert.ok(s.rate < cut, '1% right after growth: cut');
  });

  test('while probing it acts every 100 ms, then every 250 ms', () => {
    const s = room([A, B]);
    report(s, 100, { [A]: [1000, 0], [B]: [1000, 0] });
    assert.equal(s.adapt(100, true), true);
    assert.equal(s.rate, 20_000_000);
    report(s, 200, { [A]: [2000, 0], [B]: [2000, 0] });
    assert.equal(s.adapt(150, true), false, 'half an interval: nothing');
    assert.equal(s.adapt(200, true), true);
    assert.equal(s.rate, 40_000_000);
    report(s, 300, { [A]: [4000, 200], [B]: [4000, 200] });
    s.adapt(300, true);
    assert.ok(Math.abs(s.rate - 29_880_000 * 0.97) < 1, 'loss: to what got through (2000 datagrams in 100 ms); probing over');
    report(s, 400, { [A]: [6000, 200], [B]: [6000, 200] });
    assert.equal(s.adapt(400, true), false, '100 ms is no longer an interval');
    assert.equal(s.adapt(550, true), true);
    assert.ok(Math.abs(s.rate - 29_880_000 * 0.97 * 1.01) < 1);
  });

  test('one lossy PC does not slow the room', () => {
    const s = room([A, B, C, D]);
    report(s, 250, { [A]: [1000, 0], [B]: [1000, 0], [C]: [900, 100], [D]: [250, 750] });
    s.adapt(250, true);
    assert.equal(s.rate, 20_000_000, 'the median sees no loss: it grows as if both were clean');
  });

  test('loss at most PCs (the shared path is full) slows it to what got through, at most halving at once, down to the minimum', () => {
    const s = room([A, B, C]);
    report(s, 250, { [A]: [100, 100], [B]: [100, 50], [C]: [1000, 0] });
    s.adapt(250, true);
    assert.equal(s.rate, 5_000_000, 'the median got 0.6 MB/s; one reaction halves at most');
    for (let i = 0; i < 20; i++) {
      report(s, 500 + i * 250, { [A]: [100 + (i + 1) * 100, 100 + (i + 1) * 100], [B]: [100 + (i + 1) * 100, 50 + (i + 1) * 100], [C]: [1000, 0] });
      s.adapt(500 + i * 250, true);
    }
    assert.equal(s.rate, 1_000_000);
  });

  test('too few datagrams in an interval say nothing', () => {
    const s = room([A, B]);
    report(s, 250, { [A]: [10, 10], [B]: [10, 10] });
    s.adapt(250, true);
    assert.equal(s.rate, 10_000_000);
  });
});

describe('task and chunk route for the stream', () => {
  let temp: ReturnType<typeof makeTempDir>;
  let store: Store;
  let server: Server;
  let url = '';
  let sha = '';
  const chunk = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));

  before(async () => {
    temp = makeTempDir('bootbench-multicast-');
    store = openStore(temp.dir);
    const catalog = new ImageCatalog(temp.dir);
    sha = createHash('sha256').update(chunk).digest('hex');
    await catalog.chunks.put(sha, [chunk]);
    const jobs = new ImagingJobs(store.db);
    jobs.create({ kind: 'deploy', image: 'room', macs: [A, B] });
    jobs.create({ kind: 'capture', image: 'cap', macs: [C] });
    const routes = new ImagingRoutes({
      catalog,
      jobs,
      logger: silentLogger,
      machineName: () => undefined,
      streamFor: async (job) => (job.machines.length > 1 ? '239.255.66.2:40000:0a0b0c0d' : undefined),
    });
    server = createServer((req, res) => void routes.handle(req, res, new URL(req.url ?? '/', 'http://x')));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    store.close();
    temp.remove();
  });

  function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
    return new Promise((resolve, reject) => {
      request(`${url}${path}`, { headers }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      })
        .on('error', reject)
        .end();
    });
  }

  test('a deploy to several PCs names its stream in the task; a capture does not', async () => {
    assert.match((await get(`/imaging/task?mac=${A}`)).body.toString(), /^stream=239\.255\.66\.2:40000:0a0b0c0d$/m);
    assert.doesNotMatch((await get(`/imaging/task?mac=${C}`)).body.toString(), /stream=/);
    assert.doesNotMatch(renderTask({ id: 1, kind: 'deploy', image: 'x', then: 'disk', createdAt: 0, machines: [] }), /stream=/);
  });

  test('the chunk route answers ?ranges= with those bytes back to back, in one answer', async () => {
    const pieces = await get(`/imaging/chunks/${sha}?ranges=0-9,1400-2799,9990-9999`);
    assert.equal(pieces.status, 200);
    assert.deepEqual(pieces.body, Buffer.concat([chunk.subarray(0, 10), chunk.subarray(1400, 2800), chunk.subarray(9990)]));
    for (const bad of ['5-4', '0-10000', 'x', '1-2,', `${Array.from({ length: 1025 }, () => '0-0').join(',')}`]) {
      assert.equal((await get(`/imaging/chunks/${sha}?ranges=${bad}`)).status, 416, bad.slice(0, 20));
    }
  });
});

describe('bootbench serve --max-rate', () => {
  const flags = (...args: string[]) => serveConfigFromFlags(parseFlags(args, SERVE_OPTIONS).values, defaultServeConfig('/tmp/bb'));
  test('bits per second with k, M or G become the stream cap in bytes per second; nonsense is refused with an example', () => {
    assert.equal(flags().imagingMaxRate, undefined);
    assert.equal(flags('--max-rate', '400M').imagingMaxRate, 50_000_000);
    assert.equal(flags('--max-rate', '1G').imagingMaxRate, 125_000_000);
    assert.equal(flags('--max-rate', '2.5gbit').imagingMaxRate, 312_500_000);
    for (const bad of ['fast', '10k', '0', '200G'])
      assert.throws(() => flags('--max-rate', bad), /--max-rate .* give bits per second from 1M to 100G, e.g. 400M/);
  });
});
