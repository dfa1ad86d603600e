import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir, type NetworkInterfaceInfo } from 'node:os';
import { join } from 'node:path';
import {
  parseIproute2Addresses,
  listInterfaces,
  chooseLikelyBenchInterface,
  resolveServeInterface,
  broadcastAddressOf,
  prefixLengthOf,
  guessKindFromName,
  linkIsUp,
  InterfaceChoiceError,
  offeredForServing,
  type NetInterface,
} from '../../main/net/interfaces.js';

interface FakeNic {
  address?: string;
  operstate?: string;
  carrier?: string;
  mtu?: number;
  type?: number;
  entries?: string[]; // device, wireless, phy80211
}

/** Writes a /sys/class/net look-alike: one directory per NIC with the files we read. */
function fakeSysTree(nics: Record<string, FakeNic>): string {
  const dir = mkdtempSync(join(tmpdir(), 'bb-sys-'));
  for (const [name, nic] of Object.entries(nics)) {
    const d = join(dir, name);
    mkdirSync(d);
    writeFileSync(join(d, 'address'), `${nic.address ?? '00:00:00:00:00:00'}\n`);
    writeFileSync(join(d, 'operstate'), `${nic.operstate ?? 'up'}\n`);
    if (nic.carrier !== undefined) writeFileSync(join(d, 'carrier'), `${nic.carrier}\n`);
    writeFileSync(join(d, 'mtu'), `${nic.mtu ?? 1500}\n`);
    writeFileSync(join(d, 'type'), `${nic.type ?? 1}\n`);
    writeFileSync(join(d, 'ifindex'), `${Object.keys(nics).indexOf(name) + 1}\n`);
    for (const entry of nic.entries ?? []) mkdirSync(join(d, entry));
  }
  return dir;
}

const v4 = (address: string, netmask: string, mac = ''): NetworkInterfaceInfo =>
  ({ address, netmask, family: 'IPv4', mac, internal: address.startsWith('127.'), cidr: null }) as NetworkInterfaceInfo;
const v6 = (address: string): NetworkInterfaceInfo =>
  ({ address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '', internal: false, cidr: null, scopeid: 0 }) as NetworkInterfaceInfo;

