import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { chooseBootFile, type BootClient, type BootDecision, type BootPolicyConfig, type MachineBootAssignment } from '../../main/pxe/boot-policy.js';
import { SAMPLE_UUID } from '../helpers/dhcp-clients.js';

const MAC = '52:54:00:aa:bb:01';
const OTHER_MAC = '52:54:00:aa:bb:02';

const boot = {
  bios: 'undionly.kpxe',
  uefi32: 'ipxe-i386.efi',
  uefi64: 'ipxe.efi',
  arm64: 'arm64/ipxe.efi',
  http64: 'http/ipxe.efi',
  httparm64: 'http://198.18.0.1/arm/ipxe.efi',
};

function config(extra: Partial<BootPolicyConfig> = {}): BootPolicyConfig {
  return { serverAddress: '192.0.2.1', httpBaseUrl: 'http://192.0.2.1:8080', boot, ...extra };
}

const assignments: Record<string, MachineBootAssignment> = {
  [MAC]: {
    name: 'bench-1',
    boot: { uefi64: 'machines/bench-1/shimx64.efi', bios: 'machines/bench-1/pxelinux.0' },
    ipxeScriptUrl: 'http://192.0.2.1:8080/m/bench-1.ipxe',
  },
  [SAMPLE_UUID]: { name: 'by-uuid', boot: { uefi64: 'uuid/grubx64.efi' } },
};
const lookupMachine = (mac: string, uuid?: string) => assignments[mac] ?? (uuid ? assignments[uuid] : undefined);
type Lookup = typeof lookupMachine;

/** The policy's settings and, as the DHCP service would find it, the client's assignment. */
function decide(c: BootClient, extra: Partial<BootPolicyConfig> = {}, lookup?: Lookup): BootDecision {
  return chooseBootFile(c, config(extra), lookup?.(c.mac, c.uuid));
}

function client(arch: number | undefined, opts: Partial<BootClient> = {}): BootClient {
  const vendor = arch === 16 || arch === 19 || arch === 15 ? 'HTTPClient' : 'PXEClient';
  return {
    mac: OTHER_MAC,
    arch,
    vendorClass: arch === undefined ? 'PXEClient' : `${vendor}:Arch:${String(arch).padStart(5, '0')}:UNDI:003000`,
    ipxe: false,
    ...opts,
  };
}

function summary(d: BootDecision): string {
  switch (d.kind) {
    case 'file':
      return `file ${d.file} ${d.vendorClass}`;
    case 'url':
      return `url ${d.url} ${d.vendorClass}`;
    case 'menu':
      return `menu ${d.items.map((i) => i.label).join('|')}`;
    case 'ignore':
      return 'ignore';
  }
}

