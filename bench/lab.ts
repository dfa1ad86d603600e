// The bench's lab: the namespaces and links (all addresses from 198.18.0.0/15, no route
// out), the files served, the servers (peers and Bootbench) started and stopped inside the
// namespaces, and the clients that download from them, checking every download by sha256.
//
//   srv  eth0 198.18.0.1 (peer) + .0.3 (Bootbench) ======= cli  eth0 198.18.0.2
//   srv  eth1 198.18.1.1 (peer) + .1.3 (Bootbench) == mid (delay-forwarder, 0.5 ms each way) == far eth0 198.18.1.2
//   host eth0 198.18.2.1 (`bootbench serve`, store on) ==== cli  eth2 198.18.2.2
//   hoff eth0 198.18.3.1 (`bootbench serve`, store off) === cli  eth3 198.18.3.2
//
// Bootbench runs compiled (dist/main, built first when a source is newer), under plain node;
// BOOTBENCH_BENCH_MAIN=/other/checkout/main measures another tree's servers.
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensureCompiled } from './compiled-cli.js';
import { Lab, waitFor, whichSync } from './netns.js';

export const execFileAsync = promisify(execFile);
export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const PROJECT = resolve(BENCH_DIR, '..');
export const RESULTS = join(BENCH_DIR, 'results');
export const MiB = 1024 * 1024;
/** The compiled main/ the bench runs: this checkout's, or BOOTBENCH_BENCH_MAIN's (compiled when stale). */
let served: string | undefined;
export function servedMain(): string {
  if (served) return served;
  const other = process.env.BOOTBENCH_BENCH_MAIN;
  if (other && (basename(resolve(other)) !== 'main' || (!existsSync(join(other, 'cli', 'bootbench.ts')) && !existsSync(join(other, 'cli.ts'))))) {
    throw new Error(
      `BOOTBENCH_BENCH_MAIN=${other}: expected the main/ folder of a Bootbench checkout (with cli/bootbench.ts or cli.ts in it), e.g. /path/to/checkout/main`,
    );
  }
  const root = other ? resolve(other, '..') : PROJECT;
  served = ensureCompiled(root);
  // Run with sudo, the build belongs to root: give it back to the user, or their next build fails.
  const [uid, gid] = [Number(process.env.SUDO_UID), Number(process.env.SUDO_GID)];
  if (uid > 0 && gid > 0) execFileSync('chown', ['-R', `${uid}:${gid}`, join(root, 'dist')]);
  return served;
}

/** The compiled `bootbench` command of that main/ (main/cli.ts in checkouts before main/cli/ existed). */
function servedCli(): string {
  const current = join(servedMain(), 'cli', 'bootbench.js');
  return existsSync(current) ? current : join(servedMain(), 'cli.js');
}

/** The files every case downloads (random content), by name and size. */
export const BENCH_FILES = { 'file-64m.bin': 64 * MiB, 'file-16m.bin': 16 * MiB };

// ---------------------------------------------------------------------------------------
// Addresses

export const SRV_VETH = { peer: '198.18.0.1', bootbench: '198.18.0.3', client: '198.18.0.2' };
export const SRV_RTT = { peer: '198.18.1.1', bootbench: '198.18.1.3', client: '198.18.1.2' };
/** `bootbench serve` with the store and JSON events on, and with both off, each in its own namespace. */
export const HOSTS = {
  on: { host: '198.18.2.1', client: '198.18.2.2', clientIf: 'eth2' },
  off: { host: '198.18.3.1', client: '198.18.3.2', clientIf: 'eth3' },
} as const;
export type HostVariant = keyof typeof HOSTS;

// ---------------------------------------------------------------------------------------
// Small helpers

/**
 * A peer server program: from PATH, or from the unpacked Debian package that
 * bench/fetch-peers.sh leaves in bench/results/peers/ (atftpd and tftpd-hpa conflict, so at
 * most one of them is installed at a time).
 */
export function peerProgram(program: string, debianPackage: string): string | undefined {
  const unpacked = join(RESULTS, 'peers', debianPackage, 'usr', 'sbin', program);
  const installed = whichSync(program);
  // tftpd-hpa and atftpd both install in.tftpd: only trust PATH for names unique to the package.
  if (installed && program !== 'in.tftpd') return installed;
  return existsSync(unpacked) ? unpacked : undefined;
}

