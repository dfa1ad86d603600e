// The real renderer in Chromium against the real headless host (web mode), with services on
// a namespace NIC and a real client in a second namespace:
//   start full DHCP from the Start screen -> add a boot file on the Library screen (served at
//   once) -> import a machine list (CSV) -> assign a boot
//   entry to the client -> the client leases an address and is told that entry's file ->
//   it downloads the file by TFTP while the Live screen shows a moving progress bar ->
//   the Timeline shows its boot steps and where it got to.
// Both the host and Chromium run inside the server namespace (Chromium through a wrapper
// script), so the UI is reached on that namespace's loopback and nothing leaves the lab.
// Screenshots: test-output/ui/*.png
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, launchChromiumInNamespace } from '../helpers/chromium.js';
import { Lab, missingPrograms, netnsUnavailableReason, waitFor } from '../helpers/netns.js';
import Database from 'better-sqlite3';
import { openStore } from '../../main/store/index.js';
import { buildPe } from '../unit/library-fixtures.js';
// @ts-expect-error plain ESM helper shared with scripts/start.mjs
import { findElectron } from '../../scripts/find-electron.mjs';

const repo = resolve(new URL('.', import.meta.url).pathname, '../..');
const shots = join(repo, 'test-output/ui');
const SERVER_IP = '192.0.2.1';
const BIG_FILE_SIZE = 6 * 1024 * 1024;

const skip =
  netnsUnavailableReason() ??
  missingPrograms(CHROMIUM, 'curl', 'busybox', 'tc') ??
  (existsSync(join(repo, 'dist/renderer/index.html')) ? undefined : 'the renderer is not built: run `npm run build:renderer` (npm test builds it)');

let lab: Lab;
let work: string;
let host: ChildProcess | undefined;
let hostLog = '';
let browser: Browser | undefined;
/** Screenshot of where a failing run stopped, taken in after(). */
let failurePage: Page | undefined;
let passed = false;
/** SHA-256 of the EFI program the Library screen imports. */
let dropEfiSha = '';
const consoleProblems: string[] = [];

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

before(async () => {
  if (skip) return;
  mkdirSync(shots, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'bb-ui-lab-'));
  const root = join(work, 'root');
  const dataDir = join(work, 'data');
  mkdirSync(root);
  const ipxe = randomBytes(64 * 1024);
  const big = randomBytes(BIG_FILE_SIZE);
  writeFileSync(join(root, 'ipxe.efi'), ipxe);
  writeFileSync(join(root, 'undionly.kpxe'), randomBytes(32 * 1024));
  writeFileSync(join(root, 'rescue.img'), big);
  // What the technician adds on the Library screen: a UEFI x64 program and a text file.
  mkdirSync(join(work, 'drop'));
  const dropEfi = Buffer.concat([buildPe(0x8664), randomBytes(16 * 1024)]);
  dropEfiSha = createHash('sha256').update(dropEfi).digest('hex');
  writeFileSync(join(work, 'drop', 'memtest.efi'), dropEfi);
  writeFileSync(join(work, 'drop', 'notes.txt'), 'bench notes: row A cabled\n');

  // Boot entries stand in for the Library's import: written before the host opens the store,
  // as references to files in place (absolute paths), NBPs for UEFI x64.
  const store = openStore(dataDir);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  store.entries.create({
    name: 'iPXE',
    kind: 'nbp',
    files: [{ arch: 'uefi64', role: 'nbp', path: join(root, 'ipxe.efi'), size: ipxe.length, sha256: sha(ipxe) }],
  });
  store.entries.create({
    name: 'Rescue image',
    kind: 'nbp',
    files: [{ arch: 'uefi64', role: 'nbp', path: join(root, 'rescue.img'), size: big.length, sha256: sha(big) }],
  });
  store.close();

  lab = new Lab('bbui');
  const srv = lab.namespace('s');
  const cli = lab.namespace('c');
  lab.veth(srv, 'bench0', `${SERVER_IP}/24`, cli, 'eth0', null);
  // A bench link is not a veth: cap the server's sending to ~1 MB/s so a 6 MB download
  // lasts long enough to watch (curl ignores --limit-rate for TFTP).
  lab.exec(srv, 'tc', ['qdisc', 'add', 'dev', 'bench0', 'root', 'tbf', 'rate', '8mbit', 'burst', '16kb', 'latency', '400ms']);

  host = lab.spawn(
    srv,
    process.execPath,
    [
      '--import',
      'tsx',
      join(repo, 'main/cli/web.ts'),
      '--data',
      dataDir,
      '--root',
      root,
      '--boot',
      'uefi64=ipxe.efi',
      '--boot',
      'bios=undionly.kpxe',
      '--ui-port',
      '0',
      '--http-port',
      '8080',
    ],
    { cwd: repo },
  );
  host.stdout!.on('data', (d) => (hostLog += d));
  host.stderr!.on('data', (d) => (hostLog += d));

  // Chromium inside the server namespace: the UI listens on that namespace's loopback.
  browser = await launchChromiumInNamespace(srv, work);
});

