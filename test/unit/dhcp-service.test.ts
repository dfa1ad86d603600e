// The socket loop over loopback: plain dgram sockets on 127.0.0.1, port 0. Broadcast
// replies are covered by the namespace test (test/integration/dhcp-netns.test.ts); here
// clients carry ciaddr 127.0.0.1 so the proxy answers by unicast.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DhcpService } from '../../main/dhcp/service.js';
import { decodeDhcpPacket, type DhcpPacket } from '../../main/dhcp/packet.js';
import { EventBus, type BootEvent } from '../../main/core/events.js';
import { MemoryLogger } from '../../main/core/logger.js';
import { summarizeEvent } from '../../main/api/boot-diagnosis.js';
import { loopbackFactory } from './dhcp-loopback.js';
import { firmwareBootRequest, firmwareOptions, rawDhcp, SAMPLE_UUID } from '../helpers/dhcp-clients.js';

class TestClient {
  readonly socket = dgram.createSocket('udp4');
  private readonly waiting: ((p: DhcpPacket) => void)[] = [];
  private readonly queue: DhcpPacket[] = [];
  async open(): Promise<number> {
    // 0.0.0.0 so replies to any 127/8 ciaddr arrive; only loopback traffic is sent.
    await new Promise<void>((r) => this.socket.bind(0, '0.0.0.0', () => r()));
    this.socket.on('message', (msg) => {
      const p = decodeDhcpPacket(msg);
      const w = this.waiting.shift();
      if (w) w(p);
      else this.queue.push(p);
    });
    return this.socket.address().port;
  }
  send(bytes: Buffer, port: number): void {
    this.socket.send(bytes, port, '127.0.0.1');
  }
  next(timeoutMs = 2000): Promise<DhcpPacket> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply')), timeoutMs);
      this.waiting.push((p) => {
        clearTimeout(t);
        resolve(p);
      });
    });
  }
  close(): void {
    this.socket.close();
  }
}

const MAC = '52:54:00:00:10:01';

describe('DhcpService over loopback, proxy mode', () => {
  const bus = new EventBus();
  const events: BootEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const client = new TestClient();
  let service: DhcpService;

  before(async () => {
    const clientPort = await client.open();
    service = new DhcpService({
      mode: 'proxy',
      serverAddress: '127.0.0.1',
      socketFactory: loopbackFactory,
      ports: { server: 0, pxe: 0, client: clientPort },
      policy: { serverAddress: '127.0.0.1', httpBaseUrl: 'http://127.0.0.1:8080', boot: { bios: 'undionly.kpxe', uefi64: 'ipxe.efi' } },
      publish: bus.publish,
      logger: new MemoryLogger(),
    });
    await service.start();
  });
  after(async () => {
    client.close();
    await service.stop();
  });

  test('answers a DISCOVER on the server port and publishes dhcp.received then proxy.offer', async () => {
    const bytes = rawDhcp({ xid: 0x1001, mac: MAC, ciaddr: '127.0.0.1', options: firmwareOptions('intel-bios', MAC) });
    client.send(bytes, service.ports.server);
    const r = await client.next();
    assert.equal(r.xid, 0x1001);
    assert.equal(r.file, 'undionly.kpxe');
    assert.equal(r.options.vendorClassId, 'PXEClient');
    const seen = events.filter((e) => e.mac === MAC).map((e) => e.type);
    assert.deepEqual(seen.slice(0, 2), ['dhcp.received', 'proxy.offer']);
    const d = events.find((e) => e.type === 'dhcp.received')!;
    assert.equal(d.msgType, 'DISCOVER');
    assert.equal(d.arch, 0);
    assert.equal(d.port, service.ports.server);
    assert.equal(d.uuid, '8a4d1c2e-5b6f-4a70-9c31-0123456789ab');
    assert.equal(d.ciaddr, '127.0.0.1');
    const offer = events.find((e) => e.type === 'proxy.offer')!;
    assert.equal(offer.file, 'undionly.kpxe');
    assert.equal(offer.bootClass, 'bios');
  });

  test('answers a 4011 REQUEST to its source port with pxe.ack', async () => {
    client.send(firmwareBootRequest('edk2-x64', MAC, 0x1002, '127.0.0.1', 0), service.ports.pxe);
    const r = await client.next();
    assert.equal(r.xid, 0x1002);
    assert.equal(r.options.messageType, 5);
    assert.equal(r.file, 'ipxe.efi');
    assert.ok(events.some((e) => e.type === 'pxe.ack' && e.xid === 0x1002 && e.file === 'ipxe.efi'));
  });

  test('a malformed packet is reported as dhcp.error and the loop goes on', async () => {
    client.send(Buffer.from('not dhcp at all'), service.ports.server);
    client.send(rawDhcp({ xid: 0x1003, mac: MAC, ciaddr: '127.0.0.1', options: firmwareOptions('edk2-x64', MAC) }), service.ports.server);
    const r = await client.next();
    assert.equal(r.xid, 0x1003);
    assert.ok(events.some((e) => e.type === 'dhcp.error' && /truncated/.test(String(e.reason))));
  });

  test('a non-PXE client is ignored with a reason', async () => {
    client.send(
      rawDhcp({
        xid: 0x1004,
        mac: '52:54:00:00:10:02',
        ciaddr: '127.0.0.1',
        options: [
          [53, [1]],
          [60, 'MSFT 5.0'],
        ],
      }),
      service.ports.server,
    );
    const ignored = await waitForEvent(events, (e) => e.type === 'dhcp.ignored' && e.xid === 0x1004);
    assert.match(String(ignored.reason), /not a PXE/);
    assert.equal(ignored.mac, '52:54:00:00:10:02');
    assert.equal(ignored.expected, undefined, 'a client we cannot serve is a real non-answer');
  });

  test("the office server's own REQUEST is left to it and marked as expected, not as a missed answer", async () => {
    client.send(
      rawDhcp({ xid: 0x1005, mac: MAC, options: [...firmwareOptions('edk2-x64', MAC, { messageType: 3 }), [54, [192, 0, 2, 2]], [50, [192, 0, 2, 50]]] }),
      service.ports.server,
    );
    const ignored = await waitForEvent(events, (e) => e.type === 'dhcp.ignored' && e.xid === 0x1005);
    assert.match(String(ignored.reason), /REQUEST for DHCP server 192\.0\.2\.2/);
    assert.equal(ignored.expected, true);
    const line = summarizeEvent(ignored);
    assert.equal(line.level, 'info', line.summary);
    assert.match(line.summary, /^Left to the other DHCP server/);
  });
});

