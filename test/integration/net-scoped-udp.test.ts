// Interface scoping, proven in namespaces made here: a "server" namespace with two NICs,
// nic-a (192.0.2.1/24, to client namespace A) and nic-b (198.18.0.1/24, to client
// namespace B). A socket scoped to nic-a on 0.0.0.0:67 must answer A's broadcast with a
// broadcast that reaches A, and B must neither be answered nor see any packet from us.
// The same setup with an unscoped socket is the control: the server then hears B, so the
// checks above can fail.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Lab, netnsUnavailableReason, waitFor, collectJsonLines } from '../helpers/netns.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const runner = join(root, 'test', 'integration', 'net-scoped-runner.ts');
const skip = netnsUnavailableReason();

type Line = Record<string, any>;

describe('interface-scoped UDP sockets in a two-NIC namespace', { skip }, () => {
  const lab = new Lab('bbnet');
  let srv = '';
  let nsA = '';
  let nsB = '';

  const runIn = (ns: string, ...args: string[]): Line => {
    const out = lab.exec(ns, process.execPath, ['--import', 'tsx', runner, ...args], { timeoutMs: 30_000 });
    return JSON.parse(out.trim().split('\n').at(-1)!);
  };
  const spawnIn = (ns: string, ...args: string[]) => {
    const child = lab.spawn(ns, process.execPath, ['--import', 'tsx', runner, ...args], { cwd: root });
    return { child, lines: collectJsonLines(child).lines };
  };
  /** Starts a server runner and waits until its socket is open. */
  const startServer = async (interfaceName: string) => {
    const server = spawnIn(srv, 'server', interfaceName, '67', '68');
    let stderr = '';
    server.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor(() => server.lines.some((l) => l.event === 'ready') || server.child.exitCode !== null, 20_000, 'server runner ready').catch((e) => {
      throw new Error(`${e.message}: ${stderr}`);
    });
    assert.ok(
      server.lines.some((l) => l.event === 'ready'),
      `server did not start: ${stderr}`,
    );
    return server;
  };
  /** Client A and client B broadcast at the same time and report what came back. */
  const runClients = async () => {
    const a = spawnIn(nsA, 'client', 'eth0', '67', 'hello-from-A', '68', '1500');
    const b = spawnIn(nsB, 'client', 'eth0', '67', 'hello-from-B', '68', '1500');
    await Promise.all([a, b].map(({ child }) => new Promise((r) => child.on('exit', r))));
    const done = (lines: Line[]) => lines.find((l) => l.event === 'done') ?? assert.fail(`client printed no result: ${JSON.stringify(lines)}`);
    return { a: done(a.lines), b: done(b.lines) };
  };

  before(() => {
    srv = lab.namespace('s');
    nsA = lab.namespace('a');
    nsB = lab.namespace('b');
    lab.veth(srv, 'nic-a', '192.0.2.1/24', nsA, 'eth0', '192.0.2.10/24');
    lab.veth(srv, 'nic-b', '198.18.0.1/24', nsB, 'eth0', '198.18.0.10/24');
  });
  after(() => lab.destroy());

  // Both directions, so each client's listener is shown to work when it should hear us.
  for (const [chosen, heard, ignored, ourAddress] of [
    ['nic-a', 'a', 'b', '192.0.2.1'],
    ['nic-b', 'b', 'a', '198.18.0.1'],
  ] as const) {
    test(`a socket scoped to ${chosen} answers client ${heard.toUpperCase()} by broadcast and leaves client ${ignored.toUpperCase()} alone`, async () => {
      const server = await startServer(chosen);
      try {
        const clients = await runClients();
        const served = clients[heard];
        const other = clients[ignored];
        assert.deepEqual(served.errors, []);
        assert.ok(
          served.received.some((m: Line) => m.payload === `answer:hello-from-${heard.toUpperCase()}` && m.from === ourAddress),
          `client ${heard} got no broadcast answer: ${JSON.stringify(served)}`,
        );
        // The other client's port 68 listener sees nothing at all from the server, not even
        // the broadcast answer meant for the chosen NIC.
        assert.deepEqual(other.received, [], `client ${ignored} saw packets: ${JSON.stringify(other.received)}`);
        const requests = server.lines.filter((l) => l.event === 'request').map((l) => l.payload);
        assert.ok(requests.includes(`hello-from-${heard.toUpperCase()}`));
        assert.ok(!requests.includes(`hello-from-${ignored.toUpperCase()}`), `scoped server heard ${ignored}: ${JSON.stringify(server.lines)}`);
        assert.ok(!server.lines.some((l) => l.event === 'send-error'), JSON.stringify(server.lines));
      } finally {
        server.child.kill();
      }
    });
  }

  test('control: an unscoped socket on 0.0.0.0:67 hears client B too', async () => {
    const server = await startServer('-');
    try {
      await runClients();
      const requests = server.lines.filter((l) => l.event === 'request').map((l) => l.payload);
      assert.ok(requests.includes('hello-from-B'), `unscoped server did not hear B, so the scoped test proves nothing: ${JSON.stringify(server.lines)}`);
    } finally {
      server.child.kill();
    }
  });

  test('sockets scoped to different NICs may share port 67; the same NIC may not', async () => {
    const server = await startServer('nic-a');
    try {
      const other = runIn(srv, 'open', 'nic-b', '67');
      assert.equal(other.ok, true, JSON.stringify(other));
      const same = runIn(srv, 'open', 'nic-a', '67');
      assert.equal(same.ok, false);
      assert.equal(same.name, 'PortBindError');
      assert.equal(same.code, 'EADDRINUSE');
      assert.match(same.message, /UDP port 67 \(DHCP \/ Proxy DHCP server\) on nic-a is already in use by node \(pid \d+\)/);
      assert.equal(same.owners[0].pid, server.child.pid, 'the pid named is not the server runner');
    } finally {
      server.child.kill();
    }
  });

  test('listing inside the namespace: veth NICs are virtual, lo is loopback, two NICs need --interface', () => {
    const { interfaces, serve } = runIn(srv, 'list');
    const byName = new Map<string, Line>(interfaces.map((n: Line) => [n.name, n]));
    assert.deepEqual([...byName.keys()].sort(), ['lo', 'nic-a', 'nic-b']);
    assert.equal(byName.get('lo')!.kind, 'loopback');
    for (const [name, address] of [
      ['nic-a', '192.0.2.1'],
      ['nic-b', '198.18.0.1'],
    ] as const) {
      const nic = byName.get(name)!;
      assert.equal(nic.kind, 'virtual');
      assert.equal(nic.up, true);
      assert.deepEqual(nic.ipv4, [{ address, netmask: '255.255.255.0', prefixLength: 24 }]);
      assert.match(nic.mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      assert.equal(nic.mtu, 1500);
    }
    assert.match(serve.error, /More than one NIC could serve: pass --interface NAME \(one of nic-a \(virtual 192\.0\.2\.1\/24\), nic-b/);
  });

  test('a NIC whose link is down is listed with up: false', () => {
    lab.exec(srv, 'ip', ['link', 'set', 'nic-b', 'down']);
    try {
      const { interfaces } = runIn(srv, 'list');
      const nicB = interfaces.find((n: Line) => n.name === 'nic-b');
      assert.equal(nicB.up, false);
      // os.networkInterfaces() drops a down NIC's address; we still show it.
      assert.deepEqual(nicB.ipv4, [{ address: '198.18.0.1', netmask: '255.255.255.0', prefixLength: 24 }]);
      assert.equal(interfaces.find((n: Line) => n.name === 'nic-a').up, true);
    } finally {
      lab.exec(srv, 'ip', ['link', 'set', 'nic-b', 'up']);
    }
  });
});
