// The iPXE chain: a firmware PXE client (EDK2) gets Debian's ipxe.efi by TFTP; iPXE
// then does DHCP again (user class iPXE), gets the --ipxe-script URL, and fetches the
// marker over HTTP. The BIOS client is iPXE already (QEMU's ROM), so it goes straight
// to the script.
import { after, before, describe, test } from 'node:test';
import { type ClientKind, IPXE_EFI, IPXE_UNDIONLY, SERVER_ADDRESS, labUnavailableReason } from './boot-lab.js';
import { Scenario, assertEventForMac, assertRanMarker, describeTime, scenarioSkipReason } from './scenario.js';

const clients: ClientKind[] = ['uefi', 'bios'];
const HTTP_PORT = 8080;
const skip = scenarioSkipReason({ clients, office: true, needsBootbench: true }) ?? labUnavailableReason({ kinds: clients, files: [IPXE_EFI, IPXE_UNDIONLY] });

// ${platform} is "efi" or "pcbios"; each gets the marker built for it.
const script = `#!ipxe
echo bootbench lab: iPXE script reached on \${platform}
iseq \${platform} efi && goto efi ||
chain http://${SERVER_ADDRESS}:${HTTP_PORT}/marker.0
:efi
chain http://${SERVER_ADDRESS}:${HTTP_PORT}/marker.efi
`;

if (skip) test('iPXE chain: TFTP iPXE, HTTP script, marker over HTTP', { skip }, () => {});
else
  describe('iPXE chain: TFTP iPXE, HTTP script, marker over HTTP', () => {
    const scenario = new Scenario({
      name: 'iPXE chain',
      mode: 'proxy',
      office: true,
      clients,
      rootFiles: { 'ipxe.efi': IPXE_EFI, 'undionly.kpxe': IPXE_UNDIONLY },
      boot: { bios: 'undionly.kpxe', uefi64: 'ipxe.efi' },
      ipxeScript: script,
      httpPort: HTTP_PORT,
      needsBootbench: true,
    });
    before(() => scenario.start());
    after(() => scenario.stop());

    test('EDK2 client: ipxe.efi by TFTP, then the script and marker.efi by HTTP', async (t) => {
      const result = await scenario.result(0);
      t.diagnostic(describeTime(result, undefined, scenario));
      assertRanMarker(scenario, result);
      assertEventForMac(scenario, result, 'tftp.done', 'ipxe.efi');
      assertEventForMac(scenario, result, 'http.done', 'marker.efi');
    });

    test('iPXE BIOS client: the script and marker.0 by HTTP', async (t) => {
      const result = await scenario.result(1);
      t.diagnostic(describeTime(result, undefined, scenario));
      assertRanMarker(scenario, result);
      assertEventForMac(scenario, result, 'http.done', 'marker.0');
    });
  });
