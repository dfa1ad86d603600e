import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { createBatchSender } from '../../main/tftp/batch-send.js';

const unavailable = process.platform !== 'linux' ? 'sendmmsg batching is Linux-only' : undefined;

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  return s;
}

test('a batch of header+data datagrams arrives complete and in order', { skip: unavailable }, async () => {
  const sender = await bound();
  const receiver = await bound();
  try {
    const got: Buffer[] = [];
    const all = new Promise<void>((resolve) => receiver.on('message', (m) => got.push(m) === 40 && resolve()));
    const batch = createBatchSender(sender, '127.0.0.1', receiver.address().port, 16);
    assert.ok(batch, 'koffi + sendmmsg available on Linux');
    const data = Buffer.alloc(40 * 100);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    for (let i = 0; i < 40; i++) {
      const header = Buffer.from([0, 3, 0, i]);
      // The last one has no data part (an empty final TFTP block).
      batch.add(header, i === 39 ? undefined : data.subarray(i * 100, i * 100 + 100));
    }
    batch.flush(); // 40 = 16 + 16 (sent when full) + 8 here
    await all;
    for (let i = 0; i < 39; i++) {
      assert.deepEqual(got[i].subarray(0, 4), Buffer.from([0, 3, 0, i]));
      assert.deepEqual(got[i].subarray(4), data.subarray(i * 100, i * 100 + 100));
    }
    assert.deepEqual(got[39], Buffer.from([0, 3, 0, 39]));
  } finally {
    sender.close();
    receiver.close();
  }
});

test('not an IPv4 address: no batch sender (the caller falls back to dgram)', { skip: unavailable }, async () => {
  const s = await bound();
  try {
    assert.equal(createBatchSender(s, '::1', 69, 4), undefined);
  } finally {
    s.close();
  }
});

test('UDP GSO runs (UDP_SEGMENT) arrive as the same datagrams, in order, short and empty ones included', { skip: unavailable }, async () => {
  const { loadLinuxSyscalls } = await import('../../main/net/libc.js');
  const { openTransferDescriptor } = await import('../../main/net/udp-descriptor.js');
  const { createDescriptorBatchSender } = await import('../../main/tftp/batch-send.js');
  const sys = loadLinuxSyscalls();
  assert.ok(sys, 'koffi + Linux syscalls available');
  const receiver = await bound();
  const { fd } = openTransferDescriptor(sys, '127.0.0.1', 1 << 20, 1 << 16);
  try {
    // 5 full, 1 short (ends a run), 3 full, 1 empty (header only), 2 full with a different size
    const sizes = [100, 100, 100, 100, 100, 37, 100, 100, 100, 0, 60, 60];
    const got: Buffer[] = [];
    const all = new Promise<void>((resolve) => receiver.on('message', (m) => got.push(m) === sizes.length && resolve()));
    const unsent: number[] = [];
    const batch = createDescriptorBatchSender(fd, '127.0.0.1', receiver.address().port, 64, { unsent: (h) => unsent.push(h[3]) }, { segmentSize: 104 });
    assert.ok(batch);
    const data = Buffer.alloc(2000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    sizes.forEach((size, i) => batch.add(Buffer.from([0, 3, 0, i]), size > 0 ? data.subarray(i * 100, i * 100 + size) : undefined));
    batch.flush();
    await all;
    assert.deepEqual(unsent, []);
    assert.equal(batch.segmentedSends, 2, 'runs: 6 (5 full + short), 4 (3 full + empty), then 2 of 64 bytes go by sendmmsg');
    sizes.forEach((size, i) => {
      assert.deepEqual(got[i].subarray(0, 4), Buffer.from([0, 3, 0, i]), `datagram ${i} header`);
      assert.deepEqual(got[i].subarray(4), data.subarray(i * 100, i * 100 + size), `datagram ${i} data`);
    });
  } finally {
    sys.close(fd);
    receiver.close();
  }
});

test('UDP GSO is skipped while `enabled` says no (a transfer that needed a retransmission)', { skip: unavailable }, async () => {
  const { loadLinuxSyscalls } = await import('../../main/net/libc.js');
  const { openTransferDescriptor } = await import('../../main/net/udp-descriptor.js');
  const { createDescriptorBatchSender } = await import('../../main/tftp/batch-send.js');
  const sys = loadLinuxSyscalls()!;
  const receiver = await bound();
  const { fd } = openTransferDescriptor(sys, '127.0.0.1', 1 << 20, 1 << 16);
  try {
    let allowed = false;
    const got: Buffer[] = [];
    const eight = new Promise<void>((resolve) => receiver.on('message', (m) => got.push(m) === 8 && resolve()));
    const batch = createDescriptorBatchSender(
      fd,
      '127.0.0.1',
      receiver.address().port,
      16,
      { unsent: () => assert.fail('unsent') },
      { segmentSize: 14, enabled: () => allowed },
    )!;
    const send4 = (from: number) => {
      for (let i = from; i < from + 4; i++) batch.add(Buffer.from([0, 3, 0, i]), Buffer.alloc(10, i));
      batch.flush();
    };
    send4(0);
    assert.equal(batch.segmentedSends, 0);
    allowed = true;
    send4(4);
    assert.equal(batch.segmentedSends, 1);
    await eight;
    assert.deepEqual(
      got.map((m) => m[3]),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
  } finally {
    sys.close(fd);
    receiver.close();
  }
});
