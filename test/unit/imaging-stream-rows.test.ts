// What the Images screen shows of a deploy sent as one stream: the stream's line while the
// running host sends it, and per PC what it got from the stream and by repair, live while it
// is in the stream and as stored once it left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openStore } from '../../main/store/index.js';
import { ImagingJobs, type StreamStats } from '../../main/imaging/index.js';
import { storeImaging } from '../../main/api/api-imaging.js';
import { makeTempDir } from '../helpers/store-temp.js';

const A = '52:54:00:aa:40:01';
const B = '52:54:00:aa:40:02';
const KIB = 1024;

test('a streamed deploy: the stream line while it runs, live shares per PC, stored shares once a PC left', () => {
  const temp = makeTempDir('bootbench-stream-rows-');
  const store = openStore(join(temp.dir, 'data'));
  try {
    const jobs = new ImagingJobs(store.db);
    const job = jobs.create({ kind: 'deploy', image: 'room', macs: [A, B] });
    const receiver = (mac: string, streamKiB: number, repairKiB: number) => ({
      mac: mac.toUpperCase(),
      position: 0,
      need: 0,
      window: 16,
      done: false,
      lastHeard: 1,
      received: 0,
      lost: 0,
      overrun: 0,
      streamKiB,
      repairKiB,
    });
    let live: StreamStats | undefined = {
      group: '239.255.66.2',
      port: 1760,
      session: 7,
      rate: 12_500_000,
      peakRate: 12_500_000,
      chunks: 40,
      chunksSent: 25,
      passes: 0,
      bytesSent: 90 * 1024 * KIB,
      receivers: [receiver(A, 900, 100), receiver(B, 500, 0)],
      start: { started: true, startedAt: 5, ready: [A, B], of: 2, manual: false },
    };
    const api = storeImaging({ store, dataDir: () => join(temp.dir, 'data'), liveStream: (id) => (id === job.id ? live : undefined) });

    let shown = api.job(job.id)!;
    assert.deepEqual(shown.stream, {
      group: '239.255.66.2:1760',
      rate: 12_500_000,
      chunks: 40,
      chunksSent: 25,
      passes: 0,
      bytesSent: 90 * 1024 * KIB,
      start: { started: true, startedAt: 5, ready: 2, of: 2, deadline: undefined },
    });
    assert.deepEqual(
      shown.machines.map((m) => [m.mac, m.streamed, m.repaired]),
      [
        [A, 900 * KIB, 100 * KIB],
        [B, 500 * KIB, 0],
      ],
    );

    // A left the stream (verifying): its stored share stands, whatever the stream says later.
    jobs.recordStream(job.id, A, 950 * KIB, 100 * KIB);
    live = { ...live, receivers: [receiver(A, 999, 999), receiver(B, 700, 10)] };
    shown = api.job(job.id)!;
    assert.deepEqual(
      shown.machines.map((m) => [m.streamed, m.repaired]),
      [
        [950 * KIB, 100 * KIB],
        [700 * KIB, 10 * KIB],
      ],
    );

    // The stream ended: no stream line; stored shares only (B never left it, so none for B).
    live = undefined;
    shown = api.jobs().find((j) => j.id === job.id)!;
    assert.equal(shown.stream, undefined);
    assert.deepEqual(
      shown.machines.map((m) => [m.streamed, m.repaired]),
      [
        [950 * KIB, 100 * KIB],
        [undefined, undefined],
      ],
    );
  } finally {
    store.close();
    temp.remove();
  }
});
