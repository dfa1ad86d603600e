// The DHCP side on a real (virtual) Ethernet, inside namespaces made here: the service in
// one namespace, a scripted client in another (binding 0.0.0.0:68 like firmware, real
// broadcasts), and for the probe test dnsmasq in a third. Addresses from 192.0.2.0/24 only,
// no link to the host namespace.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Lab, missingPrograms, netnsUnavailableReason, waitFor, collectJsonLines } from '../helpers/netns.js';
import { firmwareBootRequest, firmwareDiscover, rawDhcp, firmwareOptions, guidBytes, SAMPLE_UUID, type FirmwareKind } from '../helpers/dhcp-clients.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const runner = join(root, 'test', 'integration', 'dhcp-runner.ts');
const skip = netnsUnavailableReason();

type Line = Record<string, any>;

interface Exchange {
  name: string;
  bytes: Buffer;
  to?: string;
  port?: number;
  fromPort?: number;
  waitMs?: number;
}

const SERVER = '192.0.2.1';
const CLIENT = '192.0.2.10';
const boot = { bios: 'undionly.kpxe', uefi64: 'ipxe.efi', arm64: 'ipxe-arm64.efi', http64: 'http/ipxe.efi' };
const uuidHex = Buffer.from(guidBytes(SAMPLE_UUID)).toString('hex');

/**
 * A namespace without a default route has no route for 255.255.255.255, so a socket that
 * is not tied to a device cannot broadcast (ENETUNREACH). Firmware does not care; our
 * plain-dgram test sockets need this host route, which stays inside the lab's veth.
 */
function broadcastRoute(lab: Lab, ns: string): void {
  lab.exec(ns, 'ip', ['route', 'add', '255.255.255.255/32', 'dev', 'eth0']);
}

function startService(lab: Lab, ns: string, options: object) {
  const child = lab.spawn(ns, process.execPath, ['--import', 'tsx', runner, 'serve', JSON.stringify(options)], { cwd: root });
  const out = collectJsonLines(child);
  const started = waitFor(
    () => out.lines.find((l) => l.event === 'ready' || l.event === 'failed') ?? (child.exitCode !== null && { event: 'exited', stderr: out.stderr() }),
    30_000,
    'DHCP runner start',
  );
  return { child, ...out, started };
}

/** Full DHCP on eth0 with the host's interface-scoped sockets, pool 192.0.2.100-110. */
function fullDhcpOptions(leaseFile: string, extra: object) {
  return {
    scoped: true,
    mode: 'dhcp',
    serverAddress: SERVER,
    interfaceName: 'eth0',
    policy: { serverAddress: SERVER, httpBaseUrl: `http://${SERVER}:8080`, boot },
    pool: { first: '192.0.2.100', last: '192.0.2.110', subnetMask: '255.255.255.0' },
    leaseFile,
    ...extra,
  };
}

function runClient(lab: Lab, ns: string, exchanges: Exchange[]): Map<string, Line[]> {
  const input = JSON.stringify(
    exchanges.map((e) => ({
      name: e.name,
      hex: e.bytes.toString('hex'),
      to: e.to ?? '255.255.255.255',
      port: e.port ?? 67,
      fromPort: e.fromPort ?? 68,
      waitMs: e.waitMs ?? 400,
    })),
  );
  const out = lab.exec(ns, process.execPath, ['--import', 'tsx', runner, 'client'], { input, timeoutMs: 60_000 });
  const result = new Map<string, Line[]>();
  for (const line of out.trim().split('\n')) {
    const l = JSON.parse(line);
    if (l.event === 'exchange') result.set(l.name, l.replies);
    else if (l.event === 'send-error') throw new Error(`client could not send ${l.name}: ${l.error}`);
  }
  return result;
}

function only(replies: Map<string, Line[]>, name: string): Line {
  const list = replies.get(name) ?? [];
  assert.equal(list.length, 1, `${name}: expected one reply, got ${JSON.stringify(list)}`);
  return list[0];
}

// A skipped describe is not counted as a skipped test by node's runner: say it with a test.
if (skip) test('DHCP side in network namespaces', { skip }, () => {});
const dnsmasqMissing = skip ? undefined : missingPrograms('dnsmasq');
if (dnsmasqMissing) test('full DHCP mode refuses to start beside dnsmasq', { skip: dnsmasqMissing }, () => {});

