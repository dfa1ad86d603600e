import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../main/core/clock.js';
import { diffInterface, watchInterface, type InterfaceChange } from '../../main/net/interface-watch.js';
import type { NetInterface } from '../../main/net/interfaces.js';

const eth0 = (over: Partial<NetInterface> = {}): NetInterface => ({
  name: 'eth0',
  mac: '52:54:00:00:00:01',
  ipv4: [{ address: '192.0.2.1', netmask: '255.255.255.0', prefixLength: 24 }],
  ipv6: [],
  up: true,
  kind: 'wired',
  mtu: 1500,
  index: 2,
  ...over,
});

test('diffInterface', () => {
  assert.deepEqual(diffInterface(eth0(), eth0()), []);
  assert.deepEqual(diffInterface(eth0(), eth0({ up: false })), ['link-down']);
  assert.deepEqual(diffInterface(eth0({ up: false }), eth0()), ['link-up']);
  assert.deepEqual(diffInterface(eth0(), eth0({ ipv4: [] })), ['addresses']);
  assert.deepEqual(diffInterface(eth0(), eth0({ index: 7 })), ['replaced']);
  assert.deepEqual(diffInterface(undefined, eth0()), ['appeared']);
  assert.deepEqual(diffInterface(eth0(), undefined), ['gone']);
  assert.deepEqual(diffInterface(eth0(), eth0({ mtu: 9000, ipv6: ['fe80::1'] })), [], 'MTU and IPv6 do not matter to PXE here');
});

test('watchInterface reports each change once, on the clock, and stops', () => {
  const clock = new ManualClock();
  let state: NetInterface | undefined = eth0();
  const changes: InterfaceChange[] = [];
  const watch = watchInterface('eth0', (c) => changes.push(c), { clock, intervalMs: 1000, list: () => (state ? [state] : []) });

  state = eth0({ up: false });
  clock.advance(999);
  assert.equal(changes.length, 0);
  clock.advance(1);
  assert.deepEqual(
    changes.map((c) => [c.kinds, c.reopenSockets]),
    [[['link-down'], false]],
  );
  clock.advance(5000);
  assert.equal(changes.length, 1, 'no repeat while nothing changes');

  state = undefined; // USB NIC unplugged
  clock.advance(1000);
  state = eth0({ index: 9 }); // plugged back: new index
  clock.advance(1000);
  assert.deepEqual(
    changes.slice(1).map((c) => [c.kinds, c.reopenSockets]),
    [
      [['gone'], false],
      [['appeared'], true],
    ],
  );
  assert.equal(watch.current()?.index, 9);

  watch.stop();
  state = eth0({ up: false });
  clock.advance(10_000);
  assert.equal(changes.length, 3);
  assert.equal(clock.pendingTimers(), 0);
});
