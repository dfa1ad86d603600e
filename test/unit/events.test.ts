// The event bus's one answer to "what kind of event is this": every subscriber (history, live
// view, log, diagnosis) asks these instead of parsing event names itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EventBus,
  isDhcpEvent,
  isPerRequestDhcpEvent,
  isTransferEvent,
  transferIdKey,
  transferOutcomeOf,
  transferProtocolOf,
  type BootEvent,
  type BootEventType,
} from '../../main/core/events.js';

const event = (type: BootEventType, fields: Record<string, unknown> = {}): BootEvent => ({ type, time: 1, ...fields }) as BootEvent;

test('one outcome per last transfer event, the same for TFTP and HTTP; start and progress have none', () => {
  assert.equal(transferOutcomeOf('tftp.done'), 'done');
  assert.equal(transferOutcomeOf('http.done'), 'done');
  assert.equal(transferOutcomeOf('http.failed'), 'failed');
  assert.equal(transferOutcomeOf('tftp.probe'), 'probe');
  assert.equal(transferOutcomeOf('tftp.aborted'), 'aborted');
  assert.equal(transferOutcomeOf('http.refused'), 'refused');
  assert.equal(transferOutcomeOf('tftp.start'), undefined);
  assert.equal(transferOutcomeOf('http.progress'), undefined);
  assert.equal(transferOutcomeOf('dhcp.lease'), undefined);
});

test('transfer events and their key: protocol plus the serving run id; none without an id', () => {
  const done = event('http.done', { transferId: 'r1.http-3', file: '/vmlinuz' });
  assert.ok(isTransferEvent(done));
  assert.equal(transferProtocolOf(done.type), 'http');
  assert.equal(transferIdKey(done), 'http:r1.http-3');
  const refused = event('tftp.refused', { file: 'nope' });
  assert.ok(isTransferEvent(refused));
  assert.equal(transferIdKey(refused), undefined);
  assert.equal(isTransferEvent(event('dhcp.received')), false);
});

test('DHCP events: every client message and answer, not the storm count; only per-request ones are budgeted', () => {
  for (const type of ['dhcp.received', 'proxy.offer', 'pxe.ack', 'dhcp.lease', 'dhcp.conflict', 'dhcp.other-ack'] as const)
    assert.ok(isDhcpEvent(event(type)), type);
  assert.equal(isDhcpEvent(event('dhcp.storm')), false);
  assert.equal(isDhcpEvent(event('tftp.done')), false);
  const budgeted = ['dhcp.received', 'proxy.offer', 'pxe.ack', 'dhcp.offer', 'dhcp.ignored'];
  for (const type of [
    'dhcp.received',
    'proxy.offer',
    'pxe.ack',
    'dhcp.offer',
    'dhcp.ignored',
    'dhcp.lease',
    'dhcp.nak',
    'dhcp.release',
    'dhcp.conflict',
    'dhcp.error',
    'tftp.done',
  ] as const) {
    assert.equal(isPerRequestDhcpEvent(type), budgeted.includes(type), type);
  }
});

test('the bus stamps the time, or keeps the time another thread saw', () => {
  const bus = new EventBus(() => 5000);
  const seen: BootEvent[] = [];
  bus.subscribe((e) => seen.push(e));
  bus.publish('dhcp.received', { mac: '52:54:00:00:00:01', msgType: 'DISCOVER' });
  bus.publishAt('dhcp.storm', 3000, { eventsNotPublished: 7, budgetPerSecond: 1000 });
  assert.deepEqual(seen, [
    { mac: '52:54:00:00:00:01', msgType: 'DISCOVER', type: 'dhcp.received', time: 5000 },
    { eventsNotPublished: 7, budgetPerSecond: 1000, type: 'dhcp.storm', time: 3000 },
  ]);
});
