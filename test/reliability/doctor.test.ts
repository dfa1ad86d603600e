// Issue 9 items 5 and 6: `bootbench doctor` lists the other DHCP and PXE servers that
// answer a PXE DISCOVER on the NIC (an office dnsmasq handing out addresses, a dnsmasq
// Proxy DHCP), and `bootbench doctor --test-boot` plays a BIOS and a UEFI client against
// the running `bootbench serve` on the same machine: offer, 4011 ACK, TFTP size probe,
// download. Namespaces: a switch (bridge) joining the Bootbench machine, the office DHCP
// server and another PXE server; nothing leaves them. Also: the NIC-kind warnings and the
// firewall findings (a real nftables rule in the Bootbench namespace; Windows and macOS
// formats in test/unit/net-firewall.test.ts).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, missingPrograms, netnsUnavailableReason, waitFor } from '../helpers/netns.js';
import { PROJECT_ROOT, ServeProcess } from '../helpers/serve-process.js';
import { checkDataFolderSpace } from '../../main/store/index.js';
import { runDoctor } from '../../main/cli/doctor.js';
import type { NetInterface } from '../../main/net/index.js';
import type { CommandRunner } from '../../main/net/firewall.js';

const skip = netnsUnavailableReason() ?? missingPrograms('dnsmasq');
const CLI = join(PROJECT_ROOT, 'main', 'cli', 'bootbench.ts');

interface Finding {
  level: string;
  message: string;
  fix?: string;
}

