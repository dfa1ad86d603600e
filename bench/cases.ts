// The network cases: TFTP (lock-step, windowed, 1 ms RTT, 20 clients), HTTP (1 and 8
// clients), Proxy DHCP under perfdhcp, the host's store on vs off, and the host's memory
// under 50 transfers. Each starts its peer, samples peer and Bootbench alternately, and
// returns judged rows. The imaging cases are in imaging-cases.ts.
import { HOSTS, MiB, execFileAsync, type Bench, type RunningServer, type TftpClient } from './lab.js';
import { alternate, cpuMs, cpuSplitMs, judge, median, rssKiB, summarize, traced, type BenchCase, type CaseContext, type Row, type Target } from './measure.js';
import { fmt } from './report.js';

interface TftpSample {
  mibps: number;
  cpuMsPerMiB: number;
  userMsPerMiB: number;
  systemMsPerMiB: number;
  slowest: number;
}

async function tftpSample(
  bench: Bench,
  server: RunningServer,
  path: 'veth' | 'rtt',
  file: string,
  size: number,
  options: string[],
  clients: number,
  client: TftpClient = 'atftp',
): Promise<TftpSample> {
  const ns = path === 'veth' ? bench.cli : bench.far;
  const address = path === 'veth' ? server.veth : server.rtt!;
  const cpuBefore = cpuSplitMs(server.pid);
  const label = `${path}-${options.join('-').replace(/\s+/g, '')}-${clients}${client === 'polling' ? '-polling' : ''}`;
  const { seconds, span } = await traced(bench.options.trace, server, label, () =>
    bench.tftpGet(ns, address, file, options, clients, path === 'rtt' ? 600 : 120, client),
  );
  const cpuAfter = cpuSplitMs(server.pid);
  const mib = (size * clients) / MiB;
  const user = (cpuAfter.user - cpuBefore.user) / mib;
  const system = (cpuAfter.system - cpuBefore.system) / mib;
  return { mibps: mib / span, cpuMsPerMiB: user + system, userMsPerMiB: user, systemMsPerMiB: system, slowest: Math.max(...seconds) };
}

function tftpCase(spec: {
  id: string;
  title: string;
  path: 'veth' | 'rtt';
  file: string;
  size: number;
  options: string[];
  peer: 'dnsmasq' | 'atftpd';
  figure?: number;
  /** Throughput target (Bootbench / peer at least); none: the row only informs. */
  ratio?: number;
  runs?: (ctx: CaseContext) => number;
  /** At most `atMost` ms per MiB and, when given, at most `ratio` times the peer's figure. */
  cpuTarget?: { atMost: number; ratio?: number };
  client?: TftpClient;
  /** A note for the CPU row (what it shows, where its target is judged). */
  cpuNote?: string;
}): BenchCase {
  return {
    id: spec.id,
    title: spec.title,
    async run(ctx) {
      const peer = spec.peer === 'dnsmasq' ? await ctx.bench.startDnsmasqTftp() : await ctx.bench.startAtftpd(spec.path);
      try {
        const runs = spec.runs?.(ctx) ?? ctx.runs;
        const { a, b } = await alternate(
          runs,
          () => tftpSample(ctx.bench, peer, spec.path, spec.file, spec.size, spec.options, 1, spec.client),
          () => tftpSample(ctx.bench, ctx.raw, spec.path, spec.file, spec.size, spec.options, 1, spec.client),
        );
        const rows: Row[] = [
          judge({
            id: spec.id,
            title: spec.title,
            metric: 'MiB/s',
            higherIsBetter: true,
            peer: { name: peer.name, figure: spec.figure, summary: summarize(a.map((s) => s.mibps)), samples: a.map((s) => s.mibps) },
            bootbench: { name: 'bootbench', summary: summarize(b.map((s) => s.mibps)), samples: b.map((s) => s.mibps) },
            target: spec.ratio === undefined ? { text: '-' } : { ratio: spec.ratio, text: `>= ${spec.ratio}x ${peer.name}` },
          }),
        ];
        const cpuRow = judge({
          id: `${spec.id}-cpu`,
          title: `${spec.title}: server CPU per MiB`,
          metric: 'ms/MiB',
          higherIsBetter: false,
          peer: { name: peer.name, summary: summarize(a.map((s) => s.cpuMsPerMiB)), samples: a.map((s) => s.cpuMsPerMiB) },
          bootbench: { name: 'bootbench', summary: summarize(b.map((s) => s.cpuMsPerMiB)), samples: b.map((s) => s.cpuMsPerMiB) },
          target: spec.cpuTarget
            ? {
                atMost: spec.cpuTarget.atMost,
                ratio: spec.cpuTarget.ratio,
                text: `<= ${spec.cpuTarget.atMost} ms${spec.cpuTarget.ratio ? ` and <= ${spec.cpuTarget.ratio}x ${peer.name}` : ''}`,
              }
            : { text: '-' },
        });
        const split = (xs: TftpSample[]) => `user ${fmt(median(xs.map((x) => x.userMsPerMiB)))} + kernel ${fmt(median(xs.map((x) => x.systemMsPerMiB)))}`;
        cpuRow.note = `${peer.name} ${split(a)}; bootbench ${split(b)}${spec.cpuNote ? `. ${spec.cpuNote}` : ''}`;
        rows.push(cpuRow);
        return rows;
      } finally {
        await peer.stop();
      }
    },
  };
}

