// The contract's host side: validation at the edge, envelopes, unavailable features, and the
// coalescing of pushed events.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { EventBus, type BootEvent } from '../../main/core/events.js';
import { ManualClock } from '../../main/core/clock.js';
import {
  HostApi,
  connectApiEvents,
  suggestBenchInterface,
  uiWording,
  unavailableLibraryImporter,
  type ApiServiceHost,
  type ApiStore,
} from '../../main/api/api.js';
import type { ApiEvents, Machine, NetInterfaceInfo, ServicesStatus, TransferRow } from '../../preload/api.js';

function fakeHost(clock = new ManualClock(1000)) {
  const bus = new EventBus(() => clock.now());
  const calls: unknown[] = [];
  let transfers: TransferRow[] = [];
  const status: ServicesStatus = { running: false, mode: 'proxy', services: [], problems: [] };
  const host: ApiServiceHost & { setTransfers(t: TransferRow[]): void } = {
    bus,
    async start(overrides) {
      calls.push(['start', overrides]);
      if (overrides?.interfaceName === 'eth9') throw new Error('There is no network interface called "eth9".');
      return { ...status, running: true, interfaceName: overrides?.interfaceName };
    },
    async stop() {
      calls.push(['stop']);
      return status;
    },
    status: () => status,
    config: () => ({ mode: 'proxy', root: '/srv/boot', httpPort: 8080, boot: { bios: 'undionly.kpxe' }, dataDir: '/srv/bootbench' }),
    activeTransfers: () => transfers,
    setTransfers(t) {
      transfers = t;
    },
  };
  return { host, bus, calls, clock };
}

const machine = (over: Partial<Machine> = {}): Machine => ({
  id: 1,
  macs: ['52:54:00:00:00:01'],
  name: 'pc1',
  group: 'lab',
  bootOnce: false,
  discovered: false,
  ...over,
});

function fakeStore(events: BootEvent[] = []): ApiStore & { updates: unknown[] } {
  const machines = [machine()];
  const updates: unknown[] = [];
  return {
    updates,
    machines: {
      list: () => machines,
      get: (id) => machines.find((m) => m.id === id),
      findByMac: (mac) => machines.find((m) => m.macs.includes(mac)),
      update: (u) => {
        updates.push(u);
        return { ...machines[0]!, ...u, entryId: u.entryId ?? undefined };
      },
      groups: () => [{ name: 'lab', count: 1 }],
      assignGroup: (group, entryId) => ({ name: group, entryId: entryId ?? undefined, count: 1 }),
      importCsv: () => ({ added: 1, updated: 0, problems: [] }),
      exportCsv: () => 'mac,name\n52:54:00:00:00:01,pc1\n',
    },
    entries: { list: () => [] },
    timeline: { forMachine: () => events, forMac: () => events },
    transfers: { recent: () => [] },
  };
}

const nic = (over: Partial<NetInterfaceInfo>): NetInterfaceInfo => ({ name: 'x', mac: '', ipv4: [], up: true, kind: 'wired', mtu: 1500, ...over });

