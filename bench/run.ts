// `npm run bench`: Bootbench's TFTP, HTTP and Proxy DHCP side by side with the Debian
// servers (dnsmasq, atftpd, nginx), inside network namespaces this script creates and
// removes. Prints a table of medians and ratios and writes bench/results/bench-<time>.{json,md}.
// A benchmark, not a test: it asserts nothing. See bench/README.md.
//
//   namespace layout (all addresses from 198.18.0.0/15, no route out)
//
//     srv  eth0 198.18.0.1 (peer) + .0.3 (Bootbench) ======= cli  eth0 198.18.0.2
//     srv  eth1 198.18.1.1 (peer) + .1.3 (Bootbench) == mid (delay-forwarder, 0.5 ms each way) == far eth0 198.18.1.2
//     host eth0 198.18.2.1 (`bootbench serve`, store on) ==== cli  eth2 198.18.2.2
//     hoff eth0 198.18.3.1 (`bootbench serve`, store off) === cli  eth3 198.18.3.2
//
// Usage: node --import tsx bench/run.ts [--quick] [--runs N] [--only id,id] [--profile] [--trace strace|perf] [--long]
//        BOOTBENCH_BENCH_MAIN=/other/checkout/main ... measures another tree's servers
// Bootbench runs compiled (dist/main, built first when a source is newer), under plain node.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { Lab, missingPrograms, netnsUnavailableReason, waitFor, whichSync } from '../test/helpers/netns.js';
import { ensureCompiled } from '../test/helpers/compiled-cli.js';
import { imagingCases, imagingSizes } from './imaging.js';

const execFileAsync = promisify(execFile);
const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const PROJECT = resolve(BENCH_DIR, '..');
const RESULTS = join(BENCH_DIR, 'results');
const MiB = 1024 * 1024;
/** The compiled main/ the bench runs: this checkout's, or BOOTBENCH_BENCH_MAIN's (compiled when stale). */
let served: string | undefined;
function servedMain(): string {
  if (served) return served;
  const other = process.env.BOOTBENCH_BENCH_MAIN;
  if (other && (basename(resolve(other)) !== 'main' || !existsSync(join(other, 'cli.ts')))) {
    throw new Error(`BOOTBENCH_BENCH_MAIN=${other}: expected the main/ folder of a Bootbench checkout (with cli.ts in it), e.g. /path/to/checkout/main`);
  }
  const root = other ? resolve(other, '..') : PROJECT;
  served = ensureCompiled(root);
  // Run with sudo, the build belongs to root: give it back to the user, or their next build fails.
  const [uid, gid] = [Number(process.env.SUDO_UID), Number(process.env.SUDO_GID)];
  if (uid > 0 && gid > 0) execFileSync('chown', ['-R', `${uid}:${gid}`, join(root, 'dist')]);
  return served;
}
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    trace: { type: 'string' },
    long: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

// ---------------------------------------------------------------------------------------
// Addresses

const SRV_VETH = { peer: '198.18.0.1', bootbench: '198.18.0.3', client: '198.18.0.2' };
const SRV_RTT = { peer: '198.18.1.1', bootbench: '198.18.1.3', client: '198.18.1.2' };
/** `bootbench serve` with the store and JSON events on, and with both off, each in its own namespace. */
const HOSTS = {
  on: { host: '198.18.2.1', client: '198.18.2.2', clientIf: 'eth2' },
  off: { host: '198.18.3.1', client: '198.18.3.2', clientIf: 'eth3' },
} as const;
type HostVariant = keyof typeof HOSTS;

// ---------------------------------------------------------------------------------------
// Small helpers

/**
 * A peer server program: from PATH, or from the unpacked Debian package that
 * bench/fetch-peers.sh leaves in bench/results/peers/ (atftpd and tftpd-hpa conflict, so at
 * most one of them is installed at a time).
 */
function peerProgram(program: string, debianPackage: string): string | undefined {
  const unpacked = join(RESULTS, 'peers', debianPackage, 'usr', 'sbin', program);
  const installed = whichSync(program);
  // tftpd-hpa and atftpd both install in.tftpd: only trust PATH for names unique to the package.
  if (installed && program !== 'in.tftpd') return installed;
  return existsSync(unpacked) ? unpacked : undefined;
}

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** CPU time (ms) a process and its reaped children have used: utime+stime+cutime+cstime. */
function cpuMs(pid: number): number {
  const { user, system } = cpuSplitMs(pid);
  return user + system;
}

/** User and kernel CPU time (ms) of a process and its reaped children. */
function cpuSplitMs(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ms = (ticks: number) => (ticks * 1000) / CLK_TCK;
  return { user: ms(Number(fields[11]) + Number(fields[13])), system: ms(Number(fields[12]) + Number(fields[14])) };
}

