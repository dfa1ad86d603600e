// `bootbench doctor`'s firewall findings (issue 9 item 5): the parsers against samples of
// each tool's output (test/fixtures/firewall, see its README), and checkFirewall with an
// injected command runner: a missing tool or an unknown output is an "unknown" finding.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  checkFirewall,
  describeNftRuleset,
  describeWindowsFirewall,
  parseMacAppBlocked,
  parseMacBlockAll,
  parseMacGlobalState,
  parseNetshProfilesState,
  parseWindowsFirewallJson,
  SOCKETFILTERFW,
  type CommandOutput,
  type CommandRunner,
} from '../../main/net/firewall.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'firewall');
const sample = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
const NODE = '/usr/local/bin/node';
const WIN_NODE = 'C:\\Program Files\\Bootbench\\Bootbench.exe';

const ok = (stdout: string): CommandOutput => ({ code: 0, stdout, stderr: '' });
const missing: CommandOutput = { code: null, stdout: '', stderr: '', missing: true };

/** Answers by the first argument that names a known command; records every call. */
function fakeRunner(answers: Record<string, CommandOutput>): CommandRunner & { calls: string[][] } {
  const calls: string[][] = [];
  const run = (async (file: string, args: string[]) => {
    calls.push([file, ...args]);
    for (const [key, out] of Object.entries(answers)) if ([file, ...args].join(' ').includes(key)) return out;
    return missing;
  }) as CommandRunner & { calls: string[][] };
  run.calls = calls;
  return run;
}

describe('Windows', () => {
  test('profiles and rules from the PowerShell JSON', () => {
    const parsed = parseWindowsFirewallJson(sample('windows-ps-allowed.json'))!;
    assert.deepEqual(
      parsed.profiles.map((p) => [p.name, p.enabled, p.defaultInboundAction, p.allowInboundRules]),
      [
        ['Domain', true, 'NotConfigured', true],
        ['Private', true, 'Block', true],
        ['Public', true, 'NotConfigured', true],
      ],
    );
    assert.equal(parsed.rules.length, 2);
    assert.equal(parseWindowsFirewallJson('not json'), undefined);
    assert.equal(parseWindowsFirewallJson('{"profiles":[]}'), undefined);
    // ConvertTo-Json writes a lone object for a single-element pipeline in some versions.
    assert.equal(parseWindowsFirewallJson('{"profiles":{"Name":"Public","Enabled":"False"},"rules":null}')?.profiles.length, 1);
  });

  test('on with an allow rule for the program: ok', () => {
    const f = describeWindowsFirewall(parseWindowsFirewallJson(sample('windows-ps-allowed.json'))!, WIN_NODE);
    assert.deepEqual(
      f.map((x) => x.level),
      ['ok'],
    );
    assert.match(f[0].message, /rule "Bootbench" lets/);
  });

  test('on with no rule: a warning whose fix adds one for the program', () => {
    const [f] = describeWindowsFirewall(parseWindowsFirewallJson(sample('windows-ps-on-no-rule.json'))!, WIN_NODE);
    assert.equal(f.level, 'warn');
    assert.match(f.message, /Domain, Private, Public.*no rule.*67.*69.*4011/);
    assert.match(f.fix!, /netsh advfirewall firewall add rule name="Bootbench" dir=in action=allow program="C:\\Program Files\\Bootbench\\Bootbench\.exe"/);
  });

  test('a block rule (what "Cancel" on the Windows prompt leaves) and block-all are errors', () => {
    const f = describeWindowsFirewall(parseWindowsFirewallJson(sample('windows-ps-blocked.json'))!, WIN_NODE);
    assert.deepEqual(
      f.map((x) => x.level),
      ['error', 'error'],
    );
    assert.match(f[0].message, /every incoming connection on the Public profile/);
    assert.match(f[0].fix!, /Set-NetFirewallProfile -Profile Public -AllowInboundRules True/);
    assert.match(f[1].message, /"node\.exe" blocks/);
    assert.match(f[1].fix!, /Remove-NetFirewallRule -DisplayName "node\.exe"/);
  });

  test('off everywhere: ok', () => {
    assert.deepEqual(
      describeWindowsFirewall(parseWindowsFirewallJson(sample('windows-ps-off.json'))!, WIN_NODE).map((x) => x.level),
      ['ok'],
    );
  });

  test('netsh fallback: English is read, other languages are not guessed', () => {
    assert.deepEqual(parseNetshProfilesState(sample('netsh-allprofiles-en.txt')), [
      { name: 'Domain', enabled: true },
      { name: 'Private', enabled: false },
      { name: 'Public', enabled: true },
    ]);
    assert.equal(parseNetshProfilesState(sample('netsh-allprofiles-de.txt')), undefined);
  });

  test('checkFirewall: PowerShell, then netsh, then unknown', async () => {
    const viaPs = await checkFirewall({
      platform: 'win32',
      program: WIN_NODE,
      run: fakeRunner({ 'powershell.exe': ok(sample('windows-ps-on-no-rule.json')) }),
    });
    assert.equal(viaPs[0].level, 'warn');
    const run = fakeRunner({
      'powershell.exe': { code: 1, stdout: '', stderr: 'Get-NetFirewallProfile : The term is not recognized' },
      'netsh advfirewall': ok(sample('netsh-allprofiles-en.txt')),
    });
    const viaNetsh = await checkFirewall({ platform: 'win32', program: WIN_NODE, run });
    assert.equal(viaNetsh[0].level, 'warn');
    assert.match(viaNetsh[0].message, /on for the Domain, Public profiles.*could not be read/);
    assert.deepEqual(
      run.calls.map((c) => c[0]),
      ['powershell.exe', 'netsh'],
    );
    const localized = await checkFirewall({
      platform: 'win32',
      program: WIN_NODE,
      run: fakeRunner({ 'netsh advfirewall': ok(sample('netsh-allprofiles-de.txt')) }),
    });
    assert.equal(localized[0].level, 'unknown');
    assert.match(localized[0].message, /PowerShell is not installed.*unexpected format/);
    assert.ok(localized[0].fix);
  });
});

