// The imaging lab of `npm run bench`: Bootbench's agent (build/imaging-env/agent.sh) and
// the host's imaging routes (bench/imaging-host.mjs) beside the classic pipeline the peers
// use (nginx serving a partclone+zstd image file; `curl | zstd -d | partclone.restore`), on
// loop devices over files this bench creates in its /dev/shm folder, never a disk of this
// machine. Made on first use by an imaging case (imaging-cases.ts), removed with the bench.
//
//   ihost eth0 198.18.4.1 (imaging routes :8000, nginx :8080) ===== iagent eth0 198.18.4.2
import { execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { buildReferenceDisk, busyboxApplets, labMac, LoopDevices, PART_OFFSET, sh, timedIn } from './imaging-disks.js';
import { BENCH_DIR, PROJECT, log, servedMain, type Bench } from './lab.js';

const HOST = '198.18.4.1';
const AGENT_ADDR = '198.18.4.2';
const ROUTES_PORT = 8000;
const NGINX_PORT = 8080;

export interface ImagingSizes {
  diskMiB: number;
  usedMiB: number;
}

export function imagingSizes(long: boolean): ImagingSizes {
  return long ? { diskMiB: 4096, usedMiB: 2048 } : { diskMiB: 1024, usedMiB: 512 };
}

/** The agent measured: this checkout's, or BOOTBENCH_BENCH_AGENT's (another version, for an A/B). */
function agentPath(): string {
  return resolve(process.env.BOOTBENCH_BENCH_AGENT ?? join(PROJECT, 'build', 'imaging-env', 'agent.sh'));
}

/**
 * One imaging set-up, made on first use by any imaging case and shared by all: namespaces,
 * the reference disk, the host's routes and nginx, the captured and the classic image.
 */
export class ImagingLab {
  private ready?: Promise<void>;
  private hostNs = '';
  private agentNs = '';
  private readonly dir: string;
  private readonly loops = new LoopDevices();
  private host?: ChildProcess;
  private nginx?: ChildProcess;
  private replies: ((line: string) => void)[] = [];
  private busybox = '';
  private referenceDev = '';
  private partSectors = 0;
  private macCounter = 0;
  /** partclone stream bytes of the reference partition (what a deploy writes) */
  streamBytes = 0;

  constructor(
    private readonly bench: Bench,
    readonly sizes: ImagingSizes,
    /** `--profile`: the imaging host runs under `node --cpu-prof`, its profile lands here */
    private readonly profileDir?: string,
  ) {
    this.dir = join(bench.work, 'imaging');
  }

  setUp(): Promise<void> {
    this.ready ??= this.build();
    return this.ready;
  }

  private async build(): Promise<void> {
    const { lab } = this.bench;
    mkdirSync(join(this.dir, 'data'), { recursive: true });
    mkdirSync(join(this.dir, 'nginx', 'root', 'up'), { recursive: true });
    this.hostNs = lab.namespace('i');
    this.agentNs = lab.namespace('a');
    lab.veth(this.hostNs, 'eth0', `${HOST}/24`, this.agentNs, 'eth0', `${AGENT_ADDR}/24`);

    this.busybox = busyboxApplets(join(this.dir, 'busybox-bin'));
    log(`  imaging: building the reference disk (${this.sizes.diskMiB} MiB, ${this.sizes.usedMiB} MiB used)`);
    ({ dev: this.referenceDev, partSectors: this.partSectors } = buildReferenceDisk(this.dir, this.sizes, this.loops));

    // stdout is the runner's command channel; its warnings go to the bench's log folder.
    const errFd = openSync(join(this.dir, 'imaging-host.log'), 'a');
    this.host = lab.spawn(
      this.hostNs,
      process.execPath,
      [
        ...(this.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(this.profileDir, 'imaging-host')}`] : []),
        join(BENCH_DIR, 'imaging-host.mjs'),
        '--main',
        servedMain(),
        '--data',
        join(this.dir, 'data'),
        '--listen',
        `${HOST}:${ROUTES_PORT}`,
      ],
      { stdio: ['pipe', 'pipe', errFd], cwd: PROJECT },
    );
    closeSync(errFd);
    const lines = createInterface({ input: this.host.stdout! });
    const first = new Promise<void>((resolveReady, reject) => {
      this.host!.once('exit', (code) => reject(new Error(`imaging host exited (${code})`)));
      lines.once('line', (line) => (line === 'ready' ? resolveReady() : reject(new Error(`imaging host: ${line}`))));
    });
    await first;
    lines.on('line', (line) => this.replies.shift()?.(line));
    this.nginx = this.startNginx();
    await this.bench.listening(this.hostNs, 'tcp', HOST, NGINX_PORT, 'nginx (imaging)');
  }

  private startNginx(): ChildProcess {
    const dir = join(this.dir, 'nginx');
    // One process (no master), as the HTTP case; PUT (dav) takes the classic capture's upload.
    writeFileSync(
      join(dir, 'nginx.conf'),
      `
daemon off; master_process off; worker_processes 1; user root; pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off; sendfile on; tcp_nopush on; keepalive_timeout 30;
  client_body_temp_path ${dir}/root/up/.body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  types { application/octet-stream zst; }
  server {
    listen ${HOST}:${NGINX_PORT}; root ${dir}/root;
    location /up/ { dav_methods PUT; client_max_body_size 0; create_full_put_path on; }
  }
}
`,
    );
    return this.bench.spawnLogged(this.hostNs, 'nginx-imaging', 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')]);
  }

  /** One command to the imaging host runner, its one-line answer. */
  private ask(command: string): Promise<string> {
    return new Promise((resolveLine, reject) => {
      this.replies.push((line) => (line.startsWith('error') ? reject(new Error(`imaging host: ${line} (for: ${command})`)) : resolveLine(line)));
      this.host!.stdin!.write(`${command}\n`);
    });
  }

  get hostPid(): number {
    return this.host!.pid!;
  }
  get nginxPid(): number {
    return this.nginx!.pid!;
  }

  nextMac(): string {
    return labMac('b0', ++this.macCounter);
  }

  /** A fresh blank disk of the reference's size (sparse file, loop device). */
  blankDisk(name: string): string {
    const file = join(this.dir, `${name}.img`);
    rmSync(file, { force: true });
    closeSync(openSync(file, 'w'));
    sh(`truncate -s ${this.sizes.diskMiB}M ${file}`);
    return this.loops.attach(file);
  }

  dropDisk(dev: string): void {
    const file = execFileSync('losetup', ['-nO', 'BACK-FILE', dev]).toString().trim();
    this.loops.detach(dev);
    rmSync(file, { force: true });
  }

  /**
   * Runs `script` (bash) in the agent namespace and returns its wall time, measured inside
   * the namespace so `ip netns exec` start-up is not counted. Rejects on a non-zero exit.
   */
  timed(script: string, env: NodeJS.ProcessEnv, what: string): Promise<{ start: number; end: number }> {
    return timedIn(this.bench.lab, this.agentNs, script, env, join(this.dir, `${what}.log`), what);
  }

  /**
   * The agent's PATH. BOOTBENCH_BENCH_NO_OPENSSL=1 hides openssl (a copy of /usr/bin without
   * it), so the agent hashes with busybox's sha256sum, as in an environment without openssl.
   */
  private agentPath(): string {
    const imgio = this.imgioBin();
    const first = `${this.busybox}:${imgio ? `${imgio}:` : ''}/usr/sbin`;
    if (process.env.BOOTBENCH_BENCH_NO_OPENSSL !== '1') return `${first}:/usr/bin:/sbin:/bin`;
    const bin = join(this.dir, 'usr-bin-without-openssl');
    if (!existsSync(bin)) {
      mkdirSync(bin);
      for (const name of readdirSync('/usr/bin')) if (name !== 'openssl') symlinkSync(join('/usr/bin', name), join(bin, name));
    }
    return `${first}:${bin}:/sbin`;
  }

  /**
   * The folder with bb-imgio, compiled from the agent's folder as the imaging environment's
   * build does (static, else dynamic), or undefined: BOOTBENCH_BENCH_NO_IMGIO=1 measures the
   * agent's shell path, and so does a host without libzstd-dev and libssl-dev (said in the log).
   */
  private imgioBin(): string | undefined {
    if (process.env.BOOTBENCH_BENCH_NO_IMGIO === '1') return undefined;
    const dir = join(this.dir, 'imgio-bin');
    const binary = join(dir, 'bb-imgio');
    if (existsSync(binary)) return dir;
    mkdirSync(dir, { recursive: true });
    const source = join(dirname(agentPath()), 'bb-imgio.c');
    for (const extra of [['-static'], []]) {
      try {
        execFileSync('gcc', [...extra, '-O2', '-pthread', '-o', binary, source, '-lzstd', '-lcrypto'], { stdio: 'ignore' });
        return dir;
      } catch {
        /* next way */
      }
    }
    log(`  imaging: bb-imgio could not be built from ${source}: the agent's shell path is measured`);
    return undefined;
  }

  private agentEnv(disk: string): NodeJS.ProcessEnv {
    const tmp = join(this.dir, 'agent-tmp');
    mkdirSync(tmp, { recursive: true });
    return {
      PATH: this.agentPath(),
      BOOTBENCH_AGENT_DISKS: disk,
      BOOTBENCH_AGENT_TMP: tmp,
      ...(process.env.BOOTBENCH_ZSTD_LEVEL ? { BOOTBENCH_ZSTD_LEVEL: process.env.BOOTBENCH_ZSTD_LEVEL } : {}),
    };
  }

  private agentScript(mac: string): string {
    return `/bin/busybox sh ${agentPath()} run http://${HOST}:${ROUTES_PORT} ${mac}`;
  }

  // ---- capture ------------------------------------------------------------------------

  /** Bootbench: the agent captures the reference disk into image `name`. Seconds. */
  async captureOurs(name: string): Promise<number> {
    const mac = this.nextMac();
    await this.ask(`job capture ${name} ${mac}`);
    const t = await this.timed(this.agentScript(mac), this.agentEnv(this.referenceDev), `capture-${name}`);
    const [, stored, used] = (await this.ask(`size ${name}`)).split(' ').map(Number);
    if (!stored) throw new Error(`capture ${name}: no image on the host after the agent finished`);
    this.streamBytes = used;
    return t.end - t.start;
  }

  async removeImage(name: string): Promise<void> {
    await this.ask(`remove ${name}`);
  }

  async storedBytes(name: string): Promise<number> {
    return Number((await this.ask(`size ${name}`)).split(' ')[1]);
  }

  /** Classic: partclone.extfs -c | zstd -3 | curl -T (a PUT to nginx). Seconds. */
  async captureClassic(): Promise<number> {
    const script = `set -o pipefail
P=$(losetup -r -f --show -o ${PART_OFFSET} --sizelimit ${this.partSectors * 512} ${this.referenceDev}) || exit 1
# A reused loop device may still cache its previous file's blocks (seen: partclone read a
# stale superblock and stopped): drop them before reading.
blockdev --flushbufs "$P"
partclone.extfs -c -s "$P" -o - -L ${join(this.dir, 'partclone-capture.log')} 2>/dev/null | zstd -q -3 -c | curl -sS --fail -T - http://${HOST}:${NGINX_PORT}/up/ref.pcl.zst
rc="\${PIPESTATUS[*]}"; losetup -d "$P"; [ "$rc" = "0 0 0" ] || { echo "pipeline exit codes: $rc"; exit 1; }`;
    const t = await this.timed(script, { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, 'capture-classic');
    // partclone has been seen to end early with status 0: a classic image far smaller than
    // Bootbench's would make every ratio meaningless.
    const bytes = this.classicImageBytes();
    if (this.streamBytes && bytes < this.streamBytes / 10)
      throw new Error(`the classic capture gave ${bytes} bytes for ${this.streamBytes} used: see partclone-capture.log`);
    return t.end - t.start;
  }

  classicImageBytes(): number {
    return statSync(join(this.dir, 'nginx', 'root', 'up', 'ref.pcl.zst')).size;
  }

  /** The images deploys read: Bootbench's "ref" and nginx's ref.pcl.zst. */
  async ensureImages(): Promise<void> {
    await this.setUp();
    if (!(await this.storedBytes('ref'))) await this.captureOurs('ref');
    if (!existsSync(join(this.dir, 'nginx', 'root', 'up', 'ref.pcl.zst'))) await this.captureClassic();
  }

  // ---- deploy -------------------------------------------------------------------------

  /** Bootbench: `count` agents at once, each to its own blank disk, verification included. */
  async deployOurs(count: number): Promise<{ seconds: number }> {
    const macs = Array.from({ length: count }, () => this.nextMac());
    await this.ask(`job deploy ref ${macs.join(' ')}`);
    const disks = macs.map((_, i) => this.blankDisk(`target-${i}`));
    try {
      const times = await Promise.all(macs.map((mac, i) => this.timed(this.agentScript(mac), this.agentEnv(disks[i]), `deploy-ours-${i}`)));
      return { seconds: Math.max(...times.map((t) => t.end)) - Math.min(...times.map((t) => t.start)) };
    } finally {
      for (const d of disks) this.dropDisk(d);
    }
  }

  /** Classic: the table by sfdisk, then curl | zstd -d | partclone.restore, `count` at once. */
  async deployClassic(count: number): Promise<{ seconds: number }> {
    const disks = Array.from({ length: count }, (_, i) => this.blankDisk(`classic-${i}`));
    const script = (disk: string) => `set -o pipefail
sfdisk -q --no-reread --no-tell-kernel ${disk} < ${join(this.dir, 'table')} >/dev/null || exit 1
P=$(losetup -f --show -o ${PART_OFFSET} --sizelimit ${this.partSectors * 512} ${disk}) || exit 1
curl -sS --fail http://${HOST}:${NGINX_PORT}/up/ref.pcl.zst | zstd -q -d -c | partclone.restore -s - -O "$P" -L ${join(this.dir, 'partclone-restore')}-${'$'}{P##*/}.log >/dev/null 2>&1
rc="\${PIPESTATUS[*]}"; losetup -d "$P"; [ "$rc" = "0 0 0" ] || { echo "pipeline exit codes: $rc"; exit 1; }`;
    try {
      const times = await Promise.all(disks.map((d, i) => this.timed(script(d), { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, `deploy-classic-${i}`)));
      return { seconds: Math.max(...times.map((t) => t.end)) - Math.min(...times.map((t) => t.start)) };
    } finally {
      for (const d of disks) this.dropDisk(d);
    }
  }

  /** Keeps the agents' and pipelines' logs (small) in `dest` for a look after the run. */
  async tearDown(dest?: string): Promise<void> {
    if (dest && existsSync(this.dir)) {
      mkdirSync(dest, { recursive: true });
      sh(`cp ${this.dir}/*.log ${dest}/ 2>/dev/null || true`);
    }
    if (this.host) {
      this.host.stdin?.end();
      await this.bench.stopChild(this.host);
    }
    if (this.nginx) await this.bench.stopChild(this.nginx);
    // An agent stopped half-way leaves the partition loops it made over our disks.
    this.loops.release();
  }
}
