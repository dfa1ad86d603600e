// Where the DISCOVER storm's latency comes from (issue 9 item 8). Runs the load test's
// scenario once and separates the host from the clients:
//   - wire latency: DISCOVER in -> OFFER out, timestamped by the kernel on the host's NIC
//     (dumpcap in the host namespace), so it is the host's own queueing and work;
//   - client latency: what discover-storm.ts measures (adds the client's own scheduling);
//   - the host's event-loop delay, GC pauses, CPU and RSS per phase (host-diagnostics.mjs).
// Root only (namespaces). Not a test: a tool to run by hand.
//   node --import tsx test/reliability/storm-diagnose.ts [--seconds 5] [--rate 5000] [--client-nice 10] [--transfers 20] [--log json|text] [--cpu-prof FILE] [--v8-flags '--single-threaded-gc'] [--keep-pcap FILE] [--tftp-policy idle|batch]
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { Lab } from '../helpers/netns.js';
import { PROJECT_ROOT, ServeProcess } from '../helpers/serve-process.js';
import { writeRandomFile } from '../integration/tftp-helpers.js';
import { captureDhcp, dhcpAnswerLatencies, percentile as pct } from './dhcp-wire-latency.js';
import { machineBusyMs, namespaceCpuMs } from './machine-load.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rate: { type: 'string', default: '5000' },
    'client-nice': { type: 'string', default: '0' },
    transfers: { type: 'string', default: '20' },
    log: { type: 'string', default: 'json' },
    /** File for the host main thread's CPU profile from warm-up end to storm end (.cpuprofile). */
    'cpu-prof': { type: 'string' },
    /** V8 flags for the host, set at its start (e.g. --single-threaded-gc). */
    'v8-flags': { type: 'string' },
    /** Node options for the host's command line (NODE_OPTIONS), e.g. --max-semi-space-size=64: flags that only count at the heap's creation. */
    'node-options': { type: 'string' },
    /** Experiment: put the host's TFTP worker threads (its nice-10 threads) under this Linux policy (chrt: idle, batch). */
    'tftp-policy': { type: 'string' },
    /** Run the compiled CLI (dist/, as installed; `npm run build:main` first) instead of the sources through tsx. */
    compiled: { type: 'boolean', default: false },
    /** File for the host's sampling heap profile (.heapprofile): what allocates, warm-up end to storm end. */
    'heap-prof': { type: 'string' },
    /** The host's GC pauses and event-loop gaps as wall-clock times (JSON), to line up with --keep-pcap. */
    timeline: { type: 'string' },
    /** Run the clients and the capture under SCHED_IDLE (chrt -i 0) instead of a nice value. */
    'client-idle': { type: 'boolean', default: false },
    /** Keep the storm's capture here (classic pcap). */
    'keep-pcap': { type: 'string' },
  },
});
const SECONDS = Number(values.seconds);
const RATE = Number(values.rate);
const NICE = Number(values['client-nice']);
const TRANSFERS = Number(values.transfers);
const STORM = join(PROJECT_ROOT, 'test', 'reliability', 'discover-storm.ts');
const CLIENT = join(PROJECT_ROOT, 'test', 'reliability', 'tftp-load-client.ts');

function hostPid(ns: string): number {
  for (const pid of execFileSync('ip', ['netns', 'pids', ns]).toString().trim().split(/\s+/)) {
    try {
      if (/^Name:\s+node/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) return Number(pid);
    } catch {
      // gone
    }
  }
  throw new Error('no host process');
}

function output(child: ReturnType<Lab['spawn']>): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', () => resolve(out));
  });
}

