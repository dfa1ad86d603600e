// The Images screen in Chromium against the real host in web mode, with the host's services
// on loopback (free ports, so nothing leaves this machine): an image in the data folder is
// listed with its sizes; a deploy to two machines is started from the screen; then this test
// speaks for the two PCs' agents on the host's own HTTP service, as build/imaging-env/agent.sh
// does (GET its task, POST a report a few times a second), and the screen's rows follow:
// booting, writing with bytes, rate and ETA moving, then one PC done and verified and the
// other failed with the reason its agent sent. The machine's timeline shows its imaging steps.
// Then a capture started from the screen ends, through the same routes, in a new image.
// Screenshots: test-output/ui/images-*.png
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ServiceHost } from '../../main/host/service-host.js';
import { storeApi } from '../../main/api/api-store.js';
import { configFromSettings } from '../../main/host/stored-config.js';
import { startWebMode, type WebMode } from '../../main/web/web-mode.js';
import { openStore, type Store } from '../../main/store/index.js';
import type { NetInterface } from '../../main/net/index.js';
import { launchChromium, RENDERER_DIR, REPO, webUiSkipReason } from '../helpers/web-ui-browser.js';
import { addSampleImage } from '../helpers/sample-image.js';
import { agentSkipReason, runAgent } from '../helpers/imaging-agent.js';

const shots = join(REPO, 'test-output/ui');
const skip = webUiSkipReason();
const loopback: NetInterface = {
  name: 'lo',
  mac: '',
  ipv4: [{ address: '127.0.0.1', netmask: '255.0.0.0', prefixLength: 8 }],
  ipv6: [],
  up: true,
  kind: 'wired',
  mtu: 65536,
};
const PC1 = '52:54:00:cc:00:01';
const PC2 = '52:54:00:cc:00:02';
const MIB = 1024 * 1024;

let work: string;
let store: Store | undefined;
let host: ServiceHost | undefined;
let web: WebMode | undefined;
let browser: Browser | undefined;
let agentBase = '';
let failurePage: Page | undefined;
let passed = false;
const loops: string[] = [];
const mounts: string[] = [];

before(async () => {
  if (skip) return;
  mkdirSync(shots, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'bb-ui-images-'));
  const dataDir = join(work, 'data');
  store = openStore(dataDir);
  store.machines.create({ macs: [PC1], name: 'bench-01', group: 'row-a' });
  store.machines.create({ macs: [PC2], name: 'bench-02', group: 'row-a' });
  await addSampleImage(dataDir, { name: 'gpt-ref', mac: '52:54:00:cc:00:09', machine: 'reference', chunksPerPartition: 3 });
  const config = { ...configFromSettings(store, dataDir), interfaceName: 'lo', httpPort: await freePort(), ports: { dhcp: 0, pxe: 0, tftp: 0, dhcpClient: 0 } };
  host = new ServiceHost({ config, store, resolveInterface: () => loopback, watchInterface: false, dhcpThread: false, resourcesDir: join(work, 'resources') });
  const status = await host.start();
  const http = status.services.find((s) => s.name === 'http');
  assert.ok(status.running && http?.state === 'running' && http.port > 0, `the host serves HTTP on loopback: ${JSON.stringify(status)}`);
  agentBase = `http://127.0.0.1:${http.port}`;
  web = await startWebMode({ host, store: storeApi(store, { dataDir: () => dataDir }), listInterfaces: () => [], staticDir: RENDERER_DIR });
  browser = await launchChromium();
});