if (!skip)
  describe('Proxy DHCP and boot server in a namespace', () => {
    const lab = new Lab('bbdhcp');
    let srv = '';
    let cli = '';
    let service: ReturnType<typeof startService>;

    before(async () => {
      srv = lab.namespace('s');
      cli = lab.namespace('c');
      lab.veth(srv, 'eth0', `${SERVER}/24`, cli, 'eth0', `${CLIENT}/24`);
      broadcastRoute(lab, srv);
      broadcastRoute(lab, cli);
      service = startService(lab, srv, {
        mode: 'proxy',
        serverAddress: SERVER,
        policy: { serverAddress: SERVER, httpBaseUrl: `http://${SERVER}:8080`, boot },
      });
      const state = await service.started;
      assert.equal(state.event, 'ready', JSON.stringify(state));
    });
    after(() => lab.destroy());

    test('DISCOVERs from BIOS, UEFI x64, ARM64, HTTP boot and iPXE get the right broadcast offers', () => {
      const kinds: [FirmwareKind, string, string, boolean][] = [
        ['intel-bios', 'undionly.kpxe', 'PXEClient', true],
        ['ipxe-bios', 'undionly.kpxe', 'PXEClient', true],
        ['edk2-x64', 'ipxe.efi', 'PXEClient', false],
        ['ipxe-uefi', 'ipxe.efi', 'PXEClient', false],
        ['edk2-arm64', 'ipxe-arm64.efi', 'PXEClient', false],
        ['http-x64', `http://${SERVER}:8080/http/ipxe.efi`, 'HTTPClient', false],
      ];
      const replies = runClient(
        lab,
        cli,
        kinds.map(([kind], i) => ({ name: kind, bytes: firmwareDiscover(kind, `52:54:00:00:30:0${i}`, 0x3000 + i) })),
      );
      kinds.forEach(([kind, file, vendor, with43], i) => {
        const r = only(replies, kind);
        assert.equal(r.xid, 0x3000 + i);
        assert.equal(r.messageType, 2, kind);
        assert.equal(r.from, `${SERVER}:67`);
        assert.equal(r.toPort, 68);
        assert.equal(r.yiaddr, '0.0.0.0', `${kind}: proxy never hands out an address`);
        assert.equal(r.siaddr, SERVER, kind);
        assert.equal(r.serverIdentifier, SERVER, kind);
        assert.equal(r.vendorClass, vendor, kind);
        assert.equal(r.file, file, kind);
        assert.equal(r.uuid, uuidHex, `${kind}: option 97 echoed`);
        if (with43) assert.deepEqual(r.pxe, { discoveryControl: 8 }, kind);
        else assert.equal(r.pxe, undefined, kind);
      });
    });

    test('4011 REQUESTs are answered to their source port (EDK2 from 4011, iPXE from 68)', () => {
      const replies = runClient(lab, cli, [
        { name: 'edk2', bytes: firmwareBootRequest('edk2-x64', '52:54:00:00:31:01', 0x3101, CLIENT, 0), to: SERVER, port: 4011, fromPort: 4011 },
        { name: 'bios', bytes: firmwareBootRequest('intel-bios', '52:54:00:00:31:02', 0x3102, CLIENT, 0), to: SERVER, port: 4011, fromPort: 68 },
        { name: 'ipxe', bytes: firmwareBootRequest('ipxe-bios', '52:54:00:00:31:03', 0x3103, CLIENT, 0x8000), to: SERVER, port: 4011, fromPort: 68 },
        { name: 'arm64', bytes: firmwareBootRequest('edk2-arm64', '52:54:00:00:31:04', 0x3104, CLIENT, 0), to: SERVER, port: 4011, fromPort: 4011 },
      ]);
      for (const [name, file, port, item] of [
        ['edk2', 'ipxe.efi', 4011, 0],
        ['bios', 'undionly.kpxe', 68, 0],
        ['ipxe', 'undionly.kpxe', 68, 0x8000],
        ['arm64', 'ipxe-arm64.efi', 4011, 0],
      ] as const) {
        const r = only(replies, name);
        assert.equal(r.messageType, 5, name);
        assert.equal(r.from, `${SERVER}:4011`, name);
        assert.equal(r.toPort, port, name);
        assert.equal(r.file, file, name);
        assert.equal(r.siaddr, SERVER, name);
        assert.equal(r.vendorClass, 'PXEClient', name);
        assert.deepEqual(r.pxe, { bootItem: { type: item, layer: 0 } }, name);
      }
    });

    test('a non-PXE DISCOVER gets no answer, and every message was published', async () => {
      const replies = runClient(lab, cli, [
        {
          name: 'laptop',
          bytes: rawDhcp({
            xid: 0x3201,
            mac: '52:54:00:00:32:01',
            options: [
              [53, [1]],
              [60, 'MSFT 5.0'],
            ],
          }),
        },
      ]);
      assert.deepEqual(replies.get('laptop'), []);
      // runClient blocked this process; let the runner's output be read.
      await waitFor(() => service.lines.some((l) => l.type === 'dhcp.ignored' && l.xid === 0x3201), 5000, 'dhcp.ignored event').catch(() => undefined);
      const bus = service.lines.filter((l) => l.event === 'bus');
      const seen = JSON.stringify(bus);
      assert.ok(
        bus.some((e) => e.type === 'dhcp.ignored' && e.xid === 0x3201 && /not a PXE/.test(e.reason)),
        seen,
      );
      const discovers = bus.filter((e) => e.type === 'dhcp.received');
      assert.ok(
        discovers.some((e) => e.port === 4011 && e.msgType === 'REQUEST' && e.mac === '52:54:00:00:31:01' && e.ciaddr === CLIENT),
        seen,
      );
      assert.ok(
        discovers.some((e) => e.port === 67 && e.msgType === 'DISCOVER' && e.arch === 16 && e.uuid === SAMPLE_UUID),
        seen,
      );
      assert.ok(
        bus.some((e) => e.type === 'proxy.offer' && e.mac === '52:54:00:00:30:00' && e.file === 'undionly.kpxe'),
        seen,
      );
      assert.ok(
        bus.some((e) => e.type === 'pxe.ack' && e.mac === '52:54:00:00:31:01'),
        seen,
      );
    });
  });

