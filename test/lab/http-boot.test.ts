// UEFI HTTP boot with real firmware: OVMF's HttpBootDxe ("UEFI HTTPv4", vendor class
// HTTPClient:Arch:00016) is the client's only network boot option. It gets a URL from
// bootbench (full DHCP, or a proxy offer beside the office DHCP server) and fetches the
// file itself over HTTP: the marker EFI program directly, or Debian's ipxe.efi, which
// then does DHCP again as iPXE, runs the --ipxe-script and chains the marker.
// The host's diagnosis (what the Timeline shows) must call it an HTTP boot.
// With UEFI HTTP boot turned off in the stored settings, the same client is seen asking
// and gets no offer (full DHCP: not even an address), and the diagnosis says why.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IPXE_EFI, SERVER_ADDRESS, labUnavailableReason, type ClientKind } from './boot-lab.js';
import { Scenario, assertEventForMac, assertRanMarker, describeTime, scenarioSkipReason, type ScenarioOptions } from './scenario.js';
import { diagnoseBoot } from '../../main/api/boot-diagnosis.js';
import type { BootEvent } from '../../main/core/events.js';
import { openStore } from '../../main/store/index.js';

const clients: ClientKind[] = ['uefi-http'];
const HTTP_PORT = 8080;

const script = `#!ipxe
echo bootbench lab: iPXE script reached after UEFI HTTP boot
chain http://${SERVER_ADDRESS}:${HTTP_PORT}/marker.efi
`;

type Target = 'marker' | 'ipxe';

function scenarioOptions(mode: 'dhcp' | 'proxy', target: Target): ScenarioOptions {
  return {
    name: `UEFI HTTP boot (${mode}, ${target})`,
    mode,
    office: mode === 'proxy',
    clients,
    httpPort: HTTP_PORT,
    needsBootbench: true,
    // No uefi64 file: the client must come through the http64 class, not PXE.
    boot: { http64: target === 'marker' ? 'marker.efi' : 'ipxe.efi' },
    ...(target === 'ipxe' ? { rootFiles: { 'ipxe.efi': IPXE_EFI }, ipxeScript: script } : {}),
  };
}

function checkHttpBoot(scenario: Scenario, target: Target, result: Awaited<ReturnType<Scenario['result']>>): void {
  assertRanMarker(scenario, result);
  assertEventForMac(scenario, result, 'dhcp.received');
  const asked = scenario
    .events()
    .filter((e) => e.type === 'dhcp.received' && e.mac === result.mac)
    .map((e) => String(e.vendorClass ?? ''));
  // iPXE, once running, asks as PXEClient; the firmware before it must have asked as HTTPClient only.
  assert.ok(asked[0]?.startsWith('HTTPClient'), `the firmware's first DHCP message did not have vendor class HTTPClient: ${JSON.stringify(asked)}`);
  if (target === 'marker')
    assert.ok(!asked.some((v) => v.startsWith('PXEClient')), `the client also asked as a PXE client (${JSON.stringify(asked)}): PXE was meant to be off`);
  assertEventForMac(scenario, result, scenario.options.mode === 'proxy' ? 'proxy.offer' : 'dhcp.lease');
  if (target === 'ipxe') assertEventForMac(scenario, result, 'http.done', 'ipxe.efi');
  assertEventForMac(scenario, result, 'http.done', 'marker.efi');
  assert.ok(!scenario.events().some((e) => e.type.startsWith('tftp.') && e.mac === result.mac), 'the HTTP-boot client used TFTP');

  const events = scenario.events().filter((e) => e.mac === result.mac) as unknown as BootEvent[];
  const diagnosis = diagnoseBoot(events);
  assert.match(diagnosis.message, /HTTP boot/, `the diagnosis does not call it an HTTP boot: ${JSON.stringify(diagnosis)}`);
  assert.equal(diagnosis.level, 'ok', `diagnosis: ${JSON.stringify(diagnosis)}`);
}

