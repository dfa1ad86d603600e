// main/app/host-link.ts: where the desktop app runs its service host, what it offers when the
// host lacks the right to open the boot ports, and the line protocol between the two
// processes (both ends here, joined by in-memory pipes standing in for the child's stdio).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { HostProcessClient, chooseHostLaunch, privilegeRemedy, serveApiOverLines, type HostHello, type LaunchFacts } from '../../main/app/host-link.js';
import { checkPrivileges, type PrivilegeReport } from '../../main/net/privileges.js';

const facts: LaunchFacts = {
  platform: 'linux',
  isPackaged: true,
  execPath: '/opt/Bootbench/bootbench',
  hostScript: '/opt/Bootbench/resources/app.asar/dist/main/app/host-process.js',
  dataDir: '/home/tech/.config/Bootbench/data',
  appVersion: '1.2.3',
  env: { HOME: '/home/tech', NODE_OPTIONS: '--inspect' },
};

test('packaged on Linux: the host runs through the launcher beside the executable, never in the main process', () => {
  const launch = chooseHostLaunch(facts);
  assert.equal(launch.kind, 'child');
  if (launch.kind !== 'child') return;
  assert.equal(launch.via, 'launcher');
  assert.equal(launch.command, '/opt/Bootbench/bootbench-host');
  assert.deepEqual(launch.args, ['app-host', '--data', '/home/tech/.config/Bootbench/data', '--app-version', '1.2.3']);
  assert.equal(launch.appImage, false);
  // The launcher cleans the environment itself; the app does not set run-as-node for it.
  assert.equal(launch.env.ELECTRON_RUN_AS_NODE, undefined);
});

test('AppImage: the same launcher (inside the mount), flagged as unable to hold capabilities', () => {
  const launch = chooseHostLaunch({ ...facts, execPath: '/tmp/.mount_BootbeXYZ/bootbench', env: { APPIMAGE: '/home/tech/Bootbench.AppImage' } });
  assert.ok(launch.kind === 'child' && launch.appImage && launch.command === '/tmp/.mount_BootbeXYZ/bootbench-host');
});

test('development on Linux: Electron in Node mode runs the host script, with tsx for sources', () => {
  const built = chooseHostLaunch({
    ...facts,
    isPackaged: false,
    execPath: '/src/node_modules/electron/dist/electron',
    hostScript: '/src/dist/main/app/host-process.js',
  });
  assert.ok(built.kind === 'child');
  if (built.kind !== 'child') return;
  assert.equal(built.via, 'electron-as-node');
  assert.equal(built.command, '/src/node_modules/electron/dist/electron');
  assert.deepEqual(built.args.slice(0, 2), ['/src/dist/main/app/host-process.js', '--data']);
  assert.equal(built.env.ELECTRON_RUN_AS_NODE, '1');
  const sources = chooseHostLaunch({
    ...facts,
    isPackaged: false,
    hostScript: '/src/main/app/host-process.ts',
    typeScriptLoader: 'file:///src/node_modules/tsx/dist/loader.mjs',
  });
  assert.ok(sources.kind === 'child' && sources.args[0] === '--import' && sources.args[2] === '/src/main/app/host-process.ts');
});

test('Windows and macOS keep the host in the app process (no privileged ports, RunAsNode fuse off)', () => {
  for (const platform of ['win32', 'darwin'] as const) {
    for (const isPackaged of [true, false]) {
      const launch = chooseHostLaunch({ ...facts, platform, isPackaged });
      assert.equal(launch.kind, 'in-process', `${platform} packaged=${isPackaged}`);
    }
  }
});

const USER = 'CapEff:\t0000000000000000\n';
const blocked = (kernelRelease = '6.8.0'): PrivilegeReport =>
  checkPrivileges({
    platform: 'linux',
    euid: 1000,
    procStatus: USER,
    unprivilegedPortStart: '1024',
    kernelRelease,
    packaging: { kind: 'node', program: '/x' },
  });
const tools = { pkexec: '/usr/bin/pkexec', setcap: '/usr/sbin/setcap', sysctl: '/usr/sbin/sysctl' };

