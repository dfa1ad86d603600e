// `bootbench doctor` says whether an IGMP querier is heard on the NIC and what Bootbench
// will do about it: from what a running host's listener recorded in the store when one
// listens on the NIC, else from its own few seconds of listening (the listen and
// /proc/net/igmp injected here; the real raw socket on a bridge whose querier is on and off
// is in test/integration/imaging-igmp-querier.test.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runDoctor, type DoctorOptions, type Finding } from '../../main/cli/doctor.js';
import type { NetInterface } from '../../main/net/index.js';
import { forgetIgmpListening, openStore, readIgmpListening, recordIgmpListening, recordIgmpQuerierHeard } from '../../main/store/index.js';
import { makeTempDir } from '../helpers/store-temp.js';

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
    hostIgmp: () => undefined,
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
    assert.match(
      f!.message,
      /^no IGMP querier heard on bench0 in doctor's own 5 s listen \(no running Bootbench host listens there\): Bootbench will send queries while it streams/,
    );
  });

  test('one heard: names it, and says Bootbench sends none', async () => {
    const f = await igmpFinding({ listenForQueriers: async () => ({ heard: ['192.0.2.254'] }) });
    assert.equal(f?.level, 'ok');
    assert.match(
      f!.message,
      /^IGMP querier 192\.0\.2\.254 heard on bench0 in doctor's own 5 s listen \(no running Bootbench host listens there\): .*Bootbench will send no queries/,
    );
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

  describe('a running host listens on the NIC: its record, not a listen of its own', () => {
    const MIN = 60_000;
    const host = (extra: object) => ({ interfaceName: 'bench0', pid: 4242, since: 1_000_000, ...extra });
    const noListen = async () => assert.fail('doctor listens itself although the host listens');

    test('a querier heard a minute ago: named, with when, and the host that heard it', async () => {
      const f = await igmpFinding({
        hostIgmp: () => host({ querier: '192.0.2.254', heardAt: 1_000_000 + 9 * MIN }),
        processAlive: (pid) => pid === 4242,
        now: () => 1_000_000 + 10 * MIN,
        listenForQueriers: noListen,
      });
      assert.equal(f?.level, 'ok');
      assert.match(
        f!.message,
        /^IGMP querier 192\.0\.2\.254 heard on bench0 60 s ago \(.+\) by the running Bootbench host \(process 4242\), listening on bench0 for 10 min \(since .+\): .*Bootbench sends no queries while it is heard$/,
      );
    });

    test('a querier last heard longer ago than the other-querier interval: gone, Bootbench queries', async () => {
      const f = await igmpFinding({
        hostIgmp: () => host({ querier: '192.0.2.254', heardAt: 1_000_000 + MIN }),
        processAlive: () => true,
        now: () => 1_000_000 + 10 * MIN,
        listenForQueriers: noListen,
      });
      assert.match(f!.message, /^IGMP querier 192\.0\.2\.254 last heard on bench0 9 min ago .*: it seems gone, so Bootbench sends queries while it streams/);
    });

    test('none heard in a long listen; none yet in a short one, which says a slow querier may not have asked', async () => {
      const long = await igmpFinding({ hostIgmp: () => host({}), processAlive: () => true, now: () => 1_000_000 + 30 * MIN, listenForQueriers: noListen });
      assert.match(
        long!.message,
        /^no IGMP querier heard on bench0 by the running Bootbench host \(process 4242\), listening on bench0 for 30 min \(since .+\): Bootbench sends queries/,
      );
      assert.doesNotMatch(long!.message, /may not have asked/);
      const short = await igmpFinding({ hostIgmp: () => host({}), processAlive: () => true, now: () => 1_000_000 + 20_000, listenForQueriers: noListen });
      assert.match(short!.message, /for 20 s .*\(a querier that asks every two minutes may not have asked yet\)/);
    });

    test('a record whose process is gone (a crashed host) is not believed: doctor listens itself and says so', async () => {
      let listened = false;
      const f = await igmpFinding({
        hostIgmp: () => host({ querier: '192.0.2.254', heardAt: 1_000_000 }),
        processAlive: () => false,
        listenForQueriers: async () => {
          listened = true;
          return { heard: [] };
        },
      });
      assert.ok(listened);
      assert.match(f!.message, /^no IGMP querier heard on bench0 in doctor's own 5 s listen \(no running Bootbench host listens there\)/);
    });

    test('read from the data folder: what the host recorded in its store (this process stands in for it), gone once it stops listening', async () => {
      const temp = makeTempDir('bootbench-doctor-igmp-');
      const data = temp.dir;
      try {
        assert.equal(readIgmpListening(data, 'bench0'), undefined, 'no database yet: nothing, and none is made');
        const store = openStore(data);
        try {
          recordIgmpListening(store.db, { interfaceName: 'bench0', pid: process.pid, since: Date.now() - 5 * MIN });
          recordIgmpQuerierHeard(store.db, { interfaceName: 'bench0', pid: process.pid, querier: '192.0.2.254', at: Date.now() - 30_000 });
          recordIgmpQuerierHeard(store.db, { interfaceName: 'bench0', pid: 1, querier: '192.0.2.9', at: Date.now() }); // not the listener's row
          const f = await igmpFinding({ hostIgmp: undefined, dataDir: data, listenForQueriers: noListen });
          assert.match(
            f!.message,
            new RegExp(
              `^IGMP querier 192\\.0\\.2\\.254 heard on bench0 30 s ago .* by the running Bootbench host \\(process ${process.pid}\\), listening on bench0 for 5 min`,
            ),
          );
          forgetIgmpListening(store.db, 'bench0', process.pid);
          assert.equal(readIgmpListening(data, 'bench0'), undefined);
        } finally {
          store.close();
        }
      } finally {
        temp.remove();
      }
    });
  });

  test('igmpListenMs 0 skips the check', async () => {
    assert.equal(await igmpFinding({ igmpListenMs: 0, listenForQueriers: async () => assert.fail('no listen') }), undefined);
  });
});