after(async () => {
  if (failurePage && !passed) await shot(failurePage, 'failure').catch(() => {});
  await browser?.close().catch(() => {});
  host?.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  await lab?.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('technician flow in the browser against the real host on a namespace NIC', { skip, timeout: 180_000 }, async () => {
  const srv = `${lab.prefix}s`;
  const cli = `${lab.prefix}c`;
  const url = await waitFor(() => /Bootbench web UI: (http:\/\/\S+)/.exec(hostLog)?.[1], 20_000, `the host's UI address (log so far: ${hostLog})`);
  const clientMac = lab.exec(cli, 'cat', ['/sys/class/net/eth0/address']).trim();

  const page = await browser!.newPage({ viewport: { width: 1280, height: 860 } });
  failurePage = page;
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') consoleProblems.push(m.text());
  });
  page.on('pageerror', (e) => consoleProblems.push(String(e)));
  await page.goto(url);

  // --- Start: the namespace NIC is listed and preselected; choose full DHCP and start.
  const nic = page.locator('label.nic', { hasText: 'bench0' });
  await nic.waitFor();
  assert.equal(await nic.locator('input').isChecked(), true, 'bench0 is preselected');
  await page.locator('label.mode', { hasText: 'Full DHCP' }).click();
  assert.equal(await page.getByLabel('Pool first address').inputValue(), '192.0.2.100');
  // A pool outside the NIC's network is refused by the host, in words, with the fix.
  await page.getByLabel('Pool first address').fill('198.18.0.10');
  await page.getByLabel('Pool last address').fill('198.18.0.20');
  await page.getByTestId('start-stop').click();
  const problems = page.getByTestId('problems');
  await problems.waitFor({ timeout: 15_000 });
  assert.match(
    await problems.innerText(),
    /The address pool 198\.18\.0\.10-198\.18\.0\.20 is outside bench0's network 192\.0\.2\.0\/24: choose addresses in that network/,
  );
  await shot(page, '01-start-problem');
  await page.getByLabel('Pool first address').fill('192.0.2.100');
  await page.getByLabel('Pool last address').fill('192.0.2.150');
  await shot(page, '01-start');
  await page.getByTestId('start-stop').click();
  await page.locator('[data-service=tftp] .badge', { hasText: 'running' }).waitFor({ timeout: 20_000 });
  await page.locator('[data-service=dhcp] .badge', { hasText: 'running' }).waitFor({ timeout: 20_000 });
  assert.match(await page.getByTestId('serving-pill').innerText(), /Serving on bench0 \(192\.0\.2\.1\) · Full DHCP/);
  await shot(page, '02-started');

  // --- Library: a UEFI program typed as a host path becomes an entry with its kind,
  // architecture and hash; a file that is no boot file is refused with what was seen.
  await page.click('[data-screen=library]');
  // Names are editable fields on the Library screen: rows carry the entry's name.
  await page.getByTestId('entries').locator('tr[data-entry="Rescue image"]').waitFor();
  await page.getByLabel('Path on the host').fill(join(work, 'drop', 'memtest.efi'));
  await page.getByRole('button', { name: 'Add' }).click();
  const importResult = page.getByTestId('import-result');
  await importResult.filter({ hasText: 'Added 1 entry: memtest' }).waitFor({ timeout: 10_000 });
  const memtestRow = page.getByTestId('entries').locator('tr[data-entry="memtest"]');
  await memtestRow.waitFor();
  const memtestText = await memtestRow.innerText();
  assert.match(memtestText, /\bnbp\b/);
  assert.match(memtestText, /uefi64/);
  assert.match(memtestText, new RegExp(`${dropEfiSha.slice(0, 12)}`));
  assert.ok((await memtestRow.locator(`[title="${dropEfiSha}"]`).count()) > 0, 'the full SHA-256 is in the tooltip');
  await page.getByLabel('Path on the host').fill(join(work, 'drop', 'notes.txt'));
  await page.getByRole('button', { name: 'Add' }).click();
  await importResult.filter({ hasText: 'Nothing was added' }).waitFor({ timeout: 10_000 });
  assert.match(await importResult.innerText(), /Not added: notes\.txt: .*first bytes/);
  assert.equal(await page.getByTestId('entries').locator('tbody tr').count(), 3, 'two seeded entries and memtest');
  await shot(page, '03-library');

  // --- Machines: import a list; the client is on it.
  await page.click('[data-screen=machines]');
  const csv = `mac,name,group\n${clientMac},bench-07,row-a\n52:54:00:aa:00:08,bench-08,row-a\nzz:zz,broken,row-a\n`;
  await page.getByTestId('csv-input').setInputFiles({ name: 'bench.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  const message = page.getByTestId('machines-message');
  await message.waitFor();
  assert.match(await message.innerText(), /2 added, 0 updated; 1 row\(s\) refused/);
  const row = page.locator(`tr[data-mac="${clientMac}"]`);
  await row.waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
  assert.match(download.suggestedFilename(), /^bootbench-machines-.*\.csv$/);
  const exported = readFileSync((await download.path())!, 'utf8');
  assert.match(exported, new RegExp(`${clientMac}.*bench-07`));
  assert.equal(await row.locator('input[type=text]').first().inputValue(), 'bench-07');

  // --- Assign the rescue image to bench-07, then boot it.
  await row.locator('select').selectOption({ label: 'Rescue image' });
  await waitFor(
    async () => (await row.locator('select').inputValue()) !== '' && (await row.getByRole('checkbox', { name: /^Boot once/ }).isEnabled()),
    5000,
    'the assignment to be saved',
  );
  await shot(page, '04-machines');

  // A PXE client (vendor class, UEFI x64 arch) asks for an address; the lease tells it its boot file.
  const leaseFile = join(work, 'lease.env');
  const script = join(work, 'udhcpc.sh');
  writeFileSync(script, `#!/bin/sh\nif [ "$1" = bound ]; then ip addr add "$ip/24" dev "$interface"; env > ${leaseFile}; fi\nexit 0\n`);
  chmodSync(script, 0o755);
  lab.exec(
    cli,
    'busybox',
    ['udhcpc', '-i', 'eth0', '-n', '-q', '-t', '4', '-T', '2', '-s', script, '-V', 'PXEClient:Arch:00007:UNDI:003016', '-x', '0x5d:0007'],
    { timeoutMs: 30_000 },
  );
  const lease = Object.fromEntries(
    readFileSync(leaseFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  assert.match(lease.ip ?? '', /^192\.0\.2\.(1[0-4]\d|150)$/, 'address from the pool');
  assert.match(lease.boot_file ?? '', /^\/?library\/e\d+\/rescue\.img$/, 'the assigned entry decides the boot file');

  // The entry imported while serving is already served (mounted on import, no restart), at
  // /library/e<its id>/ (read from the database: the built-in Local disk takes an id as well).
  const db = new Database(join(work, 'data', 'bootbench.db'), { readonly: true });
  const memtestId = (db.prepare("SELECT id FROM entries WHERE name = 'memtest'").get() as { id: number }).id;
  db.close();
  const served = join(work, 'served-memtest.efi');
  lab.exec(cli, 'curl', ['-s', '-o', served, `tftp://${SERVER_IP}/library/e${memtestId}/memtest.efi`], { timeoutMs: 20_000 });
  assert.equal(createHash('sha256').update(readFileSync(served)).digest('hex'), dropEfiSha, 'the imported file is served by TFTP as it was added');

  // The machine shows up live as it asks.
  await row.locator('.dot.on').waitFor({ timeout: 5000 });

  // --- Live: download the boot file the way firmware does (TFTP), slowly enough to watch.
  await page.click('[data-screen=live]');
  const curl = lab.spawn(cli, 'curl', [
    '-s',
    '--tftp-blksize',
    '1024',
    '-o',
    '/dev/null',
    '-w',
    '%{size_download}',
    `tftp://${SERVER_IP}/${lease.boot_file.replace(/^\//, '')}`,
  ]);
  let curlOut = '';
  curl.stdout!.on('data', (d) => (curlOut += d));
  const curlDone = new Promise<number>((r) => curl.on('exit', (code) => r(code ?? -1)));

  const bar = page.locator('[data-testid=active-transfers] [role=progressbar]').first();
  await bar.waitFor({ timeout: 10_000 });
  const seen: number[] = [];
  const end = Date.now() + 20_000;
  while (Date.now() < end && seen.length < 40) {
    const value = await bar.getAttribute('aria-valuenow').catch(() => null);
    if (value === null) break; // finished: the row moved to history
    seen.push(Number(value));
    if (seen.length === 3) await shot(page, '05-live-progress');
    await page.waitForTimeout(250);
  }
  const distinct = [...new Set(seen)];
  assert.ok(distinct.length >= 3, `the progress bar moved (values seen: ${seen.join(', ')})`);
  assert.deepEqual(
    distinct,
    [...distinct].sort((a, b) => a - b),
    'and only forwards',
  );
  assert.equal(await curlDone, 0, `curl finished (${curlOut})`);
  assert.equal(Number(curlOut), BIG_FILE_SIZE);
  const history = page.getByTestId('transfer-history').locator('tr', { hasText: 'rescue.img' });
  await history.waitFor({ timeout: 5000 });
  assert.match(await history.innerText(), /bench-07[\s\S]*done/);
  await shot(page, '06-live-finished');

  // --- Timeline: the client's boot steps and where it got to, in plain words.
  await page.click('[data-screen=machines]');
  await row.getByRole('button', { name: 'Timeline' }).click();
  const diagnosis = page.getByTestId('diagnosis');
  await diagnosis.waitFor();
  await waitFor(async () => /Downloaded \S*rescue\.img/.test(await diagnosis.innerText()), 5000, 'the diagnosis to name the download');
  const steps = await page.getByTestId('timeline-events').innerText();
  for (const expected of [
    /DISCOVER from UEFI 64-bit firmware/,
    /Offered address 192\.0\.2\.\d+ with boot file \S*rescue\.img/,
    /Leased address/,
    /TFTP sent \S*rescue\.img \(6\.0 MB\)/,
  ]) {
    assert.match(steps, expected);
  }
  await shot(page, '07-timeline');

  // --- A machine nobody listed shows up on the Machines screen by itself as it asks.
  await page.click('[data-screen=machines]');
  const strangerMac = '02:00:00:00:00:77';
  lab.exec(cli, 'ip', ['link', 'set', 'eth0', 'down']);
  lab.exec(cli, 'ip', ['link', 'set', 'eth0', 'address', strangerMac]);
  lab.exec(cli, 'ip', ['link', 'set', 'eth0', 'up']);
  lab.exec(
    cli,
    'busybox',
    ['udhcpc', '-i', 'eth0', '-n', '-q', '-t', '4', '-T', '2', '-s', '/bin/true', '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000'],
    { timeoutMs: 30_000 },
  );
  const stranger = page.locator(`tr[data-mac="${strangerMac}"]`);
  await stranger.waitFor({ timeout: 10_000 });
  assert.match(await stranger.innerText(), /new/);
  assert.match(await page.locator('[data-screen=machines]').innerText(), /1 new/);
  await shot(page, '08-machines-live-new');

  // --- Stop from the Start screen.
  await page.click('[data-screen=start]');
  await page.getByTestId('start-stop').click();
  await page.getByTestId('serving-pill').filter({ hasText: 'Stopped' }).waitFor({ timeout: 10_000 });

  assert.deepEqual(consoleProblems, [], 'no console errors (a CSP violation would show here)');
  passed = true;
  void srv;
});

test('another DHCP server on the bench: the Start screen says so and offers the ways out', { skip, timeout: 90_000 }, async () => {
  const cli = `${lab.prefix}c`;
  const url = /Bootbench web UI: (http:\/\/\S+)/.exec(hostLog)?.[1];
  assert.ok(url, 'the host from the first test is still running');
  // A foreign DHCP server on the client side of the bench link.
  lab.exec(cli, 'ip', ['addr', 'add', '192.0.2.254/24', 'dev', 'eth0']);
  const conf = join(work, 'udhcpd.conf');
  writeFileSync(conf, `start 192.0.2.200\nend 192.0.2.210\ninterface eth0\nlease_file ${join(work, 'udhcpd.leases')}\n`);
  writeFileSync(join(work, 'udhcpd.leases'), '');
  const rogue = lab.spawn(cli, 'busybox', ['udhcpd', '-f', conf]);
  await new Promise((r) => setTimeout(r, 500));

  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(url!);
  await page.locator('label.nic', { hasText: 'bench0' }).waitFor();
  await page.locator('label.mode', { hasText: 'Full DHCP' }).click();
  await page.getByLabel('Pool first address').fill('192.0.2.100');
  await page.getByLabel('Pool last address').fill('192.0.2.150');
  await page.getByTestId('start-stop').click();
  const problems = page.getByTestId('problems');
  await problems.waitFor({ timeout: 20_000 });
  const text = await problems.innerText();
  assert.match(text, /Another DHCP server answers on bench0/);
  assert.match(text, /switch to Proxy DHCP mode beside it, or choose "Start anyway"/);
  assert.doesNotMatch(text, /--force|--mode/, 'no command-line flags on screen');
  await shot(page, '09-start-other-dhcp-server');
  await page.getByTestId('start-anyway').click();
  await page.getByTestId('serving-pill').filter({ hasText: 'Serving on bench0' }).waitFor({ timeout: 20_000 });
  await page.getByTestId('start-stop').click();
  await page.getByTestId('serving-pill').filter({ hasText: 'Stopped' }).waitFor({ timeout: 10_000 });
  await page.close();
  rogue.kill('SIGTERM');
});

test(
  'port in use and missing privileges: the Start screen says which and what to do',
  { skip: skip ?? missingPrograms('setpriv'), timeout: 90_000 },
  async () => {
    const srv = `${lab.prefix}s`;
    const url = /Bootbench web UI: (http:\/\/\S+)/.exec(hostLog)?.[1];
    assert.ok(url, 'the host from the first test is still running');

    // (a) Another program holds the TFTP port on the bench NIC's namespace.
    const holder = lab.spawn(srv, process.execPath, ['-e', "require('node:dgram').createSocket('udp4').bind(69, () => console.log('bound'))"]);
    await waitFor(() => new Promise<boolean>((r) => holder.stdout!.once('data', () => r(true))), 10_000, 'the port holder');
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(url!);
    await page.locator('label.mode', { hasText: 'Proxy DHCP' }).click();
    await page.getByTestId('start-stop').click();
    const problems = page.getByTestId('problems');
    await problems.waitFor({ timeout: 15_000 });
    assert.match(await problems.innerText(), /UDP port 69 .*is already in use by node \(pid \d+\): stop it/);
    await shot(page, '10-start-port-in-use');
    holder.kill('SIGKILL');
    await page.close();

    // (b) The host run by an ordinary user cannot open ports below 1024.
    const userData = join(work, 'data-nobody');
    mkdirSync(userData, { mode: 0o777 });
    chmodSync(userData, 0o777);
    chmodSync(work, 0o755);
    const unprivileged = lab.spawn(
      srv,
      'setpriv',
      [
        '--reuid=nobody',
        '--regid=nogroup',
        '--clear-groups',
        '--',
        process.execPath,
        '--import',
        'tsx',
        join(repo, 'main/cli/web.ts'),
        '--data',
        userData,
        '--root',
        join(work, 'root'),
        '--boot',
        'bios=undionly.kpxe',
        '--ui-port',
        '0',
      ],
      { cwd: repo, env: { ...process.env, HOME: userData } },
    );
    let out = '';
    unprivileged.stdout!.on('data', (d) => (out += d));
    unprivileged.stderr!.on('data', (d) => (out += d));
    const userUrl = await waitFor(() => /Bootbench web UI: (http:\/\/\S+)/.exec(out)?.[1], 30_000, `the unprivileged host's UI (output: ${out})`);
    const userPage = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    await userPage.goto(userUrl);
    await userPage.locator('label.mode', { hasText: 'Proxy DHCP' }).click();
    await userPage.getByTestId('start-stop').click();
    const userProblems = userPage.getByTestId('problems');
    await userProblems.waitFor({ timeout: 15_000 });
    assert.match(await userProblems.innerText(), /Cannot open UDP port 69.*need root or the CAP_NET_BIND_SERVICE capability\. Fix: /);
    await shot(userPage, '11-start-no-privileges');
    await userPage.close();
    unprivileged.kill('SIGTERM');
  },
);

test(
  'npm start falls back to web mode, says why, and guards a non-loopback UI with a token',
  { skip: skip ?? (findElectron(repo).reason ? undefined : 'Electron can run here: npm start opens the desktop app instead'), timeout: 60_000 },
  async () => {
    // Inside the server namespace (the lab's address, nothing on the host's network).
    const srv = `${lab.prefix}s`;
    const child = lab.spawn(srv, 'npm', ['start', '--', '--data', join(work, 'data-start'), '--ui-port', '0', '--ui-address', SERVER_IP], { cwd: repo });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const url = await waitFor(() => /Bootbench web UI: (http:\/\/\S+)/.exec(out)?.[1], 30_000, `the web UI address (output: ${out})`);
    assert.match(out, /Not starting the desktop app: Electron's binary is not installed/);
    assert.match(url, /^http:\/\/192\.0\.2\.1:\d+\/#token=[\w-]{32}$/, 'another address than loopback: the URL carries a token');

    const withToken = await browser!.newContext();
    const page = await withToken.newPage();
    await page.goto(url);
    await page.locator('label.nic', { hasText: 'bench0' }).waitFor();
    assert.equal(await page.evaluate(() => location.hash), '', 'the token is taken out of the address bar');
    await withToken.close();

    const withoutToken = await browser!.newContext();
    const stranger = await withoutToken.newPage();
    await stranger.goto(url.replace(/#.*$/, ''));
    await stranger
      .getByRole('alert')
      .filter({ hasText: /connection to the Bootbench host/ })
      .waitFor({ timeout: 10_000 });
    assert.equal(await stranger.locator('label.nic').count(), 0, 'no data without the token');
    await withoutToken.close();
    child.kill('SIGTERM');
  },
);
