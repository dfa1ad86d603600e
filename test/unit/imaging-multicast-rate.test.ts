// The stream's rate control against a simulated path: the schedule (the real one) drives a
// sender that paces as MulticastSender does (a token bucket, runs of datagrams at line rate),
// into the host's 1 GbE line, then a bottleneck with a drop-tail buffer of a few ms (a slower
// switch port or uplink every receiver sits behind), then the receivers, whose feedback (their
// cumulative received and lost counts, every 100 ms) reaches the host 50 ms after they send
// it. Deterministic: no randomness, a fixed time step.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamSchedule } from '../../main/imaging/multicast-schedule.js';

/** A full datagram on the wire as the stream's rate counts it: 28 + 1400 bytes of UDP payload, 66 of framing. */
const WIRE = 28 + 1400 + 66;
/** Datagrams per UDP GSO send (as MulticastSender). */
const RUN = 45;
const LINE = 125_000_000;
const CHUNK_DATAGRAMS = Math.ceil((4 * 1024 * 1024) / 1400);
const STEP_MS = 0.1;

interface PathResult {
  /** datagrams dropped at the bottleneck over sent, in the measured span */
  loss: number;
  /** bytes through the bottleneck over what it could carry, in the measured span */
  use: number;
  /** when the rate first reached the cap, ms (Infinity: never) */
  capAt: number;
}

function simulate(
  bottleneckBitsPerSecond: number,
  options: { bufferMs?: number; receivers?: number; seconds?: number; measureFrom?: number } = {},
): PathResult {
  const bottleneck = bottleneckBitsPerSecond / 8;
  const buffer = Math.max(WIRE, (bottleneck * (options.bufferMs ?? 5)) / 1000);
  const seconds = options.seconds ?? 20;
  const measureFrom = (options.measureFrom ?? 5) * 1000;
  const macs = Array.from({ length: options.receivers ?? 5 }, (_, i) => `52:54:00:00:01:${(i + 1).toString(16).padStart(2, '0')}`);
  const s = new StreamSchedule({ chunks: 1_000_000, expected: macs, start: { afterMs: 0 } });
  let received = 0;
  let lost = 0;
  let drops = 0;
  // Reports in flight to the host: [arrival ms, receiver, received, lost].
  const inFlight: [number, string, number, number][] = [];
  let tokens = 0;
  let limited = false;
  let chunkLeft = 0;
  let hostQueue = 0; // datagrams waiting for the host's line
  let lineCredit = 0;
  let queued = 0; // bytes in the bottleneck's buffer
  let drain = 0;
  let measuredSent = 0;
  let measuredDrops = 0;
  let measuredBytes = 0;
  let capAt = Infinity;
  let nextAdapt = 0;
  // Every receiver keeps up with the stream: its window never holds the stream back, only the rate does.
  const report = (now: number, mac: string, r: number, l: number) =>
    s.feedback(now, {
      mac,
      position: Math.max(0, s.cursor - 1),
      need: Math.max(0, s.cursor - 1),
      window: 64,
      done: false,
      received: r,
      lost: l,
      overrun: 0,
      streamKiB: 0,
      repairKiB: 0,
    });
  for (const mac of macs) report(0, mac, 0, 0);
  for (let step = 0; step * STEP_MS < seconds * 1000; step++) {
    const now = step * STEP_MS;
    const measuring = now >= measureFrom;
    // Every receiver behind the one bottleneck sees the same datagrams; each reports at its own phase.
    macs.forEach((mac, i) => {
      const phase = (step - i * 200) % 1000;
      if (phase === 0) inFlight.push([now + 50, mac, received, lost]);
    });
    while (inFlight.length > 0 && inFlight[0][0] <= now) {
      const [, mac, r, l] = inFlight.shift()!;
      report(now, mac, r, l);
    }
    if (now >= nextAdapt) {
      if (s.adapt(now, limited)) limited = false;
      nextAdapt += 50;
    }
    if (s.rate >= 125_000_000 && capAt === Infinity) capAt = now;
    // The sender: a 4 ms token bucket, whole runs of datagrams (at a low rate, runs of what the burst allows).
    const burst = Math.max(4 * WIRE, s.rate * 0.004);
    tokens = Math.min(burst, tokens + (s.rate * STEP_MS) / 1000);
    const run = Math.max(1, Math.min(RUN, Math.floor(burst / WIRE)));
    const quantum = Math.min(burst, run * WIRE);
    if (tokens < quantum) limited = true;
    while (tokens >= quantum) {
      for (let k = 0; k < run; k++) {
        if (chunkLeft === 0) {
          if (s.next(now) === undefined) break;
          chunkLeft = CHUNK_DATAGRAMS;
        }
        chunkLeft--;
        hostQueue++;
        if (measuring) measuredSent++;
        tokens -= WIRE;
      }
    }
    // The host's line, then the bottleneck's drop-tail buffer.
    lineCredit = Math.min(lineCredit + (LINE * STEP_MS) / 1000, (LINE * STEP_MS) / 1000 + WIRE);
    while (hostQueue > 0 && lineCredit >= WIRE) {
      hostQueue--;
      lineCredit -= WIRE;
      if (queued + WIRE <= buffer) queued += WIRE;
      else {
        drops++;
        if (measuring) measuredDrops++;
      }
    }
    drain = Math.min(drain + (bottleneck * STEP_MS) / 1000, queued);
    while (drain >= WIRE && queued >= WIRE) {
      drain -= WIRE;
      queued -= WIRE;
      received++;
      // A receiver counts a drop once a later datagram shows the gap.
      lost = drops;
      if (measuring) measuredBytes += WIRE;
    }
  }
  const span = seconds - measureFrom / 1000;
  return { loss: measuredDrops / Math.max(1, measuredSent), use: measuredBytes / (bottleneck * span), capAt };
}

describe('stream rate against a bottleneck (simulated path)', () => {
  for (const [mbit, bufferMs] of [
    [40, 5],
    [100, 5],
    [300, 5],
    [100, 50],
  ]) {
    test(`${mbit} Mbit/s (${bufferMs} ms of buffer) behind the host's 1 GbE port: little loss at steady state, and the path kept nearly full`, () => {
      const r = simulate(mbit * 1e6, { bufferMs });
      assert.ok(r.loss <= 0.01, `loss ${(r.loss * 100).toFixed(2)}% (at most 1%)`);
      assert.ok(r.use >= 0.95, `${(r.use * 100).toFixed(1)}% of the bottleneck used (at least 95%)`);
    });
  }

  test('a clean 1 GbE path: from 100 Mbit/s to the 1 Gbit/s cap in under half a second, and no loss', () => {
    const r = simulate(1e9, { seconds: 5, measureFrom: 1 });
    assert.ok(r.capAt <= 450, `cap reached at ${r.capAt} ms`);
    assert.equal(r.loss, 0, `loss ${(r.loss * 100).toFixed(2)}%`);
    assert.ok(r.use >= 0.99, `${(r.use * 100).toFixed(1)}% of the line used`);
  });
});
