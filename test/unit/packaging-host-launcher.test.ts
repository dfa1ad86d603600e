// bootbench-host (build/linux/bootbench-host.c): the only file the .deb gives network
// capabilities to. It must hand them to the service host it starts (ambient capabilities),
// start nothing but the installation's own script, and drop the environment that could make
// that process run something else (NODE_OPTIONS, LD_PRELOAD...).
// The installation is faked: "bootbench" is a symlink to this Node, and the pinned script
// resources/app.asar/dist/main/cli/bootbench.js (a plain folder here) reports what it got.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Lab, missingPrograms, netnsUnavailableReason, waitFor } from '../helpers/netns.js';

const root = resolve(import.meta.dirname, '../..');
const CAP_NET_BIND_SERVICE = 10n;
const CAP_NET_RAW = 13n;

const REPORT_SCRIPT = `
const fs = require('node:fs');
const dgram = require('node:dgram');
const status = fs.readFileSync('/proc/self/status', 'utf8');
const field = (name) => (new RegExp('^' + name + ':\\\\s*([0-9a-f]+)', 'm').exec(status) || [])[1];
const socket = dgram.createSocket('udp4');
socket.on('error', (error) => finish(error.code));
socket.bind(67, '127.0.0.1', () => finish('bound'));
function finish(bind) {
  process.stdout.write(JSON.stringify({ script: __filename, argv: process.argv.slice(2), env: process.env,
    capEff: field('CapEff'), capAmb: field('CapAmb'), noNewPrivs: field('NoNewPrivs'), bind67: bind }));
  socket.close(() => {});
  setImmediate(() => process.exit(0));
}
`;

interface Report {
  script: string;
  argv: string[];
  env: Record<string, string>;
  capEff: string;
  capAmb: string;
  noNewPrivs: string;
  bind67: string;
}

let work = '';
let install = '';
const compilerMissing =
  process.platform !== 'linux' ? 'bootbench-host is Linux only' : spawnSync('cc', ['--version']).status !== 0 ? 'no C compiler (cc)' : undefined;