// The five labs run three at a time: each has one PC, which would leave a core idle.
describe('UEFI HTTP boot', { concurrency: 3 }, () => {
  for (const mode of ['dhcp', 'proxy'] as const) {
    for (const target of ['marker', 'ipxe'] as const) {
      const name = `UEFI HTTP boot, ${mode === 'dhcp' ? 'full-DHCP mode' : 'proxy mode beside the office server'}: ${target === 'marker' ? 'the marker EFI program' : 'ipxe.efi, its script, then the marker'}`;
      const skip =
        scenarioSkipReason({ clients, office: mode === 'proxy', needsBootbench: true }) ??
        (target === 'ipxe' ? labUnavailableReason({ kinds: clients, files: [IPXE_EFI] }) : undefined);
      if (skip) {
        test(name, { skip }, () => {});
        continue;
      }
      describe(name, () => {
        const scenario = new Scenario(scenarioOptions(mode, target));
        before(() => scenario.start());
        after(() => scenario.stop());
        test('OVMF boots over HTTP only, and the host calls it an HTTP boot', async (t) => {
          const result = await scenario.result(0);
          t.diagnostic(describeTime(result, target === 'marker' ? 'the marker over HTTP boot' : 'the marker through HTTP-booted iPXE', scenario));
          checkHttpBoot(scenario, target, result);
        });
      });
    }
  }

  // HTTP boot off, in full-DHCP mode (the mode where an address would also be handed out).
  // OVMF repeats its DISCOVER after about 4 s without an offer: two DISCOVERs, both left
  // unanswered, are enough; the firmware's own give-up (about a minute) is not waited for.
  {
    const name = 'UEFI HTTP boot turned off (stored setting), full-DHCP mode: the HTTP-boot client asks and gets no offer';
    const skip = scenarioSkipReason({ clients, office: false, needsBootbench: true });
    if (skip) test(name, { skip }, () => {});
    else {
      describe(name, () => {
        const scenario = new Scenario({
          ...scenarioOptions('dhcp', 'marker'),
          name: 'UEFI HTTP boot off (dhcp)',
          prepareData: (dataDir) => {
            const store = openStore(dataDir);
            store.settings.set('httpBoot', { answer: false });
            store.close();
          },
        });
        before(() => scenario.start());
        after(() => scenario.stop());
        test('two HTTPClient DISCOVERs, each not answered on purpose, and the diagnosis names the setting', async () => {
          const mac = scenario.clients[0]!.mac;
          const mine = () => scenario.events().filter((e) => e.mac === mac);
          const discovers = () =>
            mine().filter((e) => e.type === 'dhcp.received' && e.msgType === 'DISCOVER' && String(e.vendorClass).startsWith('HTTPClient'));
          const answered = () => mine().filter((e) => ['dhcp.offer', 'dhcp.lease', 'proxy.offer', 'pxe.ack'].includes(e.type));
          const deadline = Date.now() + 150_000;
          while (discovers().length < 2 && answered().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
          const events = mine();
          assert.deepEqual(answered(), [], 'bootbench answered a client whose HTTP boot is turned off');
          assert.ok(discovers().length >= 2, `the client was not seen asking twice for HTTP boot within 150 s: ${JSON.stringify(events.slice(-10))}`);
          const ignored = events.filter((e) => e.type === 'dhcp.ignored');
          assert.ok(ignored.length >= 2 && ignored.every((e) => e.turnedOff === 'http-boot'), `not ignored as turned off: ${JSON.stringify(ignored)}`);
          assert.ok(!events.some((e) => e.type.startsWith('http.') || e.type.startsWith('tftp.')), 'the client fetched a file');
          const diagnosis = diagnoseBoot(events as unknown as BootEvent[]);
          assert.match(diagnosis.message, /^UEFI HTTP boot: not answered, because UEFI HTTP boot is turned off/, JSON.stringify(diagnosis));
        });
      });
    }
  }
});
