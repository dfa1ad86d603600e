// The IGMP querier that keeps snooping switches forwarding an image stream: the query's
// bytes (RFC 2236 section 2, RFC 1071 checksum), decoding what a raw socket hands over,
// the election (RFC 2236 section 3, and staying quiet beside a querier heard before the
// stream), the schedule (a startup burst, then the query interval, only while a stream holds
// it), what the status says, and the multicast setting (--multicast, proxy mode's reason).
// The real raw socket on a snooping bridge is test/integration/imaging-igmp-querier.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../main/core/clock.js';
import { silentLogger } from '../../main/core/logger.js';
import { QuerierElection, decodeIgmpDatagram, encodeGeneralQuery, type QuerierTimings } from '../../main/net/igmp.js';
import { IgmpQuerier, listenForQueriers, type IgmpSocket } from '../../main/net/igmp-querier.js';
import { internetChecksum } from '../../main/net/icmp-probe.js';
import { parseFlags, serveConfigFromFlags, SERVE_OPTIONS } from '../../main/cli/serve-flags.js';
import { defaultServeConfig, imagingMulticastChoice } from '../../main/host/config.js';

const TIMINGS: QuerierTimings = { queryIntervalMs: 15_000, maxResponseMs: 10_000, startupCount: 2, startupIntervalMs: 2_000, otherQuerierPresentMs: 255_000 };
const OWN = '192.0.2.10';

/** An IPv4 datagram as a raw socket returns it: header (with `options`), then `igmp`. */
function ipDatagram(from: string, igmp: Buffer, options = Buffer.alloc(0), protocol = 2): Buffer {
  const header = Buffer.alloc(20 + options.length);
  header[0] = 0x40 | (header.length / 4);
  header.writeUInt16BE(header.length + igmp.length, 2);
  header[8] = 1;
  header[9] = protocol;
  Buffer.from(from.split('.').map(Number)).copy(header, 12);
  Buffer.from([224, 0, 0, 1]).copy(header, 16);
  options.copy(header, 20);
  header.writeUInt16BE(internetChecksum(header), 10);
  return Buffer.concat([header, igmp]);
}

describe('IGMP general query bytes', () => {
  test('type 0x11, max resp in tenths of a second, group 0.0.0.0, RFC 1071 checksum', () => {
    assert.deepEqual([...encodeGeneralQuery(10_000)], [0x11, 100, 0xee, 0x9b, 0, 0, 0, 0]);
    assert.deepEqual([...encodeGeneralQuery(500)], [0x11, 5, 0xee, 0xfa, 0, 0, 0, 0]);
    for (const ms of [100, 1000, 25_500]) assert.equal(internetChecksum(encodeGeneralQuery(ms)), 0, `a valid checksum sums to zero (${ms} ms)`);
    assert.equal(encodeGeneralQuery(60_000)[1], 255, 'max resp time is one byte');
  });

  test('decoding a raw socket datagram: IP options skipped, version by length, bad checksum and other protocols refused', () => {
    const routerAlert = Buffer.from([0x94, 0x04, 0, 0]);
    assert.deepEqual(decodeIgmpDatagram(ipDatagram('192.0.2.254', encodeGeneralQuery(10_000), routerAlert)), {
      type: 0x11,
      from: '192.0.2.254',
      group: '0.0.0.0',
      version: 2,
    });
    const v3 = Buffer.concat([encodeGeneralQuery(10_000), Buffer.from([0x02, 125, 0, 0])]);
    v3.writeUInt16BE(0, 2);
    v3.writeUInt16BE(internetChecksum(v3), 2);
    assert.equal(decodeIgmpDatagram(ipDatagram('0.0.0.0', v3))?.version, 3);
    const v1 = Buffer.from([0x11, 0, 0, 0, 0, 0, 0, 0]);
    v1.writeUInt16BE(internetChecksum(v1), 2);
    assert.equal(decodeIgmpDatagram(ipDatagram('192.0.2.1', v1))?.version, 1);
    const report = Buffer.from([0x16, 0, 0, 0, 239, 255, 66, 1]);
    report.writeUInt16BE(internetChecksum(report), 2);
    assert.deepEqual(decodeIgmpDatagram(ipDatagram('192.0.2.20', report)), { type: 0x16, from: '192.0.2.20', group: '239.255.66.1' });
    const damaged = encodeGeneralQuery(10_000);
    damaged[1] ^= 1;
    assert.equal(decodeIgmpDatagram(ipDatagram('192.0.2.254', damaged)), undefined);
    assert.equal(decodeIgmpDatagram(ipDatagram('192.0.2.254', encodeGeneralQuery(10_000), undefined, 17)), undefined);
    assert.equal(decodeIgmpDatagram(Buffer.alloc(10)), undefined);
  });
});

