// kill -9 of the host during 20 transfers: the database must open, pass integrity_check, and
// show those transfers as interrupted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../main/store/index.js';
import { makeTempDir } from '../helpers/store-temp.js';

const temp = makeTempDir();
after(() => temp.remove());
const writer = join(dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'store-crash-writer.ts');
const ROUNDS = process.env.BOOTBENCH_LONG === '1' ? 10 : 2;

async function runAndKill(dbPath: string, killAfterMs: number): Promise<{ sawWal: boolean }> {
  const child = spawn(process.execPath, ['--import', 'tsx', writer, dbPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`writer never became ready: ${stderr}`)), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', () => reject(new Error(`writer exited early: ${stderr}`)));
  });
  await new Promise((r) => setTimeout(r, killAfterMs));
  // A second process (the app next to `bootbench serve`) must not close live transfers.
  const peer = openStore(dbPath);
  try {
    assert.equal(peer.sharedWithPid, child.pid);
    assert.equal(peer.interruptedAtOpen, 0);
    assert.equal(peer.transfers.listRunning().length, 20);
  } finally {
    peer.close();
  }
  const sawWal = existsSync(`${dbPath}-wal`);
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  return { sawWal };
}

for (let round = 1; round <= ROUNDS; round++) {
  test(`SIGKILL during 20 running transfers leaves an intact database with them interrupted (round ${round})`, { timeout: 60_000 }, async () => {
    const dbPath = join(temp.dir, `crash-${round}.db`);
    const { sawWal } = await runAndKill(dbPath, 150 + round * 70);
    assert.ok(sawWal, 'the writer was writing through the WAL when it was killed');

    const store = openStore(dbPath);
    try {
      assert.deepEqual(store.integrityCheck(), ['ok']);
      assert.equal(store.interruptedAtOpen, 20);
      const transfers = store.transfers.listRecent({ limit: 100 });
      assert.equal(transfers.length, 20);
      for (const t of transfers) {
        assert.equal(t.outcome, 'interrupted', `${t.file} is ${t.outcome}`);
        assert.ok(t.bytesSent > 0, `${t.file} has its progress (${t.bytesSent} bytes)`);
        assert.equal(t.size, 100_000_000);
        assert.ok(t.endedAt !== null && t.endedAt >= t.startedAt);
        assert.ok(t.machineId !== null, 'the transfer is linked to its machine');
      }
      assert.equal(store.machines.list().length, 20);
    } finally {
      store.close();
    }
    // A second open finds nothing more to close.
    const again = openStore(dbPath);
    assert.equal(again.interruptedAtOpen, 0);
    again.close();
  });
}
