import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { checkPrivileges, detectPackaging, parseCapEff, kernelAtLeast, privilegeFix } from '../../main/net/privileges.js';

// CapEff of a root shell on a 5.x+ kernel (41 capabilities) and of an ordinary user.
const ROOT_STATUS = 'Name:\tnode\nUid:\t0\t0\t0\t0\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n';
const USER_STATUS = 'Name:\tnode\nCapEff:\t0000000000000000\n';
// Only cap_net_bind_service (bit 10) and cap_net_raw (bit 13): what setcap grants.
const SETCAP_STATUS = `CapEff:\t${((1n << 10n) | (1n << 13n)).toString(16).padStart(16, '0')}\n`;

test('root: nothing missing', () => {
  const report = checkPrivileges({ platform: 'linux', euid: 0, procStatus: ROOT_STATUS, unprivilegedPortStart: '1024\n', kernelRelease: '6.1.0-18-amd64' });
  assert.equal(report.ok, true);
  assert.deepEqual(report.problems, []);
  assert.deepEqual(report.capabilities, { netBindService: true, netRaw: true });
  assert.ok(report.ports.every((p) => p.allowed));
});

test('ordinary user: 67, 69 and 80 blocked, 4011 fine, SO_BINDTODEVICE fine on 5.7+', () => {
  const report = checkPrivileges({ platform: 'linux', euid: 1000, procStatus: USER_STATUS, unprivilegedPortStart: '1024', kernelRelease: '6.8.0' });
  assert.equal(report.ok, false);
  assert.deepEqual(
    report.ports.map((p) => [p.port, p.allowed]),
    [
      [67, false],
      [69, false],
      [4011, true],
      [80, false],
    ],
  );
  assert.equal(report.bindToDevice, true);
  assert.equal(report.problems.length, 1);
  assert.equal(
    report.problems[0]!.message,
    'Cannot bind ports 67 (DHCP / Proxy DHCP server), 69 (TFTP), 80 (HTTP): ports below 1024 need root or CAP_NET_BIND_SERVICE.',
  );
  assert.match(report.problems[0]!.fix, /setcap 'cap_net_bind_service,cap_net_raw=\+ep' \//);
});

test('ordinary user on an old kernel: SO_BINDTODEVICE needs CAP_NET_RAW too', () => {
  const report = checkPrivileges({ platform: 'linux', euid: 1000, procStatus: USER_STATUS, unprivilegedPortStart: '1024', kernelRelease: '5.4.0-150-generic' });
  assert.equal(report.bindToDevice, false);
  assert.equal(report.problems.length, 2);
  assert.match(report.problems[1]!.message, /SO_BINDTODEVICE\): kernel 5\.4\.0-150-generic needs root or CAP_NET_RAW/);
});

test('setcap-ed binary: capabilities without root', () => {
  const report = checkPrivileges({ platform: 'linux', euid: 1000, procStatus: SETCAP_STATUS, unprivilegedPortStart: '1024', kernelRelease: '4.19.0' });
  assert.equal(report.isRoot, false);
  assert.equal(report.ok, true);
});

test('root in a container: the capability set decides, not the uid', () => {
  const report = checkPrivileges({
    platform: 'linux',
    euid: 0,
    procStatus: 'CapEff:\t00000000a80425fb\n',
    unprivilegedPortStart: '1024',
    kernelRelease: '6.1.0',
  });
  // 0xa80425fb has bit 10 (0x400) set and bit 13 (0x2000) set: docker's default set.
  assert.equal(report.ok, true);
  const stripped = checkPrivileges({
    platform: 'linux',
    euid: 0,
    procStatus: 'CapEff:\t00000000a80421fb\n',
    unprivilegedPortStart: '1024',
    kernelRelease: '6.1.0',
  });
  assert.equal(stripped.ok, false);
});

test('sysctl lowered to 0: every port allowed without capabilities', () => {
  const report = checkPrivileges({ platform: 'linux', euid: 1000, procStatus: USER_STATUS, unprivilegedPortStart: '0', kernelRelease: '6.1.0' });
  assert.equal(report.ok, true);
});

test('macOS and Windows report no privilege problem, with a note', () => {
  for (const platform of ['darwin', 'win32'] as const) {
    const report = checkPrivileges({ platform, euid: 501 });
    assert.equal(report.ok, true);
    assert.equal(report.notes.length, 1);
  }
});

test('this process: consistent with its uid', { skip: process.platform !== 'linux' && 'Linux only' }, () => {
  const report = checkPrivileges();
  if (process.geteuid!() === 0) assert.equal(report.isRoot, true);
  assert.equal(typeof report.unprivilegedPortStart, 'number');
});