/**
 * HTTP 64 MiB per client over the veth, `clients` downloads at once, Bootbench's raw
 * server against nginx (sendfile, one process). With several clients the rate is their
 * bytes over the slowest one's time.
 */
function httpCase(clients: number): BenchCase {
  const id = clients === 1 ? 'http' : `http-${clients}`;
  const title = clients === 1 ? 'HTTP 64 MiB, veth' : `HTTP ${clients} clients x 64 MiB, veth`;
  return {
    id,
    title,
    async run(ctx) {
      const peer = await ctx.bench.startNginx();
      try {
        const sample = (server: RunningServer) => async () => {
          const cpuBefore = cpuMs(server.pid);
          const url = `http://${server.veth}:${server.httpPort}/file-64m.bin`;
          const seconds = await Promise.all(Array.from({ length: clients }, () => ctx.bench.httpGet(ctx.bench.cli, url, 'file-64m.bin')));
          const mib = 64 * clients;
          return { mibps: mib / Math.max(...seconds), cpuMsPerMiB: (cpuMs(server.pid) - cpuBefore) / mib };
        };
        // Short downloads spread widely, for both servers: a steady median needs many samples
        // (bench/README.md, "Sample counts").
        const runs = ctx.quick ? ctx.runs : ctx.runs * (clients === 1 ? 6 : 2);
        const { a, b } = await alternate(runs, sample(peer), sample(ctx.raw));
        return [
          judge({
            id,
            title,
            metric: 'MiB/s',
            higherIsBetter: true,
            peer: { name: 'nginx', figure: clients === 1 ? 795 : undefined, summary: summarize(a.map((s) => s.mibps)), samples: a.map((s) => s.mibps) },
            bootbench: { name: 'bootbench', summary: summarize(b.map((s) => s.mibps)), samples: b.map((s) => s.mibps) },
            target: { ratio: 1.0, text: '>= 1.0x nginx' },
          }),
          judge({
            id: `${id}-cpu`,
            title: `${title}: server CPU per MiB`,
            metric: 'ms/MiB',
            higherIsBetter: false,
            peer: { name: 'nginx', summary: summarize(a.map((s) => s.cpuMsPerMiB)), samples: a.map((s) => s.cpuMsPerMiB) },
            bootbench: { name: 'bootbench', summary: summarize(b.map((s) => s.cpuMsPerMiB)), samples: b.map((s) => s.cpuMsPerMiB) },
            target: { ratio: 2.0, text: '<= 2x nginx' },
          }),
        ];
      } finally {
        await peer.stop();
      }
    },
  };
}

