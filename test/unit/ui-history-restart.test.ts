// Transfer history across host restarts on one data folder: the real service host serves
// HTTP on loopback, is closed and started again, and the history the Live screen loads (and
// the records it is pushed) never repeat an id and lose no transfer.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServiceHost } from '../../main/host/service-host.js';
import { defaultServeConfig } from '../../main/host/config.js';
import { openStore } from '../../main/store/index.js';
import { storeApi } from '../../main/api/api-store.js';
import { transferRecordFromEvent } from '../../main/api/api.js';
import type { UdpSocketFactory } from '../../main/net/udp-socket-factory.js';
import type { NetInterface } from '../../main/net/index.js';
import type { TransferRecord } from '../../preload/api.js';
import { makeTempDir } from '../helpers/store-temp.js';

const temp = makeTempDir('bootbench-history-');
after(() => temp.remove());

const loopbackSockets: UdpSocketFactory = (options) =>
  new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind({ port: options.port, address: '127.0.0.1' }, () => resolve(socket));
  });

const loopback = {
  name: 'lo',
  mac: '00:00:00:00:00:00',
  ipv4: [{ address: '127.0.0.1', prefixLength: 8 }],
  up: true,
  kind: 'loopback',
  mtu: 65536,
} as unknown as NetInterface;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** One run of the host: start, fetch the file twice over HTTP, close. Returns the records pushed live. */
async function oneRun(dataDir: string, root: string): Promise<TransferRecord[]> {
  const httpPort = await freePort();
  const store = openStore(dataDir);
  const config = { ...defaultServeConfig(dataDir), root, httpPort, ports: { dhcp: 0, pxe: 0, tftp: 0, dhcpClient: 0 } };
  const host = new ServiceHost({ config, store, socketFactory: loopbackSockets, resolveInterface: () => loopback, watchInterface: false, dhcpThread: false });
  const pushed: TransferRecord[] = [];
  host.bus.subscribe((e) => {
    const record = transferRecordFromEvent(e);
    if (record) pushed.push(record);
  });
  try {
    await host.start();
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`http://127.0.0.1:${httpPort}/file.bin`);
      assert.equal(res.status, 200);
      assert.equal((await res.arrayBuffer()).byteLength, 4096);
    }
    // The end of a response is published once the socket closes.
    for (let i = 0; i < 50 && pushed.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  } finally {
    await host.close();
  }
  return pushed;
}

test('history ids stay unique across host restarts on the same data folder, and every transfer stays listed', async () => {
  const dataDir = join(temp.dir, 'data');
  const root = join(temp.dir, 'root');
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'file.bin'), Buffer.alloc(4096, 1));

  const first = await oneRun(dataDir, root);
  const second = await oneRun(dataDir, root);
  assert.equal(first.length, 2);
  assert.equal(second.length, 2);
  const pushedIds = [...first, ...second].map((r) => r.id);
  assert.equal(new Set(pushedIds).size, 4, `pushed ids repeat across runs: ${pushedIds.join(', ')}`);

  const store = openStore(dataDir);
  try {
    const history = storeApi(store).transfers.recent(100);
    assert.equal(history.length, 4, 'one history row per transfer of both runs');
    assert.equal(new Set(history.map((r) => r.id)).size, 4, `history ids repeat: ${history.map((r) => r.id).join(', ')}`);
    assert.equal(new Set(history.map((r) => r.transferKey)).size, 4);
    // The pushed record and its stored row carry the same transfer key, so the screen shows it once.
    assert.deepEqual(history.map((r) => r.transferKey).sort(), pushedIds.sort());
  } finally {
    store.close();
  }
});