describe('arch x user class x assignment table', () => {
  const script = 'http://192.0.2.1:8080/boot.ipxe';
  type Row = [name: string, client: BootClient, extra: Partial<BootPolicyConfig> & { lookupMachine?: Lookup }, expected: string];
  const rows: Row[] = [
    // Plain firmware, defaults.
    ['BIOS', client(0), {}, 'file undionly.kpxe PXEClient'],
    ['no option 93 = BIOS', client(undefined), {}, 'file undionly.kpxe PXEClient'],
    ['UEFI IA32', client(6), {}, 'file ipxe-i386.efi PXEClient'],
    ['UEFI x64 (7)', client(7), {}, 'file ipxe.efi PXEClient'],
    ['UEFI x64 (9)', client(9), {}, 'file ipxe.efi PXEClient'],
    ['ARM64', client(11), {}, 'file arm64/ipxe.efi PXEClient'],
    ['HTTP x64: relative file becomes a URL', client(16), {}, 'url http://192.0.2.1:8080/http/ipxe.efi HTTPClient'],
    ['HTTP ARM64: URL as given', client(19), {}, 'url http://198.18.0.1/arm/ipxe.efi HTTPClient'],
    [
      'HTTP x64 without its own file falls back to the uefi64 file over HTTP',
      client(16),
      { boot: { uefi64: 'ipxe.efi' } },
      'url http://192.0.2.1:8080/ipxe.efi HTTPClient',
    ],
    ['x86 UEFI HTTP (15) has no class', client(15), {}, 'ignore'],
    ['ARM32 UEFI (10) has no class', client(10), {}, 'ignore'],
    ['RISC-V (25) has no class', client(25), {}, 'ignore'],
    ['UEFI x64 with nothing configured', client(7), { boot: { bios: 'undionly.kpxe' } }, 'ignore'],
    ['BIOS PXE ROM given a URL cannot fetch it', client(0), { boot: { bios: 'http://192.0.2.1/x.kpxe' } }, 'ignore'],
    // iPXE.
    ['iPXE BIOS with a script', client(0, { ipxe: true, userClass: ['iPXE'] }), { ipxeScriptUrl: script }, `url ${script} PXEClient`],
    ['iPXE UEFI with a script', client(7, { ipxe: true }), { ipxeScriptUrl: script }, `url ${script} PXEClient`],
    [
      'iPXE BIOS without a script gets the TFTP NBP (lab BIOS client is the iPXE ROM)',
      client(0, { ipxe: true, userClass: ['iPXE'] }),
      {},
      'file undionly.kpxe PXEClient',
    ],
    [
      'iPXE without a script may fetch a URL file',
      client(0, { ipxe: true }),
      { boot: { bios: 'http://192.0.2.1/x.kpxe' } },
      'url http://192.0.2.1/x.kpxe PXEClient',
    ],
    [
      'iPXE HTTP-boot client with a script keeps HTTPClient',
      client(16, { ipxe: true }),
      { ipxeScriptUrl: '/boot.ipxe' },
      'url http://192.0.2.1:8080/boot.ipxe HTTPClient',
    ],
    // Assignments by MAC and by UUID.
    ['assigned by MAC, UEFI', client(7, { mac: MAC }), { lookupMachine }, 'file machines/bench-1/shimx64.efi PXEClient'],
    ['assigned by MAC, BIOS', client(0, { mac: MAC }), { lookupMachine }, 'file machines/bench-1/pxelinux.0 PXEClient'],
    ['assigned by MAC, ARM64 not overridden: default', client(11, { mac: MAC }), { lookupMachine }, 'file arm64/ipxe.efi PXEClient'],
    [
      'assigned by MAC, iPXE: machine script beats default',
      client(7, { mac: MAC, ipxe: true }),
      { lookupMachine, ipxeScriptUrl: script },
      'url http://192.0.2.1:8080/m/bench-1.ipxe PXEClient',
    ],
    ['assigned by UUID', client(7, { uuid: SAMPLE_UUID }), { lookupMachine }, 'file uuid/grubx64.efi PXEClient'],
    ['unassigned machine', client(7), { lookupMachine }, 'file ipxe.efi PXEClient'],
    ['machine set to ignore', client(7), { lookupMachine: () => ({ ignore: true, name: 'off' }) }, 'ignore'],
  ];
  for (const [name, c, { lookupMachine: lookup, ...extra }, expected] of rows) {
    test(name, () => {
      const d = decide(c, extra, lookup);
      assert.equal(summary(d), expected, d.reason);
      assert.ok(d.reason.length > 0);
    });
  }

  test('decisions name the machine and the class', () => {
    const d = decide(client(7, { mac: MAC }), {}, lookupMachine);
    assert.equal(d.machine, 'bench-1');
    assert.equal(d.bootClass, 'uefi64');
    assert.match(d.reason, /bench-1/);
  });

  test('an ignore says which flag to set', () => {
    const d = chooseBootFile(client(11), config({ boot: {} }));
    assert.match(d.reason, /--boot-arm64/);
  });
});