describe('macOS', () => {
  test('global state, block-all and per-app lines', () => {
    assert.equal(parseMacGlobalState(sample('macos-globalstate-off.txt')), 0);
    assert.equal(parseMacGlobalState(sample('macos-globalstate-on.txt')), 1);
    assert.equal(parseMacGlobalState(sample('macos-globalstate-blockall-old.txt')), 2);
    assert.equal(parseMacGlobalState(sample('macos-globalstate-blockall.txt')), 2);
    assert.equal(parseMacGlobalState('socketfilterfw: command not understood'), undefined);
    assert.equal(parseMacBlockAll(sample('macos-blockall-disabled.txt')), false);
    assert.equal(parseMacBlockAll(sample('macos-blockall-enabled.txt')), true);
    assert.equal(parseMacBlockAll(sample('macos-blockall-disabled-old.txt')), false);
    assert.equal(parseMacBlockAll('Block all ENABLED!'), true);
    assert.equal(parseMacBlockAll(''), undefined);
    assert.equal(parseMacAppBlocked(sample('macos-app-permitted.txt')), 'allowed');
    assert.equal(parseMacAppBlocked(sample('macos-app-blocked.txt')), 'blocked');
    assert.equal(parseMacAppBlocked(sample('macos-app-unlisted.txt')), undefined);
  });

  const mac = (global: string, blockAll: string, app: string) =>
    checkFirewall({
      platform: 'darwin',
      program: NODE,
      run: fakeRunner({ '--getglobalstate': ok(sample(global)), '--getblockall': ok(sample(blockAll)), '--getappblocked': ok(sample(app)) }),
    });

  test('off, allowed, blocked, block-all, not listed', async () => {
    assert.deepEqual(
      (await mac('macos-globalstate-off.txt', 'macos-blockall-disabled.txt', 'macos-app-blocked.txt')).map((f) => f.level),
      ['ok'],
    );
    assert.deepEqual(
      (await mac('macos-globalstate-on.txt', 'macos-blockall-disabled.txt', 'macos-app-permitted.txt')).map((f) => f.level),
      ['ok'],
    );
    const blocked = await mac('macos-globalstate-on.txt', 'macos-blockall-disabled.txt', 'macos-app-blocked.txt');
    assert.equal(blocked[0].level, 'error');
    assert.equal(blocked[0].fix?.startsWith(`sudo ${SOCKETFILTERFW} --unblockapp "${NODE}"`), true);
    for (const [g, b] of [
      ['macos-globalstate-on.txt', 'macos-blockall-enabled.txt'],
      ['macos-globalstate-blockall.txt', 'macos-blockall-disabled.txt'],
    ]) {
      const all = await mac(g, b, 'macos-app-permitted.txt');
      assert.equal(all[0].level, 'error', `${g} + ${b}`);
      assert.match(all[0].message, /blocks all incoming connections/);
      assert.match(all[0].fix!, /--setblockall off/);
    }
    const unlisted = await mac('macos-globalstate-on.txt', 'macos-blockall-disabled.txt', 'macos-app-unlisted.txt');
    assert.equal(unlisted[0].level, 'warn');
    assert.match(unlisted[0].fix!, /--add "\/usr\/local\/bin\/node"/);
  });

  test('socketfilterfw missing or odd: unknown', async () => {
    const gone = await checkFirewall({ platform: 'darwin', program: NODE, run: fakeRunner({}) });
    assert.equal(gone[0].level, 'unknown');
    assert.match(gone[0].message, /socketfilterfw is not installed/);
    const odd = await checkFirewall({ platform: 'darwin', program: NODE, run: fakeRunner({ '--getglobalstate': ok('Le coupe-feu est activé') }) });
    assert.equal(odd[0].level, 'unknown');
  });
});

