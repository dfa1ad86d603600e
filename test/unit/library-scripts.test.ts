import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  architectureFromIpxe,
  buildGrubBootstrapConfig,
  buildGrubConfig,
  buildIpxeBootstrap,
  buildIpxeScript,
  liveKernelArguments,
  type ScriptContext,
  type ScriptEntry,
} from '../../main/library/ipxe-script.js';
import { assignOnce, finishingPaths, nextAssignmentAfterFetch } from '../../main/library/boot-once.js';

const BASE = 'http://192.0.2.1:8080';
const uefi: ScriptContext = { httpBaseUrl: BASE, architecture: 'x64', mac: '52:54:00:12:34:56', wimbootUrl: `${BASE}/ipxe/wimboot` };
const bios: ScriptContext = { ...uefi, architecture: 'bios' };

const file = (arch: string, role: string, path: string) => ({ arch, role, path });

const kernelEntry: ScriptEntry = {
  id: 3,
  name: 'Debian rescue',
  kind: 'kernel',
  arguments: 'console=ttyS0 quiet',
  files: [
    file('bios', 'kernel', 'debian-rescue/vmlinuz'),
    file('bios', 'initrd', 'debian-rescue/initrd.gz'),
    file('uefi64', 'kernel', 'debian-rescue/vmlinuz'),
    file('uefi64', 'initrd', 'debian-rescue/initrd.gz'),
  ],
};
const nbpEntry: ScriptEntry = {
  id: 4,
  name: 'memtest',
  kind: 'nbp',
  arguments: '',
  files: [file('uefi64', 'nbp', '/srv/memtest64.efi'), file('bios', 'nbp', '/srv/memtest.0')],
};
const plainIso: ScriptEntry = { id: 5, name: 'Firmware update CD', kind: 'iso', arguments: '', files: [file('bios', 'iso', 'fw/fw update.iso')] };
const ubuntuIso: ScriptEntry = {
  id: 6,
  name: 'Ubuntu 24.04',
  kind: 'iso',
  arguments: 'quiet splash',
  files: [file('bios', 'iso', 'ubuntu/ubuntu-24.04.iso'), file('uefi64', 'iso', 'ubuntu/ubuntu-24.04.iso')],
  iso: { linux: { flavour: 'ubuntu-casper', kernel: 'casper/vmlinuz', initrds: ['casper/initrd'], rootImage: 'casper/filesystem.squashfs' } },
};
const debianLive: ScriptEntry = {
  id: 7,
  name: 'Debian live',
  kind: 'iso',
  arguments: '',
  files: [file('uefi64', 'iso', 'dl/debian-live.iso')],
  iso: {
    linux: {
      flavour: 'debian-live',
      kernel: 'live/vmlinuz-6.1.0-18-amd64',
      initrds: ['live/initrd.img-6.1.0-18-amd64'],
      rootImage: 'live/filesystem.squashfs',
    },
  },
};
const winpe: ScriptEntry = {
  id: 8,
  name: 'WinPE',
  kind: 'wim',
  arguments: '',
  files: ['bootmgr:bootmgr', 'bcd:BCD', 'boot-sdi:boot.sdi', 'wim:boot.wim'].map((s) => file('uefi64', s.split(':')[0], `winpe/${s.split(':')[1]}`)),
};
const winIso: ScriptEntry = {
  id: 9,
  name: 'Windows 11 PE ISO',
  kind: 'iso',
  arguments: '',
  files: [file('uefi64', 'iso', 'w/winpe.iso')],
  iso: { windows: { bcd: 'boot/bcd', bootSdi: 'boot/boot.sdi', bootWim: 'sources/boot.wim', bootmgr: 'bootmgr', udfOnly: false } },
};
const scriptEntry: ScriptEntry = { id: 10, name: 'netboot.xyz', kind: 'ipxe-script', arguments: '', files: [file('any', 'script', 'nx/menu.ipxe')] };
const localDisk: ScriptEntry = { id: 11, name: 'Local disk', kind: 'local-disk', arguments: '', files: [] };
const armOnly: ScriptEntry = { id: 12, name: 'ARM tool', kind: 'nbp', arguments: '', files: [file('arm64', 'nbp', 'arm/tool.efi')] };

