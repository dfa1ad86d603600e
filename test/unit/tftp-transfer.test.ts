import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TftpOpcode } from '../../main/tftp/packet.js';
import { retransmitWaitMs, shortAbandonPolicy } from '../../main/tftp/transfer.js';
import { PatternSource, SimulatedExchange } from './tftp-transfer-harness.js';

/** Advances the clock 1 ms at a time for `ms` and returns the gaps between DATA sends. */
function retransmissionGaps(x: SimulatedExchange, ms: number): number[] {
  const times: number[] = [];
  let last = x.dataSent().length;
  const start = x.clock.now();
  for (let t = 0; t < ms; t++) {
    x.clock.advance(1);
    if (x.dataSent().length !== last) {
      last = x.dataSent().length;
      times.push(x.clock.now() - start);
    }
  }
  return times.map((t, i) => t - (times[i - 1] ?? 0));
}

const opts = (o: Record<string, string | number>) => Object.entries(o).map(([name, value]) => ({ name, value: String(value) }));

describe('ReadTransfer: plain RFC 1350', () => {
  test('no options: DATA 1 goes out at once, 512-byte blocks, content intact', () => {
    const source = new PatternSource(512 * 3 + 100);
    const x = new SimulatedExchange(source, []);
    x.start();
    assert.equal(x.sent[0].packet.opcode, TftpOpcode.DATA, 'no OACK without options (RFC 2347)');
    x.run();
    assert.equal(x.result?.outcome, 'done');
    assert.deepEqual(x.dataSent(), [1, 2, 3, 4]);
    assert.equal(x.clientSha256(), source.sha256());
    assert.equal(x.result?.bytes, source.size);
    assert.equal(x.result?.retransmits, 0);
  });

  test('a size that is a multiple of blksize ends with an empty block', () => {
    const source = new PatternSource(1024);
    const x = new SimulatedExchange(source, []);
    x.start();
    x.run();
    assert.equal(x.result?.outcome, 'done');
    assert.deepEqual(x.dataSent(), [1, 2, 3]);
    const last = x.sent.at(-1)!.packet as { data: Uint8Array };
    assert.equal(last.data.length, 0);
  });

  test('an empty file is one empty block', () => {
    const x = new SimulatedExchange(new PatternSource(0), opts({ tsize: 0 }));
    x.start();
    x.run();
    assert.equal(x.result?.outcome, 'done');
    assert.deepEqual(x.dataSent(), [1]);
  });

  test("duplicate ACKs never re-send (no Sorcerer's Apprentice)", () => {
    const source = new PatternSource(512 * 10);
    const x = new SimulatedExchange(source, []);
    x.start();
    x.deliver(); // DATA 1 -> ACK 1 -> DATA 2 ... until done
    assert.equal(x.result?.outcome, 'done');
    const before = x.sent.length;
    // Now a fresh transfer where every ACK arrives twice.
    const y = new SimulatedExchange(new PatternSource(512 * 10), []);
    y.start();
    let sends = 0;
    for (let block = 1; block <= 11 && !y.result; block++) {
      y.transfer.handleAck(block);
      y.transfer.handleAck(block); // duplicate
      sends = y.dataSent().length;
      assert.equal(sends, Math.min(block + 1, 11), `after ACK ${block} twice, exactly one new block was sent`);
    }
    assert.equal(y.result?.outcome, 'done');
    assert.equal(before, 11);
  });

  test('late ACKs of earlier blocks are ignored', () => {
    const x = new SimulatedExchange(new PatternSource(512 * 10), []);
    x.start();
    x.transfer.handleAck(1);
    x.transfer.handleAck(2);
    x.transfer.handleAck(3);
    const sent = x.dataSent().length;
    x.transfer.handleAck(1);
    x.transfer.handleAck(2);
    x.transfer.handleAck(60000); // never sent
    assert.equal(x.dataSent().length, sent);
    assert.equal(x.transfer.bytesAcknowledged, 3 * 512);
  });

  test('a lost DATA is re-sent after the retransmit timer, not before', () => {
    let dropped = false;
    const source = new PatternSource(512 * 20);
    const x = new SimulatedExchange(source, [], {
      dropToClient: (raw) => {
        if (!dropped && raw.readUInt16BE(0) === TftpOpcode.DATA && raw.readUInt16BE(2) === 5) return (dropped = true);
        return false;
      },
    });
    x.start();
    x.deliver();
    assert.equal(x.dataSent().at(-1), 5);
    x.clock.advance(x.transfer.retransmitTimeoutMs - 1);
    x.deliver();
    assert.equal(x.dataSent().filter((b) => b === 5).length, 1);
    x.run();
    assert.equal(x.result?.outcome, 'done');
    assert.equal(x.clientSha256(), source.sha256());
    assert.equal(x.result?.retransmits, 1);
  });
});