describe('HostApi.handle', () => {
  test('answers a valid call with a result envelope', async () => {
    const { host } = fakeHost();
    const api = new HostApi({ host, store: fakeStore(), listInterfaces: () => [], shell: 'web' });
    const reply = await api.handle('machines:list', undefined);
    assert.ok('result' in reply);
    assert.equal((reply.result as Machine[])[0]!.name, 'pc1');
  });

  test('refuses unknown calls and names them', async () => {
    const api = new HostApi({ host: fakeHost().host, listInterfaces: () => [], shell: 'web' });
    assert.deepEqual(await api.handle('machines:drop-table', {}), { error: { code: 'unknown-call', message: 'Unknown call "machines:drop-table".' } });
    assert.equal(((await api.handle('__proto__', {})) as { error: { code: string } }).error.code, 'unknown-call');
  });

  test('validates requests at the edge and says which field is wrong', async () => {
    const { host, calls } = fakeHost();
    const api = new HostApi({ host, store: fakeStore(), listInterfaces: () => [], shell: 'web' });
    const bad = await api.handle('services:start', { mode: 'dhcp', pool: { first: '192.0.2.300', last: '192.0.2.20' } });
    assert.ok('error' in bad);
    assert.equal(bad.error.code, 'invalid-request');
    assert.match(bad.error.message, /pool\.first must be an IPv4 address/);
    const extra = await api.handle('machines:update', { id: 1, name: 'x', admin: true });
    assert.ok('error' in extra && /admin|unrecognized/i.test(extra.error.message), JSON.stringify(extra));
    const wrongType = await api.handle('machines:update', { id: '1' });
    assert.ok('error' in wrongType && wrongType.error.code === 'invalid-request');
    assert.equal(calls.length, 0, 'nothing reaches the host when validation fails');
  });

  test('full DHCP without a pool is refused with the fix', async () => {
    const { host, calls } = fakeHost();
    const api = new HostApi({ host, listInterfaces: () => [], shell: 'web' });
    const reply = await api.handle('services:start', { mode: 'dhcp', interfaceName: 'eth0' });
    assert.ok('error' in reply);
    assert.match(reply.error.message, /needs a pool/);
    assert.equal(calls.length, 0);
  });

  test('host errors travel as plain-language failures', async () => {
    const api = new HostApi({ host: fakeHost().host, listInterfaces: () => [], shell: 'web' });
    const reply = await api.handle('services:start', { interfaceName: 'eth9' });
    assert.deepEqual(reply, { error: { code: 'failed', message: 'There is no network interface called "eth9".' } });
    const ok = await api.handle('services:start', { interfaceName: 'eth0', mode: 'proxy' });
    assert.ok('result' in ok && (ok.result as ServicesStatus).running);
  });

  test('library import without a library is refused as unavailable, never faked', async () => {
    const api = new HostApi({ host: fakeHost().host, store: fakeStore(), listInterfaces: () => [], shell: 'web' });
    const reply = await api.handle('entries:import', { paths: ['/tmp/ipxe.efi'] });
    assert.ok('error' in reply);
    assert.equal(reply.error.code, 'unavailable');
    const imported: string[][] = [];
    const withLibrary = new HostApi({
      host: fakeHost().host,
      store: fakeStore(),
      library: {
        ...unavailableLibraryImporter('not in this test'),
        importFiles: async (paths) => (imported.push(paths), { entries: [], problems: ['Not added: x'] }),
      },
      listInterfaces: () => [],
      shell: 'web',
    });
    assert.deepEqual(await withLibrary.handle('entries:import', { paths: ['/tmp/ipxe.efi'] }), { result: { entries: [], problems: ['Not added: x'] } });
    assert.deepEqual(imported, [['/tmp/ipxe.efi']]);
  });

  test('without a store, machine calls say the database is not open', async () => {
    const api = new HostApi({ host: fakeHost().host, listInterfaces: () => [], shell: 'web' });
    const reply = await api.handle('machines:list', undefined);
    assert.ok('error' in reply && reply.error.code === 'unavailable');
  });

  test('updating a machine that does not exist is not-found', async () => {
    const store = fakeStore();
    const api = new HostApi({ host: fakeHost().host, store, listInterfaces: () => [], shell: 'web' });
    const reply = await api.handle('machines:update', { id: 42, entryId: 3 });
    assert.ok('error' in reply && reply.error.code === 'not-found');
    const ok = await api.handle('machines:update', { id: 1, entryId: 3, bootOnce: true });
    assert.ok('result' in ok);
    assert.deepEqual(store.updates, [{ id: 1, entryId: 3, bootOnce: true }]);
  });

  test('timeline carries summaries and a diagnosis', async () => {
    const mac = '52:54:00:00:00:01';
    const events: BootEvent[] = [
      { type: 'dhcp.received', time: 1, mac, msgType: 'DISCOVER', arch: 7 },
      { type: 'proxy.offer', time: 2, mac, file: 'ipxe.efi' },
    ];
    const api = new HostApi({ host: fakeHost().host, store: fakeStore(events), listInterfaces: () => [], shell: 'web' });
    const reply = await api.handle('timeline:get', { machineId: 1 });
    assert.ok('result' in reply, JSON.stringify(reply));
    const timeline = reply.result as import('../../preload/api.js').Timeline;
    assert.equal(timeline.events.length, 2);
    assert.match(timeline.events[1]!.summary, /Proxy offer sent: boot file ipxe\.efi/);
    assert.match(timeline.diagnosis.message, /no request came/);
    const missing = await api.handle('timeline:get', {});
    assert.ok('error' in missing && /machineId or mac/.test(missing.error.message));
  });
});

