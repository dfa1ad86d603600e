// bb-stream-recv's account of where the image came from, against a stream whose datagrams
// the test chooses (test/integration/stream-receiver-runner.ts plays the host in one
// namespace, the receiver runs in another, joined by a veth pair): one chunk comes whole, one
// with a third of its blocks (fewer than half: the receiver fetches all of it by HTTP and
// drops what it streamed), one missing two blocks with one between them and its short last
// block (fetched as two ranges, the block between them again). What it wrote equals the
// chunks; its bytes "from the stream" and "by repair" are the bytes written, so they add up
// to the image, each block counted once, and the bytes fetched by HTTP are reported apart.
//   ns s: eth0 198.18.11.1 (runner: HTTP and the stream) --- ns r: eth0 198.18.11.2 (bb-stream-recv)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectJsonLines, Lab, missingPrograms, netnsUnavailableReason, waitFor } from '../helpers/netns.js';
import { PROJECT_ROOT } from '../helpers/serve-process.js';
import { streamReceiverBin } from '../helpers/stream-image.js';
import { DATA_PAYLOAD } from '../../main/imaging/multicast-datagram.js';

const skip = (process.getuid?.() !== 0 ? 'namespaces need root' : undefined) ?? netnsUnavailableReason() ?? missingPrograms('gcc', 'mkfifo');
const RUNNER = join(import.meta.dirname, 'stream-receiver-runner.ts');
const HOST = '198.18.11.1';
const GROUP = '239.255.66.201';
const PORT = 47001;
const HTTP_PORT = 8080;
const SESSION = '5eed0001';
const MAC = '52:54:00:bb:11:02';

let lab: Lab;
let work = '';

before(() => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'bb-recv-account-'));
  lab = new Lab('bbra');
});

after(async () => {
  await lab?.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
});

test(
  'whole and range repairs: the bytes from the stream and by repair are the bytes written, once each; the HTTP bytes are told apart',
  { skip, timeout: 60_000 },
  async (t) => {
    const bin = streamReceiverBin(join(work, 'bin'));
    // 50, 50 and 29 blocks (the last of 847 bytes).
    const sizes = [50 * DATA_PAYLOAD, 50 * DATA_PAYLOAD, 28 * DATA_PAYLOAD + 847];
    const chunks = sizes.map((n) => randomBytes(n));
    const files = chunks.map((c, i) => {
      const file = join(work, `chunk-${i}`);
      writeFileSync(file, c);
      return file;
    });
    // Each line's third field is the chunk's share of the partition's stream, what the progress
    // file counts for it: the boot code's 440 bytes, a short last chunk; a line without one (a
    // host before the field) counts the capture's 4 MiB.
    const shares = ['440', '100000', ''];
    writeFileSync(join(work, 'list'), chunks.map((c, i) => `1 ${createHash('sha256').update(c).digest('hex')}${shares[i] ? ` ${shares[i]}` : ''}\n`).join(''));
    const progress = join(work, 'bytes');
    writeFileSync(progress, '1000\n');
    const out = join(work, 'out');
    execFileSync('mkdir', [out]);
    execFileSync('mkfifo', [join(out, 'part-1')]);

    const s = lab.namespace('s');
    const r = lab.namespace('r');
    lab.veth(s, 'eth0', `${HOST}/24`, r, 'eth0', '198.18.11.2/24');
    const plan = ['all', 'every:3', 'skip:3,5,28'];
    const runner = lab.spawn(
      s,
      process.execPath,
      [
        '--import',
        'tsx',
        RUNNER,
        '--address',
        HOST,
        '--group',
        GROUP,
        '--port',
        String(PORT),
        '--http-port',
        String(HTTP_PORT),
        '--session',
        SESSION,
        ...files.flatMap((f) => ['--chunks', f]),
        ...plan.flatMap((p) => ['--plan', p]),
      ],
      { cwd: PROJECT_ROOT },
    );
    const events = collectJsonLines(runner);
    await waitFor(() => events.lines.some((l) => l.ready), 20_000, `the runner (${events.stderr()})`);

    const written: Buffer[] = [];
    const reading = new Promise<void>((resolve, reject) => {
      const stream = createReadStream(join(out, 'part-1'));
      stream.on('data', (d) => written.push(d as Buffer));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const stats = join(work, 'stats');
    const receiver = lab.spawn(r, join(bin, 'bb-stream-recv'), [
      '-g',
      `${GROUP}:${PORT}:${SESSION}`,
      '-s',
      `http://${HOST}:${HTTP_PORT}`,
      '-m',
      MAC,
      '-l',
      join(work, 'list'),
      '-o',
      out,
      '-S',
      stats,
      '-b',
      progress,
    ]);
    let stderr = '';
    receiver.stderr?.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => receiver.on('exit', resolve));
    await reading;
    t.diagnostic(stderr.trim());
    assert.equal(code, 0, `the receiver failed:\n${stderr}\nrunner:\n${events.stderr()}`);
    assert.ok(Buffer.concat(written).equals(Buffer.concat(chunks)), 'it wrote the chunks, in order');

    assert.equal(readFileSync(progress, 'utf8'), `${1000 + 440 + 100000 + 4 * 1024 * 1024}\n`, "the progress file: what was there, plus each chunk's share");

    const total = sizes.reduce((a, b) => a + b, 0);
    // Repaired: all of chunk 1 (a third of it streamed is dropped, not counted), and blocks 3, 5 and 28 of chunk 2.
    const repaired = sizes[1] + 2 * DATA_PAYLOAD + 847;
    // Fetched: chunk 1 whole, blocks 3 to 5 of chunk 2 as one range (the gap of one block between them joined) and block 28.
    const fetched = sizes[1] + 3 * DATA_PAYLOAD + 847;
    assert.equal(readFileSync(stats, 'utf8'), `stream=${total - repaired} repair=${repaired} http=${fetched}\n`);
    assert.match(
      stderr,
      new RegExp(`${total - repaired} bytes from the stream, ${repaired} by repair \\(2 of 3 chunks repaired, ${fetched} bytes fetched by HTTP\\)`),
    );
    const requests = events.lines
      .filter((l) => l.http?.startsWith('/imaging/chunks/'))
      .map((l) => (l.http as string).replace(/^\/imaging\/chunks\/[0-9a-f]+/, ''));
    assert.deepEqual(requests, ['', `?ranges=${3 * DATA_PAYLOAD}-${6 * DATA_PAYLOAD - 1},${28 * DATA_PAYLOAD}-${28 * DATA_PAYLOAD + 846}`]);
    // Its last word to the host (the done feedback): the two shares in KiB add up to the image's KiB.
    const done = events.lines.filter((l) => l.feedback?.done).at(-1)?.feedback;
    assert.ok(done, 'the receiver said it was done');
    assert.equal(done.streamKiB, Math.floor((total - repaired) / 1024));
    assert.equal(done.streamKiB + done.repairKiB, Math.floor(total / 1024));
  },
);
