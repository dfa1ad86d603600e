// `bootbench doctor` says whether an IGMP querier is heard on the NIC and what Bootbench
// will do about it (the listen and /proc/net/igmp injected here; the real raw socket on a
// bridge whose querier is on and off is in test/integration/imaging-igmp-querier.test.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runDoctor, type DoctorOptions, type Finding } from '../../main/cli/doctor.js';
import type { NetInterface } from '../../main/net/index.js';

const NIC: NetInterface = {
  name: 'bench0',
  mac: '52:54:00:00:00:01',
  ipv4: [{ address: '192.0.2.1', prefixLength: 24, netmask: '255.255.255.0' } as NetInterface['ipv4'][number]],
  ipv6: [],
  up: true,
  kind: 'ethernet',
  mtu: 1500,
};

async function igmpFinding(options: Partial<DoctorOptions>): Promise<Finding | undefined> {
  const findings = await runDoctor({
    interfaceName: 'bench0',
    resolveInterface: () => NIC,
    probeServers: false,
    firewall: false,
    igmpListenMs: 5000,
    kernelIgmp: () => 'Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n1\tlo        :     1      V3\n',
    ...options,
  });
  return findings.find((f) => /IGMP/.test(f.message));
}

describe('doctor: IGMP querier on the NIC', () => {
  test('none heard: names the NIC and the listen, and says Bootbench will query while it streams', async () => {
    let asked: unknown[] = [];
    const f = await igmpFinding({
      listenForQueriers: async (...args) => {
        asked = args.slice(0, 3);
        return { heard: [] };
      },
    });
    assert.deepEqual(asked, ['bench0', '192.0.2.1', 5000]);
    assert.equal(f?.level, 'ok');
    assert.match(f!.message, /^no IGMP querier heard on bench0 in 5 s: Bootbench will send queries while it streams/);
  });

  test('one heard: names it, and says Bootbench sends none', async () => {
    const f = await igmpFinding({ listenForQueriers: async () => ({ heard: ['192.0.2.254'] }) });
    assert.equal(f?.level, 'ok');
    assert.match(f!.message, /^IGMP querier 192\.0\.2\.254 heard on bench0: .*Bootbench will send no queries/);
  });

  test("none heard now, but the kernel's record shows an IGMPv2 querier on the NIC lately", async () => {
    const f = await igmpFinding({
      listenForQueriers: async () => ({ heard: [] }),
      kernelIgmp: () =>
        'Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n1\tlo        :     1      V3\n7\tbench0    :     2      V2\n\t\t\t\t010000E0     1 0:00000000\t\t0\n',
    });
    assert.match(f!.message, /kernel heard an IGMPv2 querier on bench0/);
  });

  test('no raw socket: unknown, with what that risks and the fix', async () => {
    const f = await igmpFinding({ listenForQueriers: async () => ({ heard: [], error: 'a raw IGMP socket needs root or CAP_NET_RAW (EPERM)' }) });
    assert.equal(f?.level, 'unknown');
    assert.match(
      f!.message,
      /could not listen for IGMP queriers on bench0: a raw IGMP socket needs root or CAP_NET_RAW \(EPERM\); a switch with IGMP snooping/,
    );
    assert.match(f!.fix ?? '', /CAP_NET_RAW/);
  });

  test('igmpListenMs 0 skips the check', async () => {
    assert.equal(await igmpFinding({ igmpListenMs: 0, listenForQueriers: async () => assert.fail('no listen') }), undefined);
  });
});
