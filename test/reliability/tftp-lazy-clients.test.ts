// Clients that re-ACK only when their own timer runs out (Debian's atftp 0.8: a repeated or
// out-of-order block is dropped without an ACK and restarts its timer), under 10% loss each
// way (nftables in the client's namespace). Such a client recovers from a lost ACK only if
// the server's retransmissions leave it a silence longer than its timeout: 10 transfers at
// once per variant, windowsize 16 and lock-step, against the worker and the event-loop data
// paths side by side, all with the right sha256.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Lab, missingPrograms, netnsUnavailableReason, waitFor } from '../helpers/netns.js';
import { PROJECT_ROOT } from '../helpers/serve-process.js';
import { sha256File, writeRandomFile } from '../integration/tftp-helpers.js';
import { LOSS_TABLE, lossRules, lossRulesAtServer } from './loss-rules.js';

const run = promisify(execFile);
const LONG = process.env.BOOTBENCH_LONG === '1';
const skip = netnsUnavailableReason() ?? missingPrograms('nft', 'atftp');
const RUNNER = join(PROJECT_ROOT, 'test', 'reliability', 'tftp-server-runner.ts');
const SERVERS = { worker: '192.0.2.1', 'event-loop': '192.0.2.2' } as const;
const CLIENTS = 10;

// Every lost ACK costs such a client about two of its timeouts, so CI moves 1 MiB per
// transfer; BOOTBENCH_LONG=1 moves 8 MiB.
const VARIANTS = [
  { label: 'windowsize 16 + blksize 1468', options: ['--option', 'windowsize 16', '--option', 'blksize 1468'], size: LONG ? 8 * 1024 * 1024 : 1024 * 1024 },
  { label: 'lock-step, blksize 1468', options: ['--option', 'blksize 1468'], size: LONG ? 8 * 1024 * 1024 : 256 * 1024 },
];

// The variants run at once: their time is mostly the clients' 1 s timers, and each checks only its own file.
describe('TFTP clients that re-ACK only on their own timeout, 10% loss each way', { skip, concurrency: true }, () => {
  const lab = new Lab('bblazy');
  const dir = mkdtempSync(join(tmpdir(), 'bb-lazy-'));
  const root = join(dir, 'root');
  const out = join(dir, 'out');
  const sha = new Map<string, string>();
  const events: Record<string, unknown>[] = [];
  let client = '';
  let server = '';

  before(async () => {
    mkdirSync(root);
    mkdirSync(out);
    for (const v of VARIANTS) sha.set(`${v.size}.bin`, writeRandomFile(join(root, `${v.size}.bin`), v.size));
    server = lab.namespace('s');
    client = lab.namespace('c');
    lab.veth(server, 'eth0', `${SERVERS.worker}/24`, client, 'eth0', '192.0.2.10/24');
    lab.exec(server, 'ip', ['addr', 'add', `${SERVERS['event-loop']}/24`, 'dev', 'eth0']);
    const child = lab.spawn(server, process.execPath, ['--import', 'tsx', RUNNER, root, ...Object.entries(SERVERS).map(([path, ip]) => `${ip}=${path}`)], {
      cwd: PROJECT_ROOT,
    });
    let stderr = '';
    let buffer = '';
    let ready = false;
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout!.on('data', (c: Buffer) => {
      buffer += c.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line === 'ready') ready = true;
        else events.push(JSON.parse(line));
      }
    });
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`TFTP server runner exited: ${stderr}`);
        return ready;
      },
      30_000,
      `TFTP server runner (${stderr})`,
    );
    lab.exec(client, 'nft', ['-f', '-'], { input: lossRules(1, 'from-server', Object.values(SERVERS)) });
    lab.exec(server, 'nft', ['-f', '-'], { input: lossRulesAtServer(1, '192.0.2.10') });
  });
  after(async () => {
    for (const ns of [client, server]) {
      try {
        lab.exec(ns, 'nft', ['delete', 'table', 'inet', LOSS_TABLE]);
      } catch {
        /* namespace gone */
      }
    }
    await lab.destroy();
  });

  for (const v of VARIANTS) {
    test(`atftp --tftp-timeout 1, ${v.label}: ${CLIENTS} x ${v.size / 1024} KiB per data path, all intact`, async () => {
      const name = `${v.size}.bin`;
      const started = Date.now();
      const jobs = Object.entries(SERVERS).flatMap(([path, ip]) =>
        Array.from({ length: CLIENTS }, async (_, i) => {
          const local = join(out, `${path}-${v.size}-${v.options.length}-${i}`);
          const t0 = Date.now();
          try {
            await run('ip', ['netns', 'exec', client, 'atftp', '--tftp-timeout', '1', ...v.options, '-g', '-r', name, '-l', local, ip], { timeout: 600_000 });
          } catch (err) {
            return { path, i, ms: Date.now() - t0, error: ((err as { stderr?: string }).stderr ?? String(err)).trim().split('\n').slice(-6).join(' | ') };
          }
          return { path, i, ms: Date.now() - t0, error: sha256File(local) === sha.get(name) ? undefined : 'sha256 mismatch' };
        }),
      );
      const results = await Promise.all(jobs);
      const failedOnServer = events.filter((e) => e.type === 'tftp.failed' && e.file === `/${name}`);
      const slowest = Math.max(...results.map((r) => r.ms));
      console.log(
        `${v.label}: ${results.length} x ${v.size / 1024} KiB in ${Date.now() - started} ms (slowest ${slowest} ms), failed ${results.filter((r) => r.error).length}, server tftp.failed ${failedOnServer.length}`,
      );
      assert.deepEqual(
        results.filter((r) => r.error).map((r) => `${r.path} #${r.i}: ${r.error}`),
        [],
      );
      // A client leaves once it has sent its last ACK: when that ACK is lost, the server
      // abandons the transfer later (RFC 1350 §6). Nothing else may fail.
      assert.deepEqual(
        failedOnServer.map((e) => String(e.reason)).filter((r) => !r.startsWith('no ACK for the last block')),
        [],
      );
      const done = events.filter((e) => e.type === 'tftp.done' && e.file === `/${name}`);
      assert.ok(done.reduce((n, e) => n + Number(e.retransmits ?? 0), 0) > 0, 'loss was applied (the server had to retransmit)');
    });
  }
});