describe('listInterfaces on a Linux /sys tree', () => {
  let sys = '';
  let list: NetInterface[] = [];
  before(() => {
    sys = fakeSysTree({
      lo: { type: 772, operstate: 'unknown', carrier: '1', mtu: 65536 },
      eth0: { address: '52:54:00:AB:CD:EF', entries: ['device'], carrier: '1', mtu: 9000 },
      enp3s0: { address: '52:54:00:00:00:02', entries: ['device'], operstate: 'down', carrier: '0' },
      wlp2s0: { address: '52:54:00:00:00:03', entries: ['device', 'phy80211'], operstate: 'dormant' },
      wlan1: { address: '52:54:00:00:00:04', entries: ['device', 'wireless'], carrier: '1' },
      veth1a2b: { address: '52:54:00:00:00:05' },
      docker0: { address: '52:54:00:00:00:06', operstate: 'down' },
      tun0: { operstate: 'unknown', carrier: '1' },
    });
    list = listInterfaces({
      platform: 'linux',
      sysClassNet: sys,
      addresses: {
        lo: [v4('127.0.0.1', '255.0.0.0'), v6('::1')],
        eth0: [v4('192.0.2.1', '255.255.255.0', '52:54:00:ab:cd:ef'), v6('fe80::1')],
        wlan1: [v4('198.18.4.7', '255.255.252.0')],
        veth1a2b: [v4('198.19.0.1', '255.255.255.252')],
      },
      // What `ip -j addr` adds: the address of a NIC whose cable is out (libuv hides it).
      linkDownAddresses: () => ({ enp3s0: [v4('192.0.2.77', '255.255.255.0')] }),
    });
  });
  after(() => rmSync(sys, { recursive: true, force: true }));

  const get = (name: string) => list.find((n) => n.name === name) ?? assert.fail(`${name} missing`);

  test('every NIC in /sys is listed, in natural order, even without addresses', () => {
    assert.deepEqual(
      list.map((n) => n.name),
      ['docker0', 'enp3s0', 'eth0', 'lo', 'tun0', 'veth1a2b', 'wlan1', 'wlp2s0'],
    );
  });

  test('only: one NIC read, the same as in the full list; none for a name /sys does not have', () => {
    const sources = {
      platform: 'linux' as const,
      sysClassNet: sys,
      addresses: { eth0: [v4('192.0.2.1', '255.255.255.0', '52:54:00:ab:cd:ef'), v6('fe80::1')] },
      linkDownAddresses: () => ({ enp3s0: [v4('192.0.2.77', '255.255.255.0')] }),
    };
    assert.deepEqual(listInterfaces({ ...sources, only: 'eth0' }), [get('eth0')]);
    assert.deepEqual(listInterfaces({ ...sources, only: 'enp3s0' }), [get('enp3s0')]);
    assert.deepEqual(listInterfaces({ ...sources, only: 'eth9' }), []);
  });

  test('kind: loopback by type 772, wifi by phy80211 or wireless, virtual without a device link', () => {
    const kinds = Object.fromEntries(list.map((n) => [n.name, n.kind]));
    assert.deepEqual(kinds, {
      docker0: 'virtual',
      enp3s0: 'wired',
      eth0: 'wired',
      lo: 'loopback',
      tun0: 'virtual',
      veth1a2b: 'virtual',
      wlan1: 'wifi',
      wlp2s0: 'wifi',
    });
  });

  test('up follows operstate, and carrier when operstate is unknown', () => {
    const up = Object.fromEntries(list.map((n) => [n.name, n.up]));
    assert.deepEqual(up, {
      docker0: false,
      enp3s0: false,
      eth0: true,
      lo: true,
      tun0: true,
      veth1a2b: true,
      wlan1: true,
      wlp2s0: false, // dormant: associated but not authenticated
    });
  });

  test('addresses, MAC (lower case, empty for all-zero) and MTU', () => {
    assert.deepEqual(get('eth0'), {
      name: 'eth0',
      mac: '52:54:00:ab:cd:ef',
      ipv4: [{ address: '192.0.2.1', netmask: '255.255.255.0', prefixLength: 24 }],
      ipv6: ['fe80::1'],
      up: true,
      kind: 'wired',
      mtu: 9000,
      index: 2,
    });
    assert.equal(get('lo').mac, '');
    assert.equal(get('tun0').mac, '');
    assert.deepEqual(get('wlan1').ipv4, [{ address: '198.18.4.7', netmask: '255.255.252.0', prefixLength: 22 }]);
    assert.deepEqual(get('enp3s0').ipv4, [{ address: '192.0.2.77', netmask: '255.255.255.0', prefixLength: 24 }], 'link down, address still shown');
    assert.deepEqual(get('docker0').ipv4, []);
  });

  test('the likely bench NIC is the wired one with link and IPv4; Wi-Fi only as a fallback', () => {
    assert.equal(chooseLikelyBenchInterface(list)?.name, 'eth0');
    const withoutEth0 = list.filter((n) => n.name !== 'eth0');
    assert.equal(chooseLikelyBenchInterface(withoutEth0)?.name, 'wlan1');
    assert.equal(chooseLikelyBenchInterface(withoutEth0.filter((n) => n.kind !== 'wifi')), undefined, 'never loopback or virtual');
  });
});

describe('listInterfaces elsewhere (os.networkInterfaces only)', () => {
  test('macOS: loopback from internal, kinds guessed from names, all listed NICs are up', () => {
    const list = listInterfaces({
      platform: 'darwin',
      addresses: {
        lo0: [v4('127.0.0.1', '255.0.0.0')],
        en0: [v4('192.0.2.5', '255.255.255.0', '3c:22:fb:00:00:01')],
        utun3: [v6('fe80::2')],
        bridge100: [v4('198.18.2.1', '255.255.255.0', '3e:22:fb:00:00:64')],
      },
    });
    assert.deepEqual(
      listInterfaces({ platform: 'darwin', addresses: { en0: [v4('192.0.2.5', '255.255.255.0')], lo0: [v4('127.0.0.1', '255.0.0.0')] }, only: 'en0' }).map(
        (n) => n.name,
      ),
      ['en0'],
    );
    assert.deepEqual(
      list.map((n) => [n.name, n.kind, n.up, n.mac]),
      [
        ['bridge100', 'virtual', true, '3e:22:fb:00:00:64'],
        ['en0', 'wired', true, '3c:22:fb:00:00:01'],
        ['lo0', 'loopback', true, ''],
        ['utun3', 'virtual', true, ''],
      ],
    );
  });

  test('Windows names', () => {
    assert.equal(guessKindFromName('Wi-Fi', 'win32'), 'wifi');
    assert.equal(guessKindFromName('Ethernet 2', 'win32'), 'wired');
    assert.equal(guessKindFromName('vEthernet (WSL)', 'win32'), 'virtual');
    assert.equal(guessKindFromName('Loopback Pseudo-Interface 1', 'win32'), 'loopback');
  });
});