describe('DhcpService: one lookup hook, asked once per client message that may boot', () => {
  const bus = new EventBus();
  const events: BootEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const client = new TestClient();
  const asked: string[] = [];
  const NOW = '52:54:00:00:11:01';
  const LATER = '52:54:00:00:11:02';
  let service: DhcpService;

  before(async () => {
    const clientPort = await client.open();
    service = new DhcpService({
      mode: 'proxy',
      serverAddress: '127.0.0.1',
      socketFactory: loopbackFactory,
      ports: { server: 0, pxe: 0, client: clientPort },
      policy: {
        serverAddress: '127.0.0.1',
        httpBaseUrl: 'http://127.0.0.1:8080',
        boot: { bios: 'undionly.kpxe' },
        lookupMachine: (mac, uuid) => {
          asked.push(`${mac} ${uuid}`);
          // An answer at hand (the main thread's store, the thread's copy) or one to wait for (the thread asking the main thread).
          if (mac === LATER) return new Promise((resolve) => setTimeout(() => resolve({ name: 'later', boot: { bios: 'later.kpxe' } }), 20));
          return mac === NOW ? { name: 'now', boot: { bios: 'now.kpxe' } } : undefined;
        },
      },
      publish: bus.publish,
      logger: new MemoryLogger(),
    });
    await service.start();
  });
  after(async () => {
    client.close();
    await service.stop();
  });

  test('an answer at hand is used at once, a promised one when it comes; each with the MAC and the canonical UUID', async () => {
    client.send(rawDhcp({ xid: 0x1101, mac: NOW, ciaddr: '127.0.0.1', options: firmwareOptions('intel-bios', NOW) }), service.ports.server);
    assert.equal((await client.next()).file, 'now.kpxe');
    client.send(rawDhcp({ xid: 0x1102, mac: LATER, ciaddr: '127.0.0.1', options: firmwareOptions('intel-bios', LATER) }), service.ports.server);
    const later = await client.next();
    assert.equal(later.xid, 0x1102);
    assert.equal(later.file, 'later.kpxe');
    assert.deepEqual(asked, [`${NOW} ${SAMPLE_UUID}`, `${LATER} ${SAMPLE_UUID}`]);
    const offer = await waitForEvent(events, (e) => e.type === 'proxy.offer' && e.xid === 0x1102);
    assert.equal(offer.machine, 'later');
  });

  test('a client that cannot get a boot file is not looked up', async () => {
    asked.length = 0;
    client.send(
      rawDhcp({
        xid: 0x1103,
        mac: NOW,
        ciaddr: '127.0.0.1',
        options: [
          [53, [1]],
          [60, 'MSFT 5.0'],
        ],
      }),
      service.ports.server,
    );
    await waitForEvent(events, (e) => e.type === 'dhcp.ignored' && e.xid === 0x1103);
    assert.deepEqual(asked, []);
  });
});

