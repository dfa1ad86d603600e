// The image store's rules: a chunk is kept only under the name its bytes hash to, an image
// exists only once all its chunks do, deleting one removes only chunks no other image uses,
// and what an interrupted capture left is removed at the next start.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ImageCatalog,
  ImageError,
  ImagingJobs,
  parseCapturedManifest,
  parseReport,
  renderManifest,
  renderTask,
  requiredDiskBytes,
  type ImageManifest,
} from '../../main/imaging/index.js';
import { ChunkError } from '../../main/imaging/chunk-store.js';
import { chunkStreamBytes } from '../../main/imaging/agent-protocol.js';
import { openStore } from '../../main/store/index.js';
import { imageCommand } from '../../main/cli/imaging.js';
import { makeTempDir } from '../helpers/store-temp.js';

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
async function* body(...parts: Buffer[]) {
  for (const p of parts) yield p;
}

function manifest(name: string, chunks: string[]): ImageManifest {
  return {
    format: 1,
    name,
    createdAt: 1,
    source: { mac: '52:54:00:00:00:01', disk: 'vda' },
    diskBytes: 64 << 20,
    table: 'label: gpt\n',
    label: 'gpt',
    partitions: [{ number: 1, start: 2048, sectors: 8192, fs: 'ext4', tool: 'extfs', streamBytes: 1000, streamSha256: 'a'.repeat(64), chunks }],
  };
}

describe('chunk store and image catalog', () => {
  const temp = makeTempDir('bootbench-imaging-');
  after(() => temp.remove());
  const catalog = new ImageCatalog(temp.dir);
  const one = Buffer.from('chunk one');
  const two = Buffer.from('chunk two');
  const shared = Buffer.from('shared chunk');

  test('a chunk whose bytes do not hash to its name is refused and leaves nothing', async () => {
    await assert.rejects(catalog.chunks.put(sha(one), body(two)), (err: ChunkError) => err.status === 422 && /damaged in transit/.test(err.message));
    assert.equal(catalog.chunks.has(sha(one)), false);
    assert.deepEqual(catalog.chunks.list(), []);
    assert.throws(() => catalog.chunks.path('../../etc/passwd'), /not a chunk name/);
  });

  test('a chunk is stored once, however often it is sent', async () => {
    assert.equal(await catalog.chunks.put(sha(one), body(one.subarray(0, 3), one.subarray(3))), true);
    assert.equal(await catalog.chunks.put(sha(one), body(one)), false);
    assert.deepEqual(catalog.chunks.list(), [sha(one)]);
  });

  test('an image is added only when every chunk it names is stored, and never over another', async () => {
    assert.throws(
      () => catalog.add(manifest('a', [sha(one), sha(shared)])),
      (err: ImageError) => err.status === 422 && /never stored/.test(err.message),
    );
    await catalog.chunks.put(sha(shared), body(shared));
    await catalog.chunks.put(sha(two), body(two));
    catalog.add(manifest('a', [sha(one), sha(shared)]));
    catalog.add(manifest('b', [sha(two), sha(shared)]));
    assert.throws(() => catalog.add(manifest('a', [sha(one)])), /exists/);
    assert.throws(() => catalog.add(manifest('../x', [sha(one)])), /not allowed/);
    assert.deepEqual(
      catalog.list().map((m) => m.name),
      ['a', 'b'],
    );
    assert.equal(catalog.summary(catalog.get('a')!).storedBytes, one.length + shared.length);
  });

  test('deleting an image removes only the chunks no other image uses', () => {
    const removed = catalog.remove('a');
    assert.deepEqual(removed, { chunks: 1, bytes: one.length });
    assert.deepEqual(catalog.chunks.list().sort(), [sha(shared), sha(two)].sort());
  });

  test('what an interrupted capture left (orphan chunks, temporary files) goes at the next collect', async () => {
    const orphan = Buffer.from('from a capture that never finished');
    await catalog.chunks.put(sha(orphan), body(orphan));
    const prefixDir = join(catalog.chunks.dir, sha(two).slice(0, 2));
    writeFileSync(join(prefixDir, `${sha(two)}.zst.123.part`), 'half a chunk');
    const kept = catalog.collect(new Set());
    assert.equal(kept.chunks, 1);
    assert.deepEqual(catalog.chunks.list().sort(), [sha(shared), sha(two)].sort());
    assert.deepEqual(
      readdirSync(prefixDir).filter((f) => f.endsWith('.part')),
      [],
    );
  });

  test('verify finds a damaged and a missing chunk', async () => {
    assert.deepEqual(await catalog.verify('b'), { chunks: 2, bad: [], missing: [] });
    writeFileSync(catalog.chunks.path(sha(two)), 'bit rot');
    rmSync(catalog.chunks.path(sha(shared)));
    const result = await catalog.verify('b');
    assert.deepEqual({ bad: result.bad, missing: result.missing }, { bad: [sha(two)], missing: [sha(shared)] });
  });
});