async function main(): Promise<void> {
  const lab = new Lab('bbdiag');
  const dir = mkdtempSync(join(tmpdir(), 'bb-diag-'));
  const diagFile = join(dir, 'diag.jsonl');
  const pcapFile = join(dir, 'storm.pcap');
  try {
    const root = join(dir, 'root');
    mkdirSync(root);
    writeRandomFile(join(root, 'nbp.efi'), 4 * 1024 * 1024);
    const host = lab.namespace('h');
    const client = lab.namespace('c');
    lab.veth(host, 'bench0', '192.0.2.1/24', client, 'eth0', '192.0.2.10/24');
    process.env.NODE_OPTIONS = `--import ${join(PROJECT_ROOT, 'test', 'reliability', 'host-diagnostics.mjs')} ${values['node-options'] ?? ''}`.trimEnd();
    if (values['cpu-prof']) process.env.BOOTBENCH_DIAG_PROFILE = values['cpu-prof'];
    if (values.timeline) process.env.BOOTBENCH_DIAG_TIMELINE = values.timeline;
    if (values['heap-prof']) process.env.BOOTBENCH_DIAG_HEAP_PROFILE = values['heap-prof'];
    if (values['v8-flags']) process.env.BOOTBENCH_DIAG_V8_FLAGS = values['v8-flags'];
    process.env.BOOTBENCH_DIAG_FILE = diagFile;
    const serve = new ServeProcess(
      lab,
      host,
      ['--interface', 'bench0', '--root', root, '--boot', 'uefi64=nbp.efi', '--data', join(dir, 'data'), '--log', String(values.log)],
      { compiled: values.compiled },
    );
    delete process.env.NODE_OPTIONS;
    delete process.env.BOOTBENCH_DIAG_FILE;
    delete process.env.BOOTBENCH_DIAG_PROFILE;
    delete process.env.BOOTBENCH_DIAG_TIMELINE;
    delete process.env.BOOTBENCH_DIAG_HEAP_PROFILE;
    delete process.env.BOOTBENCH_DIAG_V8_FLAGS;
    if (values.log === 'json') await serve.ready();
    else await new Promise((r) => setTimeout(r, 4000));
    const pid = hostPid(host);
    const mark = async () => {
      process.kill(pid, 'SIGUSR2');
      await new Promise((r) => setTimeout(r, 100));
    };
    const nice = (args: string[]) =>
      (values['client-idle']
        ? ['chrt', ['-i', '0', process.execPath, ...args]]
        : NICE
          ? ['nice', ['-n', String(NICE), process.execPath, ...args]]
          : [process.execPath, args]) as [string, string[]];

    lab.exec(client, ...nice(['--import', 'tsx', STORM, 'eth0', String(RATE), '1']), { timeoutMs: 60_000 });
    await mark(); // reset after warm-up

    const transfers =
      TRANSFERS > 0
        ? output(
            lab.spawn(
              client,
              ...nice([
                '--import',
                'tsx',
                CLIENT,
                JSON.stringify({
                  server: '192.0.2.1',
                  names: ['nbp.efi'],
                  count: TRANSFERS,
                  blksize: 1468,
                  windowsize: 16,
                  repeatForMs: SECONDS * 1000 + 4000,
                  deadlineMs: SECONDS * 1000 + 60_000,
                }),
              ]),
              { cwd: PROJECT_ROOT },
            ),
          )
        : Promise.resolve('{"outcomes":[]}');
    await new Promise((r) => setTimeout(r, 2000));
    if (values['tftp-policy']) {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const nice = Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
        if (nice === 10) execFileSync('chrt', [values['tftp-policy'] === 'idle' ? '-i' : '-b', '-p', '0', tid]);
      }
    }
    await mark(); // phase 1: transfers alone

    const capture = await captureDhcp(lab, host, 'bench0', pcapFile, { idle: values['client-idle'] });
    const busyBefore = machineBusyMs();
    const labBefore = namespaceCpuMs(host, client);
    const stormStarted = Date.now();
    const stormOut = await output(lab.spawn(client, ...nice(['--import', 'tsx', STORM, 'eth0', String(RATE), String(SECONDS)]), { cwd: PROJECT_ROOT }));
    // The storm process has exited: its CPU is no longer counted in the namespace; add it from its output below.
    const machine = { wallMs: Date.now() - stormStarted, busyMs: machineBusyMs() - busyBefore, labMs: namespaceCpuMs(host, client) - labBefore };
    await mark(); // phase 2: storm + transfers (includes the storm's 3 s tail)
    const pcap = await capture.stop();
    if (values['keep-pcap']) writeFileSync(values['keep-pcap'], pcap);
    const transferOut = await transfers;
    await mark(); // phase 3: the rest of the transfers

    const s = JSON.parse(stormOut.trim().split('\n').at(-1)!);
    const outcomes = JSON.parse(transferOut.trim().split('\n').at(-1)!).outcomes as { ok: boolean }[];
    const wire = dhcpAnswerLatencies(pcap);
    const phases = readFileSync(diagFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    console.log(
      JSON.stringify(
        {
          config: { rate: RATE, seconds: SECONDS, clientNice: NICE, transfers: TRANSFERS, log: values.log },
          client: { sent: s.sent, answered: s.answered, p50: s.p50, p90: s.p90, p99: s.p99, max: s.max },
          wire: { pairs: wire.length, p50: pct(wire, 50), p90: pct(wire, 90), p99: pct(wire, 99), max: wire.at(-1) },
          transfers: { count: outcomes.length, failed: outcomes.filter((o) => !o.ok).length },
          // Others: CPU the rest of the machine used during the storm (2 cores = 2 x wallMs).
          machine: { ...machine, stormProcessMs: s.cpuMs, othersMs: machine.busyMs - machine.labMs - (s.cpuMs ?? 0) },
          host: { warmup: phases[0], transfersAlone: phases[1], storm: phases[2], tail: phases[3] },
        },
        null,
        1,
      ),
    );
    await serve.stop();
    if (process.env.BOOTBENCH_DIAG_DUMP_STDERR) writeFileSync(process.env.BOOTBENCH_DIAG_DUMP_STDERR, serve.stderr);
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