describe('querier election and schedule', () => {
  test('streaming alone: two startup queries 2 s apart, then one every query interval; nothing once stopped', () => {
    const e = new QuerierElection(OWN, TIMINGS);
    assert.equal(e.due(0), false, 'idle: no queries without a stream');
    e.start(1000);
    const sentAt: number[] = [];
    for (let t = 1000; t <= 40_000; t += 250) {
      if (e.due(t)) {
        sentAt.push(t);
        e.queried(t);
      }
    }
    assert.deepEqual(sentAt, [1000, 3000, 18_000, 33_000]);
    assert.deepEqual(e.role(40_000), { role: 'querying' });
    e.stop();
    assert.equal(e.due(60_000), false);
    assert.equal(e.wakeAt(60_000), undefined);
  });

  test('a query from a lower address makes Bootbench a non-querier until that querier has been silent for the other-querier-present interval', () => {
    const e = new QuerierElection(OWN, TIMINGS);
    e.start(0);
    e.queried(0);
    e.heard('192.0.2.1', 1000);
    assert.deepEqual(e.role(1500), { role: 'quiet', other: '192.0.2.1' });
    assert.equal(e.due(5000), false);
    assert.equal(e.due(200_000), false);
    assert.equal(e.wakeAt(2000), 256_000);
    assert.equal(e.due(256_000), true, 'the other querier went silent: Bootbench queries again');
    assert.deepEqual(e.role(256_000), { role: 'querying' });
  });

  test('0.0.0.0 (a switch querier without an address) counts as lowest; a higher address yields to us (RFC 2236 section 3) and is ignored while querying', () => {
    const e = new QuerierElection(OWN, TIMINGS);
    e.start(0);
    e.queried(0);
    e.heard('192.0.2.200', 500);
    assert.deepEqual(e.role(600), { role: 'querying' });
    assert.equal(e.due(2000), true);
    e.heard('0.0.0.0', 2100);
    assert.equal(e.role(2200).role, 'quiet');
    assert.equal(e.due(20_000), false);
  });

  test('our own queries are ignored; a querier heard before the stream (any address) keeps Bootbench quiet from the start', () => {
    const e = new QuerierElection(OWN, TIMINGS);
    e.heard(OWN, 0);
    assert.deepEqual(e.role(1), { role: 'idle' });
    e.heard('192.0.2.200', 10_000);
    assert.deepEqual(e.role(20_000), { role: 'idle', other: '192.0.2.200' });
    e.start(20_000);
    assert.equal(e.due(20_000), false, 'someone else keeps the switches fresh: no queries of ours');
    assert.deepEqual(e.role(20_000), { role: 'quiet', other: '192.0.2.200' });
    assert.equal(e.due(265_000), true, 'it went silent: Bootbench takes over');
  });
});

class FakeSocket implements IgmpSocket {
  sent: number[] = [];
  queued: string[] = [];
  closed = false;
  constructor(private readonly clock: ManualClock) {}
  sendQuery(query: Buffer): string | undefined {
    assert.equal(internetChecksum(query), 0);
    this.sent.push(this.clock.now());
    return undefined;
  }
  drain(heard: (from: string) => void): string | undefined {
    for (const from of this.queued.splice(0)) heard(from);
    return undefined;
  }
  close(): void {
    this.closed = true;
  }
}

