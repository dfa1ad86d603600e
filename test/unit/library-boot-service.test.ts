import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { openStore, type Store } from '../../main/store/index.js';
import { importPaths } from '../../main/library/import.js';
import { LibraryBootService, assignOnceInStore, ensureLocalDiskEntry } from '../../main/library/boot-service.js';
import { FileResolver } from '../../main/files/index.js';
import { HttpFileServer } from '../../main/http/server.js';
import { silentLogger } from '../../main/core/logger.js';
import { chainloadPolicy } from '../../main/library/boot-binaries.js';
import type { BootEvent } from '../../main/core/events.js';
import { buildBzImage, buildCpioNewc, buildIso, buildPe, EL_TORITO_ARGS, xorrisoMissing } from './library-fixtures.js';

const MAC = '52:54:00:aa:bb:01';
const OTHER = '52:54:00:aa:bb:02';
let dir: string;
let store: Store;
let server: HttpFileServer;
let base: string;
let service: LibraryBootService;
const published: BootEvent[] = [];
const kernel = buildBzImage({ version: '6.1.0-lab' });
const initrd = gzipSync(Buffer.concat([buildCpioNewc(), Buffer.alloc(300_000, 1)]));
let ids: { kernel: number; iso?: number; nbp: number };

function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bootbench-bootsvc-'));
  const data = join(dir, 'data');
  store = openStore(data);
  mkdirSync(join(dir, 'src'), { recursive: true });
  writeFileSync(join(dir, 'src', 'vmlinuz'), kernel);
  writeFileSync(join(dir, 'src', 'initrd.img'), initrd);
  writeFileSync(join(dir, 'src', 'tool.efi'), buildPe(0x8664));
  const paths = [join(dir, 'src', 'vmlinuz'), join(dir, 'src', 'initrd.img')];
  const imported = await importPaths(paths, { dataDir: data, mode: 'copy', name: 'Lab kernel' });
  const k = store.entries.create({
    ...imported.entries[0],
    files: imported.entries[0].files.map(({ arch, role, path, size, sha256 }) => ({ arch, role, path, size, sha256 })),
  });
  const nbpImport = await importPaths([join(dir, 'src', 'tool.efi')], { dataDir: data, mode: 'reference' });
  const n = store.entries.create({
    ...nbpImport.entries[0],
    files: nbpImport.entries[0].files.map(({ arch, role, path, size, sha256 }) => ({ arch, role, path, size, sha256 })),
  });
  ids = { kernel: k.id, nbp: n.id };
  if (!xorrisoMissing()) {
    const iso = buildIso(
      dir,
      {
        'isolinux/isolinux.bin': Buffer.alloc(2048, 0x90),
        'efi.img': Buffer.alloc(64 * 1024),
        'EFI/BOOT/BOOTX64.EFI': buildPe(0x8664),
        'casper/vmlinuz': kernel,
        'casper/initrd': initrd,
      },
      ['-R', '-J', '-V', 'LIVE', ...EL_TORITO_ARGS],
      'live.iso',
    );
    const isoImport = await importPaths([iso], { dataDir: data, mode: 'reference', name: 'Live ISO' });
    ids.iso = store.entries.create({
      ...isoImport.entries[0],
      files: isoImport.entries[0].files.map(({ arch, role, path, size, sha256 }) => ({ arch, role, path, size, sha256 })),
    }).id;
  }
  store.machines.create({ macs: [MAC], name: 'bench-01', entryId: ids.kernel, bootOnce: true });

  // The library's routes in front of the HTTP file server, which sends the files it locates
  // (nothing mounted: entry files and files inside ISOs are found per request).
  const publish = (type: string, details: Record<string, unknown> = {}) => {
    const event = { ...details, type, time: Date.now() } as BootEvent;
    published.push(event);
    service.onTransferEvent(event);
  };
  const files = new FileResolver({ roots: [join(dir, 'empty-root')], caseInsensitive: true });
  server = new HttpFileServer({
    port: 0,
    address: '127.0.0.1',
    files,
    dynamic: (req, res, url) => service.httpRoute(req, res, url),
    macForIp: () => MAC,
    publish,
    logger: silentLogger,
    rangeIdleMs: 50,
  });
  await server.start();
  const port = server.port;
  base = `http://127.0.0.1:${port}`;
  service = new LibraryBootService({
    store,
    dataDir: data,
    httpBaseUrl: base,
    serverAddress: '127.0.0.1',
    httpPort: port,
    macForIp: () => MAC,
    publish,
    menu: { timeoutSeconds: 5 },
  });
  service.locateInto(files);
});

