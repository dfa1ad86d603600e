// Secure Boot in proxy mode, with Debian's signed chain (shim, then the signed network
// GRUB): where it breaks, and that the host says why for that PC.
//
// 1. PXE: shim and GRUB come from bootbench by TFTP, then GRUB 2.06 asks the office DHCP
//    server's next-server (from the ACK the firmware kept) for its files. A listener on the
//    office's TFTP port shows GRUB's requests arriving there; bootbench, which sees the
//    office ACK on the bench NIC, must name that next-server in its diagnosis.
// 2. UEFI HTTP boot: shim and GRUB come over HTTP, then GRUB (which has no HTTP client)
//    asks nobody and stops at its prompt; the diagnosis must say so.
// Neither can be fixed from bootbench's side without answering for the office server's
// address: docs/decisions/ has the details.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { OFFICE_ADDRESS, SERVER_ADDRESS, labUnavailableReason, logTail, type ClientKind, type ClientResult } from './boot-lab.js';
import { Scenario, assertEventForMac, scenarioSkipReason } from './scenario.js';
import { diagnoseBoot } from '../../main/api/boot-diagnosis.js';
import type { BootEvent } from '../../main/core/events.js';

const SHIM = '/usr/lib/shim/shimx64.efi.signed';
const GRUB_NET = '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed';
const clients: ClientKind[] = ['uefi-secure', 'uefi-secure-http'];
const PXE = 0;
const HTTP = 1;
const skip = scenarioSkipReason({ clients, office: true, needsBootbench: true }) ?? labUnavailableReason({ kinds: clients, files: [SHIM, GRUB_NET] });

// Prints each TFTP read request the office address receives; it never answers.
const OFFICE_TFTP_LISTENER = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => { if (m.readUInt16BE(0) === 1) console.log('RRQ ' + m.subarray(2, m.indexOf(0, 2)).toString() + ' from ' + r.address); });
s.bind(69, () => console.log('office TFTP listener ready'));
`;

if (skip) test('Secure Boot chain in proxy mode beside the office server', { skip }, () => {});
else
  describe('Secure Boot chain in proxy mode beside the office server', () => {
    const scenario = new Scenario({
      name: 'Secure Boot in proxy mode',
      mode: 'proxy',
      office: true,
      clients,
      needsBootbench: true,
      rootFiles: { 'shimx64.efi': SHIM, 'grubx64.efi': GRUB_NET, 'grub/grub.cfg': Buffer.from('echo BOOTBENCH-GRUB-OK\nhalt\n') },
      boot: { uefi64: 'shimx64.efi', http64: 'shimx64.efi' },
    });
    const officeRequests: string[] = [];
    // Each client is powered off once it has shown what it does: GRUB retries for minutes.
    const stopWhen: Record<number, (serial: string) => boolean> = {
      [PXE]: () => officeRequests.some((r) => /^RRQ \/?grub\//.test(r)),
      [HTTP]: (serial) => /grub> /.test(serial),
    };
    let watcher: NodeJS.Timeout | undefined;
    before(async () => {
      await scenario.start();
      const lab = scenario.lab!;
      lab.spawn('office-tftp-listener', lab.officeNs!, process.execPath, ['-e', OFFICE_TFTP_LISTENER], {
        onLine: (line) => {
          if (line.startsWith('RRQ ')) officeRequests.push(line);
        },
      });
      watcher = setInterval(() => {
        scenario.clients.forEach((client, i) => {
          if (stopWhen[i]?.(readSerial(client.serialFile))) client.stop();
        });
      }, 500);
    });
    after(async () => {
      clearInterval(watcher);
      await scenario.stop();
    });

    function diagnosisFor(result: ClientResult) {
      return diagnoseBoot(scenario.events().filter((e) => e.mac === result.mac) as unknown as BootEvent[]);
    }

    function askedUsForGrubFiles(result: ClientResult): string[] {
      return scenario
        .events()
        .filter((e) => e.mac === result.mac && /^(tftp|http)\./.test(e.type) && /(^|\/)grub\/|grub\.cfg/.test(String(e.file ?? '')))
        .map((e) => `${e.type} ${String(e.file)}`);
    }

    test('PXE: GRUB asks the office server for its files, and the diagnosis names that server', async (t) => {
      const result = await scenario.result(PXE);
      t.diagnostic(
        `uefi-secure: GRUB asked the office server (client powered off then) after ${(result.elapsedMs / 1000).toFixed(1)} s: ${officeRequests[0] ?? 'none'}`,
      );
      assert.ok(
        officeRequests.some((r) => /^RRQ \/?grub\//.test(r)),
        `GRUB's TFTP requests did not reach the office server ${OFFICE_ADDRESS} (seen there: ${JSON.stringify(officeRequests)})\n${scenario.failureReport(result)}`,
      );
      assertEventForMac(scenario, result, 'tftp.done', 'grubx64.efi');
      assert.deepEqual(askedUsForGrubFiles(result), [], 'GRUB asked bootbench after all: then proxy mode works and this test is out of date');
      const ack = assertEventForMac(scenario, result, 'dhcp.other-ack');
      assert.equal(ack.server, OFFICE_ADDRESS, JSON.stringify(ack));
      const d = diagnosisFor(result);
      t.diagnostic(`diagnosis: ${d.message} / ${d.hint}`);
      assert.equal(d.level, 'problem', JSON.stringify(d));
      assert.match(d.message, new RegExp(`asks ${String(ack.nextServer ?? 'nobody').replace(/\./g, '\\.')}`));
      assert.match(d.message, new RegExp(`other DHCP server \\(${OFFICE_ADDRESS.replace(/\./g, '\\.')}\\)`));
      assert.match(d.hint!, new RegExp(`to ${SERVER_ADDRESS.replace(/\./g, '\\.')}`));
    });

    test('UEFI HTTP boot: GRUB comes over HTTP, asks nobody and stops at its prompt; the diagnosis says so', async (t) => {
      const result = await scenario.result(HTTP);
      t.diagnostic(`uefi-secure-http: GRUB prompt after ${(result.elapsedMs / 1000).toFixed(1)} s`);
      assert.match(result.serial, /grub> /, `GRUB did not stop at its prompt\n${logTail(result.serial, 30)}`);
      assertEventForMac(scenario, result, 'http.done', 'shimx64.efi');
      assertEventForMac(scenario, result, 'http.done', 'grubx64.efi');
      assert.deepEqual(askedUsForGrubFiles(result), []);
      const d = diagnosisFor(result);
      t.diagnostic(`diagnosis: ${d.message}`);
      assert.match(d.message, /UEFI HTTP boot: GRUB was loaded over HTTP and stopped at its prompt/, JSON.stringify(d));
    });
  });

function readSerial(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return '';
  }
}
