// Network namespaces for tests and benchmarks that send traffic beyond loopback.
// Rule: every namespace is created by the test (or bench) run, has no link to the host
// namespace and no route out, uses 198.18.0.0/15 or 192.0.2.0/24, and is removed when the
// run ends. Here, not in test/, because the bench uses it too and must not import tests.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';

const ALLOWED = [/^198\.1[89]\.\d+\.\d+(\/\d+)?$/, /^192\.0\.2\.\d+(\/\d+)?$/];

/** Why namespace tests cannot run here, or undefined when they can. */
export function netnsUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespace tests need root (ip netns)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'the `ip` command (iproute2) is not installed';
  }
  return undefined;
}

/** Why a test needing these programs cannot run, or undefined. */
export function missingPrograms(...programs: string[]): string | undefined {
  const missing = programs.filter((p) => !whichSync(p));
  return missing.length ? `missing program(s): ${missing.join(', ')} (apt-get install them; .ci/run does)` : undefined;
}

export function whichSync(program: string): string | undefined {
  if (program.includes('/')) return existsSync(program) ? program : undefined;
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    const path = `${dir}/${program}`;
    if (existsSync(path)) return path;
  }
  return undefined;
}

function checkAddress(cidr: string): void {
  if (!ALLOWED.some((re) => re.test(cidr))) throw new Error(`test address ${cidr} is outside 198.18.0.0/15 and 192.0.2.0/24`);
}

let counter = 0;

/** A set of namespaces owned by one test; `destroy()` removes all of them. */
export class Lab {
  readonly prefix: string;
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();

  constructor(name = 'bb') {
    // Short and unique: interface names are limited to 15 characters.
    this.prefix = `${name}${process.pid % 10000}${(counter++).toString(36)}`;
  }

  /** Creates a namespace `<prefix><suffix>` with loopback up. Returns its name. */
  namespace(suffix: string): string {
    const ns = `${this.prefix}${suffix}`;
    run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    this.exec(ns, 'ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Joins two namespaces with a veth pair and gives each end an address (CIDR). */
  veth(nsA: string, ifA: string, cidrA: string | null, nsB: string, ifB: string, cidrB: string | null, mtu?: number): void {
    if (cidrA) checkAddress(cidrA);
    if (cidrB) checkAddress(cidrB);
    const tmpA = `v${this.prefix.slice(-6)}${counter++}a`.slice(0, 15);
    const tmpB = `v${this.prefix.slice(-6)}${counter++}b`.slice(0, 15);
    run('ip', ['link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB]);
    run('ip', ['link', 'set', tmpA, 'netns', nsA]);
    run('ip', ['link', 'set', tmpB, 'netns', nsB]);
    this.exec(nsA, 'ip', ['link', 'set', tmpA, 'name', ifA]);
    this.exec(nsB, 'ip', ['link', 'set', tmpB, 'name', ifB]);
    for (const [ns, ifname, cidr] of [
      [nsA, ifA, cidrA],
      [nsB, ifB, cidrB],
    ] as const) {
      if (mtu) this.exec(ns, 'ip', ['link', 'set', ifname, 'mtu', String(mtu)]);
      if (cidr) this.exec(ns, 'ip', ['addr', 'add', cidr, 'dev', ifname]);
      this.exec(ns, 'ip', ['link', 'set', ifname, 'up']);
    }
  }

  /**
   * A switch: a bridge in namespace `sw` with one veth port per member, the member's end
   * named `ifname` and given `cidr` (null: no address, as a DHCP client starts).
   */
  switchOf(sw: string, members: { ns: string; ifname: string; cidr: string | null }[]): void {
    this.exec(sw, 'ip', ['link', 'add', 'br0', 'type', 'bridge']);
    this.exec(sw, 'ip', ['link', 'set', 'br0', 'up']);
    members.forEach(({ ns, ifname, cidr }, i) => {
      this.veth(ns, ifname, cidr, sw, `port${i}`, null);
      this.exec(sw, 'ip', ['link', 'set', `port${i}`, 'master', 'br0']);
    });
  }

  /** Runs a command inside a namespace and returns its stdout (throws on failure). */
  exec(ns: string, cmd: string, args: string[], options: { input?: string | Buffer; timeoutMs?: number } = {}): string {
    return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], {
      input: options.input,
      timeout: options.timeoutMs ?? 60_000,
      stdio: ['pipe', 'pipe', 'pipe'],
    }).toString();
  }

  /** Starts a long-running process inside a namespace; it is killed by `destroy()`. */
  spawn(ns: string, cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Kills every process started here and deletes every namespace. Safe to call twice. */
  async destroy(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 50));
    for (const ns of this.namespaces.splice(0)) {
      // Processes started by other means inside the namespace must not outlive it.
      try {
        const pids = execFileSync('ip', ['netns', 'pids', ns]).toString().trim().split(/\s+/).filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
      } catch {
        /* namespace already gone */
      }
      try {
        run('ip', ['netns', 'delete', ns]);
      } catch {
        /* already gone */
      }
    }
  }
}

function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Waits until `predicate` returns a value (not undefined/false), or throws after `timeoutMs`. */
export async function waitFor<T>(predicate: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Collects the JSON lines a child process prints on stdout (non-JSON lines as `{ raw }`),
 * and its stderr, for runners started inside a namespace.
 */
export function collectJsonLines(child: ChildProcess): { lines: Record<string, any>[]; stderr: () => string } {
  const lines: Record<string, any>[] = [];
  let buffered = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        lines.push(JSON.parse(line));
      } catch {
        lines.push({ raw: line });
      }
    }
  });
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return { lines, stderr: () => err };
}
