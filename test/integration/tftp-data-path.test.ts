// The two data paths of the TFTP server: transfers in the worker thread (Linux, koffi) and
// on Node's event loop (elsewhere, or when the worker cannot run). The same scenarios run
// on both, and the fallbacks are exercised: a platform without the syscalls, and a worker
// that dies in the middle of a transfer.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/netns.js';
import { decodeTftpPacket, encodeAck, encodeTftpPacket, TftpOpcode } from '../../main/tftp/packet.js';
import type { TftpServerOptions } from '../../main/tftp/server.js';
import { RawClient, sha256, TftpFixture } from './tftp-helpers.js';

const workerUnavailable =
  process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')
    ? `the worker data path needs Linux x64/arm64 (this is ${process.platform}/${process.arch})`
    : undefined;

function rrq(filename: string, options: Record<string, string | number> = {}): Buffer {
  return encodeTftpPacket({
    opcode: TftpOpcode.RRQ,
    filename,
    mode: 'octet',
    options: Object.entries(options).map(([name, value]) => ({ name, value: String(value) })),
  });
}

/**
 * Downloads `file` with windowsize `windowsize`, ACKing each full window (or the last
 * block). `dropOnce` blocks are ignored the first time they arrive, as if lost; the client
 * then ACKs what it has in order, as RFC 7440 §4 asks.
 */
async function windowedGet(server: number, file: string, blksize: number, windowsize: number, dropOnce = new Set<number>()): Promise<Buffer> {
  const client = await new RawClient().open();
  try {
    client.send(rrq(file, { blksize, windowsize, tsize: 0 }), server);
    const oack = await client.receive();
    assert.equal(decodeTftpPacket(oack.msg).opcode, TftpOpcode.OACK);
    const tid = oack.port;
    client.send(encodeAck(0), tid);
    const parts: Buffer[] = [];
    let expected = 1;
    let inWindow = 0;
    for (;;) {
      let next;
      try {
        next = await client.receive(1500);
      } catch {
        client.send(encodeAck((expected - 1) & 0xffff), tid); // our ACK was lost: say it again
        continue;
      }
      const p = decodeTftpPacket(next.msg);
      if (p.opcode !== TftpOpcode.DATA) throw new Error(`unexpected opcode ${p.opcode}`);
      if (p.block !== (expected & 0xffff)) continue; // the rest of a window after a "lost" block
      if (dropOnce.delete(expected)) {
        // "lost": ACK what arrived in order so far; the server starts the next window there.
        client.send(encodeAck((expected - 1) & 0xffff), tid);
        inWindow = 0;
        continue;
      }
      parts.push(Buffer.from(p.data));
      expected++;
      inWindow++;
      const last = p.data.length < blksize;
      if (last || inWindow === windowsize) {
        client.send(encodeAck(p.block), tid);
        inWindow = 0;
      }
      if (last) return Buffer.concat(parts);
    }
  } finally {
    await client.close();
  }
}

for (const kind of ['worker', 'event-loop'] as const) {
  describe(`TFTP data path: ${kind}`, { skip: kind === 'worker' ? workerUnavailable : undefined }, () => {
    const fx = new TftpFixture();
    before(async () => {
      fx.addFile('big.bin', 3_000_000);
      fx.addFile('exact.bin', 1468 * 64); // ends with an empty block
      const options: Partial<TftpServerOptions> = { dataPath: kind, progressIntervalMs: 0, readAheadBytes: 64 * 1024 };
      await fx.start(options);
      assert.equal(fx.server.dataPathInUse.kind, kind, JSON.stringify(fx.server.dataPathInUse));
    });
    after(() => fx.stop());

    test('windowsize 16 at blksize 1468: the file arrives intact, progress and done are reported', async () => {
      const before = fx.ofType('tftp.done').length;
      const data = await windowedGet(fx.server.port, 'big.bin', 1468, 16);
      assert.equal(sha256(data), fx.hashes.get('big.bin'));
      const done = await waitFor(() => (fx.ofType('tftp.done').length > before ? fx.ofType('tftp.done').at(-1) : undefined), 2000, 'tftp.done');
      assert.equal(done.bytes, 3_000_000);
      assert.equal(done.file, '/big.bin');
      const progress = fx.ofType('tftp.progress').filter((e) => e.transferId === done.transferId);
      assert.ok(progress.length > 10, `progress events: ${progress.length}`);
      assert.ok(progress.every((e, i) => i === 0 || (e.bytes as number) >= (progress[i - 1].bytes as number)));
      await waitFor(() => fx.server.activeTransfers().length === 0, 1000, 'transfer removed');
      assert.equal(fx.files.openDescriptorCount(), 0);
    });

    test('a block lost inside a window (first, middle, last of windows) is recovered from the client ACK', async () => {
      const data = await windowedGet(fx.server.port, 'big.bin', 1468, 8, new Set([1, 12, 24, 100, 2000]));
      assert.equal(sha256(data), fx.hashes.get('big.bin'));
    });

    test('a file that is a multiple of blksize ends with an empty block', async () => {
      const data = await windowedGet(fx.server.port, 'exact.bin', 1468, 4);
      assert.equal(sha256(data), fx.hashes.get('exact.bin'));
    });

    test('activeTransfers() lists a running transfer with its options', async () => {
      const client = await new RawClient().open();
      try {
        client.send(rrq('big.bin', { blksize: 1000, windowsize: 2 }), fx.server.port);
        const oack = await client.receive();
        client.send(encodeAck(0), oack.port);
        await client.receive();
        const [snapshot] = fx.server.activeTransfers();
        assert.equal(snapshot.file, '/big.bin');
        assert.equal(snapshot.blksize, 1000);
        assert.equal(snapshot.windowsize, 2);
        assert.equal(snapshot.size, 3_000_000);
        client.send(encodeAck(2), oack.port);
        await waitFor(() => (fx.server.activeTransfers()[0]?.bytes ?? 0) >= 2000, 2000, 'progress in the snapshot');
      } finally {
        await client.close();
      }
      // The abandoned transfer is ended by stop() in after().
    });
  });
}