after(async () => {
  if (failurePage && !passed) await failurePage.screenshot({ path: join(shots, 'images-failure.png'), fullPage: true }).catch(() => {});
  await browser?.close().catch(() => {});
  for (const dir of mounts.reverse())
    try {
      run('umount', [dir]);
    } catch {
      /* not mounted */
    }
  for (const dev of loops)
    try {
      run('losetup', ['-d', dev]);
    } catch {
      /* gone */
    }
  await web?.close();
  await host?.close();
  store?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A TCP port free on loopback right now: the host's HTTP port, which its status reports as configured. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

const run = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
/** A loop device over a file of this test (never a disk of this machine). */
function loop(file: string, offset?: number, size?: number, readOnly = false): string {
  const args = ['-f', '--show', ...(offset !== undefined ? ['-o', String(offset), '--sizelimit', String(size)] : []), ...(readOnly ? ['-r'] : []), file];
  const dev = run('losetup', args).trim();
  loops.push(dev);
  return dev;
}
function unloop(dev: string): void {
  run('losetup', ['-d', dev]);
  loops.splice(loops.indexOf(dev), 1);
}

/** What the agent does over HTTP (curl in agent.sh). */
async function agent(method: 'GET' | 'POST', path: string, body?: string | Buffer): Promise<string> {
  const res = await fetch(`${agentBase}${path}`, { method, body, headers: body ? { 'content-type': 'application/octet-stream' } : undefined });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text;
}
const report = (job: number, mac: string, lines: Record<string, string | number>) =>
  agent(
    'POST',
    `/imaging/jobs/${job}/report?mac=${mac}`,
    Object.entries(lines)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n') + '\n',
  );

test('images: list, deploy to two PCs with rows moving to done and failed, timeline steps, capture into a new image', { skip, timeout: 120_000 }, async () => {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  failurePage = page;
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(web!.url);
  await page.click('[data-screen=images]');

  // --- The image as the catalog has it.
  const imageRow = page.locator('tr[data-image="gpt-ref"]');
  await imageRow.waitFor({ timeout: 10_000 });
  assert.match(await imageRow.innerText(), /reference/);
  assert.equal(await imageRow.getByTestId('disk-size').innerText(), '256 MiB');
  assert.equal(await imageRow.getByTestId('used-size').innerText(), '18 MiB');
  assert.equal(await imageRow.getByTestId('stored-size').innerText(), '384 KiB');

  // --- A deploy to two machines, from the screen.
  await imageRow.getByRole('button', { name: 'Deploy gpt-ref' }).click();
  assert.equal(await page.getByLabel('Image to deploy').inputValue(), 'gpt-ref');
  await page.getByLabel('Deploy to bench-01').check();
  await page.getByLabel('Deploy to bench-02').check();
  await page.getByRole('button', { name: 'Deploy at their next boot' }).click();
  const notice = page.getByTestId('images-notice');
  await notice.filter({ hasText: /Job \d+: the next network boot of each of the 2 PCs deploys "gpt-ref"/ }).waitFor({ timeout: 10_000 });
  const jobId = Number(/Job (\d+)/.exec(await notice.innerText())![1]);
  const job = page.locator(`[data-job="${jobId}"]`);
  const row1 = job.locator(`tr[data-mac="${PC1}"]`);
  const row2 = job.locator(`tr[data-mac="${PC2}"]`);
  assert.equal(await row1.getByTestId('phase').innerText(), 'waiting to boot');
  assert.match(await row1.innerText(), /bench-01/);
  assert.equal(await imageRow.getByRole('button', { name: 'Delete gpt-ref' }).isDisabled(), true, 'an image being deployed cannot be deleted');

  // --- The PCs boot the imaging environment and ask for their task.
  const task = await agent('GET', `/imaging/task?mac=${PC1}`);
  assert.match(task, new RegExp(`job=${jobId}\\nkind=deploy\\nimage=gpt-ref\\n.*hostname=bench-01`, 's'));
  await agent('GET', `/imaging/task?mac=${PC2}`);
  await row1.getByTestId('phase').filter({ hasText: 'booting the imaging environment' }).waitFor({ timeout: 5000 });
  await report(jobId, PC1, { phase: 'checking', bytes: 0, total: 0 });
  await report(jobId, PC1, { phase: 'partitioning', bytes: 0, total: 18 * MIB });
  await row1.getByTestId('phase').filter({ hasText: 'partitioning' }).waitFor({ timeout: 5000 });

  // --- Writing: a report every 300 ms, ~6 MiB/s; the row's bytes, rate and ETA follow.
  const seen: string[] = [];
  for (let i = 1; i <= 6; i++) {
    await report(jobId, PC1, { phase: 'writing', bytes: i * 2 * MIB, total: 18 * MIB, part: 1 });
    await page.waitForTimeout(300);
    seen.push(await row1.getByTestId('bytes').innerText());
  }
  await row1.getByTestId('bytes').filter({ hasText: '12 MiB of 18 MiB' }).waitFor({ timeout: 5000 });
  assert.equal(await row1.getByTestId('phase').innerText(), 'writing partition 1');
  assert.ok(new Set(seen).size >= 3, `the bytes moved while writing: ${seen.join(' | ')}`);
  const rate = await row1.getByTestId('rate').innerText();
  assert.match(rate, /^\d+(\.\d)? MiB\/s$/, `a rate is shown: ${rate}`);
  assert.match(await row1.getByTestId('eta').innerText(), /^(\d+ s|<1 s)$/);
  assert.equal(Number(await row1.getByRole('progressbar').getAttribute('aria-valuenow')), 66.7);
  await page.screenshot({ path: join(shots, 'images-writing.png'), fullPage: true });

  // --- PC2 stops before writing: its disk is too small, in the agent's words.
  const reason = 'disk sda has 134217728 bytes, the image needs 268435456: use a larger disk';
  await report(jobId, PC2, { phase: 'failed', bytes: 0, total: 0, reason });
  await row2.getByTestId('phase').filter({ hasText: 'failed' }).waitFor({ timeout: 5000 });
  assert.equal(await row2.getByTestId('result').innerText(), `D${reason.slice(1)}`, "the agent's words, as a sentence");

  // --- PC1 verifies, names itself and is done.
  await report(jobId, PC1, { phase: 'verifying', bytes: 9 * MIB, total: 18 * MIB });
  await row1.getByTestId('phase').filter({ hasText: 'verifying' }).waitFor({ timeout: 5000 });
  await report(jobId, PC1, { phase: 'naming', bytes: 18 * MIB, total: 18 * MIB });
  await report(jobId, PC1, { phase: 'done', bytes: 18 * MIB, total: 18 * MIB });
  await row1.getByTestId('phase').filter({ hasText: 'done' }).waitFor({ timeout: 5000 });
  assert.equal(await row1.getByTestId('result').innerText(), 'written and verified');
  assert.equal(await row1.getByTestId('rate').innerText(), '–');
  await page.waitForFunction(() => !(document.querySelector('[aria-label="Delete gpt-ref"]') as HTMLButtonElement | null)?.disabled, undefined, {
    timeout: 5000,
  });
  await page.screenshot({ path: join(shots, 'images-done-failed.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(shots, 'images-390.png'), fullPage: true });
  const sideways = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(sideways <= 1, `the Images screen fits 390 px (${sideways} px too wide)`);
  await page.setViewportSize({ width: 1280, height: 900 });

  // --- The machine's timeline: its imaging steps, each once.
  await row1.getByRole('button', { name: 'Timeline of bench-01' }).click();
  const events = page.getByTestId('timeline-events');
  await events.filter({ hasText: 'Imaging: deploy of gpt-ref — done' }).waitFor({ timeout: 10_000 });
  const steps = (await events.innerText()).split('\n').filter((l) => l.includes('Imaging:'));
  assert.deepEqual(steps.map((l) => l.replace(/^.*Imaging:/, 'Imaging:').trim()).sort(), [
    'Imaging: deploy of gpt-ref — booting the imaging environment',
    'Imaging: deploy of gpt-ref — checking the disk',
    'Imaging: deploy of gpt-ref — done',
    'Imaging: deploy of gpt-ref — naming the PC',
    'Imaging: deploy of gpt-ref — partitioning',
    'Imaging: deploy of gpt-ref — verifying',
    'Imaging: deploy of gpt-ref — writing',
  ]);

  // --- A capture from the screen; the agent sends its chunks and manifest; a new image appears.
  await page.click('[data-screen=images]');
  await page.getByLabel('Machine to capture').selectOption({ label: `bench-01 (${PC1})` });
  await page.getByLabel('New image name').fill('gpt-ref');
  await page.getByRole('button', { name: 'Capture at its next boot' }).click();
  await notice.filter({ hasText: 'An image named "gpt-ref" exists: choose another name, or delete it first.' }).waitFor({ timeout: 5000 });
  await page.getByLabel('New image name').fill('bench01-disk');
  await page.getByRole('button', { name: 'Capture at its next boot' }).click();
  await notice.filter({ hasText: /Job \d+: the next network boot of bench-01 captures its disk into "bench01-disk"/ }).waitFor({ timeout: 5000 });
  const captureId = Number(/Job (\d+)/.exec(await notice.innerText())![1]);
  assert.match(await agent('GET', `/imaging/task?mac=${PC1}`), new RegExp(`job=${captureId}\\nkind=capture\\nimage=bench01-disk`));
  const chunk = Buffer.alloc(256 * 1024, 'captured');
  const sha = createHash('sha256').update(chunk).digest('hex');
  await report(captureId, PC1, { phase: 'reading', bytes: 0, total: 4 * MIB });
  await agent('POST', `/imaging/chunks/${sha}?job=${captureId}&mac=${PC1}`, chunk);
  await report(captureId, PC1, { phase: 'reading', bytes: 2 * MIB, total: 4 * MIB });
  const captureRow = page.locator(`[data-job="${captureId}"] tr[data-mac="${PC1}"]`);
  await captureRow.getByTestId('phase').filter({ hasText: 'reading the disk' }).waitFor({ timeout: 5000 });
  const manifest = [
    'label=gpt',
    'disk=sda size=536870912 model=Bench_SSD serial=S1',
    `part=1 start=2048 sectors=1048576 fs=ext4 tool=extfs bytes=${2 * MIB} sha256=${'e'.repeat(64)}`,
    `chunk=1 ${sha}`,
    'table=label: gpt',
    '',
  ].join('\n');
  await agent('POST', `/imaging/jobs/${captureId}/image?mac=${PC1}`, manifest);
  await captureRow.getByTestId('phase').filter({ hasText: 'done' }).waitFor({ timeout: 5000 });
  assert.equal(await captureRow.getByTestId('result').innerText(), 'image stored');
  const captured = page.locator('tr[data-image="bench01-disk"]');
  await captured.waitFor({ timeout: 5000 });
  assert.match(await captured.innerText(), /bench-01/);
  assert.equal(await captured.getByTestId('disk-size').innerText(), '512 MiB');
  assert.deepEqual(pageErrors, []);
  passed = true;
});

const agentSkip = skip ?? agentSkipReason();

test(
  'images: the real agent on loop devices, captured and deployed from the screen, ends done and verified',
  { skip: agentSkip, timeout: 180_000 },
  async (t) => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    failurePage = page;
    passed = false;
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));

    // The reference PC's disk: GPT, one ext4 partition with a hostname and 6 MiB of data.
    const ref = join(work, 'reference.img');
    run('truncate', ['-s', '48M', ref]);
    run('sfdisk', ['-q', ref], 'label: gpt\nstart=2048, size=94208, type=0FC63DAF-8483-4772-8E79-3D69C47D8E4D\n');
    const refPart = loop(ref, 2048 * 512, 94208 * 512);
    run('mkfs.ext4', ['-q', '-F', refPart]);
    const mnt = mkdtempSync(join(work, 'mnt-'));
    run('mount', ['-t', 'ext4', refPart, mnt]);
    mounts.push(mnt);
    mkdirSync(join(mnt, 'etc'));
    writeFileSync(join(mnt, 'etc', 'hostname'), 'reference\n');
    const data = randomBytes(6 * MIB);
    writeFileSync(join(mnt, 'data.bin'), data);
    run('umount', [mnt]);
    mounts.pop();
    unloop(refPart);

    await page.goto(web!.url);
    await page.click('[data-screen=images]');
    // The reference PC is whichever boots next: the row names no PC until bench-02's agent asks.
    await page.getByLabel('Machine to capture').selectOption({ label: 'The next machine that boots' });
    await page.getByTestId('next-machine-note').filter({ hasText: 'Power on only the reference PC' }).waitFor({ timeout: 5000 });
    await page.getByLabel('New image name').fill('loop-ref');
    await page.getByLabel('After the capture').selectOption('poweroff');
    await page.getByRole('button', { name: 'Capture at its next boot' }).click();
    const notice = page.getByTestId('images-notice');
    await notice.filter({ hasText: /the next network boot of whichever PC network-boots first captures its disk into "loop-ref"/ }).waitFor({ timeout: 5000 });
    const captureId = Number(/Job (\d+)/.exec(await notice.innerText())![1]);
    await page.locator(`[data-job="${captureId}"]`).getByTestId('any-machine').waitFor({ timeout: 5000 });

    const refDisk = loop(ref);
    const captured = await runAgent(agentBase, PC2, [refDisk], work);
    assert.equal(captured.code, 0, `the capture failed:\n${captured.out}`);
    unloop(refDisk);
    const captureRow = page.locator(`[data-job="${captureId}"] tr[data-mac="${PC2}"]`);
    await captureRow.getByTestId('phase').filter({ hasText: 'done' }).waitFor({ timeout: 10_000 });
    const image = page.locator('tr[data-image="loop-ref"]');
    await image.waitFor({ timeout: 5000 });
    assert.match(await image.innerText(), /bench-02/);
    assert.equal(await image.getByTestId('disk-size').innerText(), '48 MiB');
    await image.getByRole('button', { name: 'Verify loop-ref' }).click();
    await notice.filter({ hasText: /"loop-ref": all \d+ chunks check out\./ }).waitFor({ timeout: 10_000 });

    // Deploy it to a blank disk as bench-01; the row is watched while the agent works.
    const target = join(work, 'target.img');
    run('truncate', ['-s', '48M', target]);
    await image.getByRole('button', { name: 'Deploy loop-ref' }).click();
    await page.getByLabel('Deploy to bench-01').check();
    await page.getByRole('button', { name: 'Deploy at their next boot' }).click();
    await notice.filter({ hasText: /deploys "loop-ref"/ }).waitFor({ timeout: 5000 });
    const deployId = Number(/Job (\d+)/.exec(await notice.innerText())![1]);
    const row = page.locator(`[data-job="${deployId}"] tr[data-mac="${PC1}"]`);
    const targetDisk = loop(target);
    const phases = new Set<string>();
    const deploying = runAgent(agentBase, PC1, [targetDisk], work);
    let finished = false;
    void deploying.then(() => (finished = true));
    while (!finished) {
      phases.add(
        await row
          .getByTestId('phase')
          .innerText()
          .catch(() => '?'),
      );
      await page.waitForTimeout(100);
    }
    const deployed = await deploying;
    assert.equal(deployed.code, 0, `the deploy failed:\n${deployed.out}`);
    await row.getByTestId('phase').filter({ hasText: 'done' }).waitFor({ timeout: 10_000 });
    assert.equal(await row.getByTestId('result').innerText(), 'written and verified');
    assert.ok(phases.size >= 2, `the row changed while the agent worked: ${[...phases].join(', ')}`);
    t.diagnostic(`phases seen on the row while the agent deployed: ${[...phases].join(', ')}`);
    await page.screenshot({ path: join(shots, 'images-real-agent.png'), fullPage: true });
    unloop(targetDisk);

    // What the agent wrote: the same data, and the name from the machine list.
    const written = loop(target, 2048 * 512, 94208 * 512, true);
    const check = mkdtempSync(join(work, 'mnt-'));
    run('mount', ['-t', 'ext4', '-o', 'ro', written, check]);
    mounts.push(check);
    assert.equal(readFileSync(join(check, 'etc', 'hostname'), 'utf8').trim(), 'bench-01');
    assert.ok(readFileSync(join(check, 'data.bin')).equals(data), 'the data arrived intact');
    assert.deepEqual(pageErrors, []);
    passed = true;
  },
);