describe('Linux (nftables)', () => {
  const nft = (name: string, nic = 'bench0') => describeNftRuleset(JSON.parse(sample(`nft-${name}.json`)), nic);

  test('a rule dropping UDP 67 and 69', () => {
    const [f] = nft('drop-ports');
    assert.equal(f.level, 'error');
    assert.match(f.message, /drops UDP 67 \(DHCP\), 69 \(TFTP\) arriving on bench0: rule \d+ in chain input of table inet filter/);
    assert.doesNotMatch(f.message, /4011/);
    assert.equal(
      f.fix,
      'as root: nft insert rule inet filter input iifname "bench0" udp dport { 67, 69, 4011 } accept (and the same in your firewall\'s saved configuration)',
    );
  });

  test('policy drop without an accept for the ports blocks all three; with one, ok', () => {
    const [f] = nft('policy-drop');
    assert.equal(f.level, 'error');
    assert.match(f.message, /67 \(DHCP\), 69 \(TFTP\), 4011 \(PXE boot server\).*the policy of chain input in table inet filter/);
    assert.deepEqual(
      nft('policy-drop-allowed').map((x) => x.level),
      ['ok'],
    );
    // The accept names bench0: on another NIC the policy drops.
    assert.equal(nft('policy-drop-allowed', 'eth1')[0].level, 'error');
  });

  test('with the HTTP port: a second finding for TCP when the rules drop it too', () => {
    const f = describeNftRuleset(JSON.parse(sample('nft-policy-drop.json')), 'bench0', 8080);
    assert.deepEqual(
      f.map((x) => x.level),
      ['error', 'error'],
    );
    assert.match(f[1].message, /drops TCP 8080 \(HTTP\) arriving on bench0/);
    assert.match(f[1].fix!, /iifname "bench0" tcp dport \{ 8080 \} accept/);
    // A UDP-only drop leaves TCP alone: no second finding.
    assert.equal(describeNftRuleset(JSON.parse(sample('nft-drop-ports.json')), 'bench0', 8080).length, 1);
    assert.deepEqual(
      describeNftRuleset(JSON.parse(sample('nft-policy-drop-allowed.json')), 'bench0', 8080).map((x) => x.level),
      ['ok', 'error'],
    );
  });

  test('a drop for another NIC (wildcard name, port range) does not count', () => {
    assert.deepEqual(
      nft('other-nic').map((x) => x.level),
      ['ok'],
    );
    assert.equal(nft('other-nic', 'wlan0')[0].level, 'error');
  });

  test('rejects in a chain reached by jump', () => {
    const [f] = nft('jump-reject');
    assert.equal(f.level, 'error');
    assert.match(f.message, /rejects UDP 69 \(TFTP\), 4011 \(PXE boot server\).*chain user_input of table inet fw/);
  });

  test('an accept doctor cannot evaluate (source address) makes it a warning that says so', () => {
    const [f] = nft('uncertain');
    assert.equal(f.level, 'warn');
    assert.match(f.message, /unless rule \d+ in chain input of table inet filter, which doctor cannot evaluate, accepts them/);
  });

  test('every table must accept: an accept in one does not outvote a drop in another', () => {
    const [f] = nft('two-tables');
    assert.equal(f.level, 'error');
    assert.match(f.message, /UDP 67 \(DHCP\).*table ip b/);
  });

  test('checkFirewall: no rules, not root, nft missing, not JSON', async () => {
    assert.equal((await checkFirewall({ platform: 'linux', interfaceName: 'bench0', run: fakeRunner({ nft: ok('') }) }))[0].level, 'ok');
    const denied = await checkFirewall({
      platform: 'linux',
      run: fakeRunner({ nft: { code: 1, stdout: '', stderr: 'Error: Operation not permitted (you must be root)' } }),
    });
    assert.equal(denied[0].level, 'unknown');
    assert.match(denied[0].fix!, /as root/);
    const gone = await checkFirewall({ platform: 'linux', run: fakeRunner({}) });
    assert.equal(gone[0].level, 'unknown');
    assert.match(gone[0].message, /nft is not installed/);
    assert.equal((await checkFirewall({ platform: 'linux', run: fakeRunner({ nft: ok('table inet filter {') }) }))[0].level, 'unknown');
    assert.equal((await checkFirewall({ platform: 'linux', run: fakeRunner({ nft: ok('{"other": 1}') }) }))[0].level, 'unknown');
  });

  test('a runner that throws is an unknown finding, not a crash', async () => {
    const [f] = await checkFirewall({
      platform: 'linux',
      run: async () => {
        throw new Error('spawn EAGAIN');
      },
    });
    assert.equal(f.level, 'unknown');
    assert.match(f.message, /spawn EAGAIN/);
  });
});
