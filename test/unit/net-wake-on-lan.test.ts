import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { buildMagicPacket, parseMac, sendMagicPacket } from '../../main/net/wake-on-lan.js';
import { openPlainSocket } from '../../main/net/scoped-udp.js';

test('magic packet: 6 x FF then the MAC 16 times, 102 bytes', () => {
  const packet = buildMagicPacket('52:54:00:12:34:56');
  assert.equal(packet.length, 102);
  assert.equal(packet.subarray(0, 6).toString('hex'), 'ffffffffffff');
  assert.equal(packet.subarray(6).toString('hex'), '525400123456'.repeat(16));
});

test('SecureOn password: 4 bytes (dotted) or 6 bytes (MAC-style) appended', () => {
  assert.equal(buildMagicPacket('52:54:00:12:34:56', '1.2.3.4').subarray(102).toString('hex'), '01020304');
  assert.equal(buildMagicPacket('52:54:00:12:34:56', 'de:ad:be:ef:00:01').subarray(102).toString('hex'), 'deadbeef0001');
  assert.throws(() => buildMagicPacket('52:54:00:12:34:56', 'secret'), /not a SecureOn password/);
});

test('MAC spellings', () => {
  for (const mac of ['52:54:00:AB:cd:ef', '52-54-00-ab-cd-ef', '5254.00ab.cdef', '525400abcdef']) {
    assert.equal(parseMac(mac).toString('hex'), '525400abcdef', mac);
  }
  for (const bad of ['52:54:00:ab:cd', 'zz:54:00:ab:cd:ef', '']) assert.throws(() => parseMac(bad), /not a MAC address/);
});

test('sendMagicPacket delivers the packet (loopback receiver)', async () => {
  const receiver = dgram.createSocket('udp4');
  await new Promise<void>((r) => receiver.bind(0, '127.0.0.1', r));
  const received = new Promise<Buffer>((r) => receiver.once('message', r));
  const requested: unknown[] = [];
  try {
    const result = await sendMagicPacket('52:54:00:12:34:56', {
      broadcastAddress: '127.0.0.1',
      port: receiver.address().port,
      socketFactory: (options) => {
        requested.push(options);
        return openPlainSocket(options);
      },
    });
    assert.deepEqual(result, { address: '127.0.0.1', port: receiver.address().port, bytes: 102 });
    assert.deepEqual(await received, buildMagicPacket('52:54:00:12:34:56'));
    assert.deepEqual(requested, [{ port: 0, interfaceName: undefined, broadcast: true }]);
  } finally {
    receiver.close();
  }
});

test('sendMagicPacket defaults to the NIC directed broadcast, port 9', async () => {
  const sent: { address: string; port: number }[] = [];
  const fake = {
    setBroadcast() {},
    send(_packet: Buffer, port: number, address: string, cb: (e: Error | null) => void) {
      sent.push({ address, port });
      cb(null);
    },
    close() {},
  } as unknown as dgram.Socket;
  await sendMagicPacket('52:54:00:12:34:56', {
    interfaceName: 'eth1',
    interfaces: [
      { name: 'eth1', mac: '', ipv4: [{ address: '192.0.2.1', netmask: '255.255.255.0', prefixLength: 24 }], ipv6: [], up: true, kind: 'wired', mtu: 1500 },
    ],
    socketFactory: async () => fake,
  });
  assert.deepEqual(sent, [{ address: '192.0.2.255', port: 9 }]);
});