describe('ReadTransfer: options', () => {
  test('OACK carries blksize, real tsize, timeout and windowsize; ACK 0 starts the window', () => {
    const source = new PatternSource(100_000);
    const x = new SimulatedExchange(source, opts({ blksize: 1468, tsize: 0, timeout: 3, windowsize: 4 }));
    x.start();
    const oack = x.sent[0].packet;
    assert.equal(oack.opcode, TftpOpcode.OACK);
    assert.deepEqual((oack as { options: unknown }).options, opts({ blksize: 1468, tsize: 100000, timeout: 3, windowsize: 4 }));
    assert.equal(x.sent.length, 1, 'nothing but the OACK before ACK 0');
    x.transfer.handleAck(0);
    assert.deepEqual(x.dataSent(), [1, 2, 3, 4]);
    assert.equal((x.sent[1].packet as { data: Uint8Array }).data.length, 1468);
  });

  test('blksize above the link limit is clamped', () => {
    const x = new SimulatedExchange(new PatternSource(10_000), opts({ blksize: 65464 }), { maxBlksize: 1400 });
    x.start();
    assert.deepEqual((x.sent[0].packet as { options: unknown }).options, opts({ blksize: 1400 }));
    x.run();
    assert.equal(x.result?.outcome, 'done');
    assert.equal(x.dataSent().length, Math.floor(10_000 / 1400) + 1);
  });

  test('windowsize above the server maximum is reduced', () => {
    const x = new SimulatedExchange(new PatternSource(10_000), opts({ windowsize: 500 }), { maxWindowsize: 64 });
    x.start();
    assert.deepEqual((x.sent[0].packet as { options: unknown }).options, opts({ windowsize: 64 }));
  });

  test('size probe: RRQ with tsize, OACK, ERROR 8 -> probe, not failure', () => {
    const x = new SimulatedExchange(new PatternSource(1_000_000), opts({ tsize: 0, blksize: 1468, windowsize: 4 }), { probeWithError: 8 });
    x.start();
    x.run();
    assert.equal(x.result?.outcome, 'probe');
    assert.equal(x.result?.errorCode, 8);
    assert.equal(x.dataSent().length, 0);
  });

  test('an ERROR during the data phase is an abort', () => {
    const x = new SimulatedExchange(new PatternSource(1_000_000), opts({ tsize: 0 }));
    x.start();
    x.transfer.handleAck(0);
    x.transfer.handleAck(1);
    x.transfer.handleError(8, 'changed my mind');
    assert.equal(x.result?.outcome, 'aborted');
  });

  test('ERROR 8 without tsize asked is an abort, not a probe', () => {
    const x = new SimulatedExchange(new PatternSource(1000), opts({ blksize: 1024 }), { probeWithError: 8 });
    x.start();
    x.run();
    assert.equal(x.result?.outcome, 'aborted');
  });
});

