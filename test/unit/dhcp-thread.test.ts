// The DHCP service on its own thread (main/dhcp/dhcp-thread.ts): a real worker thread with
// real sockets on 0.0.0.0 and any port; the test client only talks to 127.0.0.1 (clients
// carry ciaddr 127.0.0.1, so the proxy answers by unicast). What it checks: answers come from
// the thread's copy of the assignments (and from the main thread only for machines with their
// own), a change in the store reaches the thread, a DISCOVER storm is answered in full while
// its events are budgeted and counted, and a start failure arrives as the service's own error.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { DhcpThread, type DhcpAssignmentSource } from '../../main/dhcp/dhcp-thread.js';
import { AssignmentMirror } from '../../main/dhcp/assignment-mirror.js';
import { decodeDhcpPacket, type DhcpPacket } from '../../main/dhcp/packet.js';
import { EventBus, type BootEvent } from '../../main/core/events.js';
import { MemoryLogger } from '../../main/core/logger.js';
import { PortBindError } from '../../main/net/bind-errors.js';
import type { MachineBootAssignment } from '../../main/pxe/boot-policy.js';
import { firmwareOptions, rawDhcp } from '../helpers/dhcp-clients.js';
import { waitFor } from '../helpers/netns.js';

const ASSIGNED = '52:54:00:00:20:01';
const OTHER = '52:54:00:00:20:02';

class Client {
  readonly socket = dgram.createSocket('udp4');
  readonly replies: DhcpPacket[] = [];
  async open(): Promise<number> {
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', () => r()));
    this.socket.on('message', (msg) => this.replies.push(decodeDhcpPacket(msg)));
    return this.socket.address().port;
  }
  discover(mac: string, xid: number, port: number): void {
    this.socket.send(rawDhcp({ xid, mac, ciaddr: '127.0.0.1', options: firmwareOptions('intel-bios', mac) }), port, '127.0.0.1');
  }
  reply(xid: number): Promise<DhcpPacket> {
    return waitFor(() => this.replies.find((r) => r.xid === xid), 3000, `a reply to xid ${xid}`);
  }
}

/** A store stand-in: one machine with its own assignment, a default for everyone else. */
class FakeAssignments implements DhcpAssignmentSource {
  assignedFile = 'assigned.kpxe';
  generation = 1;
  lookups = 0;
  lookup(mac: string): MachineBootAssignment | undefined {
    this.lookups++;
    return mac === ASSIGNED ? { name: 'bench-1', boot: { bios: this.assignedFile } } : this.view().defaultAssignment;
  }
  view() {
    return { macs: [ASSIGNED], uuids: [], defaultAssignment: { name: 'default', boot: { bios: 'default.kpxe' } } };
  }
  version(): number {
    return this.generation;
  }
  readonly watchers = new Set<() => void>();
  watch(changed: () => void): () => void {
    this.watchers.add(changed);
    return () => this.watchers.delete(changed);
  }
  /** A change made through this process's store: it says so. */
  change(file: string): void {
    this.assignedFile = file;
    this.generation++;
    for (const w of this.watchers) w();
  }
}

describe('DhcpThread: proxy DHCP answered on its own thread', () => {
  const bus = new EventBus();
  const events: BootEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const logger = new MemoryLogger();
  const client = new Client();
  const assignments = new FakeAssignments();
  let thread: DhcpThread;

  before(async () => {
    const clientPort = await client.open();
    thread = new DhcpThread({
      service: {
        mode: 'proxy',
        serverAddress: '127.0.0.1',
        ports: { server: 0, pxe: 0, client: clientPort },
        policy: { serverAddress: '127.0.0.1', httpBaseUrl: 'http://127.0.0.1:8080', boot: { bios: 'undionly.kpxe' } },
      },
      assignments,
      publish: bus.publish,
      publishAt: bus.publishAt,
      logger,
      eventsPerSecond: 20,
    });
    await thread.start();
  });
  after(async () => {
    await thread.stop();
    client.socket.close();
  });

  test('a client without its own assignment gets the default from the thread copy, with no question to this thread', async () => {
    client.discover(OTHER, 0x2001, thread.ports.server);
    assert.equal((await client.reply(0x2001)).file, 'default.kpxe');
    assert.equal(assignments.lookups, 0);
    const offer = await waitFor(() => events.find((e) => e.type === 'proxy.offer' && e.xid === 0x2001), 2000, 'the proxy.offer event');
    assert.equal(offer.machine, 'default');
    assert.ok(Math.abs(offer.time - Date.now()) < 5000, 'the event keeps the time it happened');
  });

  test('a machine with its own assignment is asked for once, then answered from the kept answer', async () => {
    client.discover(ASSIGNED, 0x2002, thread.ports.server);
    assert.equal((await client.reply(0x2002)).file, 'assigned.kpxe');
    client.discover(ASSIGNED, 0x2003, thread.ports.server);
    assert.equal((await client.reply(0x2003)).file, 'assigned.kpxe');
    assert.equal(assignments.lookups, 1);
  });

  /** Sends DISCOVERs (new xid each 25 ms) until the answer's file is `file`; resolves with how long that took. */
  async function answeredWith(file: string, deadlineMs: number, firstXid: number): Promise<number> {
    const start = Date.now();
    for (let xid = firstXid; Date.now() - start < deadlineMs; xid++) {
      client.discover(ASSIGNED, xid, thread.ports.server);
      if ((await client.reply(xid)).file === file) return Date.now() - start;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`still no ${file} after ${deadlineMs} ms`);
  }

  test('a change this process makes reaches the thread at once, well before the 2 s poll', async () => {
    assignments.change('changed.kpxe');
    const ms = await answeredWith('changed.kpxe', 1000, 0x2100);
    assert.ok(ms < 1000, `${ms} ms`);
  });

  test('a change nobody reported is still found by the safety poll (every 2 s)', async () => {
    assignments.assignedFile = 'imported.kpxe';
    assignments.generation++;
    await answeredWith('imported.kpxe', 4000, 0x2200);
  });

  test('a storm is answered in full; per-request events beyond the budget are counted in dhcp.storm, not lost', async () => {
    // Start on a fresh second: the tests before also went over the budget, and their
    // surplus (reported with its own second) must not be taken for the storm's.
    await new Promise((r) => setTimeout(r, 1050 - (Date.now() % 1000)));
    const stormSecond = Math.floor(Date.now() / 1000) * 1000;
    const before = events.length;
    const xids = Array.from({ length: 60 }, (_, i) => 0x3000 + i);
    xids.forEach((xid, i) => client.discover(`52:54:00:00:30:${i.toString(16).padStart(2, '0')}`, xid, thread.ports.server));
    for (const xid of xids) await client.reply(xid);
    // Two per-request events per DISCOVER (dhcp.received, proxy.offer): published or counted.
    await waitFor(
      () => {
        const mine = events.slice(before);
        const published = mine.filter((e) => typeof e.xid === 'number' && e.xid >= 0x3000 && e.xid < 0x3000 + 60).length;
        const counted = mine.filter((e) => e.type === 'dhcp.storm' && e.time >= stormSecond).reduce((n, e) => n + Number(e.eventsNotPublished), 0);
        return published + counted === 120 && counted > 0;
      },
      4000,
      'every event of the storm published or counted',
    );
    const perSecond = new Map<number, number>();
    for (const e of events.slice(before))
      if (e.type !== 'dhcp.storm') perSecond.set(Math.floor(e.time / 1000), (perSecond.get(Math.floor(e.time / 1000)) ?? 0) + 1);
    assert.ok(
      [...perSecond.values()].every((n) => n <= 20),
      `at most 20 a second: ${[...perSecond.values()]}`,
    );
  });
});

