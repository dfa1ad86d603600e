// The image-stream lab of `npm run bench`: one host and eight receivers on one bridge, each
// receiver in its own namespace writing its own loop device (sparse files in a folder under
// /var/tmp this bench makes: eight disks do not fit in /dev/shm), never a disk of this machine.
// Bootbench's side: the host's imaging service with its stream (bench/imaging-stream-host.mjs)
// and the agent (build/imaging-env/agent.sh with bb-stream-recv compiled here). The peer:
// udpcast, the transport FOG and Clonezilla use: `udp-sender --file image.pcl.zst` on the host,
// `udp-receiver | zstd -d | partclone.restore` on each receiver, after sfdisk wrote the table.
//
//   shost eth0 198.18.5.1 ── port0 ┐
//   srcv0 eth0 198.18.5.10 ─ port1 ├ br0 (switch namespace, multicast snooping off)
//   ...                            │
//   srcv7 eth0 198.18.5.17 ─ port8 ┘
import { execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { buildReferenceDisk, busyboxApplets, labMac, LoopDevices, PART_OFFSET, sh, timedIn } from './imaging-disks.js';
import { BENCH_DIR, MiB, PROJECT, log, servedMain, type Bench } from './lab.js';
import { cpuMs } from './measure.js';

const HOST = '198.18.5.1';
const receiverAddress = (i: number) => `198.18.5.${10 + i}`;
export const RECEIVERS = 8;
/** Port of the service with the product's stream rules, and of one that streams to a single PC too (img-stream-1). */
const PORT = 8000;
const PORT_ONE = 8001;
const UDPCAST_PORTBASE = 9000;
const UDPCAST_GROUP = '239.255.77.1';

export interface StreamSizes {
  diskMiB: number;
  usedMiB: number;
  /** the cap on both streams, bits per second (udp-sender --max-bitrate, Bootbench's maxRate) */
  maxBits: number;
}

/**
 * 1 GiB disk (512 MiB used) by default: on 2 shared cores the set then takes minutes. `--long`
 * (or BOOTBENCH_LONG=1): the issue's 2 GiB disk. BOOTBENCH_STREAM_DISK_MIB sets any size
 * (half of it used); BOOTBENCH_STREAM_MAX_RATE the cap in bits per second for both sides
 * (default 1G: one gigabit port).
 */
export function streamSizes(long: boolean): StreamSizes {
  const diskMiB = Number(process.env.BOOTBENCH_STREAM_DISK_MIB) || (long ? 2048 : 1024);
  const rate = process.env.BOOTBENCH_STREAM_MAX_RATE ?? '1G';
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(rate);
  if (!m) throw new Error(`BOOTBENCH_STREAM_MAX_RATE=${rate}: expected bits per second, e.g. 400M or 1G`);
  const maxBits = Number(m[1]) * ({ '': 1, k: 1e3, m: 1e6, g: 1e9 } as Record<string, number>)[m[2].toLowerCase()];
  return { diskMiB, usedMiB: diskMiB / 2, maxBits };
}

/** One receiver's run: when it started and ended (seconds, its namespace's clock, which is the machine's). */
export interface PcTime {
  start: number;
  end: number;
}

export interface RoomRun {
  /** from the first start to the last end */
  seconds: number;
  pcs: PcTime[];
  /** bytes the host's NIC sent during the run */
  egress: number;
  /** the host's word on the stream, when it had one */
  note?: string;
}

export interface Faults {
  /** receiver that loses this fraction of the multicast datagrams it is sent (nftables) */
  lossy?: { index: number; percent: number };
  /** receiver behind a switch port shaped to this many bits per second (tc tbf) */
  slow?: { index: number; bits: number };
}

export class StreamLab {
  private ready?: Promise<void>;
  private readonly dir: string;
  private hostNs = '';
  private switchNs = '';
  private readonly receiverNs: string[] = [];
  private readonly loops = new LoopDevices();
  private readonly children = new Set<ChildProcess>();
  private hosts: { main?: HostRunner; one?: HostRunner } = {};
  private busybox = '';
  private bin = '';
  private referenceDev = '';
  private partSectors = 0;
  private macCounter = 0;
  /** partclone stream bytes of the reference partition (what a deploy writes) */
  usedBytes = 0;
  /** the image's chunks as the stream sends them, compressed */
  compressedBytes = 0;
  classicBytes = 0;
  /** the clean room's runs, kept for the faulty case */
  readonly clean = { ours: [] as RoomRun[], udpcast: [] as RoomRun[] };

  constructor(
    private readonly bench: Bench,
    readonly sizes: StreamSizes,
  ) {
    mkdirSync('/var/tmp', { recursive: true });
    this.dir = mkdtempSync('/var/tmp/bootbench-bench-stream-');
  }

  setUp(): Promise<void> {
    this.ready ??= this.build();
    return this.ready;
  }

  get classicFile(): string {
    return join(this.dir, 'ref.pcl.zst');
  }

  private async build(): Promise<void> {
    const { lab } = this.bench;
    mkdirSync(join(this.dir, 'data'), { recursive: true });
    mkdirSync(join(this.dir, 'logs'));
    this.hostNs = lab.namespace('sh');
    this.switchNs = lab.namespace('sw');
    for (let i = 0; i < RECEIVERS; i++) this.receiverNs.push(lab.namespace(`r${i}`));
    lab.switchOf(this.switchNs, [
      { ns: this.hostNs, ifname: 'eth0', cidr: `${HOST}/24` },
      ...this.receiverNs.map((ns, i) => ({ ns, ifname: 'eth0', cidr: `${receiverAddress(i)}/24` })),
    ]);
    // Flooding, as an unmanaged bench switch does: which ports get the group is not measured here.
    lab.exec(this.switchNs, 'ip', ['link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
    // With their broadcast address, as DHCP gives it: udpcast finds its peers by broadcast to it.
    for (const [ns, address] of [[this.hostNs, HOST], ...this.receiverNs.map((r, i) => [r, receiverAddress(i)])]) {
      lab.exec(ns, 'ip', ['addr', 'del', `${address}/24`, 'dev', 'eth0']);
      lab.exec(ns, 'ip', ['addr', 'add', `${address}/24`, 'brd', '+', 'dev', 'eth0']);
    }

    this.busybox = busyboxApplets(join(this.dir, 'busybox-bin'));
    this.bin = join(this.dir, 'receiver-bin');
    mkdirSync(this.bin);
    const source = join(PROJECT, 'build', 'imaging-env', 'bb-stream-recv.c');
    // As the imaging environment's build: static with libcrypto's SHA-256 where this host has them, else dynamic or the portable hash.
    const receiver = ['-O2', '-pthread', '-o', join(this.bin, 'bb-stream-recv'), source];
    const crypto = ['-DBB_LIBCRYPTO', ...receiver, '-lcrypto'];
    const built = [['-static', ...crypto], crypto, ['-static', ...receiver]].some((flags) => {
      try {
        execFileSync('gcc', flags, { stdio: 'pipe' });
        return true;
      } catch {
        return false;
      }
    });
    if (!built) execFileSync('gcc', receiver, { stdio: 'pipe' });

    log(`  stream: building the reference disk (${this.sizes.diskMiB} MiB, ${this.sizes.usedMiB} MiB used) in ${this.dir}`);
    ({ dev: this.referenceDev, partSectors: this.partSectors } = buildReferenceDisk(this.dir, this.sizes, this.loops));
    const maxBytes = String(Math.round(this.sizes.maxBits / 8));
    this.hosts.main = await this.startHost(PORT, ['--max-rate', maxBytes, '--start-grace-ms', '10000']);
    this.hosts.one = await this.startHost(PORT_ONE, ['--max-rate', maxBytes, '--min-receivers', '1']);

    // Both sides' images of the same disk: Bootbench's captured by its agent, udpcast's the classic file.
    const mac = this.nextMac();
    await this.hosts.main.ask(`job capture ref ${mac}`);
    await this.timed(0, this.agentScript(mac, PORT), this.agentEnv(this.referenceDev, true), 'capture-ours');
    this.usedBytes = Number((await this.hosts.main.ask('size ref')).split(' ')[1]);
    this.compressedBytes = Number((await this.hosts.main.ask('chunks ref')).split(' ')[2]);
    sh(`set -o pipefail
P=$(losetup -r -f --show -o ${PART_OFFSET} --sizelimit ${this.partSectors * 512} ${this.referenceDev})
blockdev --flushbufs "$P"
partclone.extfs -c -s "$P" -o - -L ${join(this.dir, 'logs', 'partclone-capture.log')} 2>/dev/null | zstd -q -3 -c > ${this.classicFile}
rc=$?; losetup -d "$P"; exit $rc`);
    this.classicBytes = statSync(this.classicFile).size;
    if (!this.usedBytes || this.classicBytes < this.usedBytes / 10)
      throw new Error(`the images look wrong: ${this.usedBytes} used bytes, classic file ${this.classicBytes} bytes`);
    log(
      `  stream: image ${(this.usedBytes / MiB).toFixed(0)} MiB used; Bootbench's chunks ${(this.compressedBytes / MiB).toFixed(1)} MiB, ` +
        `the classic file ${(this.classicBytes / MiB).toFixed(1)} MiB`,
    );
  }

  private async startHost(port: number, extra: string[]): Promise<HostRunner> {
    const errFd = openSync(join(this.dir, 'logs', `stream-host-${port}.log`), 'a');
    const child = this.bench.lab.spawn(
      this.hostNs,
      process.execPath,
      [
        join(BENCH_DIR, 'imaging-stream-host.mjs'),
        '--main',
        servedMain(),
        '--data',
        join(this.dir, 'data'),
        '--address',
        HOST,
        '--port',
        String(port),
        ...extra,
      ],
      { stdio: ['pipe', 'pipe', errFd], cwd: PROJECT },
    );
    closeSync(errFd);
    const runner = new HostRunner(child, join(this.dir, 'logs', `stream-host-${port}.log`));
    await runner.started;
    return runner;
  }

  nextMac(): string {
    return labMac('b5', ++this.macCounter);
  }

  /** Blank sparse disks of the reference's size, one per receiver of the run. */
  private blankDisks(count: number): string[] {
    return Array.from({ length: count }, (_, i) => {
      const file = join(this.dir, `target-${i}.img`);
      rmSync(file, { force: true });
      sh(`truncate -s ${this.sizes.diskMiB}M ${file}`);
      return this.loops.attach(file);
    });
  }

  private dropDisks(devs: string[]): void {
    const files = devs.map((dev) => execFileSync('losetup', ['-nO', 'BACK-FILE', dev]).toString().trim());
    this.loops.release(devs);
    for (const file of files) rmSync(file, { force: true });
  }

  /** Stops everything running in the receivers' namespaces (a room that failed or hung). */
  private killReceivers(): void {
    for (const ns of this.receiverNs) {
      try {
        for (const pid of execFileSync('ip', ['netns', 'pids', ns]).toString().split(/\s+/).filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  /** Runs `script` (bash) in receiver `index`'s namespace; its start and end are taken inside, so `ip netns exec` is not counted. */
  private timed(index: number, script: string, env: NodeJS.ProcessEnv, what: string): Promise<PcTime> {
    return timedIn(this.bench.lab, this.receiverNs[index], script, env, join(this.dir, 'logs', `${what}.log`), what, this.children);
  }

  /** The agent's environment; without the receiver on PATH it fetches every chunk by HTTP (unicast). */
  private agentEnv(disk: string, withReceiver: boolean): NodeJS.ProcessEnv {
    const tmp = join(this.dir, 'agent-tmp');
    mkdirSync(tmp, { recursive: true });
    return {
      PATH: `${this.busybox}:${withReceiver ? `${this.bin}:` : ''}/usr/sbin:/usr/bin:/sbin:/bin`,
      BOOTBENCH_AGENT_DISKS: disk,
      BOOTBENCH_AGENT_TMP: tmp,
    };
  }

  private agentScript(mac: string, port: number): string {
    return `/bin/busybox sh ${join(PROJECT, 'build', 'imaging-env', 'agent.sh')} run http://${HOST}:${port} ${mac}`;
  }

  private egress(): number {
    return Number(this.bench.lab.exec(this.hostNs, 'cat', ['/sys/class/net/eth0/statistics/tx_bytes']).trim());
  }

  /**
   * Holds the host's port to a line rate (tc tbf on its egress), as a laptop's 1 GbE port holds
   * both a stream and an HTTP deploy; a veth alone carries TCP faster than any real port. Returns the undo.
   */
  linkPort(bits: number): () => void {
    const { lab } = this.bench;
    lab.exec(this.hostNs, 'tc', ['qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', `${Math.round(bits)}bit`, 'burst', '1mb', 'latency', '50ms']);
    return () => lab.exec(this.hostNs, 'tc', ['qdisc', 'del', 'dev', 'eth0', 'root']);
  }

  /** Puts the faults on (nftables loss in the lossy receiver, tbf on the slow one's switch port); returns the undo. */
  private applyFaults(faults: Faults): () => void {
    const { lab } = this.bench;
    const undo: (() => void)[] = [];
    if (faults.lossy) {
      const ns = this.receiverNs[faults.lossy.index];
      // Multicast only: the stream's datagrams (both sides'), not the HTTP repairs.
      lab.exec(ns, 'nft', ['add', 'table', 'inet', 'loss']);
      lab.exec(ns, 'nft', ['add', 'chain', 'inet', 'loss', 'in', '{ type filter hook input priority 0; }']);
      lab.exec(ns, 'nft', [
        'add',
        'rule',
        'inet',
        'loss',
        'in',
        'ip',
        'daddr',
        '224.0.0.0/4',
        'numgen',
        'random',
        'mod',
        '100',
        '<',
        String(faults.lossy.percent),
        'drop',
      ]);
      undo.push(() => lab.exec(ns, 'nft', ['delete', 'table', 'inet', 'loss']));
    }
    if (faults.slow) {
      const port = `port${1 + faults.slow.index}`;
      lab.exec(this.switchNs, 'tc', [
        'qdisc',
        'add',
        'dev',
        port,
        'root',
        'tbf',
        'rate',
        `${Math.round(faults.slow.bits)}bit`,
        'burst',
        '64kb',
        'latency',
        '100ms',
      ]);
      undo.push(() => lab.exec(this.switchNs, 'tc', ['qdisc', 'del', 'dev', port, 'root']));
    }
    return () => undo.forEach((u) => u());
  }

  private async room(count: number, faults: Faults, what: string, run: (disks: string[]) => Promise<{ pcs: PcTime[]; note?: string }>): Promise<RoomRun> {
    const disks = this.blankDisks(count);
    const undo = this.applyFaults(faults);
    const before = this.egress();
    // Far beyond any room's time: a receiver that waits for ever must not hold the bench.
    const watchdog = setTimeout(() => this.killReceivers(), 30 * 60_000);
    try {
      const { pcs, note } = await run(disks);
      const seconds = Math.max(...pcs.map((p) => p.end)) - Math.min(...pcs.map((p) => p.start));
      return { seconds, pcs, egress: this.egress() - before, note };
    } catch (error) {
      this.killReceivers();
      await new Promise((r) => setTimeout(r, 200));
      throw new Error(`${what}: ${(error as Error).message}`);
    } finally {
      clearTimeout(watchdog);
      undo();
      this.dropDisks(disks);
    }
  }

  /**
   * Bootbench: one deploy job for `count` PCs, each agent on its own receiver and disk, every
   * disk verified by its agent. `stream` false: the agents lack the receiver and fetch by HTTP.
   */
  deployOurs(count: number, options: { stream: boolean; faults?: Faults; label: string }): Promise<RoomRun> {
    const host = count === 1 && options.stream ? this.hosts.one! : this.hosts.main!;
    const port = host === this.hosts.one ? PORT_ONE : PORT;
    return this.room(count, options.faults ?? {}, options.label, async (disks) => {
      const cpuBefore = cpuMs(host.child.pid!);
      const macs = disks.map(() => this.nextMac());
      const job = Number((await host.ask(`job deploy ref ${macs.join(' ')}`)).split(' ')[1]);
      const pcs = await Promise.all(
        macs.map((mac, i) => this.timed(i, this.agentScript(mac, port), this.agentEnv(disks[i], options.stream), `${options.label}-${i}`)),
      );
      const status = JSON.parse(await host.ask(`status ${job}`)) as { machines: { mac: string; result?: string; streamed?: number; repaired?: number }[] };
      const failed = status.machines.filter((m) => m.result !== 'done');
      if (failed.length) throw new Error(`the host's results: ${JSON.stringify(failed)}`);
      const streamed = status.machines.map((m) => `${((m.streamed ?? 0) / MiB).toFixed(0)}+${((m.repaired ?? 0) / MiB).toFixed(0)}`).join(' ');
      const cpu = `host CPU ${((cpuMs(host.child.pid!) - cpuBefore) / 1000).toFixed(1)} s`;
      return { pcs, note: options.stream ? `${cpu}; MiB streamed+repaired per PC: ${streamed}` : cpu };
    });
  }

  /** udpcast: udp-sender on the host; on each receiver sfdisk, then udp-receiver | zstd -d | partclone.restore. */
  deployUdpcast(count: number, options: { faults?: Faults; label: string }): Promise<RoomRun> {
    return this.room(count, options.faults ?? {}, options.label, async (disks) => {
      const senderLog = openSync(join(this.dir, 'logs', `${options.label}-sender.log`), 'a');
      const sender = this.bench.lab.spawn(
        this.hostNs,
        'udp-sender',
        [
          '--file',
          this.classicFile,
          '--interface',
          'eth0',
          '--nokbd',
          '--min-receivers',
          String(count),
          '--full-duplex',
          '--nopointopoint',
          '--portbase',
          String(UDPCAST_PORTBASE),
          '--mcast-data-address',
          UDPCAST_GROUP,
          '--max-bitrate',
          `${Math.round(this.sizes.maxBits / 1e6)}m`,
          '--start-timeout',
          '60',
        ],
        { stdio: ['ignore', senderLog, senderLog] },
      );
      closeSync(senderLog);
      this.children.add(sender);
      const senderDone = new Promise<number | null>((r) => sender.on('exit', (code) => r(code)));
      try {
        const script = (disk: string, i: number) => `set -o pipefail
sfdisk -q --no-reread --no-tell-kernel ${disk} < ${join(this.dir, 'table')} >/dev/null || exit 1
P=$(losetup -f --show -o ${PART_OFFSET} --sizelimit ${this.partSectors * 512} ${disk}) || exit 1
udp-receiver --interface eth0 --nokbd --portbase ${UDPCAST_PORTBASE} 2>${join(this.dir, 'logs', `${options.label}-${i}-udp-receiver.log`)} | zstd -q -d -c | partclone.restore -s - -O "$P" -L ${join(this.dir, 'logs', `${options.label}-${i}-partclone.log`)} >/dev/null 2>&1
rc="\${PIPESTATUS[*]}"; losetup -d "$P"; [ "$rc" = "0 0 0" ] || { echo "pipeline exit codes: $rc"; exit 1; }`;
        const receivers = Promise.all(disks.map((d, i) => this.timed(i, script(d, i), { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, `${options.label}-${i}`)));
        // A sender that gives up (no receivers found in time) leaves the receivers waiting: stop them.
        const senderFailed = senderDone.then((code) => (code === 0 ? new Promise<never>(() => {}) : Promise.reject(new Error(`udp-sender exited ${code}`))));
        const pcs = await Promise.race([receivers, senderFailed]);
        const code = await senderDone;
        if (code !== 0) throw new Error(`udp-sender exited ${code}`);
        return { pcs };
      } finally {
        sender.kill('SIGKILL');
        this.children.delete(sender);
      }
    });
  }

  /** Keeps the logs in `dest`; kills what is left, detaches every loop device (partition loops first), removes the disks. */
  async tearDown(dest?: string): Promise<void> {
    if (dest && existsSync(join(this.dir, 'logs'))) {
      mkdirSync(dest, { recursive: true });
      sh(`cp ${this.dir}/logs/*.log ${dest}/ 2>/dev/null || true`);
    }
    for (const child of this.children) child.kill('SIGKILL');
    for (const runner of [this.hosts.main, this.hosts.one]) if (runner) await this.bench.stopChild(runner.child);
    // Agents and pipelines stopped half-way leave processes in the receivers' namespaces and partition loops over our disks.
    this.killReceivers();
    await new Promise((r) => setTimeout(r, 200));
    this.loops.release();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One imaging-stream-host.mjs process: a command a line on stdin, one answer line each. */
class HostRunner {
  readonly started: Promise<void>;
  private readonly replies: ((line: string) => void)[] = [];

  constructor(
    readonly child: ChildProcess,
    private readonly logFile: string,
  ) {
    const lines = createInterface({ input: child.stdout! });
    this.started = new Promise<void>((resolveReady, reject) => {
      child.once('exit', (code) => reject(new Error(`stream host exited (${code}): ${this.tail()}`)));
      lines.once('line', (line) => {
        if (line !== 'ready') return reject(new Error(`stream host: ${line}`));
        lines.on('line', (next) => this.replies.shift()?.(next));
        resolveReady();
      });
    });
  }

  tail(): string {
    try {
      return readFileSync(this.logFile, 'utf8').slice(-600);
    } catch {
      return '';
    }
  }

  ask(command: string): Promise<string> {
    return new Promise((resolveLine, reject) => {
      this.replies.push((line) => (line.startsWith('error') ? reject(new Error(`stream host: ${line} (for: ${command})`)) : resolveLine(line)));
      this.child.stdin!.write(`${command}\n`);
    });
  }
}
