// The scoped socket factory on loopback (the two-NIC proof is in
// test/integration/net-scoped-udp.test.ts).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { createScopedUdpSocketFactory, encodeSockaddrIn } from '../../main/net/scoped-udp.js';
import { PortBindError, DeviceBindError } from '../../main/net/bind-errors.js';

const linuxOnly = process.platform !== 'linux' && 'SO_BINDTODEVICE path runs on Linux only';

function receiveOne(socket: dgram.Socket): Promise<{ payload: string; from: string }> {
  return new Promise((resolve) => socket.once('message', (m, r) => resolve({ payload: m.toString(), from: r.address })));
}

async function sendTo(port: number, payload: string): Promise<void> {
  const sender = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => sender.send(payload, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  sender.close();
}

test('struct sockaddr_in bytes', () => {
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  assert.equal(encodeSockaddrIn('192.0.2.1', 67, 'linux').toString('hex'), `${le ? '0200' : '0002'}0043c0000201` + '00'.repeat(8));
  assert.equal(encodeSockaddrIn('0.0.0.0', 4011, 'darwin').toString('hex'), '10020fab00000000' + '00'.repeat(8));
  assert.throws(() => encodeSockaddrIn('300.1.1.1', 1, 'linux'), /not an IPv4 address/);
});

describe('device-bound sockets (koffi + SO_BINDTODEVICE)', { skip: linuxOnly }, () => {
  const factory = createScopedUdpSocketFactory();

  test('a socket bound to lo is an ordinary dgram socket that receives and closes its fd', async () => {
    const socket = await factory({ port: 0, interfaceName: 'lo', broadcast: true });
    const { port } = socket.address();
    assert.ok(port > 0);
    const got = receiveOne(socket);
    await sendTo(port, 'ping');
    assert.deepEqual(await got, { payload: 'ping', from: '127.0.0.1' });
    await new Promise<void>((r) => socket.close(r));
    // Closing through Node released the descriptor we created: the port is free again.
    const again = await factory({ port, interfaceName: 'lo' });
    again.close();
  });

  test('port in use: PortBindError naming this process', async () => {
    const first = await factory({ port: 0, interfaceName: 'lo' });
    const { port } = first.address();
    try {
      await assert.rejects(factory({ port, interfaceName: 'lo' }), (e: unknown) => {
        assert.ok(e instanceof PortBindError);
        assert.equal(e.code, 'EADDRINUSE');
        assert.equal(e.port, port);
        assert.match(e.message, new RegExp(`^UDP port ${port} on lo is already in use by node \\(pid ${process.pid}\\): stop it, or pick another port\\.$`));
        return true;
      });
    } finally {
      first.close();
    }
  });

  test('no SO_REUSEADDR by default, even when the holder set it (dnsmasq does)', async () => {
    const holder = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((r) => holder.bind(0, '0.0.0.0', r));
    const { port } = holder.address();
    try {
      await assert.rejects(factory({ port, interfaceName: 'lo' }), /already in use/);
      // Control: opting in shares the port, which is what the default avoids.
      const shared = await factory({ port, interfaceName: 'lo', reuseAddress: true });
      shared.close();
    } finally {
      holder.close();
    }
  });

  test('unknown interface: DeviceBindError', async () => {
    await assert.rejects(factory({ port: 0, interfaceName: 'bb-nosuch0' }), (e: unknown) => {
      assert.ok(e instanceof DeviceBindError);
      assert.equal(e.code, 'ENODEV');
      assert.match(e.message, /There is no network interface called "bb-nosuch0"/);
      return true;
    });
  });

  test('address not on this machine: explained', async () => {
    await assert.rejects(factory({ port: 0, address: '192.0.2.254', interfaceName: 'lo' }), (e: unknown) => {
      assert.ok(e instanceof PortBindError);
      assert.equal(e.code, 'EADDRNOTAVAIL');
      assert.match(e.message, /address 192\.0\.2\.254 is not configured on this machine/);
      return true;
    });
  });
});

describe('without an interface, and the Windows way', () => {
  test('no interfaceName: plain dgram socket, same error wording', async () => {
    const factory = createScopedUdpSocketFactory();
    const socket = await factory({ port: 0, address: '127.0.0.1' });
    const { port } = socket.address();
    try {
      assert.equal(socket.address().address, '127.0.0.1');
      await assert.rejects(factory({ port, address: '127.0.0.1' }), (e: unknown) => e instanceof PortBindError && /already in use/.test(e.message));
    } finally {
      socket.close();
    }
  });

  test("win32 strategy: binds to the NIC's own IPv4 address", { skip: linuxOnly }, async () => {
    const socket = await createScopedUdpSocketFactory({ platform: 'win32' })({ port: 0, interfaceName: 'lo' });
    try {
      assert.equal(socket.address().address, '127.0.0.1');
    } finally {
      socket.close();
    }
  });
});
