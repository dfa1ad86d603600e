// The Images screen of a deploy sent as one stream, in Chromium against the real headless host
// (web mode) in full DHCP mode on a namespace NIC: the deploy is made on the screen to start
// when the technician presses Go; two agents (build/imaging-env/agent.sh with bb-stream-recv
// compiled here) in their own namespaces write loop devices over files of this test; their
// rows say they wait for Go; Go on the job's stream line starts the stream, whose line shows
// chunks going out; both PCs finish verified and each row shows how much of the image it
// wrote came from the stream and how much by repair: the two add up to the image, and a PC
// that lost no datagram repaired nothing (the stream is capped below the port's rate).
//   host ns eth0 198.18.9.1 (web.ts, Chromium) --- br0 (switch ns) --- agents 198.18.9.1x
// Screenshots: test-output/ui/stream-*.png
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, launchChromiumInNamespace } from '../helpers/chromium.js';
import { missingPrograms, netnsUnavailableReason, waitFor } from '../helpers/netns.js';
import { openStore, readIgmpListening } from '../../main/store/index.js';
import { ImagingJobs } from '../../main/imaging/index.js';
import { storeRawImage } from '../helpers/stream-image.js';
import { HTTP_PORT, StreamRoom } from '../helpers/stream-harness.js';

const REPO = join(import.meta.dirname, '..', '..');
const shots = join(REPO, 'test-output/ui');
const skip =
  (process.getuid?.() !== 0 ? 'loop devices and namespaces need root' : undefined) ??
  netnsUnavailableReason() ??
  missingPrograms(CHROMIUM, 'busybox', 'losetup', 'sfdisk', 'partclone.dd', 'partclone.restore', 'zstd', 'curl', 'gcc', 'tc') ??
  (existsSync(join(REPO, 'dist/renderer/index.html')) ? undefined : 'the renderer is not built: run `npm run build:renderer` (npm test builds it)');

const MIB = 1024 * 1024;
const PART_START = 2048;
const PART_MIB = 32;
const DISK_MIB = PART_MIB + 4;
const PCS = [
  { mac: '52:54:00:bb:90:01', name: 'stream-01' },
  { mac: '52:54:00:bb:90:02', name: 'stream-02' },
];
/** The port's 40 Mbit/s with room for the PCs' HTTP: a stream faster than its path loses datagrams there, and a clean run is to repair nothing. */
const MAX_RATE = '32M';

let room: StreamRoom | undefined;
let host: ChildProcess | undefined;
let hostLog = '';
let browser: Browser | undefined;
let failurePage: Page | undefined;
let passed = false;
let reference: Buffer;
let compressedBytes = 0;
let data = '';
let bootCode: Buffer;