before(() => {
  if (compilerMissing) return;
  work = mkdtempSync(join(tmpdir(), 'bb-launcher-'));
  chmodSync(work, 0o755);
  install = join(work, 'Bootbench');
  mkdirSync(join(install, 'resources/app.asar/dist/main/cli'), { recursive: true });
  mkdirSync(join(install, 'resources/app.asar/dist/main/app'), { recursive: true });
  const compiled = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', join(install, 'bootbench-host'), join(root, 'build/linux/bootbench-host.c')], {
    encoding: 'utf8',
  });
  assert.equal(compiled.status, 0, compiled.stderr);
  symlinkSync(realpathSync(process.execPath), join(install, 'bootbench'));
  writeFileSync(join(install, 'resources/app.asar/dist/main/cli/bootbench.js'), REPORT_SCRIPT);
  writeFileSync(join(install, 'resources/app.asar/dist/main/cli/web.js'), REPORT_SCRIPT);
  writeFileSync(join(install, 'resources/app.asar/dist/main/app/host-process.js'), REPORT_SCRIPT);
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function runLauncher(
  args: string[],
  options: { asNobody?: boolean; env?: Record<string, string> } = {},
): { report?: Report; stderr: string; status: number | null } {
  const launcher = join(install, 'bootbench-host');
  // A private network namespace: the port-67 bind touches no real interface.
  const command = options.asNobody
    ? ['unshare', '--net', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', launcher, ...args]
    : [launcher, ...args];
  const result = spawnSync(command[0], command.slice(1), {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
    timeout: 30_000,
  });
  let report: Report | undefined;
  try {
    report = JSON.parse(result.stdout) as Report;
  } catch {}
  return { report, stderr: result.stderr, status: result.status };
}

function hasCap(hex: string, bit: bigint): boolean {
  return (BigInt(`0x${hex}`) & (1n << bit)) !== 0n;
}

test("runs only the installation's own script, picked by the first word, with a cleaned environment", { skip: compilerMissing ?? false }, () => {
  const serve = runLauncher(['serve', '--interface', 'eth9'], {
    env: {
      NODE_OPTIONS: '--require=/tmp/evil.js',
      LD_PRELOAD: '/tmp/evil.so',
      ELECTRON_RUN_AS_NODE: '0',
      BOOTBENCH_DATA: '/srv/bb',
      HOME: '/home/tech',
      LC_ALL: 'C.UTF-8',
    },
  });
  assert.ok(serve.report, `launcher output: ${serve.stderr}`);
  assert.equal(serve.report.script, join(install, 'resources/app.asar/dist/main/cli/bootbench.js'));
  assert.deepEqual(serve.report.argv, ['serve', '--interface', 'eth9']);
  assert.equal(serve.report.env.ELECTRON_RUN_AS_NODE, '1');
  assert.equal(serve.report.env.NODE_OPTIONS, undefined);
  assert.equal(serve.report.env.LD_PRELOAD, undefined);
  assert.equal(serve.report.env.BOOTBENCH_DATA, '/srv/bb');
  assert.equal(serve.report.env.HOME, '/home/tech');
  assert.equal(serve.report.env.LC_ALL, 'C.UTF-8');
  assert.equal(serve.report.noNewPrivs, '1');

  // The started host learns it came through the launcher (for its fix texts); a caller cannot say so.
  assert.equal(serve.report.env.BOOTBENCH_LAUNCHER, join(install, 'bootbench-host'));
  assert.equal(serve.report.env.BOOTBENCH_APPIMAGE, undefined);
  const forged = runLauncher(['serve'], { env: { BOOTBENCH_LAUNCHER: '/tmp/evil', BOOTBENCH_APPIMAGE: '/tmp/x' } });
  assert.equal(forged.report?.env.BOOTBENCH_LAUNCHER, join(install, 'bootbench-host'));
  assert.equal(forged.report?.env.BOOTBENCH_APPIMAGE, undefined);

  const web = runLauncher(['web', '--ui-port', '0']);
  assert.equal(web.report?.script, join(install, 'resources/app.asar/dist/main/cli/web.js'));
  assert.deepEqual(web.report?.argv, ['--ui-port', '0']);

  // The desktop app's service host (main/app/host-process.ts), spoken to over stdio.
  const appHost = runLauncher(['app-host', '--data', '/home/tech/.config/Bootbench/data']);
  assert.equal(appHost.report?.script, join(install, 'resources/app.asar/dist/main/app/host-process.js'));
  assert.deepEqual(appHost.report?.argv, ['--data', '/home/tech/.config/Bootbench/data']);
});

const rootMissing = compilerMissing ?? (process.geteuid?.() !== 0 ? 'needs root (setcap, and running as another user)' : undefined);
const toolsMissing = ['setcap', 'setpriv', 'unshare'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
const privilegedSkip = rootMissing ?? (toolsMissing.length ? `missing ${toolsMissing.join(', ')}` : undefined);

test("with the .deb's capabilities, an unprivileged user's service host gets them and binds port 67", { skip: privilegedSkip ?? false }, () => {
  const postinst = readFileSync(join(root, 'build/linux/after-install.sh'), 'utf8');
  const grant = /setcap '([^']+)' "\$APP_DIR\/bootbench-host"/.exec(postinst);
  assert.ok(grant, 'after-install.sh grants capabilities to bootbench-host');
  const set = spawnSync('setcap', [grant[1], join(install, 'bootbench-host')], { encoding: 'utf8' });
  assert.equal(set.status, 0, set.stderr);
  try {
    const { report, stderr } = runLauncher(['serve'], { asNobody: true });
    assert.ok(report, `launcher output: ${stderr}`);
    assert.equal(report.env.USER, undefined);
    for (const bit of [CAP_NET_BIND_SERVICE, CAP_NET_RAW]) {
      assert.ok(hasCap(report.capEff, bit), `effective capability ${bit} (CapEff ${report.capEff})`);
      assert.ok(hasCap(report.capAmb, bit), `ambient capability ${bit} (CapAmb ${report.capAmb})`);
    }
    assert.equal(BigInt(`0x${report.capEff}`) & ~((1n << CAP_NET_BIND_SERVICE) | (1n << CAP_NET_RAW)), 0n, 'no other capability');
    assert.equal(report.bind67, 'bound');
    assert.doesNotMatch(stderr, /without the network capabilities/);
  } finally {
    spawnSync('setcap', ['-r', join(install, 'bootbench-host')]);
  }
});

test('without capabilities the service host gets none, and the launcher says what to run', { skip: privilegedSkip ?? false }, () => {
  const { report, stderr } = runLauncher(['serve'], { asNobody: true });
  assert.ok(report, `launcher output: ${stderr}`);
  assert.ok(!hasCap(report.capEff, CAP_NET_BIND_SERVICE));
  assert.match(stderr, /sudo setcap cap_net_bind_service,cap_net_raw=p .*bootbench-host/);
  const portStart = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
  if (portStart > 67) assert.equal(report.bind67, 'EACCES');
});

