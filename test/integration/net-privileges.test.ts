// Without root: binding 67 fails with the message a technician needs, and the privilege
// report agrees. Runs the runner as user nobody inside a namespace made here.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { accessSync, constants } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { release } from 'node:os';
import { kernelAtLeast } from '../../main/net/privileges.js';
import { Lab, missingPrograms, netnsUnavailableReason } from '../helpers/netns.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const runner = join(root, 'test', 'integration', 'net-scoped-runner.ts');

/** Whether user nobody can read the checkout (the runner and node_modules). */
function nobodyCanRead(): string | undefined {
  try {
    execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'test', '-r', runner]);
    accessSync(runner, constants.R_OK);
    return undefined;
  } catch {
    return `user nobody cannot read ${runner}`;
  }
}

const skip = netnsUnavailableReason() ?? missingPrograms('setpriv') ?? nobodyCanRead();

describe('unprivileged process', { skip }, () => {
  const lab = new Lab('bbpriv');
  let ns = '';
  before(() => {
    ns = lab.namespace('s');
    const peer = lab.namespace('p');
    lab.veth(ns, 'nic0', '192.0.2.1/24', peer, 'eth0', '192.0.2.2/24');
  });
  after(() => lab.destroy());

  const asNobody = (...args: string[]) => {
    const out = lab.exec(
      ns,
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, '--import', 'tsx', runner, ...args],
      { timeoutMs: 30_000 },
    );
    return JSON.parse(out.trim().split('\n').at(-1)!);
  };

  test('port 67 on nic0: PortBindError with the capability fix', () => {
    const result = asNobody('open', 'nic0', '67');
    assert.equal(result.ok, false, JSON.stringify(result));
    assert.equal(result.name, 'PortBindError');
    assert.equal(result.code, 'EACCES');
    assert.equal(result.port, 67);
    assert.match(
      result.message,
      /^Cannot open UDP port 67 \(DHCP \/ Proxy DHCP server\) on nic0: ports below \d+ \(net\.ipv4\.ip_unprivileged_port_start\) need root or the CAP_NET_BIND_SERVICE capability\. Fix: .*sudo setcap 'cap_net_bind_service,cap_net_raw=\+ep' \//,
    );
  });

  test('port 4011 needs no privilege; SO_BINDTODEVICE needs none from Linux 5.7 on', () => {
    const result = asNobody('open', 'nic0', '4011');
    if (kernelAtLeast(release(), 5, 7)) {
      assert.equal(result.ok, true, JSON.stringify(result));
    } else {
      assert.equal(result.name, 'DeviceBindError', JSON.stringify(result));
      assert.match(result.message, /CAP_NET_RAW/);
    }
  });
});
