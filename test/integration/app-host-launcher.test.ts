// The desktop app's service host as the packaged Linux app starts it: the real bootbench-host
// launcher (compiled from build/linux) runs the real host-process script as user nobody in
// a private namespace, and the app's side of the pipe (HostProcessClient) drives it.
// With the .deb's grant the host opens 67/69/4011 and answers TFTP from another namespace;
// without it, the host says so and its fix names the launcher, never the Electron binary.
// The installation is faked as in packaging-host-launcher.test.ts: "bootbench" is this Node,
// resources/app.asar a folder whose dist/main/app/host-process.js loads the sources via tsx.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HostProcessClient } from '../../main/app/host-link.js';
import { defaultServeConfig } from '../../main/host/config.js';
import { saveConfigToSettings } from '../../main/host/stored-config.js';
import { openStore } from '../../main/store/index.js';
import { Lab, missingPrograms, netnsUnavailableReason } from '../helpers/netns.js';

const root = resolve(import.meta.dirname, '../..');

function nobodyCanRead(): string | undefined {
  const probe = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'test', '-r', join(root, 'main/app/host-process.ts')]);
  return probe.status === 0 ? undefined : `user nobody cannot read ${root}`;
}

const skip =
  (process.platform !== 'linux' ? 'bootbench-host is Linux only' : undefined) ??
  (process.geteuid?.() !== 0 ? 'needs root (setcap, namespaces, running as nobody)' : undefined) ??
  (spawnSync('cc', ['--version']).status !== 0 ? 'no C compiler (cc)' : undefined) ??
  netnsUnavailableReason() ??
  missingPrograms('setcap', 'setpriv', 'curl') ??
  nobodyCanRead();

const lab = new Lab('bbapp');
let work = '';
let install = '';
let launcher = '';
let serverNs = '';
let clientNs = '';

before(() => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'bb-app-host-'));
  chmodSync(work, 0o755);
  install = join(work, 'Bootbench');
  const scriptDir = join(install, 'resources/app.asar/dist/main/app');
  mkdirSync(scriptDir, { recursive: true });
  launcher = join(install, 'bootbench-host');
  const compiled = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', launcher, join(root, 'build/linux/bootbench-host.c')], { encoding: 'utf8' });
  assert.equal(compiled.status, 0, compiled.stderr);
  symlinkSync(realpathSync(process.execPath), join(install, 'bootbench'));
  writeFileSync(join(install, 'resources/app.asar/package.json'), '{"type":"module"}\n');
  // The launcher drops NODE_OPTIONS, so the stand-in script registers tsx itself.
  writeFileSync(
    join(scriptDir, 'host-process.js'),
    `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))};\n` +
      'register();\n' +
      `const { runHostProcess } = await import(${JSON.stringify(pathToFileURL(join(root, 'main/app/host-process.ts')).href)});\n` +
      'process.exit(await runHostProcess(process.argv.slice(2)));\n',
  );
  serverNs = lab.namespace('s');
  clientNs = lab.namespace('c');
  lab.veth(serverNs, 'bench0', '198.18.9.1/24', clientNs, 'tech0', '198.18.9.2/24');
});

after(async () => {
  if (skip) return;
  await lab.destroy();
  rmSync(work, { recursive: true, force: true });
});

/** Starts `bootbench-host app-host` as nobody in the server namespace, as the app does. */
function startHost(dataName: string): { client: HostProcessClient; child: ChildProcess; log: () => string } {
  const data = join(work, dataName);
  const boot = join(work, `${dataName}-boot`);
  mkdirSync(data);
  mkdirSync(boot);
  // The settings a technician saved earlier: the boot files folder the services need.
  const store = openStore(data);
  saveConfigToSettings(store, { ...defaultServeConfig(data), root: boot });
  store.close();
  for (const name of ['', ...readdirSync(data)]) chownSync(join(data, name), 65534, 65534);
  const child = lab.spawn(
    serverNs,
    'setpriv',
    [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      '--inh-caps=-all',
      'env',
      `HOME=${data}`,
      launcher,
      'app-host',
      '--data',
      data,
      '--app-version',
      '9.9.9',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let log = '';
  const client = new HostProcessClient(child, { onEvent: () => {}, onLog: (text) => (log += text), helloTimeoutMs: 30_000 });
  return { client, child, log: () => log };
}

test(
  "with the launcher's capabilities the host (as nobody) starts proxy DHCP, PXE and TFTP on the chosen NIC",
  { skip: skip ?? false, timeout: 90_000 },
  async () => {
    assert.equal(spawnSync('setcap', ['cap_net_bind_service,cap_net_raw=p', launcher]).status, 0);
    const { client, child, log } = startHost('granted');
    try {
      const hello = await client.hello;
      assert.deepEqual(hello.packaging, { kind: 'launcher', launcher }, log());
      assert.equal(hello.privileges.ok, true, JSON.stringify(hello.privileges));
      assert.equal(hello.privileges.isRoot, false);
      const info = await client.call('app:info', undefined);
      assert.ok('result' in info, JSON.stringify(info));
      assert.equal((info.result as { shell: string; version: string }).shell, 'electron');
      assert.equal((info.result as { version: string }).version, '9.9.9');

      const started = await client.call('services:start', { interfaceName: 'bench0', mode: 'proxy' });
      assert.ok('result' in started, `${JSON.stringify(started)}\n${log()}`);
      assert.equal((started.result as { running: boolean }).running, true);
      // Port 69 answers from the other namespace: a TFTP error for a file that is not there.
      const fetched = spawnSync('ip', ['netns', 'exec', clientNs, 'curl', '-sS', '--max-time', '10', '-o', '/dev/null', 'tftp://198.18.9.1/missing.bin'], {
        encoding: 'utf8',
      });
      assert.equal(fetched.status, 68, `curl: TFTP "file not found" from the host (${fetched.status} ${fetched.stderr})`);
      const listening = spawnSync('ip', ['netns', 'exec', serverNs, 'ss', '-Hulnp'], { encoding: 'utf8' }).stdout;
      for (const port of [67, 69, 4011]) assert.match(listening, new RegExp(`:${port}\\b`), `port ${port}\n${listening}`);
    } finally {
      await client.close();
      spawnSync('setcap', ['-r', launcher]);
    }
    assert.equal(child.exitCode, 0, `the host stopped cleanly when its stdin closed\n${log()}`);
  },
);

test('without them the host reports it, and its start error names the launcher to fix', { skip: skip ?? false, timeout: 60_000 }, async () => {
  const { client, log } = startHost('denied');
  try {
    const hello = await client.hello;
    assert.equal(hello.privileges.ok, false, log());
    assert.match(
      hello.privileges.problems[0]!.fix,
      new RegExp(`sudo setcap cap_net_bind_service,cap_net_raw=p ${launcher.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`),
    );
    const started = await client.call('services:start', { interfaceName: 'bench0', mode: 'proxy' });
    const portStart = Number(spawnSync('cat', ['/proc/sys/net/ipv4/ip_unprivileged_port_start'], { encoding: 'utf8' }).stdout);
    if (portStart > 67) {
      assert.ok('error' in started, JSON.stringify(started));
      assert.match(started.error.message, /bootbench-host/);
      assert.doesNotMatch(started.error.message, /setcap \S*\/bootbench[^-]/, 'never the Electron binary');
    }
  } finally {
    await client.close();
  }
});