test('from an AppImage (no capabilities possible) it prints the one command that helps there', { skip: compilerMissing ?? false }, (t) => {
  // Root holds every capability, so the advice only shows for an ordinary user.
  const isRoot = process.geteuid?.() === 0;
  if (isRoot && toolsMissing.length) {
    t.skip(`running as root without ${toolsMissing.join(', ')} to drop to an ordinary user`);
    return;
  }
  const launcher = join(install, 'bootbench-host');
  const [program, ...args] = isRoot
    ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', launcher, 'serve']
    : [launcher, 'serve'];
  const result = spawnSync(program, args, { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', APPIMAGE: '/home/tech/Bootbench.AppImage' } });
  assert.match(result.stderr, /ip_unprivileged_port_start=67.*sysctl/);
  assert.doesNotMatch(result.stderr, /setcap/);
  const report = JSON.parse(result.stdout) as Report;
  assert.equal(report.env.APPIMAGE, undefined, 'APPIMAGE is not passed on');
  assert.equal(report.env.BOOTBENCH_APPIMAGE, '/home/tech/Bootbench.AppImage', 'only as the flag the fix texts read');
});

test("refuses to pass capabilities on when its folder is not root's", { skip: privilegedSkip ?? false }, () => {
  spawnSync('setcap', ['cap_net_bind_service,cap_net_raw=p', join(install, 'bootbench-host')]);
  chownSync(install, 65534, 65534);
  try {
    const { report, status, stderr } = runLauncher(['serve'], { asNobody: true });
    assert.equal(report, undefined);
    assert.equal(status, 126);
    assert.match(stderr, /refusing/);
  } finally {
    chownSync(install, 0, 0);
    spawnSync('setcap', ['-r', join(install, 'bootbench-host')]);
  }
});

// The real service host (dist/main/cli/bootbench.js serve) started through bootbench-host as `nobody`,
// laid out as in the package (resources/app.asar is this checkout, bind-mounted inside the
// server's namespace so the path is the real one), serving a TFTP client in another namespace.
const e2eSkip =
  privilegedSkip ??
  netnsUnavailableReason() ??
  missingPrograms('curl', 'mount') ??
  (existsSync(join(root, 'dist/main/cli/bootbench.js')) ? undefined : 'run `npm run build` first (`npm test` does)');

test('end to end: the service host started by bootbench-host as nobody serves TFTP on port 69', { skip: e2eSkip ?? false, timeout: 90_000 }, async () => {
  const lab = new Lab('bbh');
  const e2e = mkdtempSync(join(tmpdir(), 'bb-launcher-e2e-'));
  try {
    chmodSync(e2e, 0o755);
    const installDir = join(e2e, 'Bootbench');
    const asar = join(installDir, 'resources/app.asar');
    mkdirSync(asar, { recursive: true });
    const compiled = spawnSync('cc', ['-O2', '-o', join(installDir, 'bootbench-host'), join(root, 'build/linux/bootbench-host.c')], { encoding: 'utf8' });
    assert.equal(compiled.status, 0, compiled.stderr);
    symlinkSync(realpathSync(process.execPath), join(installDir, 'bootbench'));
    assert.equal(spawnSync('setcap', ['cap_net_bind_service,cap_net_raw=p', join(installDir, 'bootbench-host')]).status, 0);
    const bootRoot = join(e2e, 'boot');
    const data = join(e2e, 'data');
    mkdirSync(bootRoot);
    mkdirSync(data);
    chmodSync(data, 0o777);
    const payload = Buffer.alloc(700_000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + (i >> 9)) & 0xff;
    writeFileSync(join(bootRoot, 'payload.bin'), payload);

    const server = lab.namespace('s');
    const client = lab.namespace('c');
    lab.veth(server, 'bench0', '198.18.7.1/24', client, 'tech0', '198.18.7.2/24');
    const host = lab.spawn(server, 'sh', [
      '-c',
      `mount --bind "$0" "$1" && exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all env HOME="$2" BOOTBENCH_DATA="$2" "$3" serve --interface bench0 --root "$4"`,
      root,
      asar,
      data,
      join(installDir, 'bootbench-host'),
      bootRoot,
    ]);
    let output = '';
    host.stdout?.on('data', (chunk) => (output += chunk));
    host.stderr?.on('data', (chunk) => (output += chunk));
    await waitFor(() => /serving on bench0/.test(output) || host.exitCode !== null, 30_000, 'the service host to start');
    assert.match(output, /serving on bench0/, output);
    assert.doesNotMatch(output, /without the network capabilities/);

    const status = readFileSync(`/proc/${host.pid}/status`, 'utf8');
    assert.match(status, /^Uid:\s+65534\b/m, 'the service host runs as nobody');
    const capEff = /^CapEff:\s*([0-9a-f]+)/m.exec(status)![1];
    assert.ok(hasCap(capEff, CAP_NET_BIND_SERVICE) && hasCap(capEff, CAP_NET_RAW), `CapEff ${capEff}`);

    const received = join(e2e, 'received.bin');
    lab.exec(client, 'curl', ['-sS', '--max-time', '30', '-o', received, 'tftp://198.18.7.1/payload.bin']);
    assert.ok(readFileSync(received).equals(payload), 'the file arrived intact over TFTP');
  } finally {
    await lab.destroy();
    rmSync(e2e, { recursive: true, force: true });
  }
});
