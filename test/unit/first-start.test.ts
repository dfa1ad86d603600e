// The first Start from the screens, against the real service host and store: the served
// folder defaults to the library folder (made on first use), a folder the technician types
// is checked on the host with a message naming the problem, the default boot for PCs with no
// assignment is chosen and stored, missing boot programs are problems (not green), and
// refused Starts leave no listeners behind.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceHost } from '../../main/host/service-host.js';
import { HostApi } from '../../main/api/api.js';
import { storeApi } from '../../main/api/api-store.js';
import { configFromSettings, saveConfigToSettings } from '../../main/host/stored-config.js';
import { openStore } from '../../main/store/index.js';
import type { NetInterface } from '../../main/net/index.js';
import type { ServeSettings, ServicesStatus } from '../../preload/api.js';

const dir = mkdtempSync(join(tmpdir(), 'bootbench-first-start-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const loopback: NetInterface = {
  name: 'lo',
  mac: '',
  ipv4: [{ address: '127.0.0.1', netmask: '255.0.0.0', prefixLength: 8 }],
  ipv6: [],
  up: true,
  kind: 'loopback',
  mtu: 65536,
};

function setUp(name: string, resourcesDir?: string) {
  const dataDir = join(dir, name);
  const store = openStore(dataDir);
  const config = { ...configFromSettings(store, dataDir), interfaceName: 'lo', httpPort: 0, ports: { dhcp: 0, pxe: 0, tftp: 0, dhcpClient: 0 } };
  // Loopback and any free port: nothing leaves this machine.
  const host = new ServiceHost({ config, store, resolveInterface: () => loopback, watchInterface: false, dhcpThread: false, resourcesDir });
  const api = new HostApi({
    host,
    store: storeApi(store),
    listInterfaces: () => [],
    shell: 'web',
    afterStart: () => saveConfigToSettings(store, host.config()),
  });
  const call = async <T>(name: string, request?: unknown): Promise<T> => {
    const reply = await api.handle(name, request);
    if ('error' in reply) throw new Error(`${reply.error.code}: ${reply.error.message}`);
    return reply.result as T;
  };
  return { dataDir, store, host, api, call, close: () => host.close().then(() => store.close()) };
}

describe('first start', () => {
  test('an empty data folder serves its library folder, made at Start, and the choice is stored', async () => {
    const h = setUp('fresh');
    try {
      const settings = await h.call<ServeSettings>('services:settings');
      assert.equal(settings.root, join(h.dataDir, 'library'));
      assert.equal(settings.defaultRoot, settings.root);
      assert.equal(existsSync(settings.root), false, 'not there before the first Start');
      const status = await h.call<ServicesStatus>('services:start', { interfaceName: 'lo' });
      assert.equal(status.running, true, JSON.stringify(status));
      assert.equal(existsSync(settings.root), true);
      assert.equal(h.store.settings.get('root'), settings.root);
    } finally {
      await h.close();
    }
  });

  test('a typed folder is checked on the host: relative, missing, a file', async () => {
    const h = setUp('typed');
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    try {
      await assert.rejects(h.call('services:start', { root: 'boot' }), /invalid-request: services:start: root must be a full path on the host/);
      await assert.rejects(
        h.call('services:start', { root: join(dir, 'nope') }),
        /The served folder .*nope does not exist: give the folder that holds your boot files/,
      );
      await assert.rejects(h.call('services:start', { root: file }), /The served folder .*a-file is a file, not a folder/);
      // A folder around the data folder would serve its database and answer files.
      await assert.rejects(h.call('services:start', { root: dir }), /contains the data folder .*typed \(its database and answer files would be served\)/);
      await assert.rejects(h.call('services:start', { root: h.dataDir }), /contains the data folder/);
      const mine = join(dir, 'my-boot');
      mkdirSync(mine);
      const status = await h.call<ServicesStatus>('services:start', { root: mine });
      assert.equal(status.running, true);
      assert.equal((await h.call<ServeSettings>('services:settings')).root, mine);
    } finally {
      await h.close();
    }
  });

  test('what a PC with no assignment boots: the menu by default, then local disk or an entry, stored', async () => {
    const h = setUp('default-boot');
    try {
      assert.deepEqual((await h.call<ServeSettings>('services:settings')).defaultBoot, { kind: 'menu', timeoutSeconds: 10 });
      const rescue = h.store.entries.create({ name: 'rescue', kind: 'nbp', files: [] });
      assert.deepEqual((await h.call<ServeSettings>('services:set-default-boot', { kind: 'entry', entryId: rescue.id })).defaultBoot, {
        kind: 'entry',
        entryId: rescue.id,
        name: 'rescue',
      });
      assert.equal(h.store.settings.get('defaults')?.entryId, rescue.id);
      assert.deepEqual((await h.call<ServeSettings>('services:set-default-boot', { kind: 'local-disk' })).defaultBoot, { kind: 'local-disk' });
      await assert.rejects(h.call('services:set-default-boot', { kind: 'entry', entryId: 999 }), /There is no boot entry number 999/);
      assert.deepEqual((await h.call<ServeSettings>('services:settings')).defaultBoot, { kind: 'local-disk' }, 'a refused choice changes nothing');
      assert.deepEqual((await h.call<ServeSettings>('services:set-default-boot', { kind: 'menu' })).defaultBoot, { kind: 'menu', timeoutSeconds: 10 });
      // A start saves its settings without dropping the default.
      await h.call('services:set-default-boot', { kind: 'entry', entryId: rescue.id });
      await h.call('services:start', {});
      assert.equal(h.store.settings.get('defaults')?.entryId, rescue.id);
    } finally {
      await h.close();
    }
  });

  test('a missing boot program is a problem while serving, named with its fix, never all green', async () => {
    const resources = join(dir, 'resources-bios-only');
    mkdirSync(join(resources, 'ipxe'), { recursive: true });
    writeFileSync(join(resources, 'ipxe', 'undionly.kpxe'), 'bios ipxe');
    const h = setUp('missing-uefi', resources);
    try {
      const before = await h.call<ServeSettings>('services:settings');
      assert.deepEqual(
        before.bootPrograms.map((p) => [p.firmware, Boolean(p.path), Boolean(p.problem)]),
        [
          ['BIOS', true, false],
          ['UEFI', false, true],
        ],
      );
      const status = await h.call<ServicesStatus>('services:start', {});
      assert.equal(status.running, true);
      assert.equal(status.problems.length, 1, JSON.stringify(status.problems));
      assert.match(
        status.problems[0]!,
        /^UEFI PCs cannot boot: the iPXE they are handed \(ipxe\/snponly\.efi\) is missing\. Fix: install the Debian package ipxe \(sudo apt-get install ipxe\)/,
      );
      assert.ok(status.problems[0]!.includes(join(h.dataDir, 'boot', 'ipxe', 'snponly.efi')), 'and where an own copy goes');
    } finally {
      await h.close();
    }
  });

  test('fifteen refused Starts add no listeners and raise no warning', async () => {
    const h = setUp('refused');
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const streams = [process.stdout, process.stderr] as const;
    const listeners = () => streams.map((s) => s.listenerCount('error') + s.listenerCount('close') + s.listenerCount('drain'));
    const before = listeners();
    try {
      for (let i = 0; i < 15; i++) {
        const root = i % 3 === 0 ? join(dir, 'missing') : i % 3 === 1 ? join(dir, 'a-file') : undefined;
        const request = root ? { root } : { mode: 'dhcp', pool: { first: '192.0.2.10', last: '192.0.2.20' } };
        await assert.rejects(h.call('services:start', request));
      }
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(listeners(), before);
      assert.deepEqual(
        warnings.map((w) => `${w.name}: ${w.message}`),
        [],
      );
      assert.equal(h.host.status().running, false);
    } finally {
      process.off('warning', onWarning);
      await h.close();
    }
  });
});
