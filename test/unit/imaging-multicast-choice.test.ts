// The deploy's side of the multicast choice and the IGMP querier: a stream holds the querier
// from its start to its end; a host that does not stream (proxy mode, or multicast off) says
// why on each deploy to several PCs; and the stream line carries what the querier does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openStore } from '../../main/store/index.js';
import { ImagingJobs, ImagingService, type StreamStats } from '../../main/imaging/index.js';
import { storeImaging } from '../../main/api/api-imaging.js';
import { silentLogger } from '../../main/core/logger.js';
import { PROXY_MULTICAST_REASON } from '../../main/host/config.js';
import { makeTempDir } from '../helpers/store-temp.js';
import { addSampleImage } from '../helpers/sample-image.js';

const A = '52:54:00:aa:50:01';
const B = '52:54:00:aa:50:02';

test('a deploy stream holds the IGMP querier from its start until it ends, and its stats carry the querier status', async () => {
  const temp = makeTempDir('bootbench-querier-hold-');
  const data = join(temp.dir, 'data');
  const store = openStore(data);
  try {
    await addSampleImage(data, { name: 'room' });
    const holds: string[] = [];
    const querier = {
      hold: () => {
        holds.push('hold');
        return () => holds.push('release');
      },
      status: () => 'no IGMP querier heard on lo: Bootbench sends IGMP queries every 15 s while it streams',
    };
    // Loopback: the stream waits for its receivers' feedback, so nothing is sent here.
    const imaging = new ImagingService({ store, dataDir: data, logger: silentLogger, stream: { address: '127.0.0.1', querier } });
    const job = imaging.jobs.create({ kind: 'deploy', image: 'room', macs: [A, B] });
    const streamFor = (imaging as unknown as { streamFor(j: unknown): Promise<unknown> }).streamFor.bind(imaging);
    assert.ok(await streamFor(imaging.jobs.get(job.id)));
    await streamFor(imaging.jobs.get(job.id));
    assert.deepEqual(holds, ['hold'], 'one hold per stream');
    assert.match(imaging.streamNow(job.id)?.querier ?? '', /Bootbench sends IGMP queries/);
    assert.match((await imaging.streamStats(job.id))?.querier ?? '', /Bootbench sends IGMP queries/);
    assert.equal(imaging.unicastReason, undefined);
    imaging.stop();
    assert.deepEqual(holds, ['hold', 'release']);
  } finally {
    store.close();
    temp.remove();
  }
});

test('no stream on this host: a deploy to several PCs says it goes unicast and why; one PC, a capture, or a finished deploy says nothing', async () => {
  const temp = makeTempDir('bootbench-unicast-reason-');
  const data = join(temp.dir, 'data');
  const store = openStore(data);
  try {
    await addSampleImage(data, { name: 'room' });
    const imaging = new ImagingService({ store, dataDir: data, logger: silentLogger, unicastReason: PROXY_MULTICAST_REASON });
    assert.equal(imaging.unicastReason, PROXY_MULTICAST_REASON);
    const jobs = new ImagingJobs(store.db);
    const room = jobs.create({ kind: 'deploy', image: 'room', macs: [A, B] });
    const one = jobs.create({ kind: 'deploy', image: 'room', macs: ['52:54:00:aa:50:03'] });
    const api = storeImaging({
      store,
      dataDir: () => data,
      liveStream: () => undefined,
      unicastReason: () => imaging.unicastReason,
    });
    assert.match(api.job(room.id)!.unicast ?? '', /office network reaches every switch port that asks for it; turn it on only if the network team agrees/);
    assert.equal(api.job(one.id)!.unicast, undefined);
    // Once one PC is through, the other still goes unicast; once both are, the job is history.
    jobs.report(room.id, A, { phase: 'done' });
    assert.ok(api.job(room.id)!.unicast === undefined, 'one PC left: no longer a deploy to several');
    // A host that streams shows the stream line instead, with what the querier does.
    const streamed = jobs.create({ kind: 'deploy', image: 'room', macs: ['52:54:00:aa:50:04', '52:54:00:aa:50:05'] });
    const live: StreamStats = {
      group: '239.255.66.9',
      port: 1760,
      session: 1,
      rate: 1,
      peakRate: 1,
      chunks: 4,
      chunksSent: 1,
      passes: 0,
      bytesSent: 1400,
      receivers: [],
      start: { started: true, startedAt: 1, ready: ['52:54:00:aa:50:04', '52:54:00:aa:50:05'], of: 2, manual: false },
      querier: 'IGMP querier 192.0.2.254 heard on eth1: it keeps snooping switches forwarding; Bootbench sends no queries',
    };
    const apiLive = storeImaging({ store, dataDir: () => data, liveStream: () => live, unicastReason: () => undefined });
    const shown = apiLive.job(streamed.id)!;
    assert.equal(shown.unicast, undefined);
    assert.match(shown.stream?.querier ?? '', /IGMP querier 192\.0\.2\.254 heard on eth1/);
  } finally {
    store.close();
    temp.remove();
  }
});