function rssKiB(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function summarize(xs: number[]): Summary {
  return xs.length ? { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length } : { median: NaN, min: NaN, max: NaN, n: 0 };
}

interface Summary { median: number; min: number; max: number; n: number }

// ---------------------------------------------------------------------------------------
// Servers: each has a pid (for CPU and RSS) and stop()

interface RunningServer {
  name: string;
  pid: number;
  /** TFTP/HTTP address on the plain veth, and on the delayed path when it serves there */
  veth: string;
  rtt?: string;
  httpPort?: number;
  stop(): Promise<void>;
}

class Bench {
  readonly lab = new Lab('bbn');
  readonly work = mkdtempSync('/dev/shm/bootbench-bench-');
  readonly root = join(this.work, 'root');
  readonly out = join(this.work, 'out');
  readonly logs = join(this.work, 'logs');
  srv = '';
  cli = '';
  mid = '';
  far = '';
  readonly hostNs: Record<HostVariant, string> = { on: '', off: '' };
  forwarder = '';
  pollingClient = '';
  readonly digests = new Map<string, string>();

  async setUp(sizes: Record<string, number>): Promise<void> {
    for (const dir of [this.root, this.out, this.logs, RESULTS]) mkdirSync(dir, { recursive: true });
    for (const [name, size] of Object.entries(sizes)) {
      // Random content: a server that compresses or dedupes cannot cheat, and sha256 means something.
      execFileSync('sh', ['-c', `head -c ${size} /dev/urandom > ${join(this.root, name)}`]);
      this.digests.set(name, await sha256File(join(this.root, name)));
    }
    // The memory case reads a sparse 1 GiB file: its content does not matter, its size does.
    const big = join(this.root, 'big-1g.bin');
    closeSync(openSync(big, 'w'));
    truncateSync(big, 1024 * MiB);
    writeFileSync(join(this.root, 'pxelinux.0'), 'not a real boot file\n');

    const lab = this.lab;
    this.srv = lab.namespace('s');
    this.cli = lab.namespace('c');
    this.mid = lab.namespace('m');
    this.far = lab.namespace('f');
    this.hostNs.on = lab.namespace('h');
    this.hostNs.off = lab.namespace('g');
    lab.veth(this.srv, 'eth0', `${SRV_VETH.peer}/24`, this.cli, 'eth0', `${SRV_VETH.client}/24`);
    lab.exec(this.srv, 'ip', ['addr', 'add', `${SRV_VETH.bootbench}/24`, 'dev', 'eth0']);
    lab.veth(this.srv, 'eth1', `${SRV_RTT.peer}/24`, this.mid, 'left', null);
    lab.exec(this.srv, 'ip', ['addr', 'add', `${SRV_RTT.bootbench}/24`, 'dev', 'eth1']);
    lab.veth(this.mid, 'right', null, this.far, 'eth0', `${SRV_RTT.client}/24`);
    for (const variant of ['on', 'off'] as const) {
      const h = HOSTS[variant];
      lab.veth(this.hostNs[variant], 'eth0', `${h.host}/24`, this.cli, h.clientIf, `${h.client}/24`);
    }
    // The middle namespace is a cable, not a host: it must not answer or originate anything.
    lab.exec(this.mid, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    lab.exec(this.mid, 'sysctl', ['-qw', 'net.ipv4.conf.all.arp_ignore=8']);

    const binary = join(this.work, 'delay-forwarder');
    execFileSync('cc', ['-O2', '-Wall', '-o', binary, join(BENCH_DIR, 'delay-forwarder.c')]);
    this.forwarder = binary;
    this.spawnLogged(this.mid, 'delay-forwarder', binary, ['left', 'right', '500']);
    this.pollingClient = join(this.work, 'polling-client');
    execFileSync('cc', ['-O2', '-Wall', '-o', this.pollingClient, join(BENCH_DIR, 'polling-client.c')]);
  }

  spawnLogged(ns: string, name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
    const fd = openSync(join(this.logs, `${name}.log`), 'a');
    const child = this.lab.spawn(ns, cmd, args, { stdio: ['ignore', fd, fd], cwd: PROJECT, env: env ?? process.env });
    closeSync(fd);
    return child;
  }

  logOf(name: string): string {
    try {
      return readFileSync(join(this.logs, `${name}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  async listening(ns: string, proto: 'udp' | 'tcp', address: string, port: number, what: string): Promise<void> {
    await waitFor(() => {
      const out = this.lab.exec(ns, 'ss', [proto === 'udp' ? '-Huln' : '-Htln']);
      return out.includes(`${address}:${port} `) || out.includes(`${address}%`) && out.includes(`:${port} `);
    }, 20_000, what);
  }

  async stopChild(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  // ---- peers -------------------------------------------------------------------------

  async startDnsmasqTftp(): Promise<RunningServer> {
    const name = 'dnsmasq-tftp';
    const child = this.spawnLogged(this.srv, name, 'dnsmasq', [
      '--keep-in-foreground', '--conf-file=/dev/null', '--port=0', '--user=root', '--log-facility=-',
      `--listen-address=${SRV_VETH.peer}`, `--listen-address=${SRV_RTT.peer}`, '--bind-interfaces',
      '--enable-tftp', `--tftp-root=${this.root}`, `--pid-file=${join(this.work, 'dnsmasq.pid')}`,
    ]);
    await this.listening(this.srv, 'udp', SRV_VETH.peer, 69, 'dnsmasq TFTP');
    return { name: 'dnsmasq', pid: child.pid!, veth: SRV_VETH.peer, rtt: SRV_RTT.peer, stop: () => this.stopChild(child) };
  }

  async startAtftpd(path: 'veth' | 'rtt'): Promise<RunningServer> {
    const address = path === 'veth' ? SRV_VETH.peer : SRV_RTT.peer;
    const child = this.spawnLogged(this.srv, 'atftpd', peerProgram('atftpd', 'atftpd')!, [
      '--daemon', '--no-fork', '--user', 'root.root', '--port', '69', '--bind-address', address,
      '--maxthread', '200', '--logfile', '/dev/null', this.root,
    ]);
    await this.listening(this.srv, 'udp', address, 69, 'atftpd');
    return { name: 'atftpd', pid: child.pid!, veth: SRV_VETH.peer, rtt: SRV_RTT.peer, stop: () => this.stopChild(child) };
  }

  async startNginx(): Promise<RunningServer> {
    const dir = join(this.work, 'nginx');
    mkdirSync(dir, { recursive: true });
    // One process (no master): its CPU is the server's CPU, and it is what a small box runs.
    writeFileSync(join(dir, 'nginx.conf'), `
daemon off; master_process off; worker_processes 1; user root; pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off; sendfile on; tcp_nopush on; keepalive_timeout 30;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  types { application/octet-stream bin; }
  server { listen ${SRV_VETH.peer}:80; root ${this.root}; }
}
`);
    const child = this.spawnLogged(this.srv, 'nginx', 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')]);
    await this.listening(this.srv, 'tcp', SRV_VETH.peer, 80, 'nginx');
    return { name: 'nginx', pid: child.pid!, veth: SRV_VETH.peer, httpPort: 80, stop: () => this.stopChild(child) };
  }

  async startDnsmasqProxyDhcp(): Promise<RunningServer> {
    const child = this.spawnLogged(this.srv, 'dnsmasq-proxy', 'dnsmasq', [
      '--keep-in-foreground', '--conf-file=/dev/null', '--port=0', '--user=root', '--log-facility=-',
      '--interface=eth0', '--bind-interfaces', `--dhcp-range=${SRV_VETH.peer},proxy`,
      '--pxe-service=x86PC,"Bootbench bench",pxelinux', `--dhcp-leasefile=${join(this.work, 'dnsmasq.leases')}`,
      `--pid-file=${join(this.work, 'dnsmasq-proxy.pid')}`,
    ]);
    await this.listening(this.srv, 'udp', '0.0.0.0', 67, 'dnsmasq proxy DHCP');
    return { name: 'dnsmasq', pid: child.pid!, veth: SRV_VETH.peer, stop: () => this.stopChild(child) };
  }

  // ---- Bootbench ---------------------------------------------------------------------

  /** TFTP + HTTP servers alone (bench/server-runner.mjs), events dropped, no store. */
  async startBootbenchRaw(profileDir?: string): Promise<RunningServer> {
    const name = 'bootbench-raw';
    const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    const child = this.spawnLogged(this.srv, name, process.execPath, [
      ...nodeArgs, join(BENCH_DIR, 'server-runner.mjs'), '--main', servedMain(), '--root', this.root,
      '--tftp', `${SRV_VETH.bootbench},${SRV_RTT.bootbench}`, '--http', `${SRV_VETH.bootbench}:80`,
    ]);
    await waitFor(() => this.logOf(name).includes('ready') || child.exitCode !== null, 30_000, 'Bootbench server runner');
    if (child.exitCode !== null) throw new Error(`Bootbench server runner exited: ${this.logOf(name)}`);
    return { name: 'bootbench', pid: child.pid!, veth: SRV_VETH.bootbench, rtt: SRV_RTT.bootbench, httpPort: 80, stop: () => this.stopChild(child) };
  }

  /**
   * The whole headless host (`bootbench serve`): Proxy DHCP, TFTP, HTTP. Store on: the
   * database records every event and every event is printed as a JSON line. Store off: the
   * data folder holds a file that is not a database, which serve reports and then runs
   * without history, and `--log text` prints no progress lines.
   */
  async startBootbenchHost(variant: HostVariant, profileDir?: string): Promise<RunningServer> {
    const name = `bootbench-host-${variant}`;
    const ns = this.hostNs[variant];
    const data = mkdtempSync(join(this.work, `data-${variant}-`));
    if (variant === 'off') writeFileSync(join(data, 'bootbench.db'), 'not a database: the bench runs this host without a store\n'.repeat(100));
    const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    const child = this.spawnLogged(ns, name, process.execPath, [
      ...nodeArgs, join(servedMain(), 'cli.js'), 'serve', '--interface', 'eth0',
      '--root', this.root, '--boot', 'bios=pxelinux.0', '--log', variant === 'on' ? 'json' : 'text', '--data', data,
    ], { ...process.env, BOOTBENCH_DATA: data });
    await waitFor(() => {
      if (child.exitCode !== null) return true;
      const udp = this.lab.exec(ns, 'ss', ['-Huln']);
      return udp.includes(':69 ') && udp.includes(':67 ');
    }, 30_000, 'bootbench serve');
    if (child.exitCode !== null) throw new Error(`bootbench serve exited: ${this.logOf(name).slice(-2000)}`);
    if (variant === 'off' && !this.logOf(name).includes('without history')) throw new Error(`bootbench serve (store off) opened a store: ${this.logOf(name).slice(-1000)}`);
    return { name: `bootbench serve (store ${variant})`, pid: child.pid!, veth: HOSTS[variant].host, httpPort: 8080, stop: () => this.stopChild(child) };
  }

  // ---- clients -----------------------------------------------------------------------

  /**
   * `count` atftp clients at once from `ns`, each timing itself inside the namespace (so the
   * cost of `ip netns exec` is not counted). Every download is checked by sha256.
   */
  /** `count` downloads at once by `client` (see TftpClient), each timed inside the namespace and checked by sha256. */
  async tftpGet(ns: string, address: string, file: string, options: string[], count: number, timeoutS: number, client: TftpClient = 'atftp'): Promise<{ seconds: number[]; span: number }> {
    const dir = mkdtempSync(join(this.out, 'tftp-'));
    const blksize = Number(options.find((o) => o.startsWith('blksize '))?.split(' ')[1] ?? 512);
    const command = client === 'polling'
      ? `${this.pollingClient} ${address} ${file} ${blksize} out$i`
      : `atftp ${options.map((o) => `--option '${o}'`).join(' ')} -g -r ${file} -l out$i ${address}`;
    const script = `cd ${dir}
for i in $(seq 1 ${count}); do
  ( s=$(date +%s%N); timeout ${timeoutS} ${command} >log$i 2>&1; rc=$?; e=$(date +%s%N); echo "$i $s $e $rc" ) &
done
wait`;
    try {
      const { stdout } = await execFileAsync('ip', ['netns', 'exec', ns, 'bash', '-c', script], { maxBuffer: 1 << 20 });
      const rows = stdout.trim().split('\n').map((l) => l.split(' ').map(Number));
      const expected = this.digests.get(file);
      for (const [i, , , rc] of rows) {
        const got = existsSync(join(dir, `out${i}`)) ? await sha256File(join(dir, `out${i}`)) : 'missing';
        if (rc !== 0 || got !== expected) {
          const clientLog = readFileSync(join(dir, `log${i}`), 'utf8').slice(-500);
          throw new Error(`${client} download ${i} of ${file} from ${address}: exit ${rc}, sha256 ${got === expected ? 'ok' : `MISMATCH (${got.slice(0, 12)})`}: ${clientLog}`);
        }
      }
      const seconds = rows.map(([, s, e]) => (e - s) / 1e9);
      const span = (Math.max(...rows.map((r) => r[2])) - Math.min(...rows.map((r) => r[1]))) / 1e9;
      return { seconds, span };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  async httpGet(ns: string, url: string, file: string): Promise<number> {
    const dir = mkdtempSync(join(this.out, 'http-'));
    try {
      const { stdout } = await execFileAsync('ip', ['netns', 'exec', ns, 'curl', '-sS', '--fail', '-o', join(dir, 'out'), '-w', '%{time_total}', url]);
      const got = await sha256File(join(dir, 'out'));
      if (got !== this.digests.get(file)) throw new Error(`HTTP download of ${url}: sha256 mismatch`);
      return Number(stdout.trim());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  async destroy(): Promise<void> {
    await this.lab.destroy();
    rmSync(this.work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// Cases

interface Target {
  /** Bootbench median / peer median must be at least this (or at most, for `lower` metrics) */
  ratio?: number;
  /** and/or an absolute bound on Bootbench's median (with both, both must hold) */
  atMost?: number;
  atLeast?: number;
  text: string;
}

interface Row {
  id: string;
  title: string;
  metric: string;
  /** higher is better unless false */
  higherIsBetter: boolean;
  peer?: { name: string; figure?: number; summary: Summary; samples: number[] };
  bootbench: { name: string; summary: Summary; samples: number[] };
  ratio?: number;
  target: Target;
  met?: boolean;
  note?: string;
}

interface CaseContext {
  bench: Bench;
  runs: number;
  quick: boolean;
  raw: RunningServer;
  profileDir?: string;
}

interface BenchCase {
  id: string;
  title: string;
  run(ctx: CaseContext): Promise<Row[]>;
}

function judge(row: Row): Row {
  const b = row.bootbench.summary.median;
  if (row.peer) row.ratio = b / row.peer.summary.median;
  const t = row.target;
  const checks: boolean[] = [];
  if (t.ratio !== undefined && row.ratio !== undefined) checks.push(row.higherIsBetter ? row.ratio >= t.ratio : row.ratio <= t.ratio);
  if (t.atMost !== undefined) checks.push(b <= t.atMost);
  if (t.atLeast !== undefined) checks.push(b >= t.atLeast);
  if (checks.length) row.met = checks.every(Boolean);
  return row;
}

/**
 * Runs a peer and Bootbench alternately (peer, Bootbench, peer, ...), `runs` times each,
 * and returns the samples of each. `measure` returns one sample per call.
 */
async function alternate<T>(runs: number, a: () => Promise<T>, b: () => Promise<T>): Promise<{ a: T[]; b: T[] }> {
  const out = { a: [] as T[], b: [] as T[] };
  for (let i = 0; i < runs; i++) {
    out.a.push(await a());
    out.b.push(await b());
  }
  return out;
}

interface TftpSample { mibps: number; cpuMsPerMiB: number; userMsPerMiB: number; systemMsPerMiB: number; slowest: number }

/**
 * --trace: attaches strace -c (syscall counts) or perf record (where CPU goes, kernel and
 * native code included) to the server for one TFTP sample; the report goes to bench/results.
 * Tracing slows the server: traced samples' numbers are not comparable.
 */
async function traced<T>(server: RunningServer, label: string, work: () => Promise<T>): Promise<T> {
  const tool = flags.trace;
  if (!tool) return work();
  const base = join(RESULTS, `trace-${label}-${server.name.replace(/\W+/g, '-')}-${Date.now()}`);
  const child = tool === 'perf'
    ? spawn('perf', ['record', '-q', '-F', '2000', '-g', '-p', String(server.pid), '-o', `${base}.perf.data`], { stdio: 'ignore' })
    : spawn('strace', ['-c', '-f', '-q', '-p', String(server.pid), '-o', `${base}.strace.txt`], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  try {
    return await work();
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await exited;
    if (tool === 'perf') {
      const report = (sort: string) => execFileSync('perf', ['report', '-i', `${base}.perf.data`, '--no-children', '--sort', sort, '--stdio', '--percent-limit', '0.2', '-g', 'none'], { maxBuffer: 64 << 20 }).toString();
      writeFileSync(`${base}.perf.txt`, `${report('dso')}\n${report('dso,sym')}`);
      rmSync(`${base}.perf.data`, { force: true });
    }
    log(`  trace: ${base}.${tool === 'perf' ? 'perf' : 'strace'}.txt`);
  }
}

async function tftpSample(bench: Bench, server: RunningServer, path: 'veth' | 'rtt', file: string, size: number, options: string[], clients: number, client: TftpClient = 'atftp'): Promise<TftpSample> {
  const ns = path === 'veth' ? bench.cli : bench.far;
  const address = path === 'veth' ? server.veth : server.rtt!;
  const cpuBefore = cpuSplitMs(server.pid);
  const label = `${path}-${options.join('-').replace(/\s+/g, '')}-${clients}${client === 'polling' ? '-polling' : ''}`;
  const { seconds, span } = await traced(server, label, () => bench.tftpGet(ns, address, file, options, clients, path === 'rtt' ? 600 : 120, client));
  const cpuAfter = cpuSplitMs(server.pid);
  const mib = (size * clients) / MiB;
  const user = (cpuAfter.user - cpuBefore.user) / mib;
  const system = (cpuAfter.system - cpuBefore.system) / mib;
  return { mibps: mib / span, cpuMsPerMiB: user + system, userMsPerMiB: user, systemMsPerMiB: system, slowest: Math.max(...seconds) };
}

/**
 * atftp: the Debian client, which sleeps in recv like a PC's firmware does. polling:
 * bench/polling-client.c, which never sleeps, so no wake-up of the client is billed to the
 * server (see that file for what still is).
 */
type TftpClient = 'atftp' | 'polling';

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
        const rows: Row[] = [judge({
          id: spec.id,
          title: spec.title,
          metric: 'MiB/s',
          higherIsBetter: true,
          peer: { name: peer.name, figure: spec.figure, summary: summarize(a.map((s) => s.mibps)), samples: a.map((s) => s.mibps) },
          bootbench: { name: 'bootbench', summary: summarize(b.map((s) => s.mibps)), samples: b.map((s) => s.mibps) },
          target: spec.ratio === undefined ? { text: '-' } : { ratio: spec.ratio, text: `>= ${spec.ratio}x ${peer.name}` },
        })];
        const cpuRow = judge({
          id: `${spec.id}-cpu`,
          title: `${spec.title}: server CPU per MiB`,
          metric: 'ms/MiB',
          higherIsBetter: false,
          peer: { name: peer.name, summary: summarize(a.map((s) => s.cpuMsPerMiB)), samples: a.map((s) => s.cpuMsPerMiB) },
          bootbench: { name: 'bootbench', summary: summarize(b.map((s) => s.cpuMsPerMiB)), samples: b.map((s) => s.cpuMsPerMiB) },
          target: spec.cpuTarget
            ? { atMost: spec.cpuTarget.atMost, ratio: spec.cpuTarget.ratio, text: `<= ${spec.cpuTarget.atMost} ms${spec.cpuTarget.ratio ? ` and <= ${spec.cpuTarget.ratio}x ${peer.name}` : ''}` }
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

const SIZES = { 'file-64m.bin': 64 * MiB, 'file-16m.bin': 16 * MiB };

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
        // A 64 MiB download takes 50-100 ms here, and single samples spread from 650 to 1,800
        // MiB/s for both servers: with 10 a side, the median ratio moved between 0.87x and
        // 0.97x from one bench run to the next. 30 a side cost about 10 s more.
        const runs = ctx.quick ? ctx.runs : ctx.runs * (clients === 1 ? 6 : 2);
        const { a, b } = await alternate(runs, sample(peer), sample(ctx.raw));
        return [
          judge({
            id, title, metric: 'MiB/s', higherIsBetter: true,
            peer: { name: 'nginx', figure: clients === 1 ? 795 : undefined, summary: summarize(a.map((s) => s.mibps)), samples: a.map((s) => s.mibps) },
            bootbench: { name: 'bootbench', summary: summarize(b.map((s) => s.mibps)), samples: b.map((s) => s.mibps) },
            target: { ratio: 1.0, text: '>= 1.0x nginx' },
          }),
          judge({
            id: `${id}-cpu`, title: `${title}: server CPU per MiB`, metric: 'ms/MiB', higherIsBetter: false,
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

const CASES: BenchCase[] = [
  tftpCase({ id: 'tftp-512', title: '64 MiB, blksize 512, veth', path: 'veth', file: 'file-64m.bin', size: 64 * MiB, options: [], peer: 'dnsmasq', figure: 19.3, ratio: 1.0 }),
  tftpCase({
    id: 'tftp-1468', title: '64 MiB, blksize 1468, veth', path: 'veth', file: 'file-64m.bin', size: 64 * MiB, options: ['blksize 1468'], peer: 'dnsmasq', figure: 51.9, ratio: 1.0,
    cpuNote: 'atftp sleeps in recv: on split vCPUs the server\'s send wakes it, and the wake-up is billed to the server. The CPU target is judged in cpu-1468',
  }),
  // Server CPU per MiB of lock-step 1468, with a client that is never woken (bench/polling-client.c).
  // The issue's 15 ms is 1.5x its 10 ms for C servers; dnsmasq measures lower with this client,
  // so the row also asks for at most 1.5x dnsmasq measured the same way.
  tftpCase({
    id: 'cpu-1468', title: '64 MiB, 1468, veth, polling client', path: 'veth', file: 'file-64m.bin', size: 64 * MiB, options: ['blksize 1468'], peer: 'dnsmasq',
    client: 'polling', cpuTarget: { atMost: 15, ratio: 1.5 },
  }),
  tftpCase({ id: 'tftp-ws16', title: '64 MiB, 1468 + windowsize 16, veth', path: 'veth', file: 'file-64m.bin', size: 64 * MiB, options: ['blksize 1468', 'windowsize 16'], peer: 'atftpd', figure: 164.5, ratio: 1.0 }),
  // Lock-step at 1 ms RTT moves ~1.2 MiB/s: 64 MiB take about 55 s a run, so this case runs
  // 3 times a side (about 6 minutes); --quick uses 16 MiB (the rate does not depend on the size).
  {
    id: 'rtt-1468',
    title: '1468, 1 ms RTT',
    run: (ctx) => tftpCase({
      id: 'rtt-1468', title: `${ctx.quick ? 16 : 64} MiB, 1468, 1 ms RTT`, path: 'rtt', file: ctx.quick ? 'file-16m.bin' : 'file-64m.bin', size: (ctx.quick ? 16 : 64) * MiB,
      options: ['blksize 1468'], peer: 'dnsmasq', figure: 1.28, ratio: 0.98, runs: (c) => Math.min(c.runs, 3),
    }).run(ctx),
  },
  tftpCase({ id: 'rtt-ws16', title: '64 MiB, windowsize 16, 1 ms RTT', path: 'rtt', file: 'file-64m.bin', size: 64 * MiB, options: ['blksize 1468', 'windowsize 16'], peer: 'atftpd', figure: 17.1, ratio: 1.0 }),
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
            id: 'many-ws16', title: '20 clients x 16 MiB, ws16, veth: total', metric: 'MiB/s', higherIsBetter: true,
            peer: { name: peer.name, figure: 232.6, summary: summarize(a.map((s) => s.mibps)), samples: a.map((s) => s.mibps) },
            bootbench: { name: 'bootbench', summary: summarize(b.map((s) => s.mibps)), samples: b.map((s) => s.mibps) },
            target: { ratio: 1.0, text: '>= 1.0x atftpd' },
          }),
          judge({
            id: 'many-ws16-slowest', title: '20 clients x 16 MiB, ws16, veth: slowest client', metric: 's', higherIsBetter: false,
            peer: { name: peer.name, figure: 1.3, summary: summarize(a.map((s) => s.slowest)), samples: a.map((s) => s.slowest) },
            bootbench: { name: 'bootbench', summary: summarize(b.map((s) => s.slowest)), samples: b.map((s) => s.slowest) },
            target: { atMost: 1.5, text: '<= 1.5 s' },
          }),
          judge({
            id: 'many-ws16-cpu', title: '20 clients x 16 MiB, ws16, veth: server CPU per MiB', metric: 'ms/MiB', higherIsBetter: false,
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
          ({ stdout } = await execFileAsync('ip', ['netns', 'exec', ctx.bench.cli, 'timeout', String(seconds + 30), 'perfdhcp', '-4', '-l', iface, '-i',
            '-r', String(rate), '-R', '1000', '-p', String(seconds), '-W', '1000000', '-o', `60,${vendorClass}`, '-o', '93,0000'], { maxBuffer: 1 << 20 }));
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
            try { a.push(await perf('eth0', rate)); } finally { await peer.stop(); }
            b.push(await perf(HOSTS.on.clientIf, rate));
            c.push(await perf(HOSTS.off.clientIf, rate));
          }
          const mk = (ours: Perf[], variant: string, metric: string, key: 'rate' | 'lossPct' | 'meanMs', higher: boolean, target: Target, figure?: number): Row => judge({
            id: `dhcp-${rate}-${key}-${variant}`, title: `Proxy DHCP at ${rate}/s offered, store ${variant}: ${key === 'rate' ? 'OFFERs/s' : key === 'lossPct' ? 'loss' : 'mean DISCOVER->OFFER'}`,
            metric, higherIsBetter: higher,
            peer: { name: 'dnsmasq', figure, summary: summarize(a.map((s) => s[key])), samples: a.map((s) => s[key]) },
            bootbench: { name: `bootbench serve (store ${variant})`, summary: summarize(ours.map((s) => s[key])), samples: ours.map((s) => s[key]) },
            target,
          });
          for (const [ours, variant] of [[b, 'on'], [c, 'off']] as const) {
            rows.push(
              mk(ours, variant, 'OFFER/s', 'rate', true, rate === 5000 ? { atLeast: 5000 * 0.99, text: '>= 5k/s' } : { text: '-' }, rate === 10000 ? 10000 : undefined),
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
        for (const [id, options, clients] of [['store-1468', ['blksize 1468'], 1], ['store-ws16', ['blksize 1468', 'windowsize 16'], 1], ['store-many', ['blksize 1468', 'windowsize 16'], 20]] as const) {
          const file = clients > 1 ? 'file-16m.bin' : 'file-64m.bin';
          const size = clients > 1 ? 16 * MiB : 64 * MiB;
          // A 5 % target on samples of a quarter to a few seconds, which spread by +-20 % (20 x 16
          // MiB: 463-699 MiB/s store off, 509-666 on, in one run). With 5 runs a side the median
          // ratio moved from 0.94x to 1.04x between bench runs; with 9, from 0.95x to 1.02x. So
          // 15 (the case takes about 90 s).
          const { a, b } = await alternate(
            ctx.quick ? ctx.runs : Math.max(ctx.runs, 15),
            () => tftpSample(ctx.bench, hostOff, 'veth', file, size, [...options], clients),
            () => tftpSample(ctx.bench, hostOn, 'veth', file, size, [...options], clients),
          );
          rows.push(judge({
            id, title: `store on vs off: ${clients > 1 ? `${clients} x 16 MiB` : '64 MiB'}, ${options.join(', ')}`, metric: 'MiB/s', higherIsBetter: true,
            peer: { name: 'store off', summary: summarize(a.map((s) => s.mibps)), samples: a.map((s) => s.mibps) },
            bootbench: { name: 'store on', summary: summarize(b.map((s) => s.mibps)), samples: b.map((s) => s.mibps) },
            target: { ratio: 0.95, text: 'within 5% of store off' },
          }));
        }
        const events = ctx.bench.logOf('bootbench-host-on').split('\n').filter((l) => l.includes('"tftp.progress"')).length;
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
        const sampler = setInterval(() => { peak = Math.max(peak, rssKiB(host.pid).rss); }, 100);
        const script = `for i in $(seq 1 50); do timeout ${seconds} atftp --option 'blksize 1468' --option 'windowsize 16' -g -r big-1g.bin -l /dev/null ${HOSTS.on.host} >/dev/null 2>&1 & done; wait; true`;
        const rxBefore = Number(ctx.bench.lab.exec(ctx.bench.cli, 'cat', [`/sys/class/net/${HOSTS.on.clientIf}/statistics/rx_bytes`]));
        await execFileAsync('ip', ['netns', 'exec', ctx.bench.cli, 'bash', '-c', script]);
        bytes = Number(ctx.bench.lab.exec(ctx.bench.cli, 'cat', [`/sys/class/net/${HOSTS.on.clientIf}/statistics/rx_bytes`])) - rxBefore;
        clearInterval(sampler);
        peak = Math.max(peak, rssKiB(host.pid).rss);
        return [judge({
          id: 'rss', title: `50 concurrent transfers of a 1 GiB file (${seconds} s): host peak RSS`, metric: 'MiB', higherIsBetter: false,
          bootbench: { name: 'bootbench serve', summary: summarize([peak / 1024]), samples: [peak / 1024] },
          target: { atMost: 200, text: '<= 200 MiB' },
          note: `RSS before the transfers ${(base / 1024).toFixed(0)} MiB; ${(bytes / MiB).toFixed(0)} MiB moved in ${seconds} s`,
        })];
      } finally {
        await host.stop();
      }
    },
  },
];

// Imaging (bench/imaging.ts): a 1 GiB disk with 512 MiB used, or with --long (or
// BOOTBENCH_LONG=1) the issue's 4 GiB with 2 GiB used.
const IMAGING_SIZES = imagingSizes(flags.long! || process.env.BOOTBENCH_LONG === '1');
/** What the agent and the classic pipelines run, besides curl and nginx. */
const IMAGING_PROGRAMS = ['busybox', 'partclone.extfs', 'partclone.restore', 'zstd', 'losetup', 'sfdisk', 'mkfs.ext4', 'blockdev', 'tar'];
let imagingLab: { tearDown(dest?: string): Promise<void> } | undefined;
function addImagingCases(bench: Bench): void {
  const { lab, cases } = imagingCases<Row>({
    lab: bench.lab, work: bench.work, project: PROJECT, benchDir: BENCH_DIR, servedMain,
    spawnLogged: (ns, name, cmd, args, env) => bench.spawnLogged(ns, name, cmd, args, env),
    logOf: (name) => bench.logOf(name),
    listening: (ns, proto, address, port, what) => bench.listening(ns, proto, address, port, what),
    stopChild: (child) => bench.stopChild(child),
    cpuMs, summarize, judge: (row) => judge(row as Row), log,
  }, IMAGING_SIZES);
  imagingLab = lab;
  for (const c of cases) {
    const target = CASES.find((x) => x.id === c.id);
    if (target) Object.assign(target, { title: c.title, run: (ctx: CaseContext) => c.run(ctx) });
  }
}
for (const id of ['img-capture', 'img-deploy', 'img-deploy-8']) {
  CASES.push({ id, title: `imaging ${id}`, run: () => Promise.reject(new Error('imaging cases are set up with the bench')) });
}

// ---------------------------------------------------------------------------------------
// Report

function fmt(x: number | undefined, metric = ''): string {
  if (x === undefined || Number.isNaN(x)) return '-';
  const digits = metric === '%' ? 2 : Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2;
  return x.toFixed(digits);
}

function markdownTable(rows: Row[]): string {
  const lines = [
    '| case | metric | peer | peer median (min-max) | Bootbench median (min-max) | ratio | target | met |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const p = r.peer;
    const b = r.bootbench.summary;
    // A peer named by its pipeline (curl|zstd) would split the cell.
    const cell = (text: string) => text.replaceAll('|', '\\|');
    lines.push(`| ${cell(r.title)}${r.note ? ` (${cell(r.note)})` : ''} | ${r.metric} | ${p ? `${cell(p.name)}${p.figure !== undefined ? ` [issue: ${p.figure}]` : ''}` : '-'} | ${p ? `${fmt(p.summary.median, r.metric)} (${fmt(p.summary.min, r.metric)}-${fmt(p.summary.max, r.metric)})` : '-'} | ${fmt(b.median, r.metric)} (${fmt(b.min, r.metric)}-${fmt(b.max, r.metric)}) | ${r.ratio !== undefined && Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}x` : '-'} | ${r.target.text} | ${r.met === undefined ? '-' : r.met ? 'yes' : '**no**'} |`);
  }
  return lines.join('\n');
}

function consoleTable(rows: Row[]): string {
  const header = ['case', 'metric', 'peer', 'peer med', 'bootbench med', 'ratio', 'target', 'met'];
  const body = rows.map((r) => [
    r.title.slice(0, 58), r.metric, r.peer?.name ?? '-', r.peer ? fmt(r.peer.summary.median, r.metric) : '-', fmt(r.bootbench.summary.median, r.metric),
    r.ratio !== undefined && Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}x` : '-', r.target.text, r.met === undefined ? '-' : r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  return [header, ...body].map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ')).join('\n');
}

/** Which code was measured: HEAD, and whether the server folders had uncommitted changes. */
function codeVersion(): { commit: string; dirty: string[]; main: string } {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', ['-C', PROJECT, ...args], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    } catch {
      return '';
    }
  };
  const dirty = git(['status', '--porcelain', '--', 'main/tftp', 'main/http', 'main/files', 'main/dhcp', 'main/store', 'main/host']).split('\n').filter(Boolean);
  return { commit: git(['rev-parse', '--short', 'HEAD']), dirty, main: servedMain() };
}

function machineNote(): { loadavg: number[]; qemuProcesses: number; cpus: number } {
  let qemu = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('qemu')) qemu++;
    } catch { /* gone */ }
  }
  return { loadavg: loadavg().map((x) => Math.round(x * 100) / 100), qemuProcesses: qemu, cpus: Number(execFileSync('nproc').toString()) };
}

// ---------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  if (flags.help) {
    console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('// Usage')).join('\n'));
    console.log(`\ncases (--only):\n${CASES.map((c) => `  ${c.id.padEnd(14)} ${c.title}`).join('\n')}`);
    return;
  }
  const runs = flags.runs ? Number(flags.runs) : flags.quick ? 1 : 5;
  const only = flags.only?.split(',').filter(Boolean);
  const selected = CASES.filter((c) => !only || only.includes(c.id));
  if (only && selected.length !== only.length) {
    console.error(`unknown case in --only; cases: ${CASES.map((c) => c.id).join(', ')}`);
    process.exit(2);
  }
  // perfdhcp only drives the dhcp case: a run of other cases does not need it.
  const programs = ['dnsmasq', 'atftp', 'nginx', 'curl', 'cc', 'ss', ...(selected.some((c) => c.id === 'dhcp') ? ['perfdhcp'] : []),
    ...(selected.some((c) => c.id.startsWith('img-')) ? IMAGING_PROGRAMS : [])];
  const unavailable = netnsUnavailableReason() ?? missingPrograms(...programs)
    ?? (peerProgram('atftpd', 'atftpd') ? undefined : 'atftpd is neither installed nor unpacked (run: sh bench/fetch-peers.sh)');
  if (unavailable) {
    console.error(`bench cannot run: ${unavailable}. See bench/README.md for the package list.`);
    process.exit(1);
  }
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:]/g, '').replace(/\..*/, '');
  const profileDir = flags.profile ? join(RESULTS, `profile-${stamp}`) : undefined;
  const before = machineNote();
  servedMain(); // compiled first (a build error stops the bench before any case), and named in the results
  const code = codeVersion();
  log(`runs per case ${runs}${flags.quick ? ' (quick)' : ''}; load average ${before.loadavg.join(' ')}, ${before.qemuProcesses} QEMU process(es) running`);

  const bench = new Bench();
  const stopAll = async () => {
    await bench.destroy();
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  const rows: Row[] = [];
  const failures: { id: string; error: string }[] = [];
  try {
    await bench.setUp(SIZES);
    addImagingCases(bench);
    const raw = await bench.startBootbenchRaw(profileDir);
    const ctx: CaseContext = { bench, runs, quick: flags.quick!, raw, profileDir };
    // Warm up the JIT once, so run 1 is not a cold-start measurement.
    await bench.tftpGet(bench.cli, raw.veth, 'file-16m.bin', ['blksize 1468', 'windowsize 16'], 1, 60);
    for (const c of selected) {
      const t0 = Date.now();
      log(`case ${c.id}: ${c.title}`);
      try {
        const got = await c.run(ctx);
        rows.push(...got);
        for (const r of got) log(`  ${r.title}: ${r.peer ? `${r.peer.name} ${fmt(r.peer.summary.median, r.metric)} ` : ''}bootbench ${fmt(r.bootbench.summary.median, r.metric)} ${r.metric}${r.met === undefined ? '' : r.met ? ' (target met)' : ' (target MISSED)'}`);
      } catch (err) {
        failures.push({ id: c.id, error: (err as Error).message });
        log(`  case ${c.id} FAILED: ${(err as Error).message}`);
      }
      log(`  (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
    await raw.stop();
  } finally {
    await imagingLab?.tearDown(join(RESULTS, `imaging-logs-${stamp}`)).catch((err: Error) => log(`imaging tear-down: ${err.message}`));
    await stopAll();
  }
  const after = machineNote();
  const seconds = (Date.now() - startedAt.getTime()) / 1000;
  const result = {
    startedAt: startedAt.toISOString(),
    seconds,
    runs,
    quick: flags.quick,
    machine: { before, after, node: process.version },
    code,
    rows,
    failures,
    profileDir,
  };
  mkdirSync(RESULTS, { recursive: true });
  const jsonPath = join(RESULTS, `bench-${stamp}.json`);
  const mdPath = join(RESULTS, `bench-${stamp}.md`);
  writeFileSync(jsonPath, JSON.stringify(result, null, 2));
  const md = [
    `# Bootbench bench ${startedAt.toISOString()}`,
    '',
    `${runs} run(s) per server per case, alternating peer and Bootbench; ${seconds.toFixed(0)} s in all. Node ${process.version}.`,
    `Code: commit ${code.commit}${code.dirty.length ? ` with uncommitted changes in ${code.dirty.length} server file(s)` : ''}; servers from ${code.main}.`,
    `Load average before ${before.loadavg.join(' ')}, after ${after.loadavg.join(' ')}; QEMU processes before ${before.qemuProcesses}, after ${after.qemuProcesses} (${before.cpus} CPUs, shared: numbers are noisy when others run).`,
    '"issue" figures are the peer numbers from issue 8, measured earlier on this machine.',
    '',
    markdownTable(rows),
    '',
    failures.length ? `## Cases that failed\n\n${failures.map((f) => `- ${f.id}: ${f.error}`).join('\n')}\n` : '',
    profileDir ? `CPU profiles: ${profileDir}\n` : '',
  ].join('\n');
  writeFileSync(mdPath, md);
  console.log(`\n${consoleTable(rows)}\n`);
  if (failures.length) console.log(`failed cases: ${failures.map((f) => `${f.id} (${f.error.slice(0, 200)})`).join('; ')}`);
  console.log(`${seconds.toFixed(0)} s; load average ${after.loadavg.join(' ')}; results: ${jsonPath}, ${mdPath}`);
}

await main();