test('no remedy when nothing is missing, or off Linux', () => {
  const ok = checkPrivileges({ platform: 'linux', euid: 1000, procStatus: USER, unprivilegedPortStart: '67', kernelRelease: '6.8.0' });
  assert.equal(privilegeRemedy(ok, { kind: 'launcher', launcher: '/opt/Bootbench/bootbench-host' }, tools), undefined);
  assert.equal(privilegeRemedy(checkPrivileges({ platform: 'win32' }), undefined, tools), undefined);
});

test('.deb launcher without its capabilities: pkexec setcap on the launcher, as the post-install does', () => {
  const remedy = privilegeRemedy(blocked(), { kind: 'launcher', launcher: '/opt/Bootbench/bootbench-host' }, tools)!;
  assert.deepEqual(remedy.consentCommand, ['/usr/bin/pkexec', '/usr/sbin/setcap', 'cap_net_bind_service,cap_net_raw=p', '/opt/Bootbench/bootbench-host']);
  assert.equal(remedy.manualCommand, 'sudo setcap cap_net_bind_service,cap_net_raw=p /opt/Bootbench/bootbench-host');
  assert.match(remedy.detail, /Cannot bind ports 67 .*69 .*80/);
  assert.doesNotMatch(remedy.detail, /\/opt\/Bootbench\/bootbench[^-]/, 'never the Electron binary');
  // Without polkit only the command is shown.
  assert.equal(privilegeRemedy(blocked(), { kind: 'launcher', launcher: '/opt/Bootbench/bootbench-host' }, {})!.consentCommand, undefined);
});

test('AppImage: the port sysctl with consent until reboot, and the command that keeps it', () => {
  const remedy = privilegeRemedy(blocked(), { kind: 'appimage', appImage: '/home/tech/Bootbench.AppImage' }, tools)!;
  assert.deepEqual(remedy.consentCommand, ['/usr/bin/pkexec', '/usr/sbin/sysctl', '-w', 'net.ipv4.ip_unprivileged_port_start=67']);
  assert.match(remedy.manualCommand, /ip_unprivileged_port_start=67.*sudo sysctl --system/);
  assert.match(remedy.detail, /read-only/);
  assert.doesNotMatch(remedy.manualCommand, /setcap/);
});

test('only SO_BINDTODEVICE missing (kernel before 5.7, ports allowed): no sysctl helps, the .deb does', () => {
  const report = checkPrivileges({
    platform: 'linux',
    euid: 1000,
    procStatus: USER,
    unprivilegedPortStart: '0',
    kernelRelease: '5.4.0',
    packaging: { kind: 'appimage', appImage: '/a' },
  });
  const remedy = privilegeRemedy(report, { kind: 'appimage', appImage: '/a' }, tools)!;
  assert.equal(remedy.consentCommand, undefined);
  assert.match(remedy.detail, /\.deb/);
});

/** A stand-in child process whose stdio are in-memory pipes, served by serveApiOverLines. */
function pipedHost(api: { handle(call: string, request: unknown): Promise<any> }, hello: HostHello) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const child = Object.assign(new EventEmitter(), {
    pid: 4242,
    stdin,
    stdout,
    stderr,
    exitCode: null as number | null,
    signalCode: null,
    kills: [] as string[],
    kill(signal?: string) {
      child.kills.push(signal ?? 'SIGTERM');
      return true;
    },
  });
  let emitEvent: ((event: any, payload: any) => void) | undefined;
  const served = serveApiOverLines({
    input: stdin,
    write: (line) => stdout.write(line),
    api,
    events: (sink) => {
      emitEvent = sink;
      return () => (emitEvent = undefined);
    },
    hello,
  });
  // Like host-process.ts: when its input closes it stops, then the process exits.
  void served.then(() => {
    child.exitCode = 0;
    child.emit('exit', 0, null);
  });
  return { child, push: (event: string, payload: unknown) => emitEvent?.(event, payload), served };
}

const HELLO: HostHello = { pid: 4242, privileges: blocked(), packaging: { kind: 'launcher', launcher: '/opt/Bootbench/bootbench-host' } };