describe('menus', () => {
  const menu = [
    { label: 'Debian installer', file: 'debian/pxelinux.0' },
    { label: 'Memtest', file: { bios: 'memtest.bin', uefi64: 'memtest.efi' } },
    { label: 'Local disk' },
  ];

  test('more than one entry: a menu for PXE firmware on 67', () => {
    const d = chooseBootFile(client(0), config({ menu }));
    assert.equal(d.kind, 'menu');
    if (d.kind !== 'menu') return;
    assert.deepEqual(
      d.items.map((i) => [i.type, i.file]),
      [
        [0x8000, 'debian/pxelinux.0'],
        [0x8001, 'memtest.bin'],
        [0, undefined],
      ],
    );
    assert.equal(d.defaultItem.type, 0x8000);
  });

  test('one entry: no menu, just the file', () => {
    assert.equal(summary(chooseBootFile(client(0), config({ menu: [menu[0]] }))), 'file debian/pxelinux.0 PXEClient');
  });

  test('the boot item asked for on 4011 picks the entry, per class', () => {
    assert.equal(summary(chooseBootFile(client(7, { bootItemType: 0x8001 }), config({ menu }))), 'file memtest.efi PXEClient');
    assert.equal(summary(chooseBootFile(client(0, { bootItemType: 0x8001 }), config({ menu }))), 'file memtest.bin PXEClient');
    // Type 0 is EDK2's "no menu seen" request: the default entry.
    assert.equal(summary(chooseBootFile(client(7, { bootItemType: 0 }), config({ menu }))), 'file debian/pxelinux.0 PXEClient');
    assert.equal(summary(chooseBootFile(client(0, { bootItemType: 0x8009 }), config({ menu }))), 'ignore');
  });

  test('a machine menu beats the default one', () => {
    const d = decide(client(0, { mac: MAC }), { menu }, () => ({ menu: [{ label: 'Only', file: 'only.0' }] }));
    assert.equal(summary(d), 'file only.0 PXEClient');
  });

  test('HTTP boot gets no menu', () => {
    assert.equal(chooseBootFile(client(16), config({ menu })).kind, 'url');
  });
});

