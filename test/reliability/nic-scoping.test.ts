// Issue 9 item 4: NIC scoping with the whole host. `bootbench serve` runs in a namespace
// with two NICs and serves bench0 only. A PXE client on the other NIC (office0) gets no
// reply and sees no packet from a Bootbench port (nftables counts at the client's ingress);
// a client on bench0 boots (doctor --test-boot from the client side). The same after bench0
// goes down and comes back, and after bench0 is deleted and re-created (a USB NIC
// replugged: new ifindex), where the host must reopen its sockets by itself.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Lab, missingPrograms, netnsUnavailableReason, waitFor } from '../helpers/netns.js';
import { PROJECT_ROOT, ServeProcess } from '../helpers/serve-process.js';

const run = promisify(execFile);
const skip = netnsUnavailableReason() ?? missingPrograms('nft');
const CLI = join(PROJECT_ROOT, 'main', 'cli', 'bootbench.ts');
const OFFICE_PROBE = join(PROJECT_ROOT, 'test', 'reliability', 'office-probe.ts');

interface Finding {
  level: string;
  message: string;
}

describe('NIC scoping of the whole host (two NICs)', { skip }, () => {
  const lab = new Lab('bbnic');
  const dir = mkdtempSync(join(tmpdir(), 'bb-nic-'));
  const root = join(dir, 'root');
  let host = '';
  let bench = '';
  let office = '';
  let serve: ServeProcess;

  // Async (not lab.exec): the bench client's boot and the office probe run at once.
  const benchBoot = async (): Promise<Finding[]> => {
    let out: string;
    try {
      out = (
        await run('ip', ['netns', 'exec', bench, process.execPath, '--import', 'tsx', CLI, 'doctor', '--test-boot', '--interface', 'eth0', '--json'], {
          timeout: 60_000,
          cwd: PROJECT_ROOT,
        })
      ).stdout;
    } catch (err) {
      out = String((err as { stdout?: string }).stdout ?? '');
    }
    return JSON.parse(out) as Finding[];
  };
  const officeProbe = async (): Promise<{ answers: string[] }> =>
    JSON.parse(
      (
        await run('ip', ['netns', 'exec', office, process.execPath, '--import', 'tsx', OFFICE_PROBE, 'eth0', '198.18.0.1'], {
          timeout: 60_000,
          cwd: PROJECT_ROOT,
        })
      ).stdout
        .trim()
        .split('\n')
        .at(-1)!,
    );
  /** Packets from Bootbench's ports that reached the office client's NIC. */
  const officeCounters = (): number[] =>
    [...lab.exec(office, 'nft', ['list', 'table', 'netdev', 'bbwatch']).matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
  /** A client on bench0 boots, and the office client, probing meanwhile, gets nothing. */
  const assertScoped = async (when: string) => {
    const before = officeCounters();
    assert.equal(before.length, 3, 'the office NIC counters are in place');
    const [findings, { answers }] = await Promise.all([benchBoot(), officeProbe()]);
    assert.deepEqual(
      findings.filter((f) => f.level !== 'ok').map((f) => f.message),
      [],
      `${when}: ${JSON.stringify(findings)}`,
    );
    assert.equal(findings.length, 8, when);
    assert.deepEqual(answers, [], `${when}: the office client got answers`);
    const after = officeCounters();
    assert.deepEqual(after, before, `${when}: packets from Bootbench ports reached the office NIC (${before} -> ${after})`);
    assert.ok(!serve.events.some((e) => e.type === 'dhcp.received' && String(e.from ?? '').startsWith('198.18.')), `${when}: the host heard the office client`);
  };

  before(async () => {
    mkdirSync(root);
    writeFileSync(join(root, 'undionly.kpxe'), randomBytes(40_000));
    writeFileSync(join(root, 'ipxe.efi'), randomBytes(60_000));
    host = lab.namespace('h');
    bench = lab.namespace('b');
    office = lab.namespace('o');
    lab.veth(host, 'bench0', '192.0.2.1/24', bench, 'eth0', '192.0.2.10/24');
    lab.veth(host, 'office0', '198.18.0.1/24', office, 'eth0', '198.18.0.10/24');
    // Count, at the office client's NIC, every frame from a Bootbench port or to the DHCP client port.
    lab.exec(office, 'nft', ['-f', '-'], {
      input:
        [
          'table netdev bbwatch {',
          '  chain in { type filter hook ingress device eth0 priority 0;',
          '    udp sport { 67, 69, 4011 } counter',
          '    udp dport 68 counter',
          '    tcp sport 8080 tcp flags & (syn | ack) == syn | ack counter',
          '  }',
          '}',
        ].join('\n') + '\n',
    });
    serve = new ServeProcess(lab, host, [
      '--interface',
      'bench0',
      '--root',
      root,
      '--boot',
      'bios=undionly.kpxe',
      '--boot',
      'uefi64=ipxe.efi',
      '--data',
      join(dir, 'data'),
    ]);
    await serve.ready();
  });
  after(() => lab.destroy());

  test('a client on the chosen NIC boots; one on the other NIC gets nothing', async () => {
    await assertScoped('at start');
  });

  test('after bench0 goes down and comes back: still scoped, serving again by itself', async () => {
    lab.exec(host, 'ip', ['link', 'set', 'bench0', 'down']);
    await new Promise((r) => setTimeout(r, 3000));
    lab.exec(host, 'ip', ['link', 'set', 'bench0', 'up']);
    await waitFor(() => lab.exec(host, 'cat', ['/sys/class/net/bench0/operstate']).trim() === 'up', 10_000, 'bench0 up');
    await assertScoped('after link down/up');
  });

  test('after bench0 is deleted and re-created (new ifindex): the host reopens its sockets', async () => {
    lab.exec(host, 'ip', ['link', 'delete', 'bench0']);
    await new Promise((r) => setTimeout(r, 3000));
    lab.veth(host, 'bench0', '192.0.2.1/24', bench, 'eth0', '192.0.2.10/24');
    // The host polls the NIC every 2 s; give it time to notice and restart.
    await waitFor(
      () => serve.events.some((e) => e.type === 'host.warning' && /bench0/.test(String(e.message)) && /reopen|restart|back/i.test(String(e.message))),
      15_000,
      'the host to notice bench0 came back',
    );
    await new Promise((r) => setTimeout(r, 1000));
    await assertScoped('after re-creation');
  });
});
