// Four real-firmware clients booting at once, in proxy mode and in full-DHCP mode. Two
// of them are EDK2 PxeBcDxe, which collects offers for ~4 s before it requests: a DHCP
// server that does not hold an offered address hands it to the next client meanwhile
// and NAKs the slow one (dnsmasq did exactly that in this lab).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ClientKind, labServerKind } from './boot-lab.js';
import { Scenario, assertEventForMac, assertRanMarker, describeTime, scenarioSkipReason } from './scenario.js';

const clients: ClientKind[] = ['bios', 'uefi', 'uefi-ipxe', 'uefi'];

for (const mode of ['proxy', 'dhcp'] as const) {
  const office = mode === 'proxy';
  const name = `4 clients at once, ${mode === 'proxy' ? 'proxy mode' : 'full-DHCP mode'}`;
  const skip = scenarioSkipReason({ clients, office });
  if (skip) test(name, { skip }, () => {});
  else
    describe(name, () => {
      const scenario = new Scenario({ name, mode, office, clients });
      before(() => scenario.start());
      after(() => scenario.stop());

      test('all four run their marker NBP, each transfer logged with its own MAC', async (t) => {
        const results = await Promise.all(clients.map((_, i) => scenario.result(i)));
        for (const r of results) t.diagnostic(describeTime(r, undefined, scenario));
        const failures: string[] = [];
        for (const r of results) {
          try {
            assertRanMarker(scenario, r);
            assertEventForMac(scenario, r, 'tftp.done', r.kind === 'bios' ? 'marker.0' : 'marker.efi');
            if (mode === 'dhcp') assertEventForMac(scenario, r, 'dhcp.lease');
          } catch (err) {
            failures.push((err as Error).message);
          }
        }
        assert.equal(failures.length, 0, failures.join('\n\n'));
        if (mode === 'dhcp' && labServerKind() === 'bootbench') {
          const leases = new Map<string, string>();
          for (const e of scenario.events()) if (e.type === 'dhcp.lease' && e.mac && e.ip) leases.set(e.mac, String(e.ip));
          assert.equal(new Set(leases.values()).size, leases.size, `two clients share an address: ${JSON.stringify([...leases])}`);
        }
      });
    });
}
