// Takes the Linux pictures of docs/install.md with the real renderer (web mode, the same
// interface as the desktop window) and the real privilege path: the service host is started
// by bootbench-host (compiled from build/linux) as user nobody, in a private network
// namespace, laid out as in the .deb (Node stands in for the Electron binary, as in
// test/integration/app-host-launcher.test.ts), once without the capabilities, once as an
// AppImage, once with the .deb's grant.
//   sudo node --import tsx docs/screenshots.ts      (root: namespaces, setcap, setpriv)
// Needs /usr/bin/chromium and `npm run build:renderer`.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Lab, waitFor } from '../test/helpers/netns.js';

const repo = resolve(import.meta.dirname, '..');
const images = join(repo, 'docs/images');
const CHROMIUM = '/usr/bin/chromium';

const work = mkdtempSync(join(tmpdir(), 'bb-shot-'));
chmodSync(work, 0o755);
// Where the .deb puts it, so the fix texts in the pictures read as a user's would (unless
// something is installed there already).
const install = existsSync('/opt/Bootbench') ? join(work, 'Bootbench') : '/opt/Bootbench';
const launcher = join(install, 'bootbench-host');
mkdirSync(join(install, 'resources/app.asar/dist/main/cli'), { recursive: true });
const compiled = spawnSync('cc', ['-O2', '-o', launcher, join(repo, 'build/linux/bootbench-host.c')], { encoding: 'utf8' });
if (compiled.status !== 0) throw new Error(compiled.stderr);
symlinkSync(realpathSync(process.execPath), join(install, 'bootbench'));
writeFileSync(join(install, 'resources/app.asar/package.json'), '{"type":"module"}\n');
// The launcher drops NODE_OPTIONS, so the stand-in for dist/main/cli/web.js registers tsx itself.
writeFileSync(
  join(install, 'resources/app.asar/dist/main/cli/web.js'),
  `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))};\nregister();\n` +
    `const { runWebMode } = await import(${JSON.stringify(pathToFileURL(join(repo, 'main/cli/web.ts')).href)});\n` +
    'process.exitCode = await runWebMode(process.argv.slice(2));\n',
);
const bootRoot = join(work, 'boot');
mkdirSync(bootRoot);
writeFileSync(join(bootRoot, 'undionly.kpxe'), Buffer.alloc(32 * 1024));

const lab = new Lab('bbshot');
const srv = lab.namespace('s');
const cli = lab.namespace('c');
lab.veth(srv, 'bench0', '198.18.0.1/24', cli, 'eth0', null);

let browser: Browser | undefined;
const hosts: ChildProcess[] = [];

/** `bootbench-host web` as nobody in the server namespace; resolves with the UI's address. */
async function startWebHost(name: string, env: Record<string, string> = {}): Promise<string> {
  const data = join(work, `data-${name}`);
  mkdirSync(data);
  chownSync(data, 65534, 65534);
  const host = lab.spawn(srv, 'setpriv', [
    '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all',
    'env', `HOME=${data}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    launcher, 'web', '--data', data, '--root', bootRoot, '--boot', 'bios=undionly.kpxe', '--ui-port', '0',
  ]);
  hosts.push(host);
  let out = '';
  host.stdout!.on('data', (d) => (out += d));
  host.stderr!.on('data', (d) => (out += d));
  return waitFor(() => /Bootbench web UI: (http:\/\/\S+)/.exec(out)?.[1], 30_000, `the web UI (${name}): ${out}`);
}

async function startScreen(url: string): Promise<Page> {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(url);
  await page.locator('label.nic', { hasText: 'bench0' }).waitFor();
  await page.locator('label.mode', { hasText: 'Proxy DHCP' }).click();
  return page;
}

async function pressStartExpectingProblem(page: Page): Promise<void> {
  await page.getByTestId('start-stop').click();
  await page.getByTestId('problems').waitFor({ timeout: 15_000 });
}

try {
  const wrapper = join(work, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${srv} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  browser = await chromium.launch({ executablePath: wrapper, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'] });

  // .deb whose grant is missing: the fix names the launcher.
  const denied = await startScreen(await startWebHost('denied'));
  await denied.screenshot({ path: join(images, 'linux-first-start-web.png'), fullPage: true });
  await pressStartExpectingProblem(denied);
  await denied.screenshot({ path: join(images, 'linux-privilege-step-web.png'), fullPage: true });

  // AppImage: no capabilities possible; the fix is the port sysctl.
  const appImage = await startScreen(await startWebHost('appimage', { APPIMAGE: '/home/tech/Bootbench-0.1.0-x86_64.AppImage' }));
  await pressStartExpectingProblem(appImage);
  await appImage.screenshot({ path: join(images, 'linux-appimage-privilege-step-web.png'), fullPage: true });

  // The .deb's grant: all four services run as nobody.
  if (spawnSync('setcap', ['cap_net_bind_service,cap_net_raw=p', launcher]).status !== 0) throw new Error('setcap failed');
  for (const host of hosts.splice(0)) host.kill('SIGTERM');
  const granted = await startScreen(await startWebHost('granted'));
  await granted.getByTestId('start-stop').click();
  await granted.getByTestId('serving-pill').filter({ hasText: 'Serving on bench0' }).waitFor({ timeout: 20_000 });
  await granted.screenshot({ path: join(images, 'linux-after-privilege-step-web.png'), fullPage: true });
  console.log(`wrote ${readdirSync(images).filter((f) => f.startsWith('linux-')).join(', ')} in ${images}`);
} finally {
  await browser?.close().catch(() => {});
  for (const host of hosts) host.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  await lab.destroy();
  rmSync(work, { recursive: true, force: true });
  if (install === '/opt/Bootbench') rmSync(install, { recursive: true, force: true });
}
