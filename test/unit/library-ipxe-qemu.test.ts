// Real iPXE (Debian's ipxe.lkrn in QEMU, BIOS) runs the scripts the library generates and
// boots an entry served by the library's HTTP route. No DHCP and no traffic off the host:
// the guest gets a static address inside QEMU's user-mode network, `restrict=on` cuts it
// off from everything, and one guestfwd rule connects 10.0.2.100:80 to our loopback server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { HttpFileServer } from '../../main/http/server.js';
import { FileResolver } from '../../main/files/index.js';
import { EventBus, type BootEvent } from '../../main/core/events.js';
import { silentLogger } from '../../main/core/logger.js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { openStore, type Store } from '../../main/store/index.js';
import { importPaths } from '../../main/library/import.js';
import { LibraryBootService } from '../../main/library/boot-service.js';
import { buildIso, xorrisoMissing } from './library-fixtures.js';
import { biosMarkerNbp, markerText, qemuExitStatus, BIOS_EXIT_VALUE, DEBUGCON_PORT, DEBUG_EXIT_PORT } from '../lab/marker-nbp.js';

const IPXE_LKRN = '/usr/lib/ipxe/ipxe.lkrn';
const QEMU = 'qemu-system-x86_64';
const GUEST_MAC = '52:54:00:12:34:56';

function skipReason(): string | undefined {
  if (spawnSync(QEMU, ['--version']).error) return `${QEMU} is not installed (Debian package qemu-system-x86)`;
  if (!existsSync(IPXE_LKRN)) return `${IPXE_LKRN} is missing (Debian package ipxe)`;
  return undefined;
}

let dir: string;
let store: Store;
let http: HttpFileServer;
let port: number;
let service: LibraryBootService;
let bus: EventBus;
let files: FileResolver;
const events: BootEvent[] = [];

before(async () => {
  if (skipReason()) return;
  dir = mkdtempSync(join(tmpdir(), 'bootbench-ipxe-qemu-'));
  const data = join(dir, 'data');
  store = openStore(data);
  writeFileSync(join(dir, 'marker.0'), biosMarkerNbp());
  const imported = await importPaths([join(dir, 'marker.0')], { dataDir: data, mode: 'copy' });
  const [entry] = imported.entries;
  assert.equal(entry?.kind, 'nbp', JSON.stringify(imported.refused));
  const stored = store.entries.create({ ...entry, files: entry.files.map(({ arch, role, path, size, sha256 }) => ({ arch, role, path, size, sha256 })) });
  store.machines.create({ macs: [GUEST_MAC], name: 'qemu-bios', entryId: stored.id, bootOnce: true });
  // Wired as the host does it: the real HTTP file server with the library's dynamic route
  // first, entry files mounted in the shared FileResolver, boot-once fed by bus events.
  bus = new EventBus();
  files = new FileResolver({ roots: [dir], caseInsensitive: true });
  // The guest reaches us as 10.0.2.100:80 (guestfwd); scripts must use the guest's view.
  service = new LibraryBootService({ store, dataDir: data, httpBaseUrl: 'http://10.0.2.100', serverAddress: '10.0.2.100', httpPort: 80, publish: bus.publish });
  bus.subscribe(service.onTransferEvent);
  bus.subscribe((e) => events.push(e));
  service.mountInto(files);
  http = new HttpFileServer({
    port: 0,
    address: '127.0.0.1',
    files,
    dynamic: (req, res, url) => service.httpRoute(req, res, url),
    // Behind QEMU's user network every guest appears as 127.0.0.1; the bootstrap script told us its MAC.
    macForIp: service.reportedMacForIp,
    publish: bus.publish,
    logger: silentLogger,
    rangeIdleMs: 300,
  });
  await http.start();
  port = http.port;
});