describe('doctor: other servers on the NIC, and --test-boot', { skip }, () => {
  const lab = new Lab('bbdoc');
  const dir = mkdtempSync(join(tmpdir(), 'bb-doctor-'));
  const root = join(dir, 'root');
  const nbp = randomBytes(150_000);
  let host = '';
  let office = '';
  let other = '';
  let officeDhcp: ChildProcess | undefined;
  let otherPxe: ChildProcess | undefined;

  const doctor = (...args: string[]): Finding[] => {
    let out: string;
    try {
      out = lab.exec(host, process.execPath, ['--import', 'tsx', CLI, 'doctor', '--interface', 'bench0', '--json', ...args], { timeoutMs: 60_000 });
    } catch (err) {
      // doctor exits 1 when it found an error; its JSON is still on stdout.
      out = String((err as { stdout?: Buffer }).stdout ?? '');
    }
    return JSON.parse(out) as Finding[];
  };

  const dnsmasq = (ns: string, args: string[]): ChildProcess =>
    lab.spawn(ns, 'dnsmasq', [
      '--no-daemon',
      '--port=0',
      '--interface=eth0',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      '--conf-file=/dev/null',
      `--dhcp-leasefile=${join(dir, `${ns}.leases`)}`,
      '--log-dhcp',
      ...args,
    ]);

  before(async () => {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(root);
    writeFileSync(join(root, 'undionly.kpxe'), nbp);
    writeFileSync(join(root, 'ipxe.efi'), nbp.subarray(0, 90_000));
    const sw = lab.namespace('sw');
    host = lab.namespace('h');
    office = lab.namespace('o');
    other = lab.namespace('p');
    lab.switchOf(sw, [
      { ns: host, ifname: 'bench0', cidr: '192.0.2.1/24' },
      { ns: office, ifname: 'eth0', cidr: '192.0.2.254/24' },
      { ns: other, ifname: 'eth0', cidr: '192.0.2.99/24' },
    ]);
    // The office's ordinary DHCP server.
    officeDhcp = dnsmasq(office, ['--dhcp-range=192.0.2.100,192.0.2.150,255.255.255.0,1h']);
  });
  after(() => lab.destroy());

  test('lists the office DHCP server and another Proxy DHCP/PXE server, each with a fix', async () => {
    otherPxe = dnsmasq(other, [
      '--dhcp-range=192.0.2.0,proxy,255.255.255.0',
      '--pxe-service=x86PC,"Other PXE",pxelinux',
      '--pxe-service=X86-64_EFI,"Other PXE",grubx64.efi',
    ]);
    await new Promise((r) => setTimeout(r, 500));
    try {
      const findings = doctor();
      console.log(
        findings
          .filter((f) => /server/i.test(f.message))
          .map((f) => `${f.level} ${f.message}`)
          .join('\n'),
      );
      const officeFinding = findings.find((f) => f.message.includes('192.0.2.254'));
      assert.ok(officeFinding, `office DHCP server not listed: ${JSON.stringify(findings)}`);
      assert.equal(officeFinding.level, 'warn');
      assert.match(officeFinding.message, /offers 192\.0\.2\.1[0-5]\d/);
      assert.match(officeFinding.fix ?? '', /proxy/);
      const pxeFinding = findings.find((f) => f.message.includes('192.0.2.99'));
      assert.ok(pxeFinding, `other PXE server not listed: ${JSON.stringify(findings)}`);
      assert.equal(pxeFinding.level, 'error');
      assert.match(pxeFinding.message, /PXE\/proxy DHCP server/);
      assert.ok(pxeFinding.fix);
    } finally {
      otherPxe.kill('SIGTERM');
    }
  });

  test('--test-boot: BIOS and UEFI clients reach offer, 4011 ACK, size probe and download', async () => {
    const serve = new ServeProcess(lab, host, [
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
    try {
      await serve.ready();
      const findings = doctor('--test-boot');
      console.log(findings.map((f) => `${f.level} ${f.message}`).join('\n'));
      const expected = [
        'BIOS offer',
        'BIOS boot-server',
        'BIOS tftp-size',
        'BIOS tftp-download',
        'UEFI offer',
        'UEFI boot-server',
        'UEFI tftp-size',
        'UEFI tftp-download',
      ];
      assert.deepEqual(
        findings.map((f) => f.message.split(':')[0]),
        expected,
      );
      assert.deepEqual(
        findings.filter((f) => f.level !== 'ok'),
        [],
      );
      const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 16);
      assert.match(findings[3].message, new RegExp(`undionly\\.kpxe: ${nbp.length} bytes, sha256 ${sha(nbp)}`));
      assert.match(findings[7].message, new RegExp(`ipxe\\.efi: 90000 bytes, sha256 ${sha(nbp.subarray(0, 90_000))}`));
      // The host saw our clients as any other: a size probe and a finished transfer each.
      await waitFor(() => serve.events.filter((e) => e.type === 'tftp.done').length >= 2, 5000, 'two tftp.done');
      assert.ok(serve.events.filter((e) => e.type === 'tftp.probe').length >= 2);
    } finally {
      await serve.stop();
    }
  });

  test('--test-boot without a running host says which step failed', () => {
    const findings = doctor('--test-boot');
    assert.equal(findings[0].level, 'error');
    assert.match(findings[0].message, /^BIOS offer: no offer/);
    assert.match(findings[0].fix ?? '', /bootbench serve/);
    assert.ok(officeDhcp);
  });

  test('an nftables rule dropping TFTP on the NIC is named, with the rule that lets it in', (t) => {
    const noNft = missingPrograms('nft');
    if (noNft) return t.skip(noNft);
    lab.exec(host, 'nft', ['-f', '-'], {
      input: 'table inet bbdoc {\n chain input {\n  type filter hook input priority 0; policy accept;\n  iifname "bench0" udp dport 69 counter drop\n }\n}\n',
    });
    try {
      const findings = doctor();
      const firewall = findings.filter((f) => f.message.startsWith('firewall:'));
      console.log(firewall.map((f) => `${f.level} ${f.message}\n  fix: ${f.fix}`).join('\n'));
      assert.equal(firewall.length, 1, JSON.stringify(firewall));
      assert.equal(firewall[0].level, 'error');
      assert.match(firewall[0].message, /nftables drops UDP 69 \(TFTP\) arriving on bench0: rule \d+ in chain input of table inet bbdoc/);
      assert.match(firewall[0].fix ?? '', /nft insert rule inet bbdoc input iifname "bench0" udp dport \{ 67, 69, 4011 \} accept/);
    } finally {
      lab.exec(host, 'nft', ['delete', 'table', 'inet', 'bbdoc']);
    }
  });
});

// runDoctor itself, with the NIC and the firewall tools injected: no namespaces needed.
describe('doctor: NIC kind warnings and firewall findings (injected)', () => {
  const nic = (kind: NetInterface['kind']): NetInterface => ({
    name: kind === 'wifi' ? 'wlan0' : 'br-lab',
    mac: '02:00:00:00:00:01',
    ipv4: [{ address: '192.0.2.1', netmask: '255.255.255.0', prefixLength: 24 }],
    ipv6: [],
    up: true,
    kind,
    mtu: 1500,
  });
  const noNft: CommandRunner = async () => ({ code: null, stdout: '', stderr: '', missing: true });

  test('a Wi-Fi NIC and a virtual NIC are warned about, each with a fix', async () => {
    for (const [kind, pattern] of [
      ['wifi', /wlan0 is Wi-Fi/],
      ['virtual', /br-lab is a virtual NIC/],
    ] as const) {
      const findings = await runDoctor({ probeServers: false, resolveInterface: () => nic(kind), firewall: { platform: 'linux', run: noNft } });
      const warning = findings.find((f) => pattern.test(f.message));
      assert.ok(warning, JSON.stringify(findings));
      assert.equal(warning.level, 'warn');
      assert.ok(warning.fix && warning.fix.length > 10);
    }
    const wired = await runDoctor({ probeServers: false, resolveInterface: () => nic('wired'), firewall: false });
    assert.ok(!wired.some((f) => /Wi-Fi|virtual NIC/.test(f.message)));
  });

  test('the firewall is checked for the chosen NIC; a missing tool is "unknown", and doctor goes on', async () => {
    const asked: string[][] = [];
    const run: CommandRunner = async (file, args) => {
      asked.push([file, ...args]);
      return { code: 0, stdout: readFileSync(join(import.meta.dirname, '..', 'fixtures', 'firewall', 'nft-policy-drop.json'), 'utf8'), stderr: '' };
    };
    const findings = await runDoctor({ probeServers: false, resolveInterface: () => nic('wired'), firewall: { platform: 'linux', run } });
    const firewall = findings.filter((f) => f.message.startsWith('firewall:'));
    // The policy drops everything but SSH: the PXE ports and doctor's HTTP port each get a finding.
    assert.deepEqual(
      firewall.map((f) => f.level),
      ['error', 'error'],
      JSON.stringify(firewall),
    );
    assert.match(firewall[0].fix ?? '', /iifname "br-lab" udp dport \{ 67, 69, 4011 \}/);
    assert.match(firewall[1].fix ?? '', /iifname "br-lab" tcp dport \{ 8080 \}/);
    assert.deepEqual(asked, [['nft', '-j', 'list', 'ruleset']]);
    const unknown = await runDoctor({
      probeServers: false,
      resolveInterface: () => nic('wired'),
      firewall: { platform: 'darwin', run: noNft, program: '/Applications/Bootbench.app/Contents/MacOS/Bootbench' },
    });
    const mac = unknown.find((f) => f.message.startsWith('firewall:'));
    assert.equal(mac?.level, 'unknown');
    assert.ok(mac?.fix);
  });

  test('a nearly full disk under the data folder is a warning naming the folder and the fix', async () => {
    const space = (free: number) => (folder: string) => checkDataFolderSpace(folder, undefined, () => ({ bavail: free / 4096, bsize: 4096 }));
    const low = await runDoctor({
      probeServers: false,
      resolveInterface: () => nic('wired'),
      firewall: false,
      dataDir: '/srv/bootbench',
      dataFolderSpace: space(3 * 1024 * 1024),
    });
    const warning = low.find((f) => f.message.includes('/srv/bootbench'));
    assert.equal(warning?.level, 'warn', JSON.stringify(low));
    assert.match(warning.message, /only 3 MiB free/);
    assert.match(warning.fix ?? '', /free space on \/srv\/bootbench|--data/);
    const roomy = await runDoctor({
      probeServers: false,
      resolveInterface: () => nic('wired'),
      firewall: false,
      dataDir: '/srv/bootbench',
      dataFolderSpace: space(10 * 1024 ** 3),
    });
    assert.equal(roomy.find((f) => f.message.includes('/srv/bootbench'))?.level, 'ok');
    const real = await runDoctor({ probeServers: false, resolveInterface: () => nic('wired'), firewall: false, dataDir: '/definitely/not/here' });
    assert.equal(real.find((f) => f.message.includes('/definitely/not/here'))?.level, 'unknown');
  });

  test('a missing boot program is an error naming which PCs cannot boot and the one fix', async () => {
    const resources = mkdtempSync(join(tmpdir(), 'bb-doctor-resources-'));
    try {
      mkdirSync(join(resources, 'ipxe'));
      writeFileSync(join(resources, 'ipxe', 'undionly.kpxe'), 'bios ipxe');
      const findings = await runDoctor({
        probeServers: false,
        resolveInterface: () => nic('wired'),
        firewall: false,
        dataDir: '/srv/bootbench',
        resourcesDir: resources,
      });
      const bios = findings.find((f) => /BIOS PCs/.test(f.message));
      const uefi = findings.find((f) => /UEFI PCs/.test(f.message));
      assert.equal(bios?.level, 'ok', JSON.stringify(findings));
      assert.equal(uefi?.level, 'error');
      assert.match(uefi.message, /UEFI PCs cannot boot: the iPXE they are handed \(ipxe\/snponly\.efi\) is missing/);
      assert.match(uefi.fix ?? '', /sudo apt-get install ipxe.*npm run build:resources.*\/srv\/bootbench\/boot\/ipxe\/snponly\.efi/);
    } finally {
      rmSync(resources, { recursive: true, force: true });
    }
  });
});