test('helpers', () => {
  assert.equal(parseCapEff(ROOT_STATUS), 0x1ffffffffffn);
  assert.equal(parseCapEff('nothing'), undefined);
  assert.equal(kernelAtLeast('5.7.0', 5, 7), true);
  assert.equal(kernelAtLeast('5.6.19', 5, 7), false);
  assert.equal(kernelAtLeast('6.0.0', 5, 7), true);
  assert.equal(kernelAtLeast('4.19.0', 5, 7), false);
});

test('how the host was started: read from what bootbench-host sets, else Electron or Node', () => {
  assert.deepEqual(detectPackaging({ BOOTBENCH_LAUNCHER: '/opt/Bootbench/bootbench-host' }, '/opt/Bootbench/bootbench', { electron: '41.0.0' } as never), {
    kind: 'launcher',
    launcher: '/opt/Bootbench/bootbench-host',
  });
  assert.deepEqual(
    detectPackaging(
      { BOOTBENCH_LAUNCHER: '/tmp/.mount_Bx/bootbench-host', BOOTBENCH_APPIMAGE: '/home/t/Bootbench.AppImage' },
      '/tmp/.mount_Bx/bootbench',
      {} as never,
    ),
    { kind: 'appimage', appImage: '/home/t/Bootbench.AppImage' },
  );
  assert.deepEqual(detectPackaging({}, '/src/node_modules/electron/dist/electron', { electron: '41.0.0' } as never), {
    kind: 'electron',
    program: '/src/node_modules/electron/dist/electron',
  });
  assert.deepEqual(detectPackaging({}, '/usr/bin/node', { node: '20.0.0' } as never), { kind: 'node', program: '/usr/bin/node' });
});

test('.deb: the fix grants the launcher its capabilities again, never the Electron binary', () => {
  const fix = privilegeFix('linux', { kind: 'launcher', launcher: '/opt/Bootbench/bootbench-host' });
  assert.match(fix, /sudo setcap cap_net_bind_service,cap_net_raw=p \/opt\/Bootbench\/bootbench-host/);
  assert.match(fix, /apt install --reinstall bootbench/);
  assert.doesNotMatch(fix, /\/opt\/Bootbench\/bootbench(?!-host)/);
  // The grant is the post-install's, word for word.
  const postinst = readFileSync(new URL('../../build/linux/after-install.sh', import.meta.url), 'utf8');
  assert.ok(postinst.includes("setcap 'cap_net_bind_service,cap_net_raw=p'"), 'after-install.sh grants the same set');
});

test('AppImage: no setcap (read-only squashfs); the port sysctl, kept across reboots', () => {
  const fix = privilegeFix('linux', { kind: 'appimage', appImage: '/home/t/Bootbench.AppImage' });
  assert.doesNotMatch(fix, /setcap/);
  assert.match(fix, /echo 'net\.ipv4\.ip_unprivileged_port_start=67' \| sudo tee \/etc\/sysctl\.d\/60-bootbench\.conf && sudo sysctl --system/);
  assert.match(fix, /\.deb/);
  // The launcher prints the same command when it starts inside an AppImage.
  const launcher = readFileSync(new URL('../../build/linux/bootbench-host.c', import.meta.url), 'utf8');
  assert.ok(launcher.includes("echo 'net.ipv4.ip_unprivileged_port_start=67' | sudo tee /etc/sysctl.d/60-bootbench.conf && sudo sysctl --system"));
});

test('plain Node (bootbench serve): root or setcap on the real Node, with the warning that comes with it', () => {
  const fix = privilegeFix('linux', { kind: 'node', program: '/usr/lib/node/bin/node' });
  assert.match(fix, /sudo setcap 'cap_net_bind_service,cap_net_raw=\+ep' \/usr\/lib\/node\/bin\/node/);
  assert.match(fix, /every script this Node runs/);
});

test('Electron run as Node without the launcher: never setcap on Electron', () => {
  const fix = privilegeFix('linux', { kind: 'electron', program: '/src/node_modules/electron/dist/electron' });
  assert.doesNotMatch(fix, /setcap/);
  assert.match(fix, /ip_unprivileged_port_start=67/);
});

test('the report carries the packaging-specific fix', () => {
  const report = checkPrivileges({
    platform: 'linux',
    euid: 1000,
    procStatus: USER_STATUS,
    unprivilegedPortStart: '1024',
    kernelRelease: '6.8.0',
    packaging: { kind: 'launcher', launcher: '/opt/Bootbench/bootbench-host' },
  });
  assert.match(report.problems[0]!.fix, /setcap cap_net_bind_service,cap_net_raw=p \/opt\/Bootbench\/bootbench-host/);
});