test('host messages naming command-line flags are reworded for the screen', () => {
  assert.equal(
    uiWording("--pool 198.18.0.10-198.18.0.20 is outside bench0's network 192.0.2.0/24: choose addresses in that network"),
    "The address pool 198.18.0.10-198.18.0.20 is outside bench0's network 192.0.2.0/24: choose addresses in that network",
  );
  assert.equal(
    uiWording('--root /srv/x does not exist: give the folder that holds your boot files'),
    'The served folder /srv/x does not exist: give the folder that holds your boot files',
  );
  assert.equal(
    uiWording('--root is required: the folder whose files TFTP and HTTP serve'),
    'A served folder is required: the folder whose files TFTP and HTTP serve',
  );
  assert.equal(uiWording('UDP port 67 is in use'), 'UDP port 67 is in use');
  assert.equal(
    uiWording(
      'another DHCP server answers on bench0: 192.0.2.9. Two DHCP servers hand out conflicting addresses; use --mode proxy beside it, or --force if you are sure',
    ),
    'Another DHCP server answers on bench0: 192.0.2.9. Two DHCP servers hand out conflicting addresses; switch to Proxy DHCP mode beside it, or choose "Start anyway" if you are sure',
  );
});

describe('suggestBenchInterface', () => {
  test('prefers the wired NIC with link and address, never loopback', () => {
    const list = [
      nic({ name: 'lo', kind: 'loopback', ipv4: [{ address: '127.0.0.1', prefixLength: 8 }] }),
      nic({ name: 'wlan0', kind: 'wifi', ipv4: [{ address: '198.18.0.5', prefixLength: 24 }] }),
      nic({ name: 'eth1', kind: 'wired', up: false, ipv4: [{ address: '192.0.2.1', prefixLength: 24 }] }),
      nic({ name: 'eth0', kind: 'wired', ipv4: [{ address: '192.0.2.1', prefixLength: 24 }] }),
    ];
    assert.equal(suggestBenchInterface(list)?.name, 'eth0');
  });
  test('falls back to the only virtual NIC with an address (lab namespace, VM)', () => {
    const list = [
      nic({ name: 'lo', kind: 'loopback', ipv4: [{ address: '127.0.0.1', prefixLength: 8 }] }),
      nic({ name: 'bench0', kind: 'virtual', ipv4: [{ address: '192.0.2.1', prefixLength: 24 }] }),
    ];
    assert.equal(suggestBenchInterface(list)?.name, 'bench0');
    assert.equal(suggestBenchInterface([]), undefined);
  });
});

test('interfaces:list leaves out bridge ports and bare taps; the bridge with the address is suggested', async () => {
  const { host } = fakeHost();
  const list = [
    nic({ name: 'br0', kind: 'virtual', ipv4: [{ address: '192.0.2.1', prefixLength: 24 }] }),
    nic({ name: 'enp1s0', kind: 'wired', portOf: 'br0' }),
    nic({ name: 'tap0', kind: 'virtual', tunTap: true }),
    nic({ name: 'tap1', kind: 'virtual', tunTap: true, ipv4: [{ address: '198.18.0.1', prefixLength: 24 }] }),
  ];
  const api = new HostApi({ host, listInterfaces: () => list, shell: 'web' });
  const reply = await api.handle('interfaces:list', undefined);
  assert.ok('result' in reply);
  const result = reply.result as { interfaces: NetInterfaceInfo[]; suggested?: { name: string } };
  assert.deepEqual(
    result.interfaces.map((n) => n.name),
    ['br0', 'tap1'],
  );
});