describe('ReadTransfer: windows (RFC 7440)', () => {
  // Window of 4 blocks: drop one block of the second window and check what is re-sent.
  for (const [where, lostBlock, expectedResend] of [
    ['first', 5, [5, 6, 7, 8]],
    ['middle', 6, [6, 7, 8, 9]],
    ['last', 8, [8, 9, 10, 11]],
  ] as const) {
    test(`loss of the ${where} block of a window: next window starts after the last in-order block`, () => {
      const source = new PatternSource(512 * 40 + 7);
      let dropped = false;
      // The client notices the gap (its timer, 5 ms) before our retransmit timer (>= 20 ms).
      const x = new SimulatedExchange(source, opts({ windowsize: 4 }), {
        clientTimeoutMs: 5,
        dropToClient: (raw) => {
          if (!dropped && raw.readUInt16BE(0) === TftpOpcode.DATA && raw.readUInt16BE(2) === lostBlock) return (dropped = true);
          return false;
        },
      });
      x.start();
      x.deliver();
      const sentSoFar = x.dataSent();
      assert.deepEqual(sentSoFar, [1, 2, 3, 4, 5, 6, 7, 8], 'first two windows sent, then silence');
      x.run();
      assert.equal(x.result?.outcome, 'done');
      assert.equal(x.clientSha256(), source.sha256());
      const after = x.dataSent().slice(8, 12);
      assert.deepEqual(after, [...expectedResend]);
    });
  }

  test('an ACK inside the window re-sends from the block after it', () => {
    const x = new SimulatedExchange(new PatternSource(512 * 100), opts({ windowsize: 8 }));
    x.start();
    x.transfer.handleAck(0);
    assert.deepEqual(x.dataSent(), [1, 2, 3, 4, 5, 6, 7, 8]);
    x.transfer.handleAck(3);
    assert.deepEqual(x.dataSent().slice(8), [4, 5, 6, 7, 8, 9, 10, 11]);
    assert.equal(x.transfer.bytesAcknowledged, 3 * 512);
  });

  test('a duplicate ACK of the previous window does not re-send the window', () => {
    const x = new SimulatedExchange(new PatternSource(512 * 100), opts({ windowsize: 8 }));
    x.start();
    x.transfer.handleAck(0);
    x.transfer.handleAck(8);
    const count = x.dataSent().length;
    x.transfer.handleAck(8);
    x.transfer.handleAck(8);
    assert.equal(x.dataSent().length, count);
  });

  test('lost ACKs and random loss both ways still deliver the exact file', () => {
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const source = new PatternSource(512 * 777 + 3);
    const x = new SimulatedExchange(source, opts({ windowsize: 16, blksize: 512 }), {
      clientTimeoutMs: 40,
      dropToClient: () => random() < 0.1,
      dropToServer: () => random() < 0.1,
    });
    x.start();
    x.run();
    assert.equal(x.result?.outcome, 'done', x.result?.reason);
    assert.equal(x.clientSha256(), source.sha256());
    assert.ok(x.result!.retransmits > 0);
  });

  // Clients that re-ACK only after a silence of their own timeout (atftp 0.8, U-Boot): the
  // backoff must leave them that silence, and the transfer must wait for them.
  for (const [label, windowsize, clientTimeoutMs] of [
    ['windowsize 16', 16, 1000],
    ['windowsize 16', 16, 5000],
    ['lock-step', 1, 1000],
    ['lock-step', 1, 5000],
  ] as const) {
    test(`a client that re-ACKs only on its own ${clientTimeoutMs / 1000} s timeout, ${label}, 10% loss each way: completes intact`, () => {
      let seed = 777 + windowsize + clientTimeoutMs;
      const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
      const source = new PatternSource(1468 * 300 + 11);
      const x = new SimulatedExchange(source, opts({ blksize: 1468, windowsize }), {
        lazyClient: true,
        clientTimeoutMs,
        delayMs: 1,
        dropToClient: () => random() < 0.1,
        dropToServer: () => random() < 0.1,
      });
      x.start();
      x.run(3_600_000);
      assert.equal(x.result?.outcome, 'done', x.result?.reason);
      assert.equal(x.clientSha256(), source.sha256());
    });
  }

  test('rollover: a 40 MiB file at blksize 512 wraps the block number to 0 and completes', () => {
    const size = 40 * 1024 * 1024 + 123;
    const source = new PatternSource(size);
    const x = new SimulatedExchange(source, opts({ tsize: 0, windowsize: 16 }));
    x.start();
    x.run();
    assert.equal(x.result?.outcome, 'done', x.result?.reason);
    assert.equal(x.bytesReceived, size);
    assert.equal(x.clientSha256(), source.sha256());
    const blocks = x.dataSent();
    const wrapIndex = blocks.indexOf(65535);
    assert.ok(wrapIndex > 0);
    assert.equal(blocks[wrapIndex + 1], 0, 'block 65535 is followed by 0');
    assert.equal(blocks[wrapIndex + 2], 1);
    assert.equal(blocks.length, Math.floor(size / 512) + 1);
  });

  test('rollover with loss right at the wrap', () => {
    const size = 65540 * 512;
    const source = new PatternSource(size);
    let dropped = 0;
    const x = new SimulatedExchange(source, opts({ windowsize: 8 }), {
      clientTimeoutMs: 30,
      dropToClient: (raw) => {
        if (raw.readUInt16BE(0) === TftpOpcode.DATA && raw.readUInt16BE(2) === 0 && dropped < 2) return ++dropped > 0;
        return false;
      },
    });
    x.start();
    x.run();
    assert.equal(x.result?.outcome, 'done', x.result?.reason);
    assert.equal(x.clientSha256(), source.sha256());
    assert.equal(dropped, 2);
  });
});