after(async () => {
  await http?.stop();
  store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Boots Debian's ipxe.lkrn with `script` as its embedded script; resolves with the exit status and debug console text. */
async function runIpxe(script: string): Promise<{ status: number | null; log: string; stderr: string }> {
  const scriptPath = join(dir, `start-${Date.now()}.ipxe`);
  writeFileSync(scriptPath, script);
  const debugcon = join(dir, `debugcon-${Date.now()}.txt`);
  // No -enable-kvm: under this machine's nested KVM, ipxe.lkrn hangs after "Booting from ROM".
  // romfile= keeps the NIC's own iPXE option ROM out of the way of the one under test.
  const args = [
    '-nodefaults',
    '-display',
    'none',
    '-m',
    '256',
    '-kernel',
    IPXE_LKRN,
    '-initrd',
    scriptPath,
    '-netdev',
    `user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:${port}`,
    '-device',
    `e1000,netdev=n0,mac=${GUEST_MAC},romfile=`,
    '-debugcon',
    `file:${debugcon}`,
    '-global',
    `isa-debugcon.iobase=0x${DEBUGCON_PORT.toString(16)}`,
    '-device',
    `isa-debug-exit,iobase=0x${DEBUG_EXIT_PORT.toString(16)},iosize=0x04`,
  ];
  const qemu = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  qemu.stderr.on('data', (c) => (stderr += c));
  const timer = setTimeout(() => qemu.kill('SIGKILL'), 60_000);
  const status = await new Promise<number | null>((r) => qemu.on('exit', (code) => r(code)));
  clearTimeout(timer);
  return { status, log: existsSync(debugcon) ? readFileSync(debugcon, 'latin1') : '', stderr };
}

/** What the guest runs first: a static address (no DHCP anywhere), then the host's bootstrap. */
const STATIC_START = ['#!ipxe', 'set net0/ip 10.0.2.15', 'set net0/netmask 255.255.255.0', 'ifopen net0'];

test('BIOS iPXE: bootstrap -> machine script -> NBP entry runs; boot-once then switches to local disk', { skip: skipReason(), timeout: 90_000 }, async () => {
  const { status, log, stderr } = await runIpxe([...STATIC_START, 'chain http://10.0.2.100/ipxe/boot.ipxe', ''].join('\n'));
  assert.ok(log.includes(markerText('bios')), `marker not printed; qemu status ${status}; stderr ${stderr}`);
  assert.equal(status, qemuExitStatus(BIOS_EXIT_VALUE));
  const machine = store.machines.findByMac(GUEST_MAC)!;
  assert.ok(
    events.some((e) => e.type === 'http.done' && typeof e.file === 'string' && e.file.endsWith('/marker.0') && e.mac === GUEST_MAC),
    'the file server reported the NBP download',
  );
  assert.equal(machine.bootOnce, false, 'boot-once should have ended after the NBP was fetched');
  assert.equal(store.entries.get(machine.entryId!)!.kind, 'local-disk');
});

test('BIOS iPXE: kernel + initrd entry (kernel line with initrd=, initrd --name) boots', { skip: skipReason(), timeout: 90_000 }, async () => {
  // The "kernel" is ipxe.lkrn itself (a bzImage) and the "initrd" a script it runs: it chains
  // the marker NBP, so the marker proves that kernel and initrd were loaded and started.
  const markerEntry = store.entries.list().find((e) => e.kind === 'nbp')!;
  const secondStage = Buffer.from([...STATIC_START, `chain http://10.0.2.100/library/e${markerEntry.id}/marker.0`, ''].join('\n'));
  writeFileSync(join(dir, 'stage2.ipxe'), secondStage);
  const kernelBytes = readFileSync(IPXE_LKRN);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const entry = store.entries.create({
    name: 'iPXE as kernel',
    kind: 'kernel',
    // No arguments: ipxe.lkrn runs its command line as a script (it strips initrd= itself).
    arguments: '',
    files: [
      { arch: 'bios', role: 'kernel', path: IPXE_LKRN, size: kernelBytes.length, sha256: sha(kernelBytes) },
      { arch: 'bios', role: 'initrd', path: join(dir, 'stage2.ipxe'), size: secondStage.length, sha256: sha(secondStage) },
    ],
  });
  store.machines.update(store.machines.findByMac(GUEST_MAC)!.id, { entryId: entry.id, bootOnce: false });
  service.mountInto(files);
  const { status, log, stderr } = await runIpxe([...STATIC_START, 'chain http://10.0.2.100/ipxe/boot.ipxe', ''].join('\n'));
  assert.ok(log.includes(markerText('bios')), `marker not printed; qemu status ${status}; stderr ${stderr}`);
  assert.equal(status, qemuExitStatus(BIOS_EXIT_VALUE));
});

test(
  'BIOS iPXE: ISO entry is sanbooted over HTTP (HEAD + Range) and its El Torito image runs',
  { skip: skipReason() ?? xorrisoMissing(), timeout: 90_000 },
  async () => {
    // El Torito no-emulation image = the marker NBP: the BIOS loads it at 0x7C00 like a PXE ROM.
    const iso = buildIso(
      dir,
      { 'boot/marker.bin': Buffer.concat([biosMarkerNbp(), Buffer.alloc(2048 - biosMarkerNbp().length)]), 'README.TXT': 'marker CD' },
      ['-R', '-V', 'MARKER', '-b', 'boot/marker.bin', '-no-emul-boot', '-boot-load-size', '4'],
      'marker.iso',
    );
    const imported = await importPaths([iso], { dataDir: join(dir, 'data'), mode: 'reference', name: 'Marker CD' });
    const [entry] = imported.entries;
    assert.equal(entry.kind, 'iso');
    const stored = store.entries.create({ ...entry, files: entry.files.map(({ arch, role, path, size, sha256 }) => ({ arch, role, path, size, sha256 })) });
    store.machines.update(store.machines.findByMac(GUEST_MAC)!.id, { entryId: stored.id, bootOnce: true });
    service.mountInto(files);
    const { status, log, stderr } = await runIpxe([...STATIC_START, 'chain http://10.0.2.100/ipxe/boot.ipxe', ''].join('\n'));
    assert.ok(log.includes(markerText('bios')), `marker not printed; qemu status ${status}; stderr ${stderr}`);
    assert.equal(status, qemuExitStatus(BIOS_EXIT_VALUE));
    // sanboot reads the ISO by ranges: the file server reports the range session once the
    // client has gone quiet, and that ends the boot-once assignment.
    const isoPath = `/library/e${stored.id}/marker.iso`;
    const deadline = Date.now() + 5000;
    while (store.machines.findByMac(GUEST_MAC)!.bootOnce && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(
      events.some((e) => e.type === 'http.done' && e.file === isoPath && e.ranged === true && e.mac === GUEST_MAC),
      'range session reported',
    );
    assert.equal(store.machines.findByMac(GUEST_MAC)!.bootOnce, false);
  },
);
