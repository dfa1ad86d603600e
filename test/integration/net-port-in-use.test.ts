// Port 67 already taken: the error names the port and the process, and Bootbench does not
// quietly share the port (no SO_REUSEADDR), even with a holder that set SO_REUSEADDR itself,
// as dnsmasq and ISC dhcpd do. Runs in a namespace made here; nothing leaves it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Lab, missingPrograms, netnsUnavailableReason, waitFor } from '../helpers/netns.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const runner = join(root, 'test', 'integration', 'net-scoped-runner.ts');
const skip = netnsUnavailableReason();

// Holds 0.0.0.0:67 with SO_REUSEADDR set, like a DHCP server would, and prints its pid.
const HOLDER = `
import os, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 67))
print(os.getpid(), flush=True)
time.sleep(120)
`;

describe('UDP port 67 already in use', { skip }, () => {
  const lab = new Lab('bbpiu');
  let ns = '';

  const open = (...args: string[]) => {
    const out = lab.exec(ns, process.execPath, ['--import', 'tsx', runner, 'open', ...args], { timeoutMs: 30_000 });
    return JSON.parse(out.trim().split('\n').at(-1)!);
  };

  before(() => {
    ns = lab.namespace('s');
    const peer = lab.namespace('p');
    lab.veth(ns, 'nic0', '192.0.2.1/24', peer, 'eth0', '192.0.2.2/24');
    lab.veth(ns, 'nic1', '198.18.0.1/24', peer, 'eth1', '198.18.0.2/24');
  });
  after(() => lab.destroy());

  test('a holder with SO_REUSEADDR: we refuse to share and name it', { skip: missingPrograms('python3') }, async () => {
    const holder = lab.spawn(ns, 'python3', ['-c', HOLDER]);
    try {
      let out = '';
      holder.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const pid = Number(await waitFor(() => /^\d+\n/.test(out) && out.trim(), 15_000, 'python holder on port 67'));

      const result = open('nic0', '67');
      assert.equal(result.ok, false, JSON.stringify(result));
      assert.equal(result.name, 'PortBindError');
      assert.equal(result.code, 'EADDRINUSE');
      assert.equal(result.port, 67);
      assert.match(
        result.message,
        new RegExp(`^UDP port 67 \\(DHCP / Proxy DHCP server\\) on nic0 is already in use by python[\\d.]* \\(pid ${pid}\\): stop it`),
      );

      // The same without a device: the plain socket path explains it the same way.
      const plain = open('-', '67');
      assert.equal(plain.code, 'EADDRINUSE');
      assert.match(plain.message, new RegExp(`pid ${pid}`));

      // Control: asking for SO_REUSEADDR does share the port, which is exactly what the
      // default avoids.
      const shared = open('nic0', '67', 'reuse');
      assert.equal(shared.ok, true, JSON.stringify(shared));
    } finally {
      holder.kill('SIGKILL');
    }
  });

  test('dnsmasq serving nic0: named with the service to stop, on every NIC', { skip: missingPrograms('dnsmasq') }, async () => {
    const dnsmasq = lab.spawn(ns, 'dnsmasq', [
      '--no-daemon',
      '--conf-file=/dev/null',
      '--port=0',
      '--pid-file=',
      '--leasefile-ro',
      '--interface=nic0',
      '--dhcp-range=192.0.2.50,192.0.2.60,1h',
      '--user=root',
    ]);
    let stderr = '';
    dnsmasq.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      // Its socket in the table and its start-up line both: on a busy machine the socket can
      // be listed before dnsmasq has finished setting it up.
      await waitFor(
        () => (lab.exec(ns, 'cat', ['/proc/net/udp']).includes(':0043 ') && stderr.includes('DHCP, IP range')) || dnsmasq.exitCode !== null,
        15_000,
        'dnsmasq on port 67',
      );
      assert.equal(dnsmasq.exitCode, null, `dnsmasq exited: ${stderr}`);

      const result = open('nic0', '67');
      assert.equal(result.code, 'EADDRINUSE', JSON.stringify(result));
      assert.match(result.message, new RegExp(`already in use by dnsmasq \\(pid ${dnsmasq.pid}\\): stop it \\(\`sudo systemctl stop dnsmasq\`\\)`));

      // dnsmasq's DHCP socket is on 0.0.0.0:67 with no device, whatever --interface says,
      // so it blocks every NIC; the message must say so for nic1 as well.
      const other = open('nic1', '67');
      assert.equal(other.code, 'EADDRINUSE', JSON.stringify(other));
      assert.match(other.message, /on nic1 is already in use by dnsmasq/);
    } finally {
      dnsmasq.kill('SIGKILL');
    }
  });
});
