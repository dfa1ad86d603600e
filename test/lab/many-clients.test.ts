// Four real-firmware clients booting at once in proxy mode (two of them EDK2 PxeBcDxe,
// which collects offers for 4 s and then talks to the boot server on 4011).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientKind } from './boot-lab.js';
import { Scenario, assertEventForMac, assertRanMarker, describeTime, scenarioSkipReason } from './scenario.js';

const clients: ClientKind[] = ['bios', 'uefi', 'uefi-ipxe', 'uefi'];
const skip = scenarioSkipReason({ clients, office: true });

if (skip) test('4 clients at once', { skip }, () => {});
else describe('4 clients at once', () => {
  const scenario = new Scenario({ name: '4 clients at once', mode: 'proxy', office: true, clients });
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
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    assert.equal(failures.length, 0, failures.join('\n\n'));
  });
});