describe('IgmpQuerier', () => {
  const make = (mode: 'auto' | 'off' = 'auto') => {
    const clock = new ManualClock(0);
    const socket = new FakeSocket(clock);
    const lines: string[] = [];
    const logger = { ...silentLogger, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    const querier = new IgmpQuerier({ interfaceName: 'bench0', address: OWN, logger, clock, timings: TIMINGS, mode, openSocket: () => socket });
    return { clock, socket, querier, lines };
  };

  test('queries only while a stream holds it; two streams share one schedule; the last release stops them', () => {
    const { clock, socket, querier, lines } = make();
    clock.advance(60_000);
    assert.deepEqual(socket.sent, [], 'listening only while nothing streams');
    assert.match(querier.status(), /no IGMP querier heard on bench0: Bootbench will send queries while it streams/);
    const first = querier.hold();
    clock.advance(0);
    const second = querier.hold();
    clock.advance(20_000);
    assert.deepEqual(socket.sent, [60_000, 62_000, 77_000]);
    assert.match(querier.status(), /Bootbench sends IGMP queries every 15 s while it streams/);
    first();
    first();
    clock.advance(15_000);
    assert.equal(socket.sent.length, 4, 'one stream still runs');
    second();
    clock.advance(60_000);
    assert.equal(socket.sent.length, 4, 'no stream: no queries');
    assert.ok(lines.some((l) => /stops sending queries on bench0/.test(l)));
    querier.close();
    assert.equal(socket.closed, true);
  });

  test('a lower-addressed querier heard while streaming silences it, and the status names it', () => {
    const { clock, socket, querier } = make();
    querier.hold();
    clock.advance(1);
    socket.queued.push('192.0.2.1');
    clock.advance(30_000);
    assert.deepEqual(socket.sent, [0]);
    assert.match(querier.status(), /IGMP querier 192\.0\.2\.1 heard on bench0: .*Bootbench sends no queries/);
    querier.close();
  });

  test("mode off listens only: no queries, and the status says Bootbench's queries are off", () => {
    const { clock, socket, querier } = make('off');
    querier.hold();
    clock.advance(60_000);
    assert.deepEqual(socket.sent, []);
    assert.match(querier.status(), /queries are turned off/);
    querier.close();
  });

  test('without a raw socket (another platform, no CAP_NET_RAW) the stream goes on and the status says what that risks', () => {
    const clock = new ManualClock(0);
    const querier = new IgmpQuerier({
      interfaceName: 'en0',
      address: OWN,
      logger: silentLogger,
      clock,
      openSocket: () => {
        throw new Error('IGMP queries are implemented on Linux only (this is darwin)');
      },
    });
    const release = querier.hold();
    clock.advance(60_000);
    release();
    assert.match(
      querier.status(),
      /cannot send IGMP queries on en0 \(IGMP queries are implemented on Linux only \(this is darwin\)\): a switch with IGMP snooping/,
    );
    querier.close();
  });

  test('listenForQueriers reports other queriers, not our own address, and the reason it could not listen', async () => {
    const socket = new FakeSocket(new ManualClock(0));
    socket.queued.push(OWN, '192.0.2.254', '192.0.2.254');
    assert.deepEqual(await listenForQueriers('bench0', OWN, 30, () => socket), { heard: ['192.0.2.254'] });
    assert.equal(socket.closed, true);
    const failed = await listenForQueriers('bench0', OWN, 30, () => {
      throw new Error('a raw IGMP socket needs root or CAP_NET_RAW (EPERM)');
    });
    assert.deepEqual(failed, { heard: [], error: 'a raw IGMP socket needs root or CAP_NET_RAW (EPERM)' });
  });
});

describe('the multicast setting', () => {
  const flags = (...args: string[]) => serveConfigFromFlags(parseFlags(args, SERVE_OPTIONS).values, defaultServeConfig('/tmp/bb'));
  test('--multicast auto|on|off is kept; anything else is refused with the choices', () => {
    assert.equal(flags().imagingMulticast, undefined);
    for (const v of ['auto', 'on', 'off'] as const) assert.equal(flags('--multicast', v).imagingMulticast, v);
    assert.throws(() => flags('--multicast', 'yes'), /--multicast "yes" is not allowed: use auto \(stream in full DHCP mode only\), on or off/);
  });

  test('auto streams in full DHCP mode only; proxy mode goes unicast with the reason unless turned on; off never streams', () => {
    assert.deepEqual(imagingMulticastChoice({ mode: 'dhcp' }), { stream: true });
    const proxy = imagingMulticastChoice({ mode: 'proxy' });
    assert.equal(proxy.stream, false);
    assert.match(!proxy.stream ? proxy.reason : '', /office network reaches every switch port that asks for it; turn it on only if the network team agrees/);
    assert.deepEqual(imagingMulticastChoice({ mode: 'proxy', imagingMulticast: 'on' }), { stream: true });
    assert.equal(imagingMulticastChoice({ mode: 'dhcp', imagingMulticast: 'off' }).stream, false);
  });
});
