// A room for the deploy-stream integration tests: a host namespace running the imaging service
// (test/helpers/stream-runner.ts), a switch namespace with a bridge, and agent namespaces, each
// running build/imaging-env/agent.sh with busybox's applets and bb-stream-recv on loop devices
// over files of the test (never a disk of this machine).
//
//   host ns eth0 SUBNET.1 --- br0 (switch ns; port0 the host's, portN agent N-1's) --- agents SUBNET.1x
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectJsonLines, Lab, waitFor } from './netns.js';
import { PROJECT_ROOT } from './serve-process.js';
import { busyboxBin, streamReceiverBin } from './stream-image.js';

const MIB = 1024 * 1024;
const AGENT = join(PROJECT_ROOT, 'build', 'imaging-env', 'agent.sh');
const RUNNER = join(import.meta.dirname, 'stream-runner.ts');
export const HTTP_PORT = 8080;

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 256 * MIB });

export interface AgentRun {
  mac: string;
  code: number | null;
  out: string;
  seconds: number;
  /** what bb-stream-recv says it got from the stream and by repair (0 without it) */
  streamBytes: number;
  repairBytes: number;
}

/** A partition's bytes that compress about half: even MiB random, odd MiB a repeated line. */
export function halfRandomPartition(mib: number, label: string): Buffer {
  const bytes = Buffer.alloc(mib * MIB);
  for (let i = 0; i < mib; i++) {
    if (i % 2 === 0) randomBytes(MIB).copy(bytes, i * MIB);
    else bytes.fill(`${label} mebibyte ${i} `, i * MIB, (i + 1) * MIB);
  }
  return bytes;
}

/** The MiB of `file` from byte `offset` on that differ from `reference` (after a sync, so the loop device's writes are in). */
export function differingMiB(file: string, offset: number, reference: Buffer): number[] {
  run('sync', []);
  const part = readFileSync(file).subarray(offset, offset + reference.length);
  const mibs = Math.ceil(reference.length / MIB);
  return [...Array(mibs).keys()].filter((i) => !part.subarray(i * MIB, (i + 1) * MIB).equals(reference.subarray(i * MIB, (i + 1) * MIB)));
}

export class StreamRoom {
  readonly work: string;
  readonly data: string;
  readonly lab: Lab;
  readonly host: string;
  hostNs = '';
  switchNs = '';
  readonly agentNs: string[] = [];
  /** the runner's JSON lines, from its latest start */
  lines: Record<string, any>[] = [];
  private runner: ChildProcess | undefined;
  private runnerErr = () => '';
  private readonly loops: string[] = [];
  private busybox: string;
  private bin: string;

  /** `subnet`: the first three octets, in 198.18.0.0/15. */
  constructor(
    name: string,
    private readonly subnet: string,
    private readonly agents: number,
  ) {
    this.work = mkdtempSync(join(tmpdir(), `bootbench-${name}-`));
    this.data = join(this.work, 'data');
    this.lab = new Lab(name);
    this.host = `${subnet}.1`;
    this.busybox = join(this.work, 'busybox-bin');
    this.bin = join(this.work, 'bin');
  }

  /** The agents' tools (built here, or those of `toolsOf`) and the namespaces on one bridge (snooping as the kernel's default: on). */
  setUp(toolsOf?: StreamRoom): void {
    if (toolsOf) [this.busybox, this.bin] = [toolsOf.busybox, toolsOf.bin];
    else {
      busyboxBin(this.busybox);
      streamReceiverBin(this.bin);
    }
    this.hostNs = this.lab.namespace('h');
    this.switchNs = this.lab.namespace('w');
    for (let i = 0; i < this.agents; i++) this.agentNs.push(this.lab.namespace(`a${i}`));
    this.lab.switchOf(this.switchNs, [
      { ns: this.hostNs, ifname: 'eth0', cidr: `${this.host}/24` },
      ...this.agentNs.map((ns, i) => ({ ns, ifname: 'eth0', cidr: `${this.subnet}.${10 + i}/24` })),
    ]);
  }

  /** The switch port an agent namespace is plugged into. */
  portOf(ns: string): string {
    return `port${1 + this.agentNs.indexOf(ns)}`;
  }

