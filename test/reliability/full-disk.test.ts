// Issue 9 item 7, second half: a full disk under the database turns history off with one
// warning and never stops boot service. `bootbench serve` runs in a namespace with its data
// folder on a 4 MiB tmpfs; the test fills that file system, drives DHCP and TFTP clients and
// checks: every download completes with the right sha256, every DISCOVER is answered, the
// host publishes `store.degraded` once and keeps running; after space is freed it publishes
// `store.recovered` and records history again; the database passes integrity_check.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Lab, netnsUnavailableReason } from '../helpers/netns.js';
import { PROJECT_ROOT, ServeProcess } from '../helpers/serve-process.js';
import { writeRandomFile } from '../integration/tftp-helpers.js';
import type { TransferOutcome } from './tftp-load-client.js';

const STORM = join(PROJECT_ROOT, 'test', 'reliability', 'discover-storm.ts');
const CLIENT = join(PROJECT_ROOT, 'test', 'reliability', 'tftp-load-client.ts');

function tmpfsUnavailableReason(): string | undefined {
  const netns = netnsUnavailableReason();
  if (netns) return netns;
  const probe = mkdtempSync(join(tmpdir(), 'bb-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return undefined;
  } catch (err) {
    return `cannot mount a tmpfs for the full-disk test: ${(err as Error).message}`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/** Writes `path` until the file system says ENOSPC; returns the bytes written. */
function fillFileSystem(path: string): number {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(16 * 1024, 0xa5);
  let written = 0;
  try {
    for (;;) written += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  // Small writes to use the last partial chunk too.
  const fd2 = openSync(path, 'a');
  try {
    for (;;) written += writeSync(fd2, chunk.subarray(0, 512));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd2);
  }
  return written;
}

const skip = tmpfsUnavailableReason();

describe('a full disk under the database', { skip }, () => {
  const lab = new Lab('bbfull');
  const dir = mkdtempSync(join(tmpdir(), 'bb-full-'));
  const root = join(dir, 'root');
  const data = join(dir, 'data');
  const filler = join(data, 'filler.bin');
  let mounted = false;
  let host = '';
  let client = '';
  let sha = '';
  let serve: ServeProcess | undefined;

  before(async () => {
    mkdirSync(root);
    mkdirSync(data);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', data]);
    mounted = true;
    sha = writeRandomFile(join(root, 'nbp.efi'), 2 * 1024 * 1024);
    host = lab.namespace('h');
    client = lab.namespace('c');
    lab.veth(host, 'bench0', '192.0.2.1/24', client, 'eth0', '192.0.2.10/24');
    serve = new ServeProcess(lab, host, ['--interface', 'bench0', '--root', root, '--boot', 'uefi64=nbp.efi', '--data', data]);
    await serve.ready();
  });
  after(async () => {
    await serve?.stop('SIGKILL').catch(() => undefined);
    lab.destroy();
    if (mounted) execFileSync('umount', ['-l', data]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs a client program in `ns` without blocking this process (the host's output is read here). */
  const runIn = (ns: string, cmd: string, args: string[], options: { cwd: string }): Promise<string> =>
    new Promise((resolve, reject) => {
      const child = lab.spawn(ns, cmd, args, options);
      let out = '';
      let err = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.at(-3)} exited with ${code}: ${err}`))));
    });
  const downloads = async (count: number): Promise<TransferOutcome[]> => {
    const out = await runIn(
      client,
      process.execPath,
      ['--import', 'tsx', CLIENT, JSON.stringify({ server: '192.0.2.1', names: ['nbp.efi'], count, blksize: 1468, windowsize: 16, deadlineMs: 60_000 })],
      { cwd: PROJECT_ROOT },
    );
    return (JSON.parse(out.trim().split('\n').at(-1)!) as { outcomes: TransferOutcome[] }).outcomes;
  };
  const storm = async (rate: number, seconds: number): Promise<{ sent: number; answered: number }> => {
    const out = await runIn(client, process.execPath, ['--import', 'tsx', STORM, 'eth0', String(rate), String(seconds)], { cwd: PROJECT_ROOT });
    return JSON.parse(out.trim().split('\n').at(-1)!);
  };
  const badDownloads = (outcomes: TransferOutcome[]) => outcomes.filter((o) => !o.ok || o.sha256 !== sha).map((o) => o.error ?? 'sha256 mismatch');

  test('boot service goes on, history goes off with one warning and comes back when space returns', async () => {
    const s = serve!;
    assert.deepEqual(badDownloads(await downloads(2)), [], 'downloads before the disk is full');

    const filled = fillFileSystem(filler);
    console.log(`filled the data folder's tmpfs with ${(filled / 1024).toFixed(0)} KiB`);
    // DISCOVERs from new MACs (a machine row and a timeline row each) and downloads, until
    // a write needs space the disk does not have; each round must be served in full.
    let rounds = 0;
    let answered = 0;
    let sent = 0;
    while (!s.events.some((e) => e.type === 'store.degraded') && rounds < 6) {
      rounds++;
      const [st, outcomes] = await Promise.all([storm(1000, 2), downloads(4)]);
      sent += st.sent;
      answered += st.answered;
      assert.deepEqual(badDownloads(outcomes), [], `downloads in round ${rounds}, disk full`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const degraded = s.events.filter((e) => e.type === 'store.degraded');
    assert.equal(degraded.length, 1, `store.degraded after ${rounds} rounds (log: ${s.logText().slice(-2000)})`);
    console.log(`store.degraded after ${rounds} round(s): ${degraded[0]!.message}`);
    assert.match(String(degraded[0]!.message), /history is off/i);
    assert.match(String(degraded[0]!.fix), new RegExp(`free space on ${data.replace(/[/.]/g, '\\$&')}|check the disk holding`));
    assert.equal(answered, sent, `${sent - answered} DISCOVERs unanswered while the disk filled up`);
    // The host's state carries the problem (the UI's Start screen lists it).
    const state = s.events.findLast((e) => e.type === 'service.state');
    assert.ok(
      ((state?.status as { problems?: string[] })?.problems ?? []).some((p) => /history is off/i.test(p)),
      'service.state without the store problem',
    );

    // Boot service while history is off: more DHCP and downloads, all served.
    const [st, outcomes] = await Promise.all([storm(1000, 2), downloads(6)]);
    assert.deepEqual(badDownloads(outcomes), [], 'downloads while history is off');
    assert.equal(st.answered, st.sent, 'DISCOVERs while history is off');
    assert.equal(s.exitCode, undefined, 'the host is still running');
    assert.equal(s.events.filter((e) => e.type === 'store.degraded').length, 1, 'one warning, not one per event');

    // Space returns: the host notices by itself (probe every 10 s) and records again.
    unlinkSync(filler);
    const recovered = await s.waitForEvent((e) => e.type === 'store.recovered', 25_000, 'store.recovered after freeing space');
    console.log(`store.recovered: ${recovered.message}`);
    assert.deepEqual(badDownloads(await downloads(2)), [], 'downloads after recovery');
    assert.equal(await s.stop('SIGTERM'), 0, 'the host stops cleanly');

    const db = new Database(join(data, 'bootbench.db'), { readonly: true, fileMustExist: true });
    try {
      assert.equal((db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join(', '), 'ok');
      const after = db.prepare("SELECT count(*) AS n FROM transfers WHERE outcome = 'done' AND started_at >= ?").get(recovered.time) as { n: number };
      assert.ok(after.n >= 2, `only ${after.n} transfers recorded after recovery`);
      assert.equal((db.prepare("SELECT count(*) AS n FROM transfers WHERE outcome = 'running'").get() as { n: number }).n, 0);
      assert.equal((db.prepare("SELECT count(*) AS n FROM boot_events WHERE type = 'store.recovered'").get() as { n: number }).n, 1);
    } finally {
      db.close();
    }
  });
});