test('calls and answers pair by id, pushes reach onEvent, the hello comes first', async () => {
  const api = {
    async handle(call: string, request: unknown) {
      if (call === 'slow') await new Promise((r) => setTimeout(r, 30));
      if (call === 'boom') throw new Error('exploded');
      return { result: { call, request } };
    },
  };
  const { child, push } = pipedHost(api, HELLO);
  const events: [string, unknown][] = [];
  const client = new HostProcessClient(child as any, { onEvent: (event, payload) => events.push([event, payload]) });
  assert.deepEqual(await client.hello, HELLO);
  const [slow, fast] = await Promise.all([client.call('slow', { a: 1 }), client.call('fast', undefined)]);
  assert.deepEqual(slow, { result: { call: 'slow', request: { a: 1 } } });
  assert.deepEqual(fast, { result: { call: 'fast', request: null } });
  assert.deepEqual(await client.call('boom', {}), { error: { code: 'failed', message: 'exploded' } });
  push('services:state', { running: true, mode: 'proxy', services: [], problems: [] });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(events, [['services:state', { running: true, mode: 'proxy', services: [], problems: [] }]]);
  const exit = await client.close();
  assert.equal(exit.expected, true);
  assert.equal(exit.code, 0);
  assert.deepEqual(child.kills, [], 'closing stdin was enough');
});

test('a stray stdout line is logged, not taken for an answer; a host that dies answers pending calls', async () => {
  const never = { handle: () => new Promise<never>(() => {}) };
  const { child } = pipedHost(never, HELLO);
  const logs: string[] = [];
  const client = new HostProcessClient(child as any, { onEvent: () => {}, onLog: (text) => logs.push(text) });
  await client.hello;
  child.stdout.write('some library printed this\n');
  child.stderr.write('error: the database is locked\n');
  const pending = client.call('machines:list', undefined);
  await new Promise((r) => setTimeout(r, 20));
  child.exitCode = 1;
  child.emit('exit', 1, null);
  const reply = await pending;
  assert.ok('error' in reply);
  assert.equal(reply.error.code, 'unavailable');
  assert.match(reply.error.message, /exit code 1.*the database is locked/);
  assert.ok(logs.some((l) => l.includes('some library printed this')));
  const exit = await client.exited;
  assert.equal(exit.expected, false);
  assert.equal(client.running, false);
  assert.ok('error' in (await client.call('services:status', undefined)));
});

test('a host that cannot be spawned rejects the hello with the reason', async () => {
  const child = Object.assign(new EventEmitter(), { stdin: null, stdout: null, stderr: null, exitCode: null, signalCode: null, kill: () => false });
  const client = new HostProcessClient(child as any, { onEvent: () => {} });
  child.emit('error', new Error('spawn /opt/Bootbench/bootbench-host ENOENT'));
  await assert.rejects(client.hello, /could not be started.*ENOENT/);
});

test('the host side ignores lines that are not requests and stops pushing once its input closes', async () => {
  const stdin = new PassThrough();
  const lines: string[] = [];
  const strays: string[] = [];
  let unsubscribed = false;
  const served = serveApiOverLines({
    input: stdin,
    write: (line) => lines.push(line),
    api: { handle: async (call) => ({ result: call }) },
    events: () => () => (unsubscribed = true),
    hello: HELLO,
    onStray: (line) => strays.push(line),
  });
  stdin.write('not json\n{"call":"no id"}\n{"id":3,"call":"app:info"}\n');
  stdin.end();
  await served;
  assert.deepEqual(strays, ['not json', '{"call":"no id"}']);
  assert.deepEqual(
    lines.map((l) => JSON.parse(l)),
    [{ hello: HELLO }, { id: 3, result: 'app:info' }],
  );
  assert.equal(unsubscribed, true);
});

test('an app started with no_new_privs: no pkexec or setcap can help, only starting it differently', () => {
  const remedy = privilegeRemedy(blocked(), { kind: 'launcher', launcher: '/opt/Bootbench/bootbench-host' }, { ...tools, noNewPrivs: true })!;
  assert.equal(remedy.consentCommand, undefined);
  assert.match(remedy.detail, /no new privileges/);
  assert.match(remedy.detail, /applications menu or a terminal/);
});