describe('the agent protocol', () => {
  const base = manifest('ref', ['b'.repeat(64), 'c'.repeat(64)]);

  test('a manifest survives a round trip through the text the agent reads and writes', () => {
    const text = `${renderManifest(base)}disk=vda size=${64 << 20} model=QEMU serial=S1\n`;
    const parsed = parseCapturedManifest(text, { name: 'ref', mac: base.source.mac, now: 1 });
    assert.deepEqual(parsed.partitions, base.partitions);
    assert.equal(parsed.table, base.table);
    assert.equal(parsed.source.serial, 'S1');
    assert.equal(requiredDiskBytes(parsed), (2048 + 8192 + 33) * 512);
  });

  test('a malformed or incomplete manifest is refused with what is wrong', () => {
    const good = `${renderManifest(base)}disk=vda size=1\n`;
    const cases: [string, RegExp][] = [
      [good.replace('label=gpt', 'label=apm'), /not supported/],
      [good.replace('tool=extfs', 'tool=rm'), /unknown reader/],
      [good.replace(/^disk=.*$/m, ''), /does not describe the source disk/],
      [good.replace(/bytes=1000/, 'bytes=0'), /read as empty/],
      [`${good}rm -rf /\n`, /unexpected manifest line/],
      [good.replace(/^chunk=1 b+ /m, 'chunk=1 nothex '), /not a SHA-256/],
      [good.replace(/^(chunk=1 b+) \d+$/m, '$1 lots'), /a chunk's bytes must be a whole number/],
      [good.replace(/^(chunk=1 b+ \d+)$/m, '$1 extra'), /unexpected manifest line/],
    ];
    for (const [text, reason] of cases) assert.throws(() => parseCapturedManifest(text, { name: 'x', mac: 'm', now: 1 }), reason);
  });

  test("each chunk line carries the chunk's true share of the stream: the boot code's 440 bytes, a short last chunk", () => {
    const MIB = 1024 * 1024;
    const names = (n: number, c: string) => Array.from({ length: n }, (_, i) => `${c}${i}`.padEnd(64, c));
    const image: ImageManifest = {
      ...base,
      partitions: [
        { ...base.partitions[0], number: 0, tool: 'boot', fs: '', streamBytes: 440, chunks: names(1, 'd') },
        { ...base.partitions[0], number: 1, streamBytes: 2 * 4 * MIB + 12345, chunks: names(3, 'e') },
        { ...base.partitions[0], number: 2, tool: 'dd', streamBytes: 8 * MIB, chunks: names(2, 'f') },
      ],
    };
    const lines = renderManifest(image)
      .split('\n')
      .filter((l) => l.startsWith('chunk='))
      .map((l) => l.split(' '));
    assert.deepEqual(
      lines.map(([part, , bytes]) => [part, Number(bytes)]),
      [
        ['chunk=0', 440],
        ['chunk=1', 4 * MIB],
        ['chunk=1', 4 * MIB],
        ['chunk=1', 12345],
        ['chunk=2', 4 * MIB],
        ['chunk=2', 4 * MIB],
      ],
    );
    // What the agent counts at the end of each partition is that partition's stream, so "X of Y" ends at Y.
    for (const p of image.partitions)
      assert.equal(
        chunkStreamBytes(p).reduce((a, b) => a + b, 0),
        p.streamBytes,
      );
    // A stream the capture's 4 MiB cut does not explain still adds up.
    assert.deepEqual(chunkStreamBytes({ streamBytes: 1000, chunks: ['x', 'y', 'z'] }), [333, 333, 334]);
    // The capture side still sends two fields, and an agent's manifest with three parses the same.
    const text = `${renderManifest(image)}disk=vda size=${64 << 20}\n`;
    assert.deepEqual(
      parseCapturedManifest(text, { name: 'ref', mac: base.source.mac, now: 1 }).partitions.map((p) => p.chunks),
      image.partitions.map((p) => p.chunks),
    );
  });

  test('reports and tasks', () => {
    assert.deepEqual(parseReport('phase=writing\nbytes=10\ntotal=20\n'), { phase: 'writing', bytes: 10, total: 20 });
    assert.throws(() => parseReport('phase=sleeping\n'), /unknown phase/);
    assert.equal(renderTask(undefined), 'kind=none\n');
    const task = renderTask({ id: 3, kind: 'deploy', image: 'ref', disk: 'SN 1;x', then: 'disk', createdAt: 1, machines: [] }, 'pc 7');
    assert.match(task, /^disk=SN_1_x$/m, 'values the agent reads are plain words');
    assert.match(task, /^hostname=pc_7$/m);
  });
});

describe('imaging jobs and the command line', () => {
  const temp = makeTempDir('bootbench-imaging-cli-');
  after(() => temp.remove());

  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await imageCommand([...args, '--data', temp.dir], { stdout: (t) => (out += t), stderr: (t) => (err += t) });
    return { code, out, err };
  }

  test('a new job for a PC replaces its unfinished one; reports carry a rate; captures end at a restart', () => {
    const store = openStore(temp.dir);
    try {
      let now = 1000;
      const jobs = new ImagingJobs(store.db, () => now);
      const first = jobs.create({ kind: 'deploy', image: 'ref', macs: ['52-54-00-00-00-0A'] });
      const second = jobs.create({ kind: 'capture', image: 'new', macs: ['52:54:00:00:00:0a'] });
      assert.equal(jobs.get(first.id)!.machines[0].reason, 'replaced by a newer job for this machine');
      assert.equal(jobs.pendingFor('52:54:00:00:00:0A')!.id, second.id);
      jobs.report(second.id, '52:54:00:00:00:0a', { phase: 'reading', bytes: 0, total: 100 });
      now += 2000;
      jobs.report(second.id, '52:54:00:00:00:0a', { phase: 'reading', bytes: 50 });
      assert.equal(jobs.get(second.id)!.machines[0].rate, 25);
      // A report 50 ms later (as a partition begins) measures no rate of its own; the next tick measures from it.
      now += 50;
      jobs.report(second.id, '52:54:00:00:00:0a', { phase: 'reading', bytes: 60, part: 2 });
      assert.equal(jobs.get(second.id)!.machines[0].rate, 25);
      now += 1000;
      jobs.report(second.id, '52:54:00:00:00:0a', { phase: 'reading', bytes: 80, part: 2 });
      assert.equal(jobs.get(second.id)!.machines[0].rate, 20);
      // A report that starts a partition does not measure the one before it, however long it took.
      now += 1000;
      jobs.report(second.id, '52:54:00:00:00:0a', { phase: 'reading', bytes: 84, part: 3 });
      assert.equal(jobs.get(second.id)!.machines[0].rate, 20);
      now += 1000;
      jobs.report(second.id, '52:54:00:00:00:0a', { phase: 'reading', bytes: 94, part: 3 });
      assert.equal(jobs.get(second.id)!.machines[0].rate, 10);
      assert.equal(jobs.failUnfinishedCaptures('the host stopped'), 1);
      assert.equal(jobs.pendingFor('52:54:00:00:00:0a'), undefined);
      assert.throws(() => jobs.create({ kind: 'capture', image: 'x', macs: ['a', 'b'] }), /not a MAC address/);
    } finally {
      store.close();
    }
  });

  test("a PC's row keeps the partition it works on, and where it stopped when it failed", () => {
    const store = openStore(temp.dir);
    try {
      const jobs = new ImagingJobs(store.db, () => 5000);
      const job = jobs.create({ kind: 'deploy', image: 'ref', macs: ['52:54:00:00:00:0b'] });
      const row = () => jobs.get(job.id)!.machines[0];
      jobs.report(job.id, '52:54:00:00:00:0b', { phase: 'writing', bytes: 10, total: 100, part: 0 });
      assert.equal(row().part, 0, 'the boot area');
      jobs.report(job.id, '52:54:00:00:00:0b', { phase: 'writing', bytes: 20, total: 100, part: 2 });
      assert.equal(row().part, 2);
      jobs.report(job.id, '52:54:00:00:00:0b', { phase: 'failed', reason: 'writing partition 2 failed' });
      assert.equal(row().part, 2, 'a failed PC still says where it stopped');
      const other = jobs.create({ kind: 'deploy', image: 'ref', macs: ['52:54:00:00:00:0c'] });
      jobs.report(other.id, '52:54:00:00:00:0c', { phase: 'verifying', part: 1 });
      jobs.report(other.id, '52:54:00:00:00:0c', { phase: 'naming' });
      assert.equal(jobs.get(other.id)!.machines[0].part, undefined, 'naming works on no one partition');
    } finally {
      store.close();
    }
  });

  test('refused jobs exit non-zero and say why', async () => {
    assert.match((await cli('deploy', 'nothing', '--machine', '52:54:00:00:00:01')).err, /no image named "nothing"/);
    const capture = await cli('capture', '--machine', '52:54:00:00:00:01', '--name', 'bad/name');
    assert.equal(capture.code, 1);
    assert.match(capture.err, /not allowed/);
    assert.equal((await cli('capture', '--name', 'x')).code, 2);
    const ok = await cli('capture', '--machine', '52:54:00:00:00:01', '--name', 'good', '--json');
    assert.equal(ok.code, 0, ok.err);
    assert.equal(JSON.parse(ok.out).kind, 'capture');
    const next = await cli('capture', '--next-machine', '--name', 'whoever', '--json');
    assert.equal(next.code, 0, next.err);
    assert.equal(JSON.parse(next.out).machines[0].mac, '*');
    const both = await cli('capture', '--next-machine', '--machine', '52:54:00:00:00:01', '--name', 'x');
    assert.equal(both.code, 2);
    assert.match(both.err, /exactly one --machine MAC, or --next-machine/);
    const status = await cli('status');
    assert.equal(status.code, 1, 'a failed PC (the job the first test replaced) makes status exit 1');
    assert.match(status.out, /capture good/);
    assert.match(status.out, /the next machine that boots {2}waiting/);
  });
});
