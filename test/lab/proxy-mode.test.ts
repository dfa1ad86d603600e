// Real firmware, proxy mode: an office DHCP server hands out addresses, bootbench only
// adds the boot information (Proxy DHCP on 67, boot server on 4011, TFTP).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { summarizeEvent } from '../../main/api/boot-diagnosis.js';
import type { BootEvent } from '../../main/core/events.js';
import { labServerKind, type ClientKind } from './boot-lab.js';
import { Scenario, assertBootServerAnswered, assertEventForMac, assertRanMarker, describeTime, scenarioSkipReason } from './scenario.js';

const clients: ClientKind[] = ['bios', 'uefi', 'uefi-ipxe'];
const skip = scenarioSkipReason({ clients, office: true });

if (skip) test('proxy mode beside an office DHCP server', { skip }, () => {});
else
  describe('proxy mode beside an office DHCP server', () => {
    const scenario = new Scenario({ name: 'proxy mode', mode: 'proxy', office: true, clients });
    before(() => scenario.start());
    after(() => scenario.stop());

    clients.forEach((kind, index) => {
      test(`${kind} client runs the marker NBP served by TFTP`, async (t) => {
        const result = await scenario.result(index);
        t.diagnostic(describeTime(result, undefined, scenario));
        assertRanMarker(scenario, result);
        assertEventForMac(scenario, result, 'proxy.offer');
        const file = kind === 'bios' ? 'marker.0' : 'marker.efi';
        assertEventForMac(scenario, result, 'tftp.done', file);
        if (assertBootServerAnswered(scenario, result)) t.diagnostic(`${kind} asked the boot server on 4011 and got pxe.ack`);
      });
    });

    test('EDK2 PxeBcDxe asks the boot server on 4011 and gets pxe.ack with its MAC', async (t) => {
      if (labServerKind() !== 'bootbench') return t.skip('needs bootbench --log json events');
      const result = await scenario.result(clients.indexOf('uefi'));
      assertRanMarker(scenario, result);
      assertEventForMac(scenario, result, 'pxe.ack');
    });

    test("the clients' REQUESTs to the office server are left to it without a warning", async (t) => {
      if (labServerKind() !== 'bootbench') return t.skip('needs bootbench --log json events');
      const macs = new Set<string | undefined>();
      for (const index of clients.keys()) macs.add((await scenario.result(index)).mac);
      const toOffice = scenario.events().filter((e) => e.type === 'dhcp.ignored' && macs.has(e.mac) && /for DHCP server/.test(String(e.reason)));
      assert.ok(toOffice.length > 0, 'the clients took their addresses from the office server, so bootbench saw their REQUESTs');
      for (const e of toOffice) assert.equal(e.expected, true, JSON.stringify(e));
      const warned = scenario
        .events()
        .filter((e) => e.type === 'dhcp.ignored' && macs.has(e.mac))
        .map((e) => summarizeEvent(e as BootEvent))
        .filter((line) => line.level !== 'info');
      assert.deepEqual(
        warned.map((line) => line.summary),
        [],
      );
    });
  });