describe('ReadTransfer: timers', () => {
  test("retransmit timer follows the measured round trip, then doubles past the client's timeout", () => {
    const x = new SimulatedExchange(new PatternSource(512 * 1000), opts({ timeout: 2 }), { delayMs: 2 });
    x.start();
    for (let i = 0; i < 40; i++) {
      x.clock.advance(3);
      x.transfer.handleAck(i);
    }
    const measured = x.transfer.retransmitTimeoutMs;
    assert.ok(measured >= 20 && measured < 100, `RTO ${measured} ms follows a 3 ms round trip (floor 20 ms)`);
    // Now silence: retransmissions back off 20, 40, 80 ... past the negotiated 2 s, to 8 s.
    const gaps = retransmissionGaps(x, 40_000);
    assert.ok(gaps[0] <= 2 * measured, `first retransmission after ~RTO, got ${gaps[0]}`);
    for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i] >= gaps[i - 1] - 1, `backoff never shrinks: ${gaps.join(',')}`);
    for (let i = 1; i < gaps.length && gaps[i] < 8000; i++)
      assert.ok(Math.abs(gaps[i] - 2 * gaps[i - 1]) <= 2, `each timeout doubles the wait: ${gaps.join(',')}`);
    assert.ok(
      gaps.some((g) => g > 5000),
      `leaves silences longer than a 5 s client timeout: ${gaps.join(',')}`,
    );
    assert.equal(Math.max(...gaps), 8000, `capped at 8 s: ${gaps.join(',')}`);
  });

  test('backoff schedule: doubles from the base up to the ceiling', () => {
    assert.deepEqual(
      Array.from({ length: 12 }, (_, k) => retransmitWaitMs(20, k, 8000)),
      [20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 8000, 8000, 8000],
    );
    assert.equal(retransmitWaitMs(20, 1000, 8000), 8000, 'no overflow after many timeouts');
    assert.equal(retransmitWaitMs(9000, 0, 8000), 9000, 'a base above the ceiling is kept');
  });

  test('a silent client: abandoned 60 s after its last packet, with few retransmissions, and told so', () => {
    const x = new SimulatedExchange(new PatternSource(512 * 1000), [], { silentClient: true });
    x.start();
    x.run(120_000);
    assert.equal(x.result?.outcome, 'failed');
    assert.equal(x.result!.durationMs, 60_000, "counted from the request, the client's only packet");
    assert.match(x.result!.reason!, /nothing from the client for 60 s/);
    const data = x.dataSent();
    assert.ok(data.length <= 14, `bounded retransmissions, got ${data.length}`);
    assert.equal(x.sent.at(-1)!.packet.opcode, TftpOpcode.ERROR, 'the client is told');
    assert.equal(x.clock.pendingTimers(), 0);
  });

  test('BOOTBENCH_TFTP_ABANDON_SECONDS: a silent client is abandoned sooner, after backed-off retransmissions', () => {
    const policy = shortAbandonPolicy('6');
    assert.deepEqual(policy, { abandonAfterMs: 6000, maxBackoffMs: 2000, oackRtoMs: 1500 });
    for (const unset of [undefined, '', '0', '-1', 'soon', '60', '600']) assert.equal(shortAbandonPolicy(unset), undefined, `${unset}: the defaults`);
    const x = new SimulatedExchange(new PatternSource(512 * 1000), [], { silentClient: true, retransmit: policy });
    x.start();
    const gaps = retransmissionGaps(x, 10_000);
    assert.equal(x.result?.outcome, 'failed');
    assert.equal(x.result!.durationMs, 6000);
    assert.match(x.result!.reason!, /nothing from the client for 6 s/);
    assert.ok(x.dataSent().length >= 3, `retransmitted before giving up: ${x.dataSent().length} data packets`);
    assert.ok(Math.max(...gaps) <= 2000, `backoff capped at a third of the abandon time: ${gaps.join(',')}`);
  });

  test('a lost final ACK: abandoned later, saying the client may have the whole file', () => {
    const x = new SimulatedExchange(new PatternSource(512 * 3 + 10), [], { dropToServer: (raw) => raw.readUInt16BE(2) === 4 });
    x.start();
    x.run(120_000);
    assert.equal(x.bytesReceived, 512 * 3 + 10, 'the client has the file');
    assert.equal(x.result?.outcome, 'failed');
    assert.match(x.result!.reason!, /^no ACK for the last block/);
  });

  test("the abandon time counts from the client's last packet, not from the last progress", () => {
    const x = new SimulatedExchange(new PatternSource(512 * 1000), [], { silentClient: true });
    x.start();
    x.transfer.handleAck(1);
    x.transfer.handleAck(2);
    const progressAt = x.clock.now();
    // A client that lacks block 3 and re-ACKs block 2 every 5 s for 90 s.
    for (let t = 0; t < 18; t++) {
      x.clock.advance(5000);
      assert.equal(x.result, undefined, `still running ${(t + 1) * 5} s after the last progress`);
      x.transfer.handleAck(2);
    }
    const lastPacketAt = x.clock.now();
    x.run(120_000);
    assert.equal(x.result?.outcome, 'failed');
    assert.equal(x.clock.now() - lastPacketAt, 60_000);
    assert.ok(x.clock.now() - progressAt > 140_000);
  });

  test('a duplicate ACK after a timeout re-sends the window at once, once per timeout', () => {
    const x = new SimulatedExchange(new PatternSource(512 * 1000), opts({ windowsize: 4 }), { silentClient: true });
    x.start();
    x.transfer.handleAck(0);
    x.transfer.handleAck(4); // window 5..8 goes out
    const sent = () => x.dataSent().length;
    const afterWindow = sent();
    x.transfer.handleAck(4);
    assert.equal(sent(), afterWindow, 'no re-send before our own timer ran out');
    // Let several timeouts pass so the wait is long, then the client re-ACKs on its timer.
    const gaps = retransmissionGaps(x, 3000);
    assert.ok(gaps.length >= 5);
    const before = sent();
    x.transfer.handleAck(4);
    assert.equal(sent(), before + 4, 'the whole window again, without waiting for the backed-off timer');
    x.transfer.handleAck(4);
    assert.equal(sent(), before + 4, 'only once until the next timeout');
  });

  test('a lost OACK is re-sent; the transfer then completes', () => {
    let drops = 0;
    const source = new PatternSource(5000);
    const x = new SimulatedExchange(source, opts({ blksize: 1024, tsize: 0 }), {
      dropToClient: (raw) => raw.readUInt16BE(0) === TftpOpcode.OACK && drops++ === 0,
    });
    x.start();
    x.run();
    assert.equal(x.result?.outcome, 'done');
    assert.equal(x.sent.filter((s) => s.packet.opcode === TftpOpcode.OACK).length, 2);
    assert.equal(x.clientSha256(), source.sha256());
  });

  test('the OACK is re-sent only after a wait longer than client timeouts, or at once on a repeated request', () => {
    const x = new SimulatedExchange(new PatternSource(5000), opts({ blksize: 1024 }), { silentClient: true });
    x.start();
    const oacks = () => x.sent.filter((s) => s.packet.opcode === TftpOpcode.OACK).length;
    x.clock.advance(5999);
    assert.equal(oacks(), 1, 'a client whose ACK 0 was lost re-sends it on its own timer first (atftp aborts on a second OACK)');
    x.transfer.handleRepeatedRequest();
    assert.equal(oacks(), 2, 'a repeated request means the OACK was lost: answered at once');
    x.clock.advance(2);
    assert.equal(oacks(), 3, 'the timer still runs');
    x.transfer.handleAck(0);
    x.transfer.handleRepeatedRequest();
    assert.equal(oacks(), 3, 'a late repeated request during the data phase changes nothing');
    assert.equal(x.dataSent().length, 1);
  });

  test('progress is reported at most every 250 ms', () => {
    const x = new SimulatedExchange(new PatternSource(512 * 3000), [], { delayMs: 1 });
    x.start();
    x.run();
    assert.equal(x.result?.outcome, 'done');
    const elapsed = x.result!.durationMs;
    assert.ok(x.progress.length >= 2, `some progress (${x.progress.length}) over ${elapsed} ms`);
    assert.ok(x.progress.length <= Math.ceil(elapsed / 250) + 1);
    for (let i = 1; i < x.progress.length; i++) assert.ok(x.progress[i].elapsedMs - x.progress[i - 1].elapsedMs >= 250);
  });

  test('read-ahead is bounded: reads never exceed one chunk, whatever the file size', () => {
    const source = new PatternSource(20 * 1024 * 1024);
    const x = new SimulatedExchange(source, opts({ blksize: 1468, windowsize: 16 }), { readAheadBytes: 128 * 1024 });
    x.start();
    x.run();
    assert.equal(x.result?.outcome, 'done');
    assert.ok(source.maxReadLength <= 128 * 1024 + 1468, `largest read ${source.maxReadLength}`);
  });
});