before(async () => {
  if (skip) return;
  mkdirSync(shots, { recursive: true });
  // The host namespace, a switch and one agent namespace a PC, on 198.18.9.0/24.
  room = new StreamRoom('bbis', '198.18.9', PCS.length);
  const { work } = room;
  data = room.data;
  const root = join(work, 'root');
  mkdirSync(root);
  writeFileSync(join(root, 'ipxe.efi'), randomBytes(4096));
  // The image: boot code and one raw partition of random data (it does not compress: the stream carries all of it).
  bootCode = Buffer.from('BOOTBENCH UI STREAM BOOT CODE '.repeat(20)).subarray(0, 440);
  reference = randomBytes(PART_MIB * MIB);
  ({ compressedBytes } = await storeRawImage({
    data,
    work,
    sourceMac: '52:54:00:bb:90:09',
    sourceMachine: 'reference',
    partition: reference,
    bootCode,
    zstdLevel: 1,
  }));
  const store = openStore(data);
  for (const pc of PCS) store.machines.create({ macs: [pc.mac], name: pc.name, group: 'stream-room' });
  store.close();

  room.setUp();
  const { lab, hostNs } = room;
  lab.exec(room.switchNs, 'ip', ['link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
  // The host's NIC at 40 Mbit/s: the stream lasts long enough to be watched on the screen.
  lab.exec(hostNs, 'tc', ['qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', '40mbit', 'burst', '64kb', 'latency', '100ms']);

  host = lab.spawn(
    hostNs,
    process.execPath,
    [
      '--import',
      'tsx',
      join(REPO, 'main/cli/web.ts'),
      '--data',
      data,
      '--root',
      root,
      '--boot',
      'uefi64=ipxe.efi',
      '--interface',
      'eth0',
      '--mode',
      'dhcp',
      '--pool',
      '198.18.9.100-198.18.9.150',
      '--max-rate',
      MAX_RATE,
      '--http-port',
      String(HTTP_PORT),
      '--ui-port',
      '0',
      '--start',
    ],
    { cwd: REPO },
  );
  host.stdout!.on('data', (d) => (hostLog += d));
  host.stderr!.on('data', (d) => (hostLog += d));
  browser = await launchChromiumInNamespace(hostNs, work);
});

after(async () => {
  if (failurePage && !passed) await failurePage.screenshot({ path: join(shots, 'stream-failure.png'), fullPage: true }).catch(() => {});
  await browser?.close().catch(() => {});
  host?.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  await room?.destroy();
});

test(
  'a deploy held for Go on the Images screen: rows wait, Go starts the stream, its line moves, both PCs finish with their stream and repair shares',
  { skip, timeout: 240_000 },
  async (t) => {
    const url = await waitFor(() => /Bootbench web UI: (http:\/\/\S+)/.exec(hostLog)?.[1], 30_000, `the host's UI address (log so far: ${hostLog})`);
    const page = await browser!.newPage({ viewport: { width: 1280, height: 1000 } });
    failurePage = page;
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(url);
    await page.getByTestId('serving-pill').filter({ hasText: 'Full DHCP' }).waitFor({ timeout: 30_000 });
    // The host listens for IGMP queriers on its NIC the whole time it serves, and says so in the store for bootbench doctor.
    const listen = readIgmpListening(data, 'eth0');
    assert.ok(listen && listen.pid === host!.pid && listen.querier === undefined, `the host's IGMP listen in the store: ${JSON.stringify(listen)}`);
    await page.click('[data-screen=images]');

    // --- The deploy, made on the screen: both PCs, the stream to start on Go.
    await page.locator('tr[data-image="room"]').waitFor({ timeout: 10_000 });
    await page.getByLabel('Image to deploy').selectOption('room');
    for (const pc of PCS) await page.getByLabel(`Deploy to ${pc.name}`).check();
    await page.getByLabel('When the stream starts').selectOption('manual');
    assert.equal(await page.getByLabel('Seconds after the first PC is ready').count(), 0, 'Go alone: no timer to set');
    await page.getByTestId('deploy-form').getByRole('button', { name: 'Deploy at their next boot' }).click();
    await page
      .getByTestId('images-notice')
      .filter({ hasText: /Job \d+: the next network boot of each of the 2 PCs deploys "room"/ })
      .waitFor();
    const jobId = Number(/Job (\d+)/.exec(await page.getByTestId('images-notice').innerText())![1]);
    const job = page.locator(`[data-job="${jobId}"]`);
    await job.getByTestId('stream-start').filter({ hasText: 'Stream: waiting for Go (no PC ready yet).' }).waitFor({ timeout: 10_000 });

    // --- The PCs boot (agents in their namespaces) and wait for Go.
    const disks = PCS.map((pc) => room!.disk(pc.name, DISK_MIB));
    const agents = PCS.map((pc, i) => room!.agent(room!.agentNs[i], pc.mac, disks[i].dev));
    let ended = false;
    void Promise.race(agents).then(() => (ended = true));
    await job.getByTestId('stream-start').filter({ hasText: 'waiting for Go (2 of 2 PCs ready)' }).waitFor({ timeout: 60_000 });
    for (const pc of PCS) {
      const row = job.locator(`tr[data-mac="${pc.mac}"]`);
      await row.getByTestId('phase').filter({ hasText: 'waiting for the stream' }).waitFor({ timeout: 10_000 });
      assert.equal(await row.getByTestId('stream-wait').innerText(), 'waiting for Go (2 of 2 PCs ready)');
    }
    // Past the receivers' 5 s fallback: still waiting, nothing fetched.
    await new Promise((r) => setTimeout(r, 6000));
    assert.equal(ended, false, 'no PC ended while the stream waited for Go');
    assert.equal(await job.getByTestId('stream-start').count(), 1);
    await page.screenshot({ path: join(shots, 'stream-1-waiting-for-go.png'), fullPage: true });

    // --- Go.
    // The deploy's "at the next network boot" went when both PCs booted: their rows say it now.
    assert.equal(await page.getByTestId('images-notice').count(), 0, 'the notice about the next boot is history once the PCs booted');
    await job.getByRole('button', { name: `Go: start the stream of job ${jobId}` }).click();
    const line = job.getByTestId('stream');
    await line.filter({ hasText: /One stream for these PCs \(239\.255\.66\.\d+:\d+\): .*, [1-9]\d* of 9 chunks sent/ }).waitFor({ timeout: 20_000 });
    assert.equal(await job.getByTestId('stream-start').count(), 0, 'the waiting line gave way to the running stream');
    // "Go given. The stream starts within a second" was true for a moment (the unit test of the
    // Images state shows it); with the stream running, its line tells the truth and the notice is gone.
    await page.getByTestId('images-notice').waitFor({ state: 'detached', timeout: 5000 });
    await page.screenshot({ path: join(shots, 'stream-2-running.png'), fullPage: true });

    const runs = await Promise.all(agents);
    for (const [i, r] of runs.entries()) {
      t.diagnostic(`${PCS[i].name}: ${/bb-stream-recv: .*/.exec(r.out)?.[0]}`);
      assert.equal(r.code, 0, `${PCS[i].name} failed:\n${r.out}\nhost:\n${hostLog}`);
      assert.match(r.out, /deployed image room to loop\d+, verified/);
      execFileSync('sync');
      const disk = readFileSync(disks[i].file);
      assert.ok(disk.subarray(0, 440).equals(bootCode), `${PCS[i].name}: the boot code`);
      assert.ok(disk.subarray(PART_START * 512, PART_START * 512 + PART_MIB * MIB).equals(reference), `${PCS[i].name}: partition 1 equals the image`);
    }
    for (const pc of PCS) {
      const row = job.locator(`tr[data-mac="${pc.mac}"]`);
      await row.getByTestId('result').filter({ hasText: 'written and verified' }).waitFor({ timeout: 20_000 });
      const share = await row.getByTestId('stream-share').innerText();
      const m = /written: ([\d.]+) (KiB|MiB) from the stream, ([\d.]+) (B|KiB|MiB) by repair/.exec(share);
      assert.ok(m, `${pc.name}'s row shows its stream and repair shares: "${share}"`);
      assert.ok(m[2] === 'MiB' && Number(m[1]) > PART_MIB / 2, `${pc.name} got most of the image from the stream: "${share}"`);
      const shown = (value: string, unit: string) => Number(value) * { B: 1, KiB: 1024, MiB: MIB }[unit]!;
      // The two shares add up to the image (each shown rounded: within 0.5 MiB).
      assert.ok(
        Math.abs(shown(m[1], m[2]) + shown(m[3], m[4]) - compressedBytes) <= MIB / 2,
        `${pc.name}: "${share}" adds up to the image's ${compressedBytes} bytes`,
      );
    }
    // The job's line once every PC is done: all verified, and the shares summed over the room.
    const outcome = await job.getByTestId('job-outcome').innerText();
    assert.match(
      outcome,
      /^Finished at \d\d:\d\d:\d\d: 2 of 2 PCs written and verified\. The stream started at \d\d:\d\d:\d\d, the last PC finished (<1 s|\d+ s) later; together they wrote [\d.]+ MiB from the stream and [\d.]+ (B|KiB|MiB) by repair\.$/,
    );
    // What the host recorded: every byte of the image written came from the stream or by
    // repair, once (the receiver reports whole KiB); a PC that lost no datagram repaired nothing.
    const store = openStore(data);
    try {
      const rows = new ImagingJobs(store.db).get(jobId)!.machines;
      for (const [i, pc] of PCS.entries()) {
        const row = rows.find((m) => m.mac === pc.mac)!;
        const line = /bb-stream-recv: (\d+) bytes from the stream, (\d+) by repair .*, (\d+) datagrams lost/.exec(runs[i].out);
        assert.ok(line, `${pc.name}'s receiver summed up its run:\n${runs[i].out}`);
        assert.equal(Number(line[1]) + Number(line[2]), compressedBytes, `${pc.name}: the receiver's stream and repair bytes are the image's: ${line[0]}`);
        assert.equal(
          (row.streamed ?? 0) + (row.repaired ?? 0),
          Math.floor(compressedBytes / 1024) * 1024,
          `${pc.name}'s recorded shares: ${JSON.stringify(row)}`,
        );
        if (line[3] === '0') assert.equal(row.repaired, 0, `${pc.name} lost no datagram, so it repaired nothing: ${line[0]}`);
      }
    } finally {
      store.close();
    }
    await page.screenshot({ path: join(shots, 'stream-3-done.png'), fullPage: true });
    assert.deepEqual(pageErrors, []);
    passed = true;
  },
);