export const NETWORK_CASES: BenchCase[] = [
  tftpCase({
    id: 'tftp-512',
    title: '64 MiB, blksize 512, veth',
    path: 'veth',
    file: 'file-64m.bin',
    size: 64 * MiB,
    options: [],
    peer: 'dnsmasq',
    figure: 19.3,
    ratio: 1.0,
  }),
  tftpCase({
    id: 'tftp-1468',
    title: '64 MiB, blksize 1468, veth',
    path: 'veth',
    file: 'file-64m.bin',
    size: 64 * MiB,
    options: ['blksize 1468'],
    peer: 'dnsmasq',
    figure: 51.9,
    ratio: 1.0,
    cpuNote: "atftp sleeps in recv: on split vCPUs the server's send wakes it, and the wake-up is billed to the server. The CPU target is judged in cpu-1468",
  }),
  // Server CPU per MiB of lock-step 1468, with a client that is never woken (bench/polling-client.c).
  // The 15 ms target is 1.5x the figure asked of C servers; dnsmasq measures lower with this
  // client, so the row also asks for at most 1.5x dnsmasq measured the same way.
  tftpCase({
    id: 'cpu-1468',
    title: '64 MiB, 1468, veth, polling client',
    path: 'veth',
    file: 'file-64m.bin',
    size: 64 * MiB,
    options: ['blksize 1468'],
    peer: 'dnsmasq',
    client: 'polling',
    cpuTarget: { atMost: 15, ratio: 1.5 },
  }),
  tftpCase({
    id: 'tftp-ws16',
    title: '64 MiB, 1468 + windowsize 16, veth',
    path: 'veth',
    file: 'file-64m.bin',
    size: 64 * MiB,
    options: ['blksize 1468', 'windowsize 16'],
    peer: 'atftpd',
    figure: 164.5,
    ratio: 1.0,
  }),
  // Lock-step at 1 ms RTT moves ~1.2 MiB/s: 64 MiB take about 55 s a run, so this case runs
  // 3 times a side (about 6 minutes); --quick uses 16 MiB (the rate does not depend on the size).
  {
    id: 'rtt-1468',
    title: '1468, 1 ms RTT',
    run: (ctx) =>
      tftpCase({
        id: 'rtt-1468',
        title: `${ctx.quick ? 16 : 64} MiB, 1468, 1 ms RTT`,
        path: 'rtt',
        file: ctx.quick ? 'file-16m.bin' : 'file-64m.bin',
        size: (ctx.quick ? 16 : 64) * MiB,
        options: ['blksize 1468'],
        peer: 'dnsmasq',
        figure: 1.28,
        ratio: 0.98,
        runs: (c) => Math.min(c.runs, 3),
      }).run(ctx),
  },
  tftpCase({
    id: 'rtt-ws16',
    title: '64 MiB, windowsize 16, 1 ms RTT',
    path: 'rtt',
    file: 'file-64m.bin',
    size: 64 * MiB,
    options: ['blksize 1468', 'windowsize 16'],
    peer: 'atftpd',
    figure: 17.1,
    ratio: 1.0,
  }),
  {
    id: 'many-ws16',
    title: '20 clients x 16 MiB, ws16, veth',
    async run(ctx) {
      const peer = await ctx.bench.startAtftpd('veth');
      try {
        const sample = (server: RunningServer) => () => tftpSample(ctx.bench, server, 'veth', 'file-16m.bin', 16 * MiB, ['blksize 1468', 'windowsize 16'], 20);
        const { a, b } = await alternate(ctx.runs, sample(peer), sample(ctx.raw));
        return [
          judge({
            id: 'many-ws16',
            title: '20 clients x 16 MiB, ws16, veth: total',
            metric: 'MiB/s',
            higherIsBetter: true,
            peer: { name: peer.name, figure: 232.6, summary: summarize(a.map((s) => s.mibps)), samples: a.map((s) => s.mibps) },
            bootbench: { name: 'bootbench', summary: summarize(b.map((s) => s.mibps)), samples: b.map((s) => s.mibps) },
            target: { ratio: 1.0, text: '>= 1.0x atftpd' },
          }),
          judge({
            id: 'many-ws16-slowest',
            title: '20 clients x 16 MiB, ws16, veth: slowest client',
            metric: 's',
            higherIsBetter: false,
            peer: { name: peer.name, figure: 1.3, summary: summarize(a.map((s) => s.slowest)), samples: a.map((s) => s.slowest) },
            bootbench: { name: 'bootbench', summary: summarize(b.map((s) => s.slowest)), samples: b.map((s) => s.slowest) },
            target: { atMost: 1.5, text: '<= 1.5 s' },
          }),
          judge({
            id: 'many-ws16-cpu',
            title: '20 clients x 16 MiB, ws16, veth: server CPU per MiB',
            metric: 'ms/MiB',
            higherIsBetter: false,
            peer: { name: peer.name, summary: summarize(a.map((s) => s.cpuMsPerMiB)), samples: a.map((s) => s.cpuMsPerMiB) },
            bootbench: { name: 'bootbench', summary: summarize(b.map((s) => s.cpuMsPerMiB)), samples: b.map((s) => s.cpuMsPerMiB) },
            target: { text: '-' },
            note: `server CPU use while sending: ${peer.name} ${fmt(median(a.map((s) => (s.cpuMsPerMiB * s.mibps) / 10)))}% of one core, bootbench ${fmt(median(b.map((s) => (s.cpuMsPerMiB * s.mibps) / 10)))}%`,
          }),
        ];
      } finally {
        await peer.stop();
      }
    },
  },
  httpCase(1),
  httpCase(8),
  {
    id: 'dhcp',
    title: 'Proxy DHCP DISCOVER->OFFER, perfdhcp',
    async run(ctx) {
      // A PXE client's DISCOVER: option 60 PXEClient (a proxy answers nothing else) and 93
      // arch BIOS; perfdhcp varies the MAC over 1000 clients. No option 97: perfdhcp can only
      // send one fixed UUID, and 1000 MACs sharing a UUID would be one machine with 1000 NICs
      // to the store (each lookup then rebuilds a 1000-MAC record), which no bench has.
      const vendorClass = Buffer.from('PXEClient:Arch:00000:UNDI:002001').toString('hex');
      const perf = async (iface: string, rate: number, seconds = ctx.quick ? 3 : 8) => {
        let stdout: string;
        try {
          ({ stdout } = await execFileAsync(
            'ip',
            [
              'netns',
              'exec',
              ctx.bench.cli,
              'timeout',
              String(seconds + 30),
              'perfdhcp',
              '-4',
              '-l',
              iface,
              '-i',
              '-r',
              String(rate),
              '-R',
              '1000',
              '-p',
              String(seconds),
              '-W',
              '1000000',
              '-o',
              `60,${vendorClass}`,
              '-o',
              '93,0000',
            ],
            { maxBuffer: 1 << 20 },
          ));
        } catch (err) {
          // perfdhcp exits 3 when packets were dropped: that is a result, not a failure.
          const e = err as { code?: number; stdout?: string; stderr?: string };
          if (e.code !== 3 || !e.stdout) throw new Error(`perfdhcp failed (exit ${e.code}): ${e.stderr ?? ''}${e.stdout ?? ''}`.slice(0, 2000));
          stdout = e.stdout;
        }
        const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? NaN);
        const sent = num(/sent packets: (\d+)/);
        const received = num(/received packets: (\d+)/);
        return { rate: received / seconds, sent, received, lossPct: sent ? ((sent - received) * 100) / sent : NaN, meanMs: num(/avg delay: ([\d.]+) ms/) };
      };
      const rows: Row[] = [];
      // Each DHCP server has its own wire: dnsmasq on srv/eth0 (started per run: it would
      // answer the TFTP peers' namespace otherwise), the two hosts on their own veths.
      const hostOn = await ctx.bench.startBootbenchHost('on', ctx.profileDir);
      const hostOff = await ctx.bench.startBootbenchHost('off', ctx.profileDir);
      try {
        // Steady state, not first sight: the JIT warmed up and the 1000 MACs already known to
        // the store (a fresh store creates a machine per new MAC, which is another case).
        for (const variant of ['on', 'off'] as const) await perf(HOSTS[variant].clientIf, 1000, 3);
        for (const rate of [5000, 10000]) {
          type Perf = Awaited<ReturnType<typeof perf>>;
          const a: Perf[] = [];
          const b: Perf[] = [];
          const c: Perf[] = [];
          const runs = Math.min(ctx.runs, 2);
          for (let i = 0; i < runs; i++) {
            const peer = await ctx.bench.startDnsmasqProxyDhcp();
            try {
              a.push(await perf('eth0', rate));
            } finally {
              await peer.stop();
            }
            b.push(await perf(HOSTS.on.clientIf, rate));
            c.push(await perf(HOSTS.off.clientIf, rate));
          }
          const mk = (
            ours: Perf[],
            variant: string,
            metric: string,
            key: 'rate' | 'lossPct' | 'meanMs',
            higher: boolean,
            target: Target,
            figure?: number,
          ): Row =>
            judge({
              id: `dhcp-${rate}-${key}-${variant}`,
              title: `Proxy DHCP at ${rate}/s offered, store ${variant}: ${key === 'rate' ? 'OFFERs/s' : key === 'lossPct' ? 'loss' : 'mean DISCOVER->OFFER'}`,
              metric,
              higherIsBetter: higher,
              peer: { name: 'dnsmasq', figure, summary: summarize(a.map((s) => s[key])), samples: a.map((s) => s[key]) },
              bootbench: { name: `bootbench serve (store ${variant})`, summary: summarize(ours.map((s) => s[key])), samples: ours.map((s) => s[key]) },
              target,
            });
          for (const [ours, variant] of [
            [b, 'on'],
            [c, 'off'],
          ] as const) {
            rows.push(
              mk(
                ours,
                variant,
                'OFFER/s',
                'rate',
                true,
                rate === 5000 ? { atLeast: 5000 * 0.99, text: '>= 5k/s' } : { text: '-' },
                rate === 10000 ? 10000 : undefined,
              ),
              mk(ours, variant, '%', 'lossPct', false, rate === 5000 ? { atMost: 0, text: 'no loss' } : { text: '-' }),
              mk(ours, variant, 'ms', 'meanMs', false, rate === 5000 ? { atMost: 1, text: '< 1 ms' } : { text: '-' }),
            );
          }
        }
      } finally {
        await hostOn.stop();
        await hostOff.stop();
      }
      return rows;
    },
  },
  {
    id: 'store',
    title: 'bootbench serve with the store and JSON events on vs off',
    async run(ctx) {
      const hostOn = await ctx.bench.startBootbenchHost('on', ctx.profileDir);
      const hostOff = await ctx.bench.startBootbenchHost('off', ctx.profileDir);
      const rows: Row[] = [];
      try {
        for (const h of [hostOn, hostOff]) await ctx.bench.tftpGet(ctx.bench.cli, h.veth, 'file-16m.bin', ['blksize 1468', 'windowsize 16'], 1, 60); // JIT warm-up
        for (const [id, options, clients] of [
          ['store-1468', ['blksize 1468'], 1],
          ['store-ws16', ['blksize 1468', 'windowsize 16'], 1],
          ['store-many', ['blksize 1468', 'windowsize 16'], 20],
        ] as const) {
          const file = clients > 1 ? 'file-16m.bin' : 'file-64m.bin';
          const size = clients > 1 ? 16 * MiB : 64 * MiB;
          // A 5 % target on samples that spread far more than 5 %: at least 15 a side
          // (bench/README.md, "Sample counts").
          const { a, b } = await alternate(
            ctx.quick ? ctx.runs : Math.max(ctx.runs, 15),
            () => tftpSample(ctx.bench, hostOff, 'veth', file, size, [...options], clients),
            () => tftpSample(ctx.bench, hostOn, 'veth', file, size, [...options], clients),
          );
          rows.push(
            judge({
              id,
              title: `store on vs off: ${clients > 1 ? `${clients} x 16 MiB` : '64 MiB'}, ${options.join(', ')}`,
              metric: 'MiB/s',
              higherIsBetter: true,
              peer: { name: 'store off', summary: summarize(a.map((s) => s.mibps)), samples: a.map((s) => s.mibps) },
              bootbench: { name: 'store on', summary: summarize(b.map((s) => s.mibps)), samples: b.map((s) => s.mibps) },
              target: { ratio: 0.95, text: 'within 5% of store off' },
            }),
          );
        }
        const events = ctx.bench
          .logOf('bootbench-host-on')
          .split('\n')
          .filter((l) => l.includes('"tftp.progress"')).length;
        rows[rows.length - 1].note = `${events} tftp.progress events printed by the host`;
      } finally {
        await hostOn.stop();
        await hostOff.stop();
      }
      return rows;
    },
  },
  {
    id: 'rss',
    title: '50 transfers of a 1 GiB file: host RSS',
    async run(ctx) {
      // 50 x 1 GiB would take minutes of wire time; the memory a transfer holds does not grow
      // with time, so 50 concurrent transfers run for a fixed period and the peak is taken.
      const seconds = ctx.quick ? 6 : 15;
      const host = await ctx.bench.startBootbenchHost('on');
      let peak = 0;
      let bytes = 0;
      try {
        const base = rssKiB(host.pid).rss;
        const sampler = setInterval(() => {
          peak = Math.max(peak, rssKiB(host.pid).rss);
        }, 100);
        const script = `for i in $(seq 1 50); do timeout ${seconds} atftp --option 'blksize 1468' --option 'windowsize 16' -g -r big-1g.bin -l /dev/null ${HOSTS.on.host} >/dev/null 2>&1 & done; wait; true`;
        const rxBefore = Number(ctx.bench.lab.exec(ctx.bench.cli, 'cat', [`/sys/class/net/${HOSTS.on.clientIf}/statistics/rx_bytes`]));
        await execFileAsync('ip', ['netns', 'exec', ctx.bench.cli, 'bash', '-c', script]);
        bytes = Number(ctx.bench.lab.exec(ctx.bench.cli, 'cat', [`/sys/class/net/${HOSTS.on.clientIf}/statistics/rx_bytes`])) - rxBefore;
        clearInterval(sampler);
        peak = Math.max(peak, rssKiB(host.pid).rss);
        return [
          judge({
            id: 'rss',
            title: `50 concurrent transfers of a 1 GiB file (${seconds} s): host peak RSS`,
            metric: 'MiB',
            higherIsBetter: false,
            bootbench: { name: 'bootbench serve', summary: summarize([peak / 1024]), samples: [peak / 1024] },
            target: { atMost: 200, text: '<= 200 MiB' },
            note: `RSS before the transfers ${(base / 1024).toFixed(0)} MiB; ${(bytes / MiB).toFixed(0)} MiB moved in ${seconds} s`,
          }),
        ];
      } finally {
        await host.stop();
      }
    },
  },
];