describe('connectApiEvents', () => {
  test('coalesces progress into at most one push per interval, with finished transfers', () => {
    const { host, bus, clock } = fakeHost();
    const pushes: { event: keyof ApiEvents; payload: unknown }[] = [];
    const stop = connectApiEvents({ host, sink: (event, payload) => pushes.push({ event, payload }), clock, intervalMs: 250 });
    const row: TransferRow = { id: 't1', ip: '192.0.2.10', file: 'ipxe.efi', protocol: 'tftp', bytes: 0, rate: 0, retransmits: 0, startedAt: 1000, size: 1000 };
    host.setTransfers([row]);
    bus.publish('tftp.start', { transferId: 't1', ip: '192.0.2.10', file: 'ipxe.efi', size: 1000 });
    clock.advance(0);
    for (let i = 1; i <= 100; i++) {
      host.setTransfers([{ ...row, bytes: i * 10 }]);
      bus.publish('tftp.progress', { transferId: 't1', bytes: i * 10 });
      clock.advance(10); // 100 progress events in 1 s
    }
    const progress = pushes.filter((p) => p.event === 'transfer:progress');
    assert.ok(progress.length >= 4 && progress.length <= 6, `expected about 4-5 pushes in 1 s, got ${progress.length}`);
    host.setTransfers([]);
    bus.publish('tftp.done', { transferId: 't1', ip: '192.0.2.10', file: 'ipxe.efi', bytes: 1000, size: 1000 });
    clock.advance(300);
    const last = pushes.filter((p) => p.event === 'transfer:progress').at(-1)!.payload as ApiEvents['transfer:progress'];
    assert.deepEqual(last.active, []);
    assert.equal(last.finished[0]!.outcome, 'done');
    assert.equal(last.finished[0]!.file, 'ipxe.efi');
    const count = pushes.length;
    clock.advance(5000);
    assert.equal(pushes.length, count, 'nothing is pushed while nothing changes');
    stop();
    bus.publish('tftp.progress', { transferId: 't2' });
    clock.advance(1000);
    assert.equal(pushes.length, count, 'nothing after unsubscribe');
    assert.equal(clock.pendingTimers(), 0);
  });

  test('pushes service state, timeline lines and machines seen', () => {
    const { host, bus, clock } = fakeHost();
    const store = fakeStore();
    const pushes: { event: keyof ApiEvents; payload: any }[] = [];
    connectApiEvents({ host, store, sink: (event, payload) => pushes.push({ event, payload }), clock });
    bus.publish('service.state', { status: { running: true, mode: 'proxy', services: [], problems: [] } });
    for (let i = 0; i < 5; i++) bus.publish('dhcp.received', { mac: '52:54:00:00:00:01', msgType: 'DISCOVER' });
    bus.publish('dhcp.received', { mac: '52:54:00:00:00:99', msgType: 'DISCOVER' }); // not in the store yet
    clock.advance(200);
    assert.equal(pushes.filter((p) => p.event === 'machine:seen').length, 0, 'waits for the store to record the sighting');
    clock.advance(400);
    assert.equal(pushes.filter((p) => p.event === 'services:state').length, 1);
    assert.equal(pushes.filter((p) => p.event === 'timeline:event').length, 6);
    const seen = pushes.filter((p) => p.event === 'machine:seen');
    assert.equal(seen.length, 1, 'five DISCOVERs of one machine in one interval make one push');
    assert.equal(seen[0]!.payload.name, 'pc1');
    // The store records the new machine a little later: it is pushed then.
    (store.machines.list() as Machine[]).push(machine({ id: 9, macs: ['52:54:00:00:00:99'], name: '', discovered: true }));
    clock.advance(1000);
    assert.deepEqual(
      pushes.filter((p) => p.event === 'machine:seen').map((p) => p.payload.id),
      [1, 9],
    );
    clock.advance(10_000);
    assert.equal(clock.pendingTimers(), 0, 'stops looking once everything was found');
  });

  test('a finished boot once pushes the machine, so its screen shows the new assignment', () => {
    const { host, bus, clock } = fakeHost();
    const store = fakeStore();
    const pushes: { event: keyof ApiEvents; payload: any }[] = [];
    connectApiEvents({ host, store, sink: (event, payload) => pushes.push({ event, payload }), clock });
    bus.publish('host.warning', { mac: '52:54:00:00:00:01', message: 'other warning' });
    clock.advance(1000);
    assert.equal(pushes.filter((p) => p.event === 'machine:seen').length, 0, 'other warnings push no machine');
    bus.publish('host.warning', { mac: '52:54:00:00:00:01', message: 'boot once done', bootOnce: 'completed', entryId: 3 });
    clock.advance(1000);
    assert.deepEqual(
      pushes.filter((p) => p.event === 'machine:seen').map((p) => p.payload.id),
      [1],
    );
  });
});