describe('TFTP data path fallbacks', () => {
  test('a platform without the syscalls keeps transfers on the event loop, and they work', async () => {
    const fx = new TftpFixture();
    try {
      fx.addFile('f.bin', 100_000);
      await fx.start({ platform: 'darwin' });
      assert.equal(fx.server.dataPathInUse.kind, 'event-loop');
      assert.match(fx.server.dataPathInUse.reason ?? '', /darwin/);
      const data = await windowedGet(fx.server.port, 'f.bin', 1468, 8);
      assert.equal(sha256(data), fx.hashes.get('f.bin'));
    } finally {
      await fx.stop();
    }
  });

  test('an injected clock keeps transfers on the event loop', async () => {
    const fx = new TftpFixture();
    try {
      await fx.start({
        clock: { now: () => Date.now(), setTimeout: (fn, ms) => ({ id: setTimeout(fn, ms) }), clearTimeout: (h) => clearTimeout(h.id as NodeJS.Timeout) },
      });
      assert.equal(fx.server.dataPathInUse.kind, 'event-loop');
    } finally {
      await fx.stop();
    }
  });

  test('a worker that dies mid-transfer: the transfer is reported failed, later ones use the event loop', { skip: workerUnavailable }, async () => {
    const fx = new TftpFixture();
    const client = await new RawClient().open();
    try {
      fx.addFile('f.bin', 500_000);
      await fx.start();
      assert.equal(fx.server.dataPathInUse.kind, 'worker');
      client.send(rrq('f.bin', { blksize: 1000 }), fx.server.port);
      const oack = await client.receive();
      client.send(encodeAck(0), oack.port);
      await client.receive();
      // Reach into the server to kill its workers, as a crash would.
      const workers = (fx.server as unknown as { workerPath: { workers: { worker: { terminate(): Promise<number> } }[] } }).workerPath.workers;
      assert.ok(workers.length > 0);
      await Promise.all(workers.map((d) => d.worker.terminate()));
      const failed = await waitFor(() => fx.ofType('tftp.failed').at(-1), 2000, 'tftp.failed');
      assert.match(String(failed.reason), /worker/);
      assert.equal(fx.server.activeTransfers().length, 0);
      assert.equal(fx.files.openDescriptorCount(), 0);
      assert.equal(fx.server.dataPathInUse.kind, 'event-loop');
      const data = await windowedGet(fx.server.port, 'f.bin', 1468, 8);
      assert.equal(sha256(data), fx.hashes.get('f.bin'));
    } finally {
      await client.close();
      await fx.stop();
    }
  });
});

describe('TFTP worker busy-wait for the next ACK', { skip: workerUnavailable }, () => {
  // A client slower than the budget must stop the spinning after a few waits (spin-wait.ts),
  // or a lone transfer would burn the budget on every block. The budget is set far above the
  // default here so that spinning on every block would be plain in the CPU time.
  test('a lock-step client that ACKs later than the budget costs no spinning on each block', async () => {
    const fx = new TftpFixture();
    const client = await new RawClient().open();
    const blocks = 100;
    try {
      fx.addFile('slow.bin', 512 * (blocks - 1) + 100);
      await fx.start({ busyWaitMicroseconds: 3000 });
      assert.equal(fx.server.dataPathInUse.kind, 'worker');
      client.send(rrq('slow.bin'), fx.server.port);
      const parts: Buffer[] = [];
      const cpuBefore = process.cpuUsage();
      for (let expected = 1; ; expected++) {
        const { msg, port } = await client.receive();
        const p = decodeTftpPacket(msg);
        assert.equal(p.opcode, TftpOpcode.DATA);
        assert.equal(p.block, expected);
        parts.push(Buffer.from(p.data));
        await new Promise((r) => setTimeout(r, 5)); // answers 5 ms later, past the 3 ms budget
        client.send(encodeAck(p.block), port);
        if (p.data.length < 512) break;
      }
      const cpu = process.cpuUsage(cpuBefore);
      assert.equal(sha256(Buffer.concat(parts)), fx.hashes.get('slow.bin'));
      // Spinning the whole budget on each of the 100 blocks would be 300 ms of CPU.
      const cpuMs = (cpu.user + cpu.system) / 1000;
      assert.ok(cpuMs < 150, `process CPU during the transfer: ${cpuMs.toFixed(0)} ms`);
    } finally {
      await client.close();
      await fx.stop();
    }
  });
});