export function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * atftp: the Debian client, which sleeps in recv like a PC's firmware does. polling:
 * bench/polling-client.c, which never sleeps, so no wake-up of the client is billed to the
 * server (see that file for what still is).
 */
export type TftpClient = 'atftp' | 'polling';

// ---------------------------------------------------------------------------------------
// Servers: each has a pid (for CPU and RSS) and stop()

export interface RunningServer {
  name: string;
  pid: number;
  /** TFTP/HTTP address on the plain veth, and on the delayed path when it serves there */
  veth: string;
  rtt?: string;
  httpPort?: number;
  stop(): Promise<void>;
}

export class Bench {
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
  /** Run at destroy(), last added first: set-ups made on first use (the imaging lab). */
  private readonly cleanUps: (() => Promise<void>)[] = [];

  /**
   * `stamp` names this run's result files; `trace` (strace or perf) is attached to the
   * server for TFTP samples (see measure.ts).
   */
  constructor(readonly options: { stamp: string; trace?: string }) {}

  async setUp(): Promise<void> {
    for (const dir of [this.root, this.out, this.logs, RESULTS]) mkdirSync(dir, { recursive: true });
    for (const [name, size] of Object.entries(BENCH_FILES)) {
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
    await waitFor(
      () => {
        const out = this.lab.exec(ns, 'ss', [proto === 'udp' ? '-Huln' : '-Htln']);
        return out.includes(`${address}:${port} `) || (out.includes(`${address}%`) && out.includes(`:${port} `));
      },
      20_000,
      what,
    );
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
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--port=0',
      '--user=root',
      '--log-facility=-',
      `--listen-address=${SRV_VETH.peer}`,
      `--listen-address=${SRV_RTT.peer}`,
      '--bind-interfaces',
      '--enable-tftp',
      `--tftp-root=${this.root}`,
      `--pid-file=${join(this.work, 'dnsmasq.pid')}`,
    ]);
    await this.listening(this.srv, 'udp', SRV_VETH.peer, 69, 'dnsmasq TFTP');
    return { name: 'dnsmasq', pid: child.pid!, veth: SRV_VETH.peer, rtt: SRV_RTT.peer, stop: () => this.stopChild(child) };
  }

  async startAtftpd(path: 'veth' | 'rtt'): Promise<RunningServer> {
    const address = path === 'veth' ? SRV_VETH.peer : SRV_RTT.peer;
    const child = this.spawnLogged(this.srv, 'atftpd', peerProgram('atftpd', 'atftpd')!, [
      '--daemon',
      '--no-fork',
      '--user',
      'root.root',
      '--port',
      '69',
      '--bind-address',
      address,
      '--maxthread',
      '200',
      '--logfile',
      '/dev/null',
      this.root,
    ]);
    await this.listening(this.srv, 'udp', address, 69, 'atftpd');
    return { name: 'atftpd', pid: child.pid!, veth: SRV_VETH.peer, rtt: SRV_RTT.peer, stop: () => this.stopChild(child) };
  }

  async startNginx(): Promise<RunningServer> {
    const dir = join(this.work, 'nginx');
    mkdirSync(dir, { recursive: true });
    // One process (no master): its CPU is the server's CPU, and it is what a small box runs.
    writeFileSync(
      join(dir, 'nginx.conf'),
      `
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
`,
    );
    const child = this.spawnLogged(this.srv, 'nginx', 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')]);
    await this.listening(this.srv, 'tcp', SRV_VETH.peer, 80, 'nginx');
    return { name: 'nginx', pid: child.pid!, veth: SRV_VETH.peer, httpPort: 80, stop: () => this.stopChild(child) };
  }

  async startDnsmasqProxyDhcp(): Promise<RunningServer> {
    const child = this.spawnLogged(this.srv, 'dnsmasq-proxy', 'dnsmasq', [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--port=0',
      '--user=root',
      '--log-facility=-',
      '--interface=eth0',
      '--bind-interfaces',
      `--dhcp-range=${SRV_VETH.peer},proxy`,
      '--pxe-service=x86PC,"Bootbench bench",pxelinux',
      `--dhcp-leasefile=${join(this.work, 'dnsmasq.leases')}`,
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
      ...nodeArgs,
      join(BENCH_DIR, 'server-runner.mjs'),
      '--main',
      servedMain(),
      '--root',
      this.root,
      '--tftp',
      `${SRV_VETH.bootbench},${SRV_RTT.bootbench}`,
      '--http',
      `${SRV_VETH.bootbench}:80`,
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
    const child = this.spawnLogged(
      ns,
      name,
      process.execPath,
      [
        ...nodeArgs,
        servedCli(),
        'serve',
        '--interface',
        'eth0',
        '--root',
        this.root,
        '--boot',
        'bios=pxelinux.0',
        '--log',
        variant === 'on' ? 'json' : 'text',
        '--data',
        data,
      ],
      { ...process.env, BOOTBENCH_DATA: data },
    );
    await waitFor(
      () => {
        if (child.exitCode !== null) return true;
        const udp = this.lab.exec(ns, 'ss', ['-Huln']);
        return udp.includes(':69 ') && udp.includes(':67 ');
      },
      30_000,
      'bootbench serve',
    );
    if (child.exitCode !== null) throw new Error(`bootbench serve exited: ${this.logOf(name).slice(-2000)}`);
    if (variant === 'off' && !this.logOf(name).includes('without history'))
      throw new Error(`bootbench serve (store off) opened a store: ${this.logOf(name).slice(-1000)}`);
    return { name: `bootbench serve (store ${variant})`, pid: child.pid!, veth: HOSTS[variant].host, httpPort: 8080, stop: () => this.stopChild(child) };
  }

  // ---- clients -----------------------------------------------------------------------

  /**
   * `count` atftp clients at once from `ns`, each timing itself inside the namespace (so the
   * cost of `ip netns exec` is not counted). Every download is checked by sha256.
   */
  /** `count` downloads at once by `client` (see TftpClient), each timed inside the namespace and checked by sha256. */
  async tftpGet(
    ns: string,
    address: string,
    file: string,
    options: string[],
    count: number,
    timeoutS: number,
    client: TftpClient = 'atftp',
  ): Promise<{ seconds: number[]; span: number }> {
    const dir = mkdtempSync(join(this.out, 'tftp-'));
    const blksize = Number(options.find((o) => o.startsWith('blksize '))?.split(' ')[1] ?? 512);
    const command =
      client === 'polling'
        ? `${this.pollingClient} ${address} ${file} ${blksize} out$i`
        : `atftp ${options.map((o) => `--option '${o}'`).join(' ')} -g -r ${file} -l out$i ${address}`;
    const script = `cd ${dir}
for i in $(seq 1 ${count}); do
  ( s=$(date +%s%N); timeout ${timeoutS} ${command} >log$i 2>&1; rc=$?; e=$(date +%s%N); echo "$i $s $e $rc" ) &
done
wait`;
    try {
      const { stdout } = await execFileAsync('ip', ['netns', 'exec', ns, 'bash', '-c', script], { maxBuffer: 1 << 20 });
      const rows = stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' ').map(Number));
      const expected = this.digests.get(file);
      for (const [i, , , rc] of rows) {
        const got = existsSync(join(dir, `out${i}`)) ? await sha256File(join(dir, `out${i}`)) : 'missing';
        if (rc !== 0 || got !== expected) {
          const clientLog = readFileSync(join(dir, `log${i}`), 'utf8').slice(-500);
          throw new Error(
            `${client} download ${i} of ${file} from ${address}: exit ${rc}, sha256 ${got === expected ? 'ok' : `MISMATCH (${got.slice(0, 12)})`}: ${clientLog}`,
          );
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

  onDestroy(cleanUp: () => Promise<void>): void {
    this.cleanUps.push(cleanUp);
  }

  async destroy(): Promise<void> {
    for (const cleanUp of this.cleanUps.splice(0).reverse()) await cleanUp().catch((err: Error) => log(`clean-up: ${err.message}`));
    await this.lab.destroy();
    rmSync(this.work, { recursive: true, force: true });
  }
}