  /** Starts the imaging runner in the host namespace (after stopping one already running) with extra flags. */
  async startRunner(flags: string[] = []): Promise<void> {
    if (this.runner) {
      const running = this.runner;
      running.stdin!.end();
      if (running.exitCode === null) await new Promise((resolve) => running.once('exit', resolve));
    }
    const args = ['--import', 'tsx', RUNNER, '--data', this.data, '--address', this.host, '--port', String(HTTP_PORT), ...flags];
    this.runner = this.lab.spawn(this.hostNs, process.execPath, args, { cwd: PROJECT_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    const collected = collectJsonLines(this.runner);
    this.lines = collected.lines;
    this.runnerErr = collected.stderr;
    await waitFor(() => this.lines.some((l) => l.ready), 30_000, `the imaging runner to start: ${this.runnerErr()}`);
  }

  /** Sends one command to the runner and waits for its answer (the next line with `key`). */
  async ask(command: string, key: string): Promise<any> {
    const from = this.lines.length;
    this.runner!.stdin!.write(`${command}\n`);
    const line = await waitFor(() => this.lines.slice(from).find((l) => key in l || 'error' in l), 10_000, `the runner to answer ${command}`);
    if ('error' in line) throw new Error(`runner: ${line.error}`);
    return line[key];
  }

  /** The runner's log so far, for a failure's message. */
  runnerLog(): string {
    return [...this.lines.filter((l) => l.log).map((l) => `${l.log}: ${l.message}`), this.runnerErr()].join('\n');
  }

  /** Waits for the stream of `job` to end by itself (every PC through with it); returns its closing stats line. */
  async streamEnded(job: number): Promise<string> {
    const ended = await waitFor(
      () => this.lines.find((l) => typeof l.message === 'string' && l.message.startsWith(`imaging: stream of job ${job} ended`)),
      10_000,
      'the stream to end',
    );
    return (ended.message as string).replace(/^imaging: /, '');
  }

  /** The host's bytes sent so far, from its veth's counters. */
  txBytes(): number {
    return Number(this.lab.exec(this.hostNs, 'cat', ['/sys/class/net/eth0/statistics/tx_bytes']).trim());
  }

  /**
   * Drops the stream's datagrams (239.255.0.0/16) arriving at the agent in `ns`: all of them, or
   * with `oneIn` about one in that many, at random (nftables). Returns what takes the rule away.
   */
  dropStream(ns: string, oneIn?: number): () => void {
    const nft = (...args: string[]) => this.lab.exec(ns, 'nft', args);
    nft('add', 'table', 'inet', 'drop-stream');
    nft('add', 'chain', 'inet', 'drop-stream', 'in', '{ type filter hook input priority 0; }');
    const sample = oneIn ? ['numgen', 'random', 'mod', String(oneIn), '0'] : [];
    nft('add', 'rule', 'inet', 'drop-stream', 'in', 'ip', 'daddr', '239.255.0.0/16', ...sample, 'drop');
    return () => nft('delete', 'table', 'inet', 'drop-stream');
  }

  /** A loop device over a file of the test. */
  attach(file: string): string {
    const dev = run('losetup', ['-f', '--show', file]).toString().trim();
    this.loops.push(dev);
    return dev;
  }

  /** An empty disk of `mib` MiB: a file named `name` and a loop device over it. */
  disk(name: string, mib: number): { file: string; dev: string } {
    const file = join(this.work, `${name}.img`);
    run('truncate', ['-s', `${mib}M`, file]);
    return { file, dev: this.attach(file) };
  }

  /** One disk a MAC, named `tag-MAC`. */
  disks(tag: string, macs: string[], mib: number): { file: string; dev: string }[] {
    return macs.map((mac) => this.disk(`${tag}-${mac.replace(/:/g, '')}`, mib));
  }

  /** The agent as the PC `mac` in namespace `ns`, allowed to touch only `disk`; without the receiver it deploys by HTTP. */
  agent(ns: string, mac: string, disk: string, withReceiver = true): Promise<AgentRun> {
    const env = [
      `PATH=${this.busybox}:${withReceiver ? `${this.bin}:` : ''}/usr/sbin:/usr/bin:/sbin:/bin`,
      `BOOTBENCH_AGENT_DISKS=${disk}`,
      `BOOTBENCH_AGENT_TMP=${this.work}`,
    ];
    const started = Date.now();
    const args = ['-i', ...env, '/bin/busybox', 'sh', AGENT, 'run', `http://${this.host}:${HTTP_PORT}`, mac];
    const child = this.lab.spawn(ns, '/usr/bin/env', args, { detached: true });
    let out = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (out += d));
    return new Promise((resolve) =>
      child.on('exit', (code) => {
        const m = /bb-stream-recv: (\d+) bytes from the stream, (\d+) by repair/.exec(out);
        resolve({ mac, code, out, seconds: (Date.now() - started) / 1000, streamBytes: Number(m?.[1] ?? 0), repairBytes: Number(m?.[2] ?? 0) });
      }),
    );
  }

  /** Stops the runner and the agents, removes the namespaces, the loop devices and the files. */
  async destroy(): Promise<void> {
    this.runner?.stdin?.end();
    await this.lab.destroy();
    // An agent that was killed leaves its partition loops; they go before the disks'.
    for (const dev of this.loops.reverse())
      try {
        run('losetup', ['-d', dev]);
      } catch {
        /* gone */
      }
    rmSync(this.work, { recursive: true, force: true });
  }
}