test('DhcpThread: a port in use fails the start with the PortBindError the host explains', async () => {
  const holder = dgram.createSocket('udp4');
  await new Promise<void>((r) => holder.bind(0, '0.0.0.0', () => r()));
  const taken = holder.address().port;
  const thread = new DhcpThread({
    service: {
      mode: 'proxy',
      serverAddress: '127.0.0.1',
      ports: { server: taken, pxe: 0 },
      policy: { serverAddress: '127.0.0.1', httpBaseUrl: 'http://127.0.0.1:8080', boot: {} },
    },
    publish: () => {},
    publishAt: () => {},
    logger: new MemoryLogger(),
  });
  try {
    await assert.rejects(
      thread.start(),
      (err: unknown) => err instanceof PortBindError && err.port === taken && err.reason === 'in-use' && /in use/i.test(err.message),
    );
  } finally {
    holder.close();
  }
});

test('AssignmentMirror: unassigned clients get the default now; assigned ones wait for one answer, kept until a new view', async () => {
  const asked: string[] = [];
  let answer = 'first';
  let keep = true;
  const mirror = new AssignmentMirror(
    { macs: [ASSIGNED], uuids: ['8a4d1c2e-5b6f-4a70-9c31-0123456789ab'], defaultAssignment: { name: 'default' } },
    async (mac, uuid) => {
      asked.push(`${mac} ${uuid ?? ''}`);
      return { assignment: { name: answer }, keep };
    },
  );
  assert.equal(mirror.prepare(OTHER, undefined), undefined);
  assert.deepEqual(mirror.lookup(OTHER), { name: 'default' });
  // A UUID belonging to an assigned machine makes the client a candidate whatever its MAC.
  const byUuid = mirror.prepare(OTHER, '8A4D1C2E-5B6F-4A70-9C31-0123456789AB');
  assert.ok(byUuid);
  await byUuid;
  assert.deepEqual(mirror.lookup(OTHER, '8A4D1C2E-5B6F-4A70-9C31-0123456789AB'), { name: 'first' });
  const waiting = mirror.prepare(ASSIGNED, undefined);
  assert.ok(waiting);
  assert.equal(mirror.prepare(ASSIGNED, undefined), waiting, 'one question per client at a time');
  await waiting;
  assert.equal(mirror.prepare(ASSIGNED, undefined), undefined);
  assert.deepEqual(mirror.lookup(ASSIGNED), { name: 'first' });
  answer = 'second';
  mirror.reset({ macs: [ASSIGNED], uuids: [], defaultAssignment: { name: 'default' } });
  await mirror.prepare(ASSIGNED, undefined);
  assert.deepEqual(mirror.lookup(ASSIGNED), { name: 'second' });
  assert.equal(asked.length, 3);
  // An answer not to keep (the main thread could not read the store) is not pinned: the next request asks again.
  keep = false;
  mirror.reset({ macs: [ASSIGNED], uuids: [], defaultAssignment: { name: 'default' } });
  await mirror.prepare(ASSIGNED, undefined);
  assert.deepEqual(mirror.lookup(ASSIGNED), { name: 'default' });
  assert.ok(mirror.prepare(ASSIGNED, undefined), 'asked again');
  assert.equal(asked.length, 5);
});