/** The file server reports a transfer once its response ended; boot-once follows that event. */
async function settled(check: () => boolean): Promise<boolean> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  return check();
}

after(async () => {
  await server?.stop();
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('library boot service over HTTP (loopback)', () => {
  test("bootstrap script and the machine's own script", async () => {
    const boot = await get('/ipxe/boot.ipxe');
    assert.equal(boot.status, 200);
    assert.match(boot.body.toString(), /^#!ipxe\nchain http:\/\/127\.0\.0\.1:\d+\/ipxe\/machine\.ipxe\?mac=\$\{netX\/mac\}/);
    const script = (await get(`/ipxe/machine.ipxe?mac=${MAC}&platform=efi&buildarch=x86_64`)).body.toString();
    assert.match(script, /bench-01 .* boots Lab kernel \(once, then local disk\)/);
    assert.ok(script.includes(`kernel ${base}/library/e${ids.kernel}/vmlinuz initrd=initrd.img || goto failed`), script);
  });

  test('entry files with HEAD and Range', async () => {
    const head = await get(`/library/e${ids.kernel}/vmlinuz`, {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers['content-length']), kernel.length);
    assert.equal(head.headers['accept-ranges'], 'bytes');
    const part = await get(`/library/e${ids.kernel}/vmlinuz`, { range: 'bytes=512-1023' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 512-1023/${kernel.length}`);
    assert.deepEqual(part.body, kernel.subarray(512, 1024));
    assert.equal((await get(`/library/e${ids.kernel}/vmlinuz`, { range: `bytes=${kernel.length + 5}-` })).status, 416);
    assert.equal((await get(`/library/e${ids.kernel}/nothing`)).status, 404);
    assert.equal((await get('/somewhere/else')).status, 404);
  });

  test('files inside an ISO are served in place', { skip: xorrisoMissing() }, async () => {
    const whole = await get(`/library/e${ids.iso}/iso/casper/vmlinuz`);
    assert.equal(whole.status, 200);
    assert.deepEqual(whole.body, kernel);
    const part = await get(`/library/e${ids.iso}/iso/CASPER/INITRD`, { range: 'bytes=0-5' });
    assert.deepEqual(part.body, initrd.subarray(0, 6));
    const other = (await get(`/ipxe/machine.ipxe?mac=${OTHER}&platform=pcbios&buildarch=i386`)).body.toString();
    // An unknown machine gets the menu; the live ISO's kernel comes from inside the ISO.
    assert.ok(
      other.includes(
        `kernel ${base}/library/e${ids.iso}/iso/casper/vmlinuz initrd=initrd boot=casper netboot=url url=${base}/library/e${ids.iso}/live.iso ip=dhcp`,
      ),
      other,
    );
    assert.ok(other.includes('choose --default bb-local --timeout 5000 target'));
  });

  test('the menu of an unassigned machine lists Local disk once, whether or not the built-in entry exists', async () => {
    ensureLocalDiskEntry(store);
    const menu = (await get('/ipxe/machine.ipxe?mac=52:54:00:00:00:99&platform=efi&buildarch=x86_64')).body.toString();
    assert.equal(menu.match(/Local disk/g)?.length, 1, menu);
    assert.ok(menu.includes('item bb-local Local disk'), menu);
  });

  test('chainload policy: bundled iPXE per class unless the user chose a file; bootstrap URL', () => {
    assert.deepEqual(chainloadPolicy('http://192.0.2.1:8080/', { bios: 'pxelinux.0' }), {
      boot: { bios: 'pxelinux.0', uefi64: 'bootbench/snponly.efi', http64: 'http://192.0.2.1:8080/bootbench/snponly.efi' },
      ipxeScriptUrl: 'http://192.0.2.1:8080/ipxe/boot.ipxe',
    });
  });

  test('DHCP policy view: NBP entries direct, local disk not answered', () => {
    store.machines.create({ macs: [OTHER], name: 'bench-02', entryId: ids.nbp });
    assert.deepEqual(service.lookupMachine(OTHER), { name: 'tool', boot: { uefi64: `library/e${ids.nbp}/tool.efi` } });
    assert.deepEqual(service.lookupMachine(MAC), { name: 'Lab kernel (once)' });
    assert.equal(service.lookupMachine('52:54:00:00:00:99'), undefined);
  });

  test('boot once: the complete initrd download switches the machine to local disk', async () => {
    assert.equal((await get(`/library/e${ids.kernel}/vmlinuz`)).status, 200);
    assert.equal(store.machines.findByMac(MAC)!.bootOnce, true, 'kernel alone must not end it');
    await get(`/library/e${ids.kernel}/initrd.img`, { range: 'bytes=0-99' });
    assert.equal(store.machines.findByMac(MAC)!.bootOnce, true, 'a range read of the initrd must not end it');
    assert.equal((await get(`/library/e${ids.kernel}/initrd.img`)).status, 200);
    await settled(() => !store.machines.findByMac(MAC)!.bootOnce);
    const machine = store.machines.findByMac(MAC)!;
    assert.equal(machine.bootOnce, false);
    assert.equal(store.entries.get(machine.entryId!)!.kind, 'local-disk');
    assert.ok(published.some((e) => e.bootOnce === 'completed' && e.mac === MAC));
    const next = (await get(`/ipxe/machine.ipxe?mac=${MAC}&platform=efi&buildarch=x86_64`)).body.toString();
    assert.match(next, /boots from its local disk/);
    assert.deepEqual(service.lookupMachine(MAC), { name: 'Local disk', ignore: true, ignoreReason: 'boots from its local disk (assigned entry "Local disk")' });
  });

  test('mountInto: binaries, per-machine grub.cfg, entry files for TFTP', async () => {
    const mounts = new Map<string, string>();
    const generated = new Map<string, (r: { protocol: 'tftp' | 'http'; ip?: string; mac?: string; path: string }) => unknown>();
    const problems = service.mountInto({ mount: (v, r) => void mounts.set(v, r), generate: (v, fn) => void generated.set(v, fn) });
    assert.ok(mounts.get(`/library/e${ids.kernel}/vmlinuz`)?.endsWith('vmlinuz'));
    for (const p of ['/bootbench/undionly.kpxe', '/bootbench/snponly.efi', '/bootbench/secure-boot/shimx64.efi']) {
      assert.ok(mounts.has(p) || problems.some((x) => x.startsWith(p)), `${p} neither mounted nor reported`);
    }
    store.machines.update(store.machines.findByMac(MAC)!.id, { entryId: ids.kernel, bootOnce: false });
    const cfg = String(await generated.get('/grub/grub.cfg')!({ protocol: 'tftp', ip: '127.0.0.1', mac: MAC, path: '/grub/grub.cfg' }));
    assert.match(cfg, /menuentry 'Lab kernel' \{/);
    assert.ok(cfg.includes(`linux (tftp,127.0.0.1)/library/e${ids.kernel}/vmlinuz`), cfg);
  });

  test('with the real FileResolver: entry files and grub.cfg reach TFTP clients', async () => {
    const files = new FileResolver({ roots: [dir], caseInsensitive: true });
    service.mountInto(files);
    const kernelFile = await files.open(`/library/e${ids.kernel}/VMLINUZ`, { protocol: 'tftp', ip: '127.0.0.1', mac: MAC });
    assert.ok(kernelFile.ok, JSON.stringify(kernelFile));
    if (kernelFile.ok) {
      assert.equal(kernelFile.file.size, kernel.length);
      kernelFile.file.release();
    }
    const cfg = await files.open('/grub/grub.cfg', { protocol: 'tftp', ip: '127.0.0.1', mac: MAC });
    assert.ok(cfg.ok);
    if (cfg.ok) {
      const buffer = Buffer.alloc(cfg.file.size);
      await cfg.file.read(buffer, 0, buffer.length, 0);
      assert.match(buffer.toString(), /menuentry 'Lab kernel'/);
      cfg.file.release();
    }
  });

  test('after mountInto, entry files are left to the HTTP file server, whose events end boot-once', async () => {
    const fakeRequest = {
      url: `/library/e${ids.kernel}/vmlinuz`,
      method: 'GET',
      headers: {},
      socket: { remoteAddress: '127.0.0.1' },
    } as unknown as IncomingMessage;
    assert.equal(
      await service.httpRoute(fakeRequest, {} as ServerResponse, new URL(`${base}/library/e${ids.kernel}/vmlinuz`)),
      false,
      'the route leaves entry files to the file server',
    );
    const machineId = store.machines.findByMac(MAC)!.id;
    store.machines.update(machineId, { entryId: ids.kernel, bootOnce: true });
    const file = `/library/e${ids.kernel}/initrd.img`;
    service.onTransferEvent({ type: 'http.done', time: 0, mac: MAC, file, size: initrd.length, bytes: 100, ranged: true });
    assert.equal(store.machines.get(machineId)!.bootOnce, true, 'a range session of the initrd is not a boot');
    service.onTransferEvent({ type: 'http.done', time: 0, mac: MAC, file, size: initrd.length, bytes: initrd.length - 1 });
    assert.equal(store.machines.get(machineId)!.bootOnce, true, 'an incomplete download is not a boot');
    service.onTransferEvent({ type: 'tftp.done', time: 0, mac: MAC, file: `/library/e${ids.kernel}/vmlinuz`, size: kernel.length, bytes: kernel.length });
    assert.equal(store.machines.get(machineId)!.bootOnce, true, 'the kernel is not the last file');
    service.onTransferEvent({ type: 'http.done', time: 0, mac: MAC, file, size: initrd.length, bytes: initrd.length, status: 200 });
    assert.equal(store.machines.get(machineId)!.bootOnce, false);
    assert.equal(store.entries.get(store.machines.get(machineId)!.entryId!)!.kind, 'local-disk');
  });

  test('group action: reinstall N machines once, all or nothing', () => {
    const a = store.machines.create({ macs: ['52:54:00:cc:00:01'], name: 'room-1' });
    const b = store.machines.create({ macs: ['52:54:00:cc:00:02'], name: 'room-2' });
    assert.equal(assignOnceInStore(store, [a.id, b.id, a.id], ids.kernel), 2);
    for (const id of [a.id, b.id]) assert.deepEqual([store.machines.get(id)!.entryId, store.machines.get(id)!.bootOnce], [ids.kernel, true]);
    assert.throws(() => assignOnceInStore(store, [a.id, 999_999], ids.nbp), /machine 999999 does not exist/);
    assert.equal(store.machines.get(a.id)!.entryId, ids.kernel, 'a failed group action changes nobody');
  });

  test("locateInto: a live ISO's kernel and initrd for TFTP clients (GRUB)", { skip: xorrisoMissing() }, async () => {
    const files = new FileResolver({ roots: [dir], caseInsensitive: true });
    service.locateInto(files);
    const paths = [`/library/e${ids.iso}/iso/casper/vmlinuz`, `/library/e${ids.iso}/iso/casper/initrd`];
    const opened = await files.open(paths[0], { protocol: 'tftp', ip: '127.0.0.1', mac: MAC });
    assert.ok(opened.ok, JSON.stringify(opened));
    const buffer = Buffer.alloc(opened.file.size);
    assert.equal(await opened.file.read(buffer, 0, buffer.length, 0), kernel.length);
    opened.file.release();
    assert.deepEqual(buffer, kernel);
    const initrdFile = await files.open(paths[1], { protocol: 'tftp' });
    assert.ok(initrdFile.ok && initrdFile.file.size === initrd.length);
    if (initrdFile.ok) initrdFile.file.release();
  });
});
