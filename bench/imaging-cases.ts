// The imaging cases: capture (and the image's size on disk), one deploy, and 8 deploys at
// once, Bootbench's agent and host against the classic pipeline, on the imaging lab
// (imaging-lab.ts). Rates are the partclone stream's bytes (the used blocks) over wall time.
import { join } from 'node:path';
import { ImagingLab, type ImagingSizes } from './imaging-lab.js';
import { MiB, RESULTS, type Bench } from './lab.js';
import { cpuMs, judge, summarize, type BenchCase, type Row } from './measure.js';

/** What the agent and the classic pipelines run, besides curl and nginx. */
export const IMAGING_PROGRAMS = ['busybox', 'partclone.extfs', 'partclone.restore', 'zstd', 'losetup', 'sfdisk', 'mkfs.ext4', 'blockdev', 'tar'];

/** The imaging cases: capture (+ size on disk), deploy, 8 deploys at once. */
export function imagingCases(sizes: ImagingSizes): BenchCase[] {
  // One lab per bench, shared by the cases, made by the first that runs; the pipelines' and
  // agents' logs are kept in bench/results/imaging-logs-<time>/ when it is removed.
  const labs = new WeakMap<Bench, ImagingLab>();
  const labOf = (bench: Bench, profileDir?: string): ImagingLab => {
    let lab = labs.get(bench);
    if (!lab) {
      const made = new ImagingLab(bench, sizes, profileDir);
      bench.onDestroy(() => made.tearDown(join(RESULTS, `imaging-logs-${bench.options.stamp}`)));
      labs.set(bench, (lab = made));
    }
    return lab;
  };
  const label = `${sizes.diskMiB >= 1024 ? `${sizes.diskMiB / 1024} GiB` : `${sizes.diskMiB} MiB`} disk, ${sizes.usedMiB} MiB used`;
  const row = (r: Omit<Row, 'peer' | 'bootbench'> & { peer: number[]; ours: number[]; peerName: string }): Row =>
    judge({
      id: r.id,
      title: r.title,
      metric: r.metric,
      higherIsBetter: r.higherIsBetter,
      target: r.target,
      note: r.note,
      peer: { name: r.peerName, summary: summarize(r.peer), samples: r.peer },
      bootbench: { name: 'bootbench', summary: summarize(r.ours), samples: r.ours },
    });
  // A deploy or capture of the small disk takes seconds: 3 a side keeps the set near 5 minutes.
  const runsOf = (ctx: { runs: number; quick: boolean }, most: number) => (ctx.quick ? 1 : Math.min(ctx.runs, most));
  return [
    {
      id: 'img-capture',
      title: `capture, ${label}`,
      async run(ctx) {
        const lab = labOf(ctx.bench, ctx.profileDir);
        const usedMiB = () => lab.streamBytes / MiB;
        await lab.setUp();
        const runs = runsOf(ctx, 3);
        const peerSeconds: number[] = [];
        const ourSeconds: number[] = [];
        for (let i = 0; i < runs; i++) {
          peerSeconds.push(await lab.captureClassic());
          // Each run starts from an empty store, or every chunk would already be there.
          await lab.removeImage('ref');
          ourSeconds.push(await lab.captureOurs('ref'));
        }
        const peer = peerSeconds.map((s) => usedMiB() / s);
        const ours = ourSeconds.map((s) => usedMiB() / s);
        const stored = await lab.storedBytes('ref');
        const classic = lab.classicImageBytes();
        return [
          row({
            id: 'img-capture',
            title: `capture, ${label}`,
            metric: 'MiB/s',
            higherIsBetter: true,
            peerName: 'partclone|zstd|curl -T',
            peer,
            ours,
            target: { ratio: 1.0, text: '>= 1.0x classic' },
            note: 'used MiB / s; PUT to nginx',
          }),
          row({
            id: 'img-size',
            title: `size on disk, ${label}`,
            metric: 'MiB',
            higherIsBetter: false,
            peerName: 'partclone+zstd -3 file',
            peer: [classic / MiB],
            ours: [stored / MiB],
            target: { ratio: 1.0, text: '<= 1.0x classic' },
          }),
        ];
      },
    },
    {
      id: 'img-deploy',
      title: `deploy, ${label}, verified`,
      async run(ctx) {
        const lab = labOf(ctx.bench, ctx.profileDir);
        const usedMiB = () => lab.streamBytes / MiB;
        await lab.ensureImages();
        const runs = runsOf(ctx, 3);
        const peer: number[] = [];
        const ours: number[] = [];
        for (let i = 0; i < runs; i++) {
          peer.push(usedMiB() / (await lab.deployClassic(1)).seconds);
          ours.push(usedMiB() / (await lab.deployOurs(1)).seconds);
        }
        return [
          row({
            id: 'img-deploy',
            title: `deploy, ${label}`,
            metric: 'MiB/s',
            higherIsBetter: true,
            peerName: 'nginx + curl|zstd|partclone',
            peer,
            ours,
            target: { ratio: 1.0, text: '>= 1.0x classic' },
            note: 'used MiB / s; ours verifies',
          }),
        ];
      },
    },
    {
      id: 'img-deploy-8',
      title: `8 deploys at once, unicast, ${label}`,
      async run(ctx) {
        const lab = labOf(ctx.bench, ctx.profileDir);
        const usedMiB = () => lab.streamBytes / MiB;
        await lab.ensureImages();
        const runs = runsOf(ctx, 2);
        const samples = { peer: [] as { mibps: number; cpu: number }[], ours: [] as { mibps: number; cpu: number }[] };
        const sample = async (pid: number, deploy: () => Promise<{ seconds: number }>) => {
          const before = cpuMs(pid);
          const { seconds } = await deploy();
          const mib = usedMiB() * 8;
          return { mibps: mib / seconds, cpu: (cpuMs(pid) - before) / (mib / 1024) };
        };
        for (let i = 0; i < runs; i++) {
          samples.peer.push(await sample(lab.nginxPid, () => lab.deployClassic(8)));
          samples.ours.push(await sample(lab.hostPid, () => lab.deployOurs(8)));
        }
        const title = `8 deploys at once, ${label}`;
        return [
          row({
            id: 'img-deploy-8',
            title,
            metric: 'MiB/s',
            higherIsBetter: true,
            peerName: 'nginx + curl|zstd|partclone',
            peer: samples.peer.map((s) => s.mibps),
            ours: samples.ours.map((s) => s.mibps),
            target: { text: 'shown, not judged' },
            note: 'total used MiB / s; ours verifies',
          }),
          row({
            id: 'img-deploy-8-cpu',
            title: `${title}: host CPU per GiB`,
            metric: 'ms/GiB',
            higherIsBetter: false,
            peerName: 'nginx',
            peer: samples.peer.map((s) => s.cpu),
            ours: samples.ours.map((s) => s.cpu),
            target: { text: 'shown, not judged' },
          }),
        ];
      },
    },
  ];
}
