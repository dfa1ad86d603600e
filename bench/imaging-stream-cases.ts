// The image-stream cases: a deploy to a room of eight from one multicast stream, Bootbench's
// against udpcast (the transport FOG and Clonezilla use), clean and with a lossy and a slow
// receiver; one receiver, stream against unicast; and the unicast deploy to eight as the
// baseline. On the stream lab (imaging-stream-lab.ts). Times are wall seconds from the first
// receiver's start to the last one's end, measured inside the receivers' namespaces.
import { join } from 'node:path';
import { MiB, RESULTS, log, type Bench } from './lab.js';
import { judge, median, summarize, type BenchCase, type Row } from './measure.js';
import { RECEIVERS, StreamLab, type Faults, type RoomRun, type StreamSizes } from './imaging-stream-lab.js';

/** What the stream cases run besides the imaging cases' programs. */
export const STREAM_PROGRAMS = [
  'udp-sender',
  'udp-receiver',
  'nft',
  'tc',
  'gcc',
  'partclone.extfs',
  'partclone.restore',
  'zstd',
  'busybox',
  'losetup',
  'sfdisk',
];

const LOSSY = { index: RECEIVERS - 2, percent: 10 };
const SLOW_INDEX = RECEIVERS - 1;

export function imagingStreamCases(sizes: StreamSizes): BenchCase[] {
  const labs = new WeakMap<Bench, StreamLab>();
  const labOf = (bench: Bench): StreamLab => {
    let lab = labs.get(bench);
    if (!lab) {
      const made = new StreamLab(bench, sizes);
      bench.onDestroy(() => made.tearDown(join(RESULTS, `imaging-stream-logs-${bench.options.stamp}`)));
      labs.set(bench, (lab = made));
    }
    return lab;
  };
  const label = `${sizes.diskMiB >= 1024 ? `${sizes.diskMiB / 1024} GiB` : `${sizes.diskMiB} MiB`} disk, ${sizes.usedMiB} MiB used, cap ${sizes.maxBits / 1e6} Mbit/s`;
  const row = (r: Omit<Row, 'peer' | 'bootbench'> & { peer: number[]; ours: number[]; peerName: string; oursName?: string }): Row =>
    judge({
      id: r.id,
      title: r.title,
      metric: r.metric,
      higherIsBetter: r.higherIsBetter,
      target: r.target,
      note: r.note,
      peer: { name: r.peerName, summary: summarize(r.peer), samples: r.peer },
      bootbench: { name: r.oursName ?? 'bootbench', summary: summarize(r.ours), samples: r.ours },
    });
  // A room of eight takes tens of seconds a run: 2 a side at most keeps the set within minutes.
  const runsOf = (ctx: { runs: number; quick: boolean }, most: number) => (ctx.quick ? 1 : Math.min(ctx.runs, most));
  const say = (what: string, r: RoomRun, lab: StreamLab) =>
    log(
      `    ${what}: ${r.seconds.toFixed(1)} s, host sent ${(r.egress / MiB).toFixed(0)} MiB (${(r.egress / lab.compressedBytes).toFixed(2)}x the image)${r.note ? `; ${r.note}` : ''}`,
    );
  /** Each receiver's time from the room's start to its own end. */
  const finishes = (r: RoomRun) => {
    const start = Math.min(...r.pcs.map((p) => p.start));
    return r.pcs.map((p) => p.end - start);
  };

  /** Clean runs of both sides, shared by img-stream-8 and img-stream-faulty (the faulty runs compare with them). */
  async function cleanRuns(lab: StreamLab, runs: number): Promise<void> {
    while (lab.clean.ours.length < runs) {
      const udpcast = await lab.deployUdpcast(RECEIVERS, { label: `udpcast-8-${lab.clean.udpcast.length}` });
      say('udpcast, 8 receivers', udpcast, lab);
      lab.clean.udpcast.push(udpcast);
      const ours = await lab.deployOurs(RECEIVERS, { stream: true, label: `stream-8-${lab.clean.ours.length}` });
      say('Bootbench stream, 8 receivers', ours, lab);
      lab.clean.ours.push(ours);
    }
  }

  return [
    {
      id: 'img-stream-8',
      title: `8 receivers, one stream, ${label}`,
      async run(ctx) {
        const lab = labOf(ctx.bench);
        await lab.setUp();
        const runs = runsOf(ctx, 2);
        await cleanRuns(lab, runs);
        const unicast: RoomRun[] = [];
        for (let i = 0; i < runs; i++) {
          const r = await lab.deployOurs(RECEIVERS, { stream: false, label: `unicast-8-${i}` });
          say('Bootbench unicast (HTTP), 8 PCs', r, lab);
          unicast.push(r);
        }
        const { ours, udpcast } = lab.clean;
        const usedMiB = lab.usedBytes / MiB;
        return [
          row({
            id: 'img-stream-8',
            title: `8 deploys from one stream, ${label}`,
            metric: 's',
            higherIsBetter: false,
            peerName: 'udp-sender/udp-receiver|zstd|partclone',
            peer: udpcast.map((r) => r.seconds),
            ours: ours.map((r) => r.seconds),
            target: { ratio: 1.0, text: '<= 1.0x udpcast' },
            note: `${usedMiB.toFixed(0)} MiB used each; ours verifies every disk`,
          }),
          row({
            id: 'img-stream-8-unicast',
            title: `8 deploys: stream vs unicast (baseline), ${label}`,
            metric: 's',
            higherIsBetter: false,
            peerName: 'bootbench unicast (HTTP)',
            oursName: 'bootbench stream',
            peer: unicast.map((r) => r.seconds),
            ours: ours.map((r) => r.seconds),
            target: { text: 'shown, not judged' },
          }),
          row({
            id: 'img-stream-8-egress',
            title: `8 deploys: host NIC bytes over the image's compressed size`,
            metric: 'x image',
            higherIsBetter: false,
            peerName: 'udpcast',
            peer: udpcast.map((r) => r.egress / lab.classicBytes),
            ours: ours.map((r) => r.egress / lab.compressedBytes),
            target: { text: 'shown (unicast ~8x)' },
            note: `unicast: ${median(unicast.map((r) => r.egress / lab.compressedBytes)).toFixed(2)}x`,
          }),
        ];
      },
    },
    {
      id: 'img-stream-faulty',
      title: `8 receivers, one losing ${LOSSY.percent}% and one at a quarter rate, ${label}`,
      async run(ctx) {
        const lab = labOf(ctx.bench);
        await lab.setUp();
        // One run: the slow receiver's port takes minutes for the image, and udpcast holds the room to it.
        const runs = runsOf(ctx, 1);
        await cleanRuns(lab, runs);
        // A quarter of the rate the clean room took the image in (Bootbench's clean runs), for both sides.
        const roomRate = (lab.compressedBytes * 8) / median(lab.clean.ours.map((r) => r.seconds));
        const faults: Faults = { lossy: LOSSY, slow: { index: SLOW_INDEX, bits: roomRate / 4 } };
        log(`    slow receiver's port: ${(roomRate / 4 / 1e6).toFixed(0)} Mbit/s; lossy receiver: ${LOSSY.percent}% of multicast dropped`);
        const clean = (rs: RoomRun[]) => median(rs.map((r) => Math.max(...finishes(r))));
        const others = (r: RoomRun) => Math.max(...finishes(r).filter((_, i) => i !== LOSSY.index && i !== SLOW_INDEX));
        const faulty = { ours: [] as RoomRun[], udpcast: [] as RoomRun[] };
        for (let i = 0; i < runs; i++) {
          const u = await lab.deployUdpcast(RECEIVERS, { faults, label: `udpcast-faulty-${i}` });
          say('udpcast with the lossy and the slow receiver', u, lab);
          faulty.udpcast.push(u);
          const o = await lab.deployOurs(RECEIVERS, { stream: true, faults, label: `stream-faulty-${i}` });
          say('Bootbench with the lossy and the slow receiver', o, lab);
          faulty.ours.push(o);
        }
        const two = (r: RoomRun) => `lossy ${finishes(r)[LOSSY.index].toFixed(1)} s, slow ${finishes(r)[SLOW_INDEX].toFixed(1)} s`;
        return [
          row({
            id: 'img-stream-faulty',
            title: `the six others' time over the clean room's, ${label}`,
            metric: 'x clean',
            higherIsBetter: false,
            peerName: 'udpcast',
            peer: faulty.udpcast.map((r) => others(r) / clean(lab.clean.udpcast)),
            ours: faulty.ours.map((r) => others(r) / clean(lab.clean.ours)),
            target: { atMost: 1.15, text: 'ours <= 1.15x its clean time' },
            note: `ours: ${faulty.ours.map(two).join('; ')}; udpcast: ${faulty.udpcast.map(two).join('; ')}`,
          }),
          row({
            id: 'img-stream-faulty-s',
            title: `the six others' time with a lossy and a slow receiver, ${label}`,
            metric: 's',
            higherIsBetter: false,
            peerName: 'udpcast',
            peer: faulty.udpcast.map(others),
            ours: faulty.ours.map(others),
            target: { text: 'shown' },
            note: `clean: udpcast ${clean(lab.clean.udpcast).toFixed(1)} s, ours ${clean(lab.clean.ours).toFixed(1)} s`,
          }),
        ];
      },
    },
    {
      id: 'img-stream-1',
      title: `1 receiver: the stream vs unicast, ${label}`,
      async run(ctx) {
        const lab = labOf(ctx.bench);
        await lab.setUp();
        const runs = runsOf(ctx, 3);
        const unicast: number[] = [];
        const stream: number[] = [];
        // Both through the same port at the cap's line rate: the stream is held to the cap, and
        // over a bare veth HTTP would not be, so the two would not be compared on one link.
        const unlink = lab.linkPort(lab.sizes.maxBits);
        try {
          for (let i = 0; i < runs; i++) {
            // A one-PC job fetches by HTTP (the product's rule); the stream alone comes from a host told to stream to one.
            const u = await lab.deployOurs(1, { stream: false, label: `unicast-1-${i}` });
            say('Bootbench unicast (HTTP), 1 PC', u, lab);
            unicast.push(u.seconds);
            const s = await lab.deployOurs(1, { stream: true, label: `stream-1-${i}` });
            say('Bootbench stream, 1 receiver', s, lab);
            stream.push(s.seconds);
          }
        } finally {
          unlink();
        }
        return [
          row({
            id: 'img-stream-1',
            title: `1 deploy: stream vs unicast, ${label}`,
            metric: 's',
            higherIsBetter: false,
            peerName: 'bootbench unicast (HTTP)',
            oursName: 'bootbench stream',
            peer: unicast,
            ours: stream,
            target: { ratio: 1 / 0.9, text: 'stream >= 0.9x unicast speed (time <= 1.11x)' },
          }),
        ];
      },
    },
  ];
}
