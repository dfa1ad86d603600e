// Real firmware, full-DHCP mode: no other DHCP server; bootbench leases addresses from
// its pool and names the boot file itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ClientKind, labServerKind } from './boot-lab.js';
import { FULL_DHCP_POOL, Scenario, assertEventForMac, assertRanMarker, describeTime, scenarioSkipReason } from './scenario.js';

const clients: ClientKind[] = ['bios', 'uefi', 'uefi-ipxe'];
const skip = scenarioSkipReason({ clients, office: false });

function inPool(ip: string): boolean {
  const last = (a: string): number => Number(a.split('.')[3]);
  return ip.startsWith('192.0.2.') && last(ip) >= last(FULL_DHCP_POOL.first) && last(ip) <= last(FULL_DHCP_POOL.last);
}

if (skip) test('full-DHCP mode', { skip }, () => {});
else
  describe('full-DHCP mode', () => {
    const scenario = new Scenario({ name: 'full-DHCP mode', mode: 'dhcp', office: false, clients });
    before(() => scenario.start());
    after(() => scenario.stop());

    clients.forEach((kind, index) => {
      test(`${kind} client gets a lease from the pool and runs the marker NBP`, async (t) => {
        const result = await scenario.result(index);
        t.diagnostic(describeTime(result, undefined, scenario));
        assertRanMarker(scenario, result);
        const lease = assertEventForMac(scenario, result, 'dhcp.lease');
        if (labServerKind() === 'bootbench') {
          const ip = String(lease.ip ?? lease.yiaddr ?? lease.address ?? '');
          assert.ok(inPool(ip), `dhcp.lease for ${result.mac} has ip ${ip}, outside ${FULL_DHCP_POOL.first}-${FULL_DHCP_POOL.last}: ${JSON.stringify(lease)}`);
        }
        assertEventForMac(scenario, result, 'tftp.done', kind === 'bios' ? 'marker.0' : 'marker.efi');
      });
    });

    test('every client got a different address', async (t) => {
      if (labServerKind() !== 'bootbench') return t.skip('needs bootbench --log json events');
      await scenario.result(0);
      const byMac = new Map<string, string>();
      for (const e of scenario.events()) if (e.type === 'dhcp.lease' && e.mac && e.ip) byMac.set(e.mac, String(e.ip));
      const ips = [...byMac.values()];
      assert.equal(new Set(ips).size, ips.length, `duplicate leases: ${JSON.stringify([...byMac])}`);
    });
  });
