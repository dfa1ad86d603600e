import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { buildMagicPacket, wakeMachines } from '../../main/net/wake-on-lan.js';

test('magic packet: 6 x FF, the MAC 16 times, optional SecureOn password', () => {
  const p = buildMagicPacket('52-54-00-12-34-56');
  assert.equal(p.length, 102);
  assert.deepEqual(p.subarray(0, 6), Buffer.alloc(6, 0xff));
  for (let i = 0; i < 16; i++) assert.equal(p.subarray(6 + i * 6, 12 + i * 6).toString('hex'), '525400123456');
  assert.equal(buildMagicPacket('525400123456', '01:02:03:04').subarray(102).toString('hex'), '01020304');
  assert.throws(() => buildMagicPacket('52:54:00:12:34'), /not a MAC address/);
  assert.throws(() => buildMagicPacket('52:54:00:12:34:56', 'abc'), /SecureOn password/);
});

test("wakeMachines sends each packet through the factory's socket; a bad MAC is reported, the rest sent", async () => {
  // Loopback receiver stands in for the bench broadcast address.
  const receiver = createSocket('udp4');
  await new Promise<void>((r) => receiver.bind(0, '127.0.0.1', r));
  const received: Buffer[] = [];
  receiver.on('message', (m) => received.push(m));
  const requested: unknown[] = [];
  const factory = async (options: unknown): Promise<Socket> => {
    requested.push(options);
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return s;
  };
  const results = await wakeMachines(['52:54:00:00:00:01', 'nonsense', '52:54:00:00:00:02'], {
    socketFactory: factory,
    interfaceName: 'bench0',
    broadcastAddress: '127.0.0.1',
    port: receiver.address().port,
    repeat: 2,
  });
  assert.deepEqual(requested, [{ port: 0, interfaceName: 'bench0', broadcast: true }]);
  assert.deepEqual(
    results.map((r) => [r.mac, r.sent, Boolean(r.error)]),
    [
      ['52:54:00:00:00:01', 2, false],
      ['nonsense', 0, true],
      ['52:54:00:00:00:02', 2, false],
    ],
  );
  const deadline = Date.now() + 2000;
  while (received.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  receiver.close();
  assert.equal(received.length, 4);
  assert.equal(received.filter((m) => m.subarray(6, 12).toString('hex') === '525400000002').length, 2);
});