describe('DhcpService over loopback, full DHCP mode', () => {
  const bus = new EventBus();
  const events: BootEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const client = new TestClient();
  const dir = mkdtempSync(join(tmpdir(), 'bb-dhcp-'));
  const leaseFile = join(dir, 'leases.json');
  let clientPort = 0;
  const makeService = (probePort: number) =>
    new DhcpService({
      mode: 'dhcp',
      serverAddress: '127.0.0.1',
      socketFactory: loopbackFactory,
      // The probe binds the client port; loopback tests give it a port of its own.
      ports: { server: 0, pxe: 0, client: probePort },
      policy: { serverAddress: '127.0.0.1', httpBaseUrl: 'http://127.0.0.1:8080', boot: { bios: 'undionly.kpxe', uefi64: 'ipxe.efi' } },
      pool: { first: '127.0.0.10', last: '127.0.0.20', subnetMask: '255.0.0.0', leaseSeconds: 600 },
      leaseFile,
      probeMs: 50,
      publish: bus.publish,
      logger: new MemoryLogger(),
    });

  before(async () => {
    clientPort = await client.open();
  });
  after(() => {
    client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('leases an address, writes the lease file, and keeps it across a restart', async () => {
    let service = makeService(clientPort);
    // The probe needs the client port, which our test client holds: it cannot probe, warns and starts.
    await service.start();
    assert.ok(events.some((e) => e.type === 'host.warning' && /could not probe/.test(String(e.message))));
    // Unicast answers need ciaddr; a RENEWING-style REQUEST (ciaddr set) is the simplest exchange here.
    client.send(rawDhcp({ xid: 0x2001, mac: MAC, ciaddr: '127.0.0.12', options: [[53, [3]]] }), service.ports.server);
    const ack = await client.next();
    assert.equal(ack.options.messageType, 5);
    assert.equal(ack.yiaddr, '127.0.0.12');
    assert.equal(ack.options.leaseTime, 600);
    await service.stop();
    const saved = JSON.parse(readFileSync(leaseFile, 'utf8'));
    assert.equal(saved.leases[0].ip, '127.0.0.12');
    assert.ok(events.some((e) => e.type === 'dhcp.lease' && e.yiaddr === '127.0.0.12' && e.mac === MAC));

    service = makeService(clientPort);
    await service.start();
    assert.equal(service.leaseSnapshot()[0]?.ip, '127.0.0.12');
    // Another client asking for that address is refused. The NAK is a broadcast (RFC 2131
    // §4.3.2), which a loopback socket without SO_BROADCAST may not send: either outcome
    // shows the refusal, and no lease goes to the second client.
    client.send(rawDhcp({ xid: 0x2002, mac: '52:54:00:00:10:09', ciaddr: '127.0.0.12', options: [[53, [3]]] }), service.ports.server);
    const nak = await waitForEvent(events, (e) => (e.type === 'dhcp.nak' || e.type === 'dhcp.error') && e.xid === 0x2002);
    if (nak.type === 'dhcp.nak') assert.match(String(nak.reason), /leased to 52:54:00:00:10:01/);
    else assert.match(String(nak.reason), /send to 255.255.255.255/);
    assert.ok(!events.some((e) => e.type === 'dhcp.lease' && e.xid === 0x2002));
    await service.stop();
  });
});

async function waitForEvent(events: BootEvent[], match: (e: BootEvent) => boolean, timeoutMs = 2000): Promise<BootEvent> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const e = events.find(match);
    if (e) return e;
    if (Date.now() > end) throw new Error('event not seen');
    await new Promise((r) => setTimeout(r, 10));
  }
}