describe('resolveServeInterface', () => {
  const nic = (name: string, kind: NetInterface['kind'], address?: string, up = true): NetInterface => ({
    name,
    mac: '52:54:00:00:00:01',
    ipv4: address ? [{ address, netmask: '255.255.255.0', prefixLength: 24 }] : [],
    ipv6: [],
    up,
    kind,
    mtu: 1500,
  });
  const lo = nic('lo', 'loopback', '127.0.0.1');

  test('a named NIC with IPv4 is returned', () => {
    assert.equal(resolveServeInterface('eth1', [lo, nic('eth0', 'wired', '192.0.2.1'), nic('eth1', 'wired', '198.18.0.1')]).name, 'eth1');
  });

  test('an unknown name lists the valid ones', () => {
    assert.throws(
      () => resolveServeInterface('eth9', [lo, nic('eth0', 'wired', '192.0.2.1'), nic('wlan0', 'wifi')]),
      (e: unknown) => {
        assert.ok(e instanceof InterfaceChoiceError);
        assert.equal(
          e.message,
          'There is no network interface called "eth9". Interfaces on this machine: lo (loopback 127.0.0.1/24), eth0 (wired 192.0.2.1/24), wlan0 (wifi).',
        );
        return true;
      },
    );
  });

  test('a named NIC without IPv4 says so and how to fix it', () => {
    assert.throws(
      () => resolveServeInterface('eth1', [lo, nic('eth0', 'wired', '192.0.2.1'), nic('eth1', 'wired')]),
      /^InterfaceChoiceError: Interface eth1 has no IPv4 address.*`sudo ip addr add 192\.168\.50\.1\/24 dev eth1`.*or choose one of: eth0 \(wired 192\.0\.2\.1\/24\)\.$/,
    );
  });

  test('without a name: the only physical NIC with IPv4 and link, ignoring loopback and virtual ones', () => {
    const list = [
      lo,
      nic('docker0', 'virtual', '198.18.9.1'),
      nic('eth0', 'wired', '192.0.2.1'),
      nic('eth1', 'wired', '198.18.0.1', false),
      nic('eth2', 'wired'),
    ];
    assert.equal(resolveServeInterface(undefined, list).name, 'eth0');
  });

  test('without a name: two candidates => pass --interface, naming both', () => {
    assert.throws(
      () => resolveServeInterface(undefined, [lo, nic('eth0', 'wired', '192.0.2.1'), nic('wlan0', 'wifi', '198.18.0.7')]),
      (e: unknown) => {
        assert.ok(e instanceof InterfaceChoiceError);
        assert.match(
          e.message,
          /^More than one NIC could serve: pass --interface NAME \(one of eth0 \(wired 192\.0\.2\.1\/24\), wlan0 \(wifi 198\.18\.0\.7\/24\)\)/,
        );
        assert.deepEqual(e.candidates, ['eth0', 'wlan0']);
        return true;
      },
    );
  });

  test('without a name and only virtual NICs (a lab namespace): the single one is used', () => {
    assert.equal(resolveServeInterface(undefined, [lo, nic('veth0', 'virtual', '192.0.2.1')]).name, 'veth0');
  });

  test('nothing with IPv4: a clear error', () => {
    assert.throws(() => resolveServeInterface(undefined, [lo, nic('eth0', 'wired')]), /No network interface has an IPv4 address/);
  });
});

test('address arithmetic', () => {
  assert.equal(prefixLengthOf('255.255.255.0'), 24);
  assert.equal(prefixLengthOf('255.255.254.0'), 23);
  assert.equal(prefixLengthOf('0.0.0.0'), 0);
  assert.equal(broadcastAddressOf({ address: '192.0.2.1', netmask: '255.255.255.0', prefixLength: 24 }), '192.0.2.255');
  assert.equal(broadcastAddressOf({ address: '198.18.5.9', netmask: '255.254.0.0', prefixLength: 15 }), '198.19.255.255');
});