describe('chooseBootFile (property)', () => {
  test('never throws, always gives a reason, and boots only with a file, URL or menu', async () => {
    const fc = (await import('fast-check')).default;
    const input = fc.record({
      arch: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
      vendor: fc.constantFrom(undefined, 'PXEClient', 'HTTPClient', 'PXEClient:Arch:00007:UNDI:003000', 'MSFT 5.0'),
      ipxe: fc.boolean(),
      bootItemType: fc.option(fc.constantFrom(0, 0x8000, 0x8001, 0x8005, 7), { nil: undefined }),
      menu: fc.option(
        fc.array(fc.record({ label: fc.string({ maxLength: 30 }), file: fc.option(fc.constantFrom('a.0', 'http://192.0.2.1/x.efi'), { nil: undefined }) }), {
          maxLength: 4,
        }),
        { nil: undefined },
      ),
      script: fc.option(fc.constantFrom('/boot.ipxe', 'http://192.0.2.1/s.ipxe'), { nil: undefined }),
      withBoot: fc.boolean(),
    });
    fc.assert(
      fc.property(input, (i) => {
        const d = chooseBootFile(
          { mac: OTHER_MAC, arch: i.arch, vendorClass: i.vendor, ipxe: i.ipxe, bootItemType: i.bootItemType },
          config({ boot: i.withBoot ? boot : {}, menu: i.menu, ipxeScriptUrl: i.script }),
        );
        assert.ok(d.reason.length > 0);
        if (d.kind === 'file') assert.ok(d.file.length > 0 && !/^[a-z]+:\/\//.test(d.file));
        if (d.kind === 'url') assert.match(d.url, /^[a-z]+:\/\//);
        if (d.kind === 'menu') assert.ok(d.items.length > 1 && d.defaultItem.file);
      }),
      { numRuns: 1000 },
    );
  });
});

test("a machine its assignment sends to its local disk is ignored on purpose, with the assignment's reason", () => {
  const d = chooseBootFile(
    client(7),
    { serverAddress: '192.0.2.1', httpBaseUrl: 'http://192.0.2.1:8080', boot: { uefi64: 'ipxe.efi' } },
    { name: 'Local disk', ignore: true, ignoreReason: 'boots from its local disk (assigned entry "Local disk")' },
  );
  assert.equal(d.kind, 'ignore');
  assert.equal(d.kind === 'ignore' && d.deliberate, true);
  assert.equal(d.reason, 'boots from its local disk (assigned entry "Local disk")');
  assert.doesNotMatch(d.reason, /machine Local disk/);
});

describe('UEFI HTTP boot turned on or off', () => {
  const httpFirmware = client(16, { vendorClass: 'HTTPClient:Arch:00016:UNDI:003001' });
  const pxeFirmware = client(7, { vendorClass: 'PXEClient:Arch:00007:UNDI:003016' });

  test('on (the default): HTTP-boot firmware gets its URL', () => {
    assert.equal(summary(decide(httpFirmware)), 'url http://192.0.2.1:8080/http/ipxe.efi HTTPClient');
    assert.equal(summary(decide(httpFirmware, { answerHttpBoot: true })), 'url http://192.0.2.1:8080/http/ipxe.efi HTTPClient');
  });

  test('on, no http64 file: the uefi64 program over HTTP, for an assigned machine too', () => {
    const uefiOnly = { boot: { uefi64: 'ipxe.efi' }, answerHttpBoot: true };
    assert.equal(summary(decide(httpFirmware, uefiOnly)), 'url http://192.0.2.1:8080/ipxe.efi HTTPClient');
    const d = decide({ ...httpFirmware, mac: MAC }, uefiOnly, lookupMachine);
    assert.equal(summary(d), 'url http://192.0.2.1:8080/machines/bench-1/shimx64.efi HTTPClient');
    assert.match(d.reason, /bench-1 uefi64 boot file over HTTP/);
  });

  test('off: HTTP-boot firmware is not answered, says why, and is marked as turned off', () => {
    for (const c of [httpFirmware, client(19), client(7, { vendorClass: 'HTTPClient:Arch:00007' })]) {
      const d = decide(c, { answerHttpBoot: false });
      assert.equal(d.kind, 'ignore');
      if (d.kind !== 'ignore') continue;
      assert.equal(d.turnedOff, 'http-boot');
      assert.equal(d.deliberate, undefined);
      assert.match(d.reason, /UEFI HTTP boot .*turned off/);
    }
  });

  test('off: a machine with its own file is not answered either', () => {
    const d = decide({ ...httpFirmware, mac: MAC }, { answerHttpBoot: false }, lookupMachine);
    assert.equal(d.kind === 'ignore' && d.turnedOff, 'http-boot');
    assert.equal(d.machine, 'bench-1');
  });

  test('off: PXE firmware and iPXE are answered as before', () => {
    assert.equal(summary(decide(pxeFirmware, { answerHttpBoot: false })), 'file ipxe.efi PXEClient');
    assert.equal(summary(decide(client(0), { answerHttpBoot: false })), 'file undionly.kpxe PXEClient');
    const script = 'http://192.0.2.1:8080/boot.ipxe';
    assert.equal(summary(decide(client(16, { ipxe: true }), { answerHttpBoot: false, ipxeScriptUrl: script })), `url ${script} HTTPClient`);
  });

  test('off: a machine sent to its local disk keeps its own reason', () => {
    const d = decide(httpFirmware, { answerHttpBoot: false }, () => ({ name: 'Local disk', ignore: true, ignoreReason: 'boots from its local disk' }));
    assert.equal(d.kind === 'ignore' && d.deliberate, true);
    assert.equal(d.kind === 'ignore' && d.turnedOff, undefined);
  });
});