function lines(script: string): string[] {
  return script.split('\n');
}

describe('iPXE scripts per entry kind', () => {
  test('bootstrap reports MAC, UUID, platform and build architecture', () => {
    const s = buildIpxeBootstrap(`${BASE}/`);
    assert.match(s, /^#!ipxe\n/);
    assert.ok(s.includes(`chain ${BASE}/ipxe/machine.ipxe?mac=\${netX/mac}&uuid=\${uuid}&platform=\${platform}&buildarch=\${buildarch} || goto failed`));
    assert.deepEqual(
      [
        architectureFromIpxe('pcbios', 'i386'),
        architectureFromIpxe('efi', 'x86_64'),
        architectureFromIpxe('efi', 'i386'),
        architectureFromIpxe('efi', 'arm64'),
      ],
      ['bios', 'x64', 'ia32', 'arm64'],
    );
  });

  test('kernel + initrd: named initrd, initrd= for EFI stubs, user arguments', () => {
    const s = buildIpxeScript({ action: 'entry', entry: kernelEntry }, uefi);
    assert.ok(s.startsWith('#!ipxe\n'));
    const l = lines(s);
    assert.ok(l.includes(`kernel ${BASE}/library/e3/vmlinuz initrd=initrd.gz console=ttyS0 quiet || goto failed`), s);
    assert.ok(l.includes(`initrd --name initrd.gz ${BASE}/library/e3/initrd.gz || goto failed`), s);
    assert.ok(l.indexOf('boot || goto failed') > l.findIndex((x) => x.startsWith('initrd ')));
    assert.ok(l.includes(':failed'));
  });

  test("NBP: chains the file of the client's architecture", () => {
    assert.ok(buildIpxeScript({ action: 'entry', entry: nbpEntry }, uefi).includes(`chain ${BASE}/library/e4/memtest64.efi || goto failed`));
    assert.ok(buildIpxeScript({ action: 'entry', entry: nbpEntry }, bios).includes(`chain ${BASE}/library/e4/memtest.0 || goto failed`));
    const arm = buildIpxeScript({ action: 'entry', entry: nbpEntry }, { ...uefi, architecture: 'arm64' });
    assert.match(arm, /memtest has no boot program for arm64 clients/);
  });

  test('plain ISO: sanboot over HTTP with the name URL-encoded', () => {
    const s = buildIpxeScript({ action: 'entry', entry: plainIso, bootOnce: true }, bios);
    assert.ok(s.includes(`sanboot ${BASE}/library/e5/fw%20update.iso || goto failed`), s);
    assert.match(s, /once, then local disk/);
  });

  test('Ubuntu live ISO: kernel and initrd from inside the ISO, casper url= filled in', () => {
    const s = buildIpxeScript({ action: 'entry', entry: ubuntuIso }, uefi);
    assert.ok(
      s.includes(
        `kernel ${BASE}/library/e6/iso/casper/vmlinuz initrd=initrd boot=casper netboot=url url=${BASE}/library/e6/ubuntu-24.04.iso ip=dhcp quiet splash || goto failed`,
      ),
      s,
    );
    assert.ok(s.includes(`initrd --name initrd ${BASE}/library/e6/iso/casper/initrd || goto failed`));
  });

  test('Debian live ISO: fetch= points at the squashfs inside the ISO', () => {
    const s = buildIpxeScript({ action: 'entry', entry: debianLive }, uefi);
    assert.ok(s.includes(`boot=live components fetch=${BASE}/library/e7/iso/live/filesystem.squashfs`), s);
    assert.ok(s.includes(`initrd --name initrd.img-6.1.0-18-amd64 ${BASE}/library/e7/iso/live/initrd.img-6.1.0-18-amd64`));
  });

  test('other live flavours get their own arguments', () => {
    const urls = { iso: 'http://s/x.iso', isoRoot: 'http://s/e1/iso', inner: (p: string) => `http://s/e1/iso/${p}` };
    assert.equal(
      liveKernelArguments({ flavour: 'systemrescue', kernel: 'k', initrds: [] }, urls),
      'archisobasedir=sysresccd archiso_http_srv=http://s/e1/iso/ ip=dhcp',
    );
    assert.equal(
      liveKernelArguments({ flavour: 'fedora', kernel: 'k', initrds: [], rootImage: 'LiveOS/squashfs.img' }, urls),
      'root=live:http://s/e1/iso/LiveOS/squashfs.img rd.live.image ip=dhcp',
    );
    assert.equal(liveKernelArguments({ flavour: 'fedora', kernel: 'k', initrds: [] }, urls), 'inst.repo=http://s/e1/iso ip=dhcp');
    assert.match(
      liveKernelArguments({ flavour: 'clonezilla', kernel: 'k', initrds: [], rootImage: 'live/filesystem.squashfs' }, urls),
      /^boot=live union=overlay .*fetch=http:\/\/s\/e1\/iso\/live\/filesystem.squashfs$/,
    );
    assert.equal(liveKernelArguments({ flavour: 'generic', kernel: 'k', initrds: [] }, urls), '');
  });

  test('Windows PE: wimboot with bootmgr, BCD, boot.sdi, boot.wim in that order', () => {
    const l = lines(buildIpxeScript({ action: 'entry', entry: winpe }, uefi));
    const start = l.indexOf(`kernel ${BASE}/ipxe/wimboot || goto failed`);
    assert.ok(start > 0);
    assert.deepEqual(l.slice(start + 1, start + 6), [
      `initrd --name bootmgr ${BASE}/library/e8/bootmgr bootmgr || goto failed`,
      `initrd --name BCD ${BASE}/library/e8/BCD BCD || goto failed`,
      `initrd --name boot.sdi ${BASE}/library/e8/boot.sdi boot.sdi || goto failed`,
      `initrd --name boot.wim ${BASE}/library/e8/boot.wim boot.wim || goto failed`,
      'boot || goto failed',
    ]);
  });

  test('Windows files inside an ISO are served from the ISO; without wimboot the script says why', () => {
    const s = buildIpxeScript({ action: 'entry', entry: winIso }, uefi);
    assert.ok(s.includes(`initrd --name boot.wim ${BASE}/library/e9/iso/sources/boot.wim boot.wim || goto failed`), s);
    const none = buildIpxeScript({ action: 'entry', entry: winpe }, { ...uefi, wimbootUrl: undefined });
    assert.match(none, /needs wimboot, which Debian does not package/);
    assert.ok(!none.includes('kernel '));
  });

  test('iPXE script entry chains it; local disk uses sanboot on BIOS and exit on UEFI', () => {
    assert.ok(buildIpxeScript({ action: 'entry', entry: scriptEntry }, bios).includes(`chain ${BASE}/library/e10/menu.ipxe || goto failed`));
    const l = lines(buildIpxeScript({ action: 'local-disk', reason: 'boot-once done' }, uefi));
    assert.ok(l.includes('iseq ${platform} pcbios && sanboot --no-describe --drive 0x80 ||'));
    assert.equal(l.at(-2), 'exit');
    assert.match(l.join('\n'), /boots from its local disk \(boot-once done\)/);
  });

  test('menu for unassigned machines: default, timeout, entries for other firmware shown but not selectable', () => {
    const s = buildIpxeScript({ action: 'menu', entries: [kernelEntry, armOnly, ubuntuIso, localDisk], defaultChoice: 6, timeoutSeconds: 15 }, uefi);
    const l = lines(s);
    assert.ok(l.includes('choose --default bb-e6 --timeout 15000 target || goto bb-local'), s);
    assert.ok(l.includes('item bb-e3 Debian rescue (kernel)'));
    assert.ok(l.includes('item --gap --   ARM tool'));
    assert.ok(!l.includes(':bb-e12'));
    assert.ok(l.includes(':bb-e6') && l.includes(':bb-e3') && l.includes(':bb-local'));
    assert.ok(l.includes('goto ${target}'));
    const noDefault = buildIpxeScript({ action: 'menu', entries: [kernelEntry], defaultChoice: 99, timeoutSeconds: 0 }, uefi);
    assert.ok(noDefault.includes('choose --default bb-local --timeout 0 target'));
  });

  test('names cannot inject script lines or variables', () => {
    const evil: ScriptEntry = { ...kernelEntry, name: 'x\nshell\n${net0/ip}' };
    const s = buildIpxeScript({ action: 'entry', entry: evil }, uefi);
    assert.ok(!lines(s).includes('shell'));
    assert.ok(!s.includes('${net0/ip}'));
  });
});

describe('grub.cfg for the Secure Boot chain', () => {
  const grubCtx = { serverAddress: '192.0.2.1', httpPort: 8080, mac: '52:54:00:12:34:56' };
  const chain: ScriptEntry = {
    id: 20,
    name: "Debian's signed kernel",
    kind: 'secure-boot-chain',
    arguments: 'console=ttyS0',
    files: [
      file('uefi64', 'shim', 'sb/shimx64.efi'),
      file('uefi64', 'grub', 'sb/grubx64.efi'),
      file('uefi64', 'kernel', 'sb/vmlinuz'),
      file('uefi64', 'initrd', 'sb/initrd.img'),
    ],
  };
  test('one entry: linux + initrd over TFTP (GRUB 2.06 has no HTTP port syntax), quoted title', () => {
    const s = buildGrubConfig({ action: 'entry', entry: chain }, grubCtx);
    const l = lines(s);
    assert.ok(l.includes('set timeout=0'));
    assert.ok(l.includes(`menuentry 'Debian'\\''s signed kernel' {`), s);
    assert.ok(l.includes('  linux (tftp,192.0.2.1)/library/e20/vmlinuz console=ttyS0'));
    assert.ok(l.includes('  initrd (tftp,192.0.2.1)/library/e20/initrd.img'));
    const http80 = buildGrubConfig({ action: 'entry', entry: chain }, { ...grubCtx, httpPort: 80 });
    assert.ok(http80.includes('linux (http,192.0.2.1)/library/e20/vmlinuz'));
  });
  test('live ISO through GRUB: kernel from inside the ISO, live arguments use HTTP URLs', () => {
    const s = buildGrubConfig({ action: 'entry', entry: ubuntuIso }, grubCtx);
    assert.ok(
      s.includes(
        '  linux (tftp,192.0.2.1)/library/e6/iso/casper/vmlinuz boot=casper netboot=url url=http://192.0.2.1:8080/library/e6/ubuntu-24.04.iso ip=dhcp quiet splash',
      ),
      s,
    );
    assert.ok(s.includes('  initrd (tftp,192.0.2.1)/library/e6/iso/casper/initrd'));
  });
  test('local disk exits to the firmware; WIM cannot go through GRUB and says so; menu default', () => {
    assert.match(buildGrubConfig({ action: 'local-disk' }, grubCtx), /\nexit\n$/);
    assert.match(buildGrubConfig({ action: 'entry', entry: winpe }, grubCtx), /cannot boot through GRUB under Secure Boot/);
    const menu = buildGrubConfig({ action: 'menu', entries: [kernelEntry, winpe, chain], defaultChoice: 20, timeoutSeconds: 7 }, grubCtx);
    assert.ok(!menu.includes('WinPE'), 'entries GRUB cannot start are left out of its menu');
    assert.ok(lines(menu).includes('set timeout=7') && lines(menu).includes('set default=1'), menu);
    assert.match(menu, /menuentry 'Local disk' \{\n {2}exit\n\}/);
    assert.equal(buildGrubBootstrapConfig().includes('configfile /grub/machines/${net_default_mac}.cfg'), true);
  });
});

test(
  'generated grub.cfg passes grub-script-check',
  { skip: spawnSync('grub-script-check', ['--version']).error ? 'grub-script-check is not installed (Debian package grub-common)' : undefined },
  () => {
    const grubCtx = { serverAddress: '192.0.2.1', httpPort: 8080 };
    const configs = [
      buildGrubConfig({ action: 'menu', entries: [kernelEntry, ubuntuIso, nbpEntry, localDisk], defaultChoice: 6, timeoutSeconds: 5 }, grubCtx),
      buildGrubConfig({ action: 'entry', entry: { ...kernelEntry, name: 'it\'s "quoted" {braces}' } }, grubCtx),
      buildGrubConfig({ action: 'local-disk' }, grubCtx),
      buildGrubBootstrapConfig(),
    ];
    for (const config of configs) {
      const r = spawnSync('grub-script-check', [], { input: config, encoding: 'utf8' });
      assert.equal(r.status, 0, `${r.stderr}\n${config}`);
    }
    const broken = spawnSync('grub-script-check', [], { input: 'menuentry x {\n', encoding: 'utf8' });
    assert.notEqual(broken.status, 0, 'the checker must reject an unterminated block');
  },
);

describe('boot once', () => {
  const once = { entryId: 3, bootOnce: true };
  test('fetching the last initrd completely ends the assignment: local disk next', () => {
    const t = nextAssignmentAfterFetch(once, kernelEntry, 'x64', { path: '/library/e3/initrd.gz', complete: true });
    assert.equal(t.changed, true);
    assert.deepEqual(t.assignment, { entryId: null, bootOnce: false, localDisk: true });
    assert.match(t.reason, /Debian rescue was booted once/);
  });
  test('the kernel alone, an aborted initrd, or a size probe do not', () => {
    assert.equal(nextAssignmentAfterFetch(once, kernelEntry, 'x64', { path: '/library/e3/vmlinuz', complete: true }).changed, false);
    const aborted = nextAssignmentAfterFetch(once, kernelEntry, 'x64', { path: '/library/e3/initrd.gz', complete: false });
    assert.equal(aborted.changed, false);
    assert.match(aborted.reason, /not fetched completely/);
  });
  test("a permanent assignment or another entry's file is left alone", () => {
    const permanent = nextAssignmentAfterFetch({ entryId: 3, bootOnce: false }, kernelEntry, 'x64', { path: '/library/e3/initrd.gz', complete: true });
    assert.equal(permanent.changed, false);
    assert.equal(
      nextAssignmentAfterFetch({ entryId: 4, bootOnce: true }, kernelEntry, 'x64', { path: '/library/e3/initrd.gz', complete: true }).changed,
      false,
    );
  });
  test('per kind: WIM ends on boot.wim, live ISO on its inner initrd, sanboot ISO on its first range read', () => {
    assert.equal(nextAssignmentAfterFetch({ entryId: 8, bootOnce: true }, winpe, 'x64', { path: '/library/e8/BOOT.WIM', complete: true }).changed, true);
    assert.equal(nextAssignmentAfterFetch({ entryId: 8, bootOnce: true }, winpe, 'x64', { path: '/library/e8/BCD', complete: true }).changed, false);
    assert.deepEqual(finishingPaths(ubuntuIso, 'x64').paths, ['/library/e6/iso/casper/initrd']);
    assert.equal(
      nextAssignmentAfterFetch({ entryId: 6, bootOnce: true }, ubuntuIso, 'x64', { path: '/library/e6/iso/casper/initrd', complete: true }).changed,
      true,
    );
    assert.equal(
      nextAssignmentAfterFetch({ entryId: 5, bootOnce: true }, plainIso, 'bios', { path: '/library/e5/fw%20update.iso', complete: false, range: true }).changed,
      true,
    );
    assert.equal(nextAssignmentAfterFetch({ entryId: 4, bootOnce: true }, nbpEntry, 'bios', { path: '/library/e4/memtest.0', complete: true }).changed, true);
    assert.equal(nextAssignmentAfterFetch({ entryId: 4, bootOnce: true }, nbpEntry, 'x64', { path: '/library/e4/memtest.0', complete: true }).changed, false);
  });
  test('group action sets boot-once for each machine once', () => {
    assert.deepEqual(assignOnce([1, 2, 2, 5], 7), [
      { machineId: 1, assignment: { entryId: 7, bootOnce: true } },
      { machineId: 2, assignment: { entryId: 7, bootOnce: true } },
      { machineId: 5, assignment: { entryId: 7, bootOnce: true } },
    ]);
  });
});