if (!skip)
  describe('full DHCP mode in a namespace', () => {
    const lab = new Lab('bbfull');
    let srv = '';
    let cli = '';
    const dir = mkdtempSync(join(tmpdir(), 'bb-full-'));

    before(async () => {
      srv = lab.namespace('s');
      cli = lab.namespace('c');
      lab.veth(srv, 'eth0', `${SERVER}/24`, cli, 'eth0', null);
      broadcastRoute(lab, cli);
      // The server side uses the host's interface-scoped sockets here (no broadcast route needed).
      const service = startService(lab, srv, {
        scoped: true,
        mode: 'dhcp',
        serverAddress: SERVER,
        interfaceName: 'eth0',
        policy: { serverAddress: SERVER, httpBaseUrl: `http://${SERVER}:8080`, boot },
        pool: { first: '192.0.2.100', last: '192.0.2.110', subnetMask: '255.255.255.0', router: SERVER, leaseSeconds: 120 },
        leaseFile: join(dir, 'leases.json'),
        probeMs: 300,
      });
      const state = await service.started;
      assert.equal(state.event, 'ready', JSON.stringify(state));
    });
    after(async () => {
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    test('DISCOVER, OFFER, REQUEST, ACK, then a unicast renewal', () => {
      const mac = '52:54:00:00:40:01';
      const first = runClient(lab, cli, [
        // The first OFFER waits for the address check (ARP, 300 ms).
        { name: 'discover', bytes: firmwareDiscover('edk2-x64', mac, 0x4001), waitMs: 1200 },
        {
          name: 'request',
          bytes: rawDhcp({
            xid: 0x4001,
            mac,
            flags: 0x8000,
            options: firmwareOptions('edk2-x64', mac, {
              messageType: 3,
              extra: [
                [54, [192, 0, 2, 1]],
                [50, [192, 0, 2, 100]],
              ],
            }),
          }),
        },
      ]);
      const offer = only(first, 'discover');
      assert.equal(offer.messageType, 2);
      assert.equal(offer.yiaddr, '192.0.2.100');
      assert.equal(offer.file, 'ipxe.efi');
      assert.equal(offer.vendorClass, undefined);
      assert.equal(offer.leaseTime, 120);
      const ack = only(first, 'request');
      assert.equal(ack.messageType, 5);
      assert.equal(ack.yiaddr, '192.0.2.100');

      // The client configures its address, like a real one, and renews by unicast (RFC 2131 §4.4.5).
      lab.exec(cli, 'ip', ['addr', 'add', '192.0.2.100/24', 'dev', 'eth0']);
      const renew = runClient(lab, cli, [{ name: 'renew', bytes: rawDhcp({ xid: 0x4002, mac, ciaddr: '192.0.2.100', options: [[53, [3]]] }), to: SERVER }]);
      const r = only(renew, 'renew');
      assert.equal(r.messageType, 5);
      assert.equal(r.yiaddr, '192.0.2.100');
      assert.equal(r.ciaddr, '192.0.2.100');
    });

    test('a second client gets the next address; a request for a taken one gets a NAK', () => {
      const mac = '52:54:00:00:40:02';
      const replies = runClient(lab, cli, [
        { name: 'discover', bytes: firmwareDiscover('intel-bios', mac, 0x4101), waitMs: 1200 },
        {
          name: 'steal',
          bytes: rawDhcp({
            xid: 0x4102,
            mac,
            options: [
              [53, [3]],
              [50, [192, 0, 2, 100]],
            ],
          }),
        },
      ]);
      const offer = only(replies, 'discover');
      assert.equal(offer.yiaddr, '192.0.2.101');
      assert.equal(offer.file, 'undionly.kpxe');
      const nak = only(replies, 'steal');
      assert.equal(nak.messageType, 6);
      assert.match(nak.message, /leased to 52:54:00:00:40:01/);
    });
  });

if (!skip && !dnsmasqMissing)
  describe('full DHCP mode refuses to start beside another DHCP server', () => {
    const lab = new Lab('bbprobe');
    let srv = '';
    let other = '';
    const dir = mkdtempSync(join(tmpdir(), 'bb-probe-'));
    // dnsmasq pings the address before it offers it: its OFFER comes about 3 s late.
    const options = () => fullDhcpOptions(join(dir, 'leases.json'), { probeMs: 4000 });

    before(async () => {
      srv = lab.namespace('s');
      other = lab.namespace('d');
      lab.veth(srv, 'eth0', `${SERVER}/24`, other, 'eth0', '192.0.2.3/24');
      const dnsmasq = lab.spawn(other, 'dnsmasq', [
        '--no-daemon',
        '--conf-file=/dev/null',
        '--port=0',
        '--no-resolv',
        '--no-hosts',
        '--interface=eth0',
        '--bind-interfaces',
        '--dhcp-range=192.0.2.150,192.0.2.160,255.255.255.0,1h',
        `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
        '--pid-file=',
        '--user=root',
      ]);
      const out = collectJsonLines(dnsmasq);
      // dnsmasq logs to stderr (syslog is unavailable in the namespace); give it a moment to bind.
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(dnsmasq.exitCode, null, `dnsmasq exited: ${out.stderr()}`);
    });
    after(async () => {
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    test('start() fails naming the other server', async () => {
      const service = startService(lab, srv, options());
      const state = await service.started;
      assert.equal(state.event, 'failed', JSON.stringify(state));
      assert.match(state.message, /another DHCP server answers on eth0: 192\.0\.2\.3/);
      assert.match(state.message, /--force/);
    });

    test('with force it starts, and says so', async () => {
      const service = startService(lab, srv, { ...options(), force: true });
      const state = await service.started;
      assert.equal(state.event, 'ready', JSON.stringify(state));
      assert.ok(service.lines.some((l) => l.event === 'bus' && l.type === 'host.warning' && /192\.0\.2\.3/.test(l.message)));
    });
  });

if (!skip)
  describe('full DHCP mode checks an address before offering it (ARP)', () => {
    // A switch (bridge) joins the Bootbench namespace, a client, and a host that already
    // holds the first pool address by hand.
    const lab = new Lab('bbarp');
    let srv = '';
    let cli = '';
    let holder = '';
    let holderMac = '';
    const dir = mkdtempSync(join(tmpdir(), 'bb-arp-'));
    const serve = (name: string, extra: object) => startService(lab, srv, fullDhcpOptions(join(dir, `${name}.json`), { probeMs: 200, ...extra }));
    const stop = async (service: ReturnType<typeof startService>) => {
      service.child.kill('SIGTERM');
      await waitFor(() => service.child.exitCode !== null || service.child.signalCode !== null, 5000, 'DHCP runner exit');
    };

    before(() => {
      const sw = lab.namespace('w');
      srv = lab.namespace('s');
      cli = lab.namespace('c');
      holder = lab.namespace('h');
      lab.switchOf(sw, [
        { ns: srv, ifname: 'eth0', cidr: `${SERVER}/24` },
        { ns: cli, ifname: 'eth0', cidr: null },
        { ns: holder, ifname: 'eth0', cidr: '192.0.2.100/24' },
      ]);
      broadcastRoute(lab, cli);
      holderMac = JSON.parse(lab.exec(holder, 'ip', ['-j', 'link', 'show', 'dev', 'eth0']))[0].address;
    });
    after(async () => {
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    test('the first pool address answers ARP: a different address is offered and dhcp.conflict published', async (t) => {
      const service = serve('on', {});
      const state = await service.started;
      assert.equal(state.event, 'ready', JSON.stringify(state));
      try {
        const mac = '52:54:00:00:60:01';
        const replies = runClient(lab, cli, [
          { name: 'discover', bytes: firmwareDiscover('edk2-x64', mac, 0x6001), waitMs: 1500 },
          // The same client asks again: its checked offer comes at once.
          { name: 'again', bytes: firmwareDiscover('edk2-x64', mac, 0x6002), waitMs: 400 },
          // Another asks for the address the other host holds (INIT-REBOOT): refused.
          {
            name: 'taken',
            bytes: rawDhcp({
              xid: 0x6003,
              mac: '52:54:00:00:60:03',
              options: [
                [53, [3]],
                [50, [192, 0, 2, 100]],
              ],
            }),
            waitMs: 1200,
          },
        ]);
        const offer = only(replies, 'discover');
        assert.equal(offer.messageType, 2);
        assert.equal(offer.yiaddr, '192.0.2.101');
        assert.equal(only(replies, 'again').yiaddr, '192.0.2.101');
        const nak = only(replies, 'taken');
        assert.equal(nak.messageType, 6);
        assert.match(nak.message, new RegExp(`192\\.0\\.2\\.100 is in use by another host \\(${holderMac}\\)`));
        await waitFor(() => service.lines.some((l) => l.type === 'dhcp.offer' && l.xid === 0x6002), 5000, 'second dhcp.offer');
        const bus = service.lines.filter((l) => l.event === 'bus');
        const conflict = bus.find((l) => l.type === 'dhcp.conflict');
        assert.ok(conflict, JSON.stringify(bus.map((l) => l.type)));
        assert.equal(conflict.address, '192.0.2.100');
        assert.equal(conflict.heldBy, holderMac);
        assert.equal(conflict.method, 'arp');
        assert.equal(conflict.mac, mac);
        const first = bus.find((l) => l.type === 'dhcp.offer' && l.xid === 0x6001);
        const second = bus.find((l) => l.type === 'dhcp.offer' && l.xid === 0x6002);
        assert.equal(first.addressesInUse, 1);
        assert.equal(second.addressCheckMs, undefined, 'a checked offer is not checked again');
        t.diagnostic(
          `OFFER after the check: ${first.addressCheckMs} ms (${conflict.ms} ms to hear ${holderMac} answer for .100, then ${first.addressCheckMs - conflict.ms} ms of silence for .101)`,
        );
        assert.ok(first.addressCheckMs >= 250 && first.addressCheckMs < 1500, `check took ${first.addressCheckMs} ms`);
      } finally {
        await stop(service);
      }
    });

    test("by ICMP echo (where ARP cannot be had): the same, without the holder's MAC", async (t) => {
      // Ping sockets are allowed per namespace by net.ipv4.ping_group_range (closed by default).
      lab.exec(srv, 'sysctl', ['-q', '-w', 'net.ipv4.ping_group_range=0 2147483647']);
      const service = serve('icmp', { prober: 'icmp' });
      const state = await service.started;
      assert.equal(state.event, 'ready', JSON.stringify(state));
      try {
        const replies = runClient(lab, cli, [{ name: 'discover', bytes: firmwareDiscover('ipxe-uefi', '52:54:00:00:62:01', 0x6201), waitMs: 1500 }]);
        assert.equal(only(replies, 'discover').yiaddr, '192.0.2.101');
        await waitFor(() => service.lines.some((l) => l.type === 'dhcp.offer' && l.xid === 0x6201), 5000, 'dhcp.offer');
        const conflict = service.lines.find((l) => l.type === 'dhcp.conflict');
        assert.ok(conflict);
        assert.equal(conflict.address, '192.0.2.100');
        assert.equal(conflict.method, 'icmp');
        assert.equal(conflict.heldBy, undefined);
        const offer = service.lines.find((l) => l.type === 'dhcp.offer' && l.xid === 0x6201);
        t.diagnostic(`OFFER after the ICMP check: ${offer.addressCheckMs} ms (${conflict.ms} ms for the echo reply from .100)`);
      } finally {
        await stop(service);
      }
    });

    test('with the check off (--no-address-check) the first address is offered', async () => {
      const service = serve('off', { addressCheck: false });
      const state = await service.started;
      assert.equal(state.event, 'ready', JSON.stringify(state));
      try {
        const replies = runClient(lab, cli, [{ name: 'discover', bytes: firmwareDiscover('intel-bios', '52:54:00:00:61:01', 0x6101), waitMs: 600 }]);
        assert.equal(only(replies, 'discover').yiaddr, '192.0.2.100');
        assert.ok(!service.lines.some((l) => l.type === 'dhcp.conflict'));
      } finally {
        await stop(service);
      }
    });
  });
