// The address check's probers without a network: the shared wait (a fake socket and a
// manual clock), the ICMP codec and the Windows reply buffer. The ARP codec is in dhcp-address-check.test.ts; both
// probers run for real in test/integration/dhcp-netns.test.ts.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PolledAddressProber, type AddressProbeResult, type ProbeSocket } from '../../main/net/address-probe.js';
import { encodeEchoRequest, internetChecksum, isEchoReply } from '../../main/net/icmp-probe.js';
import { ManualClock } from '../../main/core/clock.js';
import { echoReplyShowsInUse, toIpAddr } from '../../main/net/windows-icmp-probe.js';

class FakeSocket implements ProbeSocket {
  readonly method = 'arp' as const;
  readonly sent: string[] = [];
  queued: [string, string | undefined][] = [];
  readError?: string;
  sendError?: string;
  closed = false;
  send(ip: string) {
    this.sent.push(ip);
    return this.sendError;
  }
  drain(claim: (ip: string, by?: string) => void) {
    if (this.readError) return this.readError;
    for (const [ip, by] of this.queued.splice(0)) claim(ip, by);
    return undefined;
  }
  close() {
    this.closed = true;
  }
}

function settled(p: Promise<AddressProbeResult>): { value?: AddressProbeResult } {
  const box: { value?: AddressProbeResult } = {};
  void p.then((v) => (box.value = v));
  return box;
}
const flush = () => new Promise((r) => setImmediate(r));

describe('PolledAddressProber', () => {
  test('an answer ends the probe at once; silence ends it at the deadline, after one resend halfway', async () => {
    const clock = new ManualClock(0);
    const socket = new FakeSocket();
    const prober = new PolledAddressProber(socket, { timeoutMs: 300, clock });
    const busy = settled(prober.probe('192.0.2.100'));
    const free = settled(prober.probe('192.0.2.101'));
    socket.queued.push(['192.0.2.100', '02:00:00:00:00:aa'], ['192.0.2.77', '02:00:00:00:00:bb']);
    clock.advance(10);
    await flush();
    assert.deepEqual(busy.value, { inUse: true, by: '02:00:00:00:00:aa', method: 'arp', ms: 10 });
    assert.equal(free.value, undefined);
    clock.advance(150);
    assert.deepEqual(socket.sent, ['192.0.2.100', '192.0.2.101', '192.0.2.101']);
    clock.advance(150);
    await flush();
    assert.deepEqual(free.value, { inUse: false, method: 'arp', ms: 300 });
    assert.equal(clock.pendingTimers(), 0, 'no timer runs while nothing waits');
  });

  test('a socket that cannot be read ends every probe and reports once; close ends the rest', async () => {
    const clock = new ManualClock(0);
    const socket = new FakeSocket();
    const prober = new PolledAddressProber(socket, { timeoutMs: 300, clock });
    const errors: string[] = [];
    prober.onError = (e) => errors.push(e);
    const a = settled(prober.probe('192.0.2.100'));
    socket.readError = 'ENETDOWN';
    clock.advance(10);
    await flush();
    assert.equal(a.value?.inUse, false);
    assert.deepEqual(errors, ['reading ARP answers failed: ENETDOWN']);
    socket.readError = undefined;
    const b = settled(prober.probe('192.0.2.102'));
    prober.close();
    await flush();
    assert.equal(b.value?.inUse, false);
    assert.ok(socket.closed);
    await assert.rejects(prober.probe('192.0.2.103'), /closed/);
  });

  test('a probe that cannot be sent is refused with the reason', async () => {
    const socket = new FakeSocket();
    socket.sendError = 'ENOBUFS';
    await assert.rejects(
      new PolledAddressProber(socket, { clock: new ManualClock(0) }).probe('192.0.2.100'),
      /ARP probe for 192\.0\.2\.100 could not be sent: ENOBUFS/,
    );
  });
});

describe('ICMP echo codec', () => {
  test('an echo request carries type 8, our identifier and sequence, and a valid RFC 1071 checksum', () => {
    const p = encodeEchoRequest(0x1234, 7, Buffer.from('ab'));
    assert.equal(p.toString('hex').slice(0, 4), '0800');
    assert.equal(p.readUInt16BE(4), 0x1234);
    assert.equal(p.readUInt16BE(6), 7);
    assert.equal(internetChecksum(p), 0, 'a message with its checksum in sums to zero');
    // RFC 1071 §3's example words: 0001 f203 f4f5 f6f7 sum to ddf2, complement 220d.
    assert.equal(internetChecksum(Buffer.from('0001f203f4f5f6f7', 'hex')), 0x220d);
    assert.equal(internetChecksum(Buffer.from('0001f203f4f5f6', 'hex')), internetChecksum(Buffer.from('0001f203f4f5f600', 'hex')));
  });

  test('echo replies are told apart with and without an IPv4 header in front (Linux vs macOS)', () => {
    const reply = Buffer.from('0000ffff12340001', 'hex');
    assert.equal(isEchoReply(reply), true);
    const ipHeader = Buffer.alloc(20);
    ipHeader[0] = 0x45;
    assert.equal(isEchoReply(Buffer.concat([ipHeader, reply])), true);
    assert.equal(isEchoReply(Buffer.concat([ipHeader, Buffer.from('0303000000000000', 'hex')])), false, 'destination unreachable');
    assert.equal(isEchoReply(encodeEchoRequest(1, 1)), false);
    assert.equal(isEchoReply(Buffer.from('0000', 'hex')), false);
  });
});

describe('Windows ICMP reply (IcmpSendEcho2Ex buffer)', () => {
  test('IPAddr is the octets in network order read as a little-endian ULONG', () => {
    assert.equal(toIpAddr('192.0.2.100'), 0x640200c0);
    assert.throws(() => toIpAddr('192.0.2'), /not an IPv4 address/);
  });

  test('a reply from the probed address with IP_SUCCESS means in use; a timeout, an error status or another sender does not', () => {
    const reply = (address: string, status: number) => {
      const b = Buffer.alloc(40);
      b.writeUInt32LE(toIpAddr(address), 0);
      b.writeUInt32LE(status, 4);
      return b;
    };
    assert.equal(echoReplyShowsInUse(1, reply('192.0.2.100', 0), '192.0.2.100'), true);
    assert.equal(echoReplyShowsInUse(0, reply('192.0.2.100', 0), '192.0.2.100'), false);
    // IP_DEST_HOST_UNREACHABLE (11003), reported by our own stack.
    assert.equal(echoReplyShowsInUse(1, reply('192.0.2.1', 11003), '192.0.2.100'), false);
    assert.equal(echoReplyShowsInUse(1, reply('192.0.2.7', 0), '192.0.2.100'), false);
  });
});