test('linkIsUp', () => {
  assert.equal(linkIsUp('up', undefined), true);
  assert.equal(linkIsUp('down', '1'), false);
  assert.equal(linkIsUp('unknown', '1'), true);
  assert.equal(linkIsUp('unknown', undefined), false);
  assert.equal(linkIsUp('lowerlayerdown', '0'), false);
});

test('`ip -j addr show` output becomes os.networkInterfaces()-shaped addresses', () => {
  const json = JSON.stringify([
    { ifindex: 1, ifname: 'lo', address: '00:00:00:00:00:00', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
    {
      ifindex: 3,
      ifname: 'enp3s0',
      address: '52:54:00:00:00:02',
      addr_info: [
        { family: 'inet', local: '192.0.2.77', prefixlen: 23 },
        { family: 'inet6', local: 'fe80::5054:ff:fe00:2', prefixlen: 64 },
      ],
    },
  ]);
  const parsed = parseIproute2Addresses(json);
  assert.deepEqual(
    parsed.enp3s0!.map((a) => [a.family, a.address, a.netmask]),
    [
      ['IPv4', '192.0.2.77', '255.255.254.0'],
      ['IPv6', 'fe80::5054:ff:fe00:2', ''],
    ],
  );
  assert.deepEqual(parseIproute2Addresses('not json'), {});
});

describe('bridge ports and taps', () => {
  let sys = '';
  let list: NetInterface[] = [];
  before(() => {
    sys = fakeSysTree({
      br0: { address: '52:54:00:00:0b:00', entries: ['bridge'] },
      enp1s0: { address: '52:54:00:00:0b:01', entries: ['device', 'brport'] },
      bond0: { address: '52:54:00:00:0b:02' },
      enp2s0: { address: '52:54:00:00:0b:03', entries: ['device', 'bonding_slave'] },
      tap0: { address: '52:54:00:00:0b:04' },
      tap1: { address: '52:54:00:00:0b:05' },
      eth9: { address: '52:54:00:00:0b:06', entries: ['device'] },
    });
    // What the kernel shows: a port's `master` links to its bridge or bond; tun/tap have tun_flags.
    symlinkSync('../br0', join(sys, 'enp1s0', 'master'));
    symlinkSync('../bond0', join(sys, 'enp2s0', 'master'));
    writeFileSync(join(sys, 'tap0', 'tun_flags'), '0x1002\n');
    writeFileSync(join(sys, 'tap1', 'tun_flags'), '0x1002\n');
    list = listInterfaces({
      platform: 'linux',
      sysClassNet: sys,
      addresses: {
        br0: [v4('192.0.2.1', '255.255.255.0')],
        bond0: [v4('198.18.0.1', '255.255.255.0')],
        tap1: [v4('198.19.0.1', '255.255.255.0')],
        eth9: [v4('192.0.2.9', '255.255.255.0')],
      },
      linkDownAddresses: () => ({}),
    });
  });
  after(() => rmSync(sys, { recursive: true, force: true }));

  test('ports name their bridge or bond; taps are marked', () => {
    const get = (name: string) => list.find((n) => n.name === name) ?? assert.fail(`${name} missing`);
    assert.equal(get('enp1s0').portOf, 'br0');
    assert.equal(get('enp2s0').portOf, 'bond0');
    assert.equal(get('br0').portOf, undefined);
    assert.equal(get('tap0').tunTap, true);
    assert.equal(get('eth9').tunTap, undefined);
  });

  test('offered: the bridge with the address, a tap with an address, plain NICs; not ports, not bare taps', () => {
    assert.deepEqual(
      list
        .filter(offeredForServing)
        .map((n) => n.name)
        .sort(),
      ['bond0', 'br0', 'eth9', 'tap1'],
    );
  });

  test('naming a bridge port to serve on says which bridge to use', () => {
    assert.throws(
      () => resolveServeInterface('enp1s0', list),
      (e: unknown) => e instanceof InterfaceChoiceError && /enp1s0 is a port of br0: .* serve on br0/.test(e.message),
    );
  });
});
