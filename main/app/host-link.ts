// How the desktop app reaches its service host. On Linux the host runs in a process of its
// own, started through bootbench-host (build/linux/bootbench-host.c) when packaged: that
// launcher holds CAP_NET_BIND_SERVICE/CAP_NET_RAW and hands them to the host alone, so the
// Electron main process and the renderer never hold them and never run as root. The two
// processes speak the web mode's frames (preload/api.ts: WireRequest, WireResponse,
// WirePush), one JSON object per line, over the child's stdin and stdout: a pipe only the
// two of them hold, so unlike a loopback port it needs no token and no Origin check.
//
//   app -> host   {"id":7,"call":"machines:list","request":null}
//   host -> app   {"hello":{"pid":..,"privileges":{..},"packaging":{..}}}   (first line)
//   host -> app   {"id":7,"result":[..]}  |  {"id":7,"error":{"code":..,"message":..}}
//   host -> app   {"event":"services:state","payload":{..}}
//
// The app closes the host's stdin to stop it (the host stops its services, flushes the
// history and exits). pkexec would close any other descriptor, so stdio it is.
// No `electron` import here: everything below runs under plain Node in the tests.
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { ApiEnvelope, ApiEventName, ApiEvents, WirePush, WireRequest, WireResponse } from '../../preload/api.js';
import { type HostPackaging, type PrivilegeReport, UNPRIVILEGED_PORTS_COMMAND } from '../net/index.js';
import type { ApiCallHandler, ApiEventSource } from '../web/index.js';

// ---------------------------------------------------------------------------------------
// Where the host runs.

export type HostLaunch =
  | { kind: 'in-process'; why: string }
  | {
      kind: 'child';
      /** launcher: the installed bootbench-host; electron-as-node: a development run. */
      via: 'launcher' | 'electron-as-node';
      command: string;
      args: string[];
      env: NodeJS.ProcessEnv;
      /** Running from an AppImage: its launcher can never hold capabilities. */
      appImage: boolean;
    };

export interface LaunchFacts {
  platform: NodeJS.Platform;
  /** app.isPackaged */
  isPackaged: boolean;
  /** process.execPath of the Electron main process. */
  execPath: string;
  /** The host-process script beside main.js (.js once built, .ts under tsx in tests). */
  hostScript: string;
  /** A module URL that teaches Node TypeScript (tsx), for a .ts hostScript. */
  typeScriptLoader?: string;
  dataDir: string;
  appVersion: string;
  env: NodeJS.ProcessEnv;
}

/** Name of the launcher electron-builder puts beside the app's executable (linux.extraFiles). */
export const LAUNCHER_NAME = 'bootbench-host';

/**
 * Which process runs the service host. Linux only needs a separate one: ports 67/69 want a
 * capability there, and the launcher that holds it exists only in the Linux packages.
 * Windows has no privileged ports, and macOS lets any user bind them since 10.14; both keep
 * the Electron RunAsNode fuse off (build/hooks/before-pack.cjs), so the host stays in the
 * main process there and the Windows firewall rules name the app's own executable.
 */
export function chooseHostLaunch(facts: LaunchFacts): HostLaunch {
  if (facts.platform !== 'linux') {
    return { kind: 'in-process', why: `${facts.platform} needs no privilege to open the service ports` };
  }
  const hostArgs = ['--data', facts.dataDir, '--app-version', facts.appVersion];
  if (facts.isPackaged) {
    return {
      kind: 'child',
      via: 'launcher',
      command: join(dirname(facts.execPath), LAUNCHER_NAME),
      // The launcher picks the script itself (compiled in); `app-host` only names which one.
      args: ['app-host', ...hostArgs],
      env: { ...facts.env },
      appImage: Boolean(facts.env.APPIMAGE),
    };
  }
  const loader = facts.hostScript.endsWith('.ts') && facts.typeScriptLoader ? ['--import', facts.typeScriptLoader] : [];
  return {
    kind: 'child',
    via: 'electron-as-node',
    command: facts.execPath,
    args: [...loader, facts.hostScript, ...hostArgs],
    env: { ...facts.env, ELECTRON_RUN_AS_NODE: '1' },
    appImage: false,
  };
}

// ---------------------------------------------------------------------------------------
// What to offer when the host lacks the rights it needs.

export interface PrivilegeRemedy {
  /** One line for the dialog's title area. */
  message: string;
  /** What happens if the user agrees, and what else they can do. */
  detail: string;
  /** A one-off command run through pkexec with the user's consent, when one helps. */
  consentCommand?: string[];
  /** The command to run by hand instead (shown and copyable). */
  manualCommand: string;
}

export interface RemedyTools {
  /**
   * The app process itself runs with no_new_privs (NoNewPrivs: 1 in /proc/self/status), set
   * by whatever started it (a systemd unit with NoNewPrivileges=, a sandboxing launcher;
   * Electron's own app.relaunch() does it too, electron/electron#41463). The kernel then
   * ignores file capabilities and setuid on every exec below it: the launcher's grant and
   * pkexec both stop working, so only starting the app differently helps.
   */
  noNewPrivs?: boolean;
  /** Absolute path of pkexec, when installed (polkit). */
  pkexec?: string;
  /** Absolute paths of setcap and sysctl, when installed. */
  setcap?: string;
  sysctl?: string;
}

/**
 * The consent step of the desktop app on Linux, from the host's own privilege report
 * (its effective capabilities, read in the host process) and how it was started.
 * - launcher without capabilities (the .deb's grant got lost, or a tar.gz install):
 *   `pkexec setcap ... bootbench-host`, the post-install's grant, then a host restart;
 * - AppImage (read-only files, no capabilities possible) and development runs:
 *   `pkexec sysctl -w net.ipv4.ip_unprivileged_port_start=67` until the next boot, with the
 *   command that makes it permanent. Never the host itself as root.
 */
export function privilegeRemedy(report: PrivilegeReport, packaging: HostPackaging | undefined, tools: RemedyTools): PrivilegeRemedy | undefined {
  if (report.platform !== 'linux' || report.ok) return undefined;
  const blockedPorts = report.ports.filter((p) => !p.allowed).map((p) => p.port);
  const lines = report.problems.map((p) => p.message).join('\n');
  if (tools.noNewPrivs && packaging?.kind === 'launcher') {
    return {
      message: 'Bootbench was started in a way that blocks its network permissions',
      detail:
        `${lines}\n\nWhatever started this window set "no new privileges" on it, so the service host launcher's capabilities ` +
        '(and any password prompt) cannot take effect. Quit Bootbench and start it from the applications menu or a terminal.',
      manualCommand: 'bootbench',
    };
  }
  if (packaging?.kind === 'launcher') {
    const manualCommand = `sudo setcap cap_net_bind_service,cap_net_raw=p ${packaging.launcher}`;
    return {
      message: 'Bootbench needs permission to open the network-boot ports',
      detail:
        `${lines}\n\nThe service host launcher (${packaging.launcher}) has lost the two network capabilities the package gives it. ` +
        'Allowing this grants them again (it asks for an administrator password); only the service host gets them, never this window.\n\n' +
        `Or run: ${manualCommand}`,
      consentCommand: tools.pkexec && tools.setcap ? [tools.pkexec, tools.setcap, 'cap_net_bind_service,cap_net_raw=p', packaging.launcher] : undefined,
      manualCommand,
    };
  }
  if (blockedPorts.length === 0) {
    // Only SO_BINDTODEVICE on a kernel before 5.7: no sysctl helps, only the .deb's launcher.
    return {
      message: 'Bootbench cannot tie its sockets to one network interface',
      detail: `${lines}\n\nOn this kernel only the .deb package (whose service host holds CAP_NET_RAW) can do it; install it instead of the AppImage.`,
      manualCommand: 'sudo apt install ./bootbench_<version>_<arch>.deb',
    };
  }
  const why =
    packaging?.kind === 'appimage'
      ? 'An AppImage cannot hold network capabilities: its files sit on a read-only mount.'
      : 'This copy of Bootbench has no service-host launcher with network capabilities.';
  return {
    message: `Bootbench needs permission to open port${blockedPorts.length > 1 ? 's' : ''} ${blockedPorts.join(', ')}`,
    detail:
      `${lines}\n\n${why} Allowing this lets programs on this computer open ports from 67 up until the next restart ` +
      '(it asks for an administrator password). To keep it after a restart, run the command below once; ' +
      'the .deb package instead grants the ports to Bootbench alone.\n\n' +
      `${UNPRIVILEGED_PORTS_COMMAND}`,
    consentCommand: tools.pkexec && tools.sysctl ? [tools.pkexec, tools.sysctl, '-w', 'net.ipv4.ip_unprivileged_port_start=67'] : undefined,
    manualCommand: UNPRIVILEGED_PORTS_COMMAND,
  };
}

// ---------------------------------------------------------------------------------------
// The line protocol.

export interface HostHello {
  pid: number;
  privileges: PrivilegeReport;
  packaging: HostPackaging;
}

type HostFrame = WireResponse | WirePush | { hello: HostHello };

/** Serves the API on the host side: requests from `input`, answers and pushes to `write`. */
export function serveApiOverLines(options: {
  input: Readable;
  write: (line: string) => void;
  api: ApiCallHandler;
  events?: ApiEventSource;
  hello: HostHello;
  /** A line that is not a request (logged, otherwise ignored). */
  onStray?: (line: string) => void;
}): Promise<void> {
  const send = (frame: HostFrame) => options.write(`${JSON.stringify(frame)}\n`);
  send({ hello: options.hello });
  const unsubscribe = options.events?.((event, payload) => send({ event, payload } as WirePush));
  const lines = createInterface({ input: options.input, crlfDelay: Infinity });
  const pending = new Set<Promise<void>>();
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    let frame: WireRequest;
    try {
      frame = JSON.parse(line);
    } catch {
      options.onStray?.(line);
      return;
    }
    if (!frame || typeof frame !== 'object' || typeof frame.id !== 'number' || typeof frame.call !== 'string') {
      options.onStray?.(line);
      return;
    }
    const answered = options.api.handle(frame.call, frame.request).then(
      (envelope) => send({ id: frame.id, ...envelope }),
      (err: Error) => send({ id: frame.id, error: { code: 'failed', message: err.message } }),
    );
    pending.add(answered);
    void answered.finally(() => pending.delete(answered));
  });
  // Closed input: the app is quitting (or gone). Answer what is in flight, then stop pushing.
  return new Promise((resolveClosed) =>
    lines.once('close', () => {
      void Promise.allSettled([...pending]).then(() => {
        unsubscribe?.();
        resolveClosed();
      });
    }),
  );
}

/** What the app needs of a child process (node:child_process ChildProcess fits). */
export interface HostChild {
  readonly pid?: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals): boolean;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

export interface HostExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The end of what the host wrote to stderr, for the message. */
  stderrTail: string;
  /** The app asked for it (close()). */
  expected: boolean;
}

const STDERR_TAIL_CHARS = 2000;

/** The app side: calls become lines, answers resolve them, pushes go to onEvent. */
export class HostProcessClient {
  private nextId = 1;
  private readonly pending = new Map<number, (envelope: ApiEnvelope<unknown>) => void>();
  private stderrTail = '';
  private closing = false;
  private exitInfo?: HostExit;
  readonly hello: Promise<HostHello>;
  readonly exited: Promise<HostExit>;

  constructor(
    private readonly child: HostChild,
    private readonly handlers: {
      onEvent: <E extends ApiEventName>(event: E, payload: ApiEvents[E]) => void;
      /** Whatever the host writes to stderr, and stray stdout lines. */
      onLog?: (text: string) => void;
      helloTimeoutMs?: number;
    },
  ) {
    let helloResolve!: (hello: HostHello) => void;
    let helloReject!: (err: Error) => void;
    this.hello = new Promise((res, rej) => ((helloResolve = res), (helloReject = rej)));
    this.hello.catch(() => {}); // a caller that never asks must not see an unhandled rejection
    const helloTimer = setTimeout(
      () => helloReject(new Error(`The service host did not answer within ${(handlers.helloTimeoutMs ?? 20_000) / 1000} s.${this.tailText()}`)),
      handlers.helloTimeoutMs ?? 20_000,
    );
    helloTimer.unref?.();

    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL_CHARS);
      handlers.onLog?.(text);
    });
    // EPIPE when the host is already gone: the exit handler answers the calls.
    child.stdin?.on('error', () => {});
    if (child.stdout) {
      createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
        let frame: HostFrame;
        try {
          frame = JSON.parse(line);
        } catch {
          handlers.onLog?.(`${line}\n`);
          return;
        }
        if (frame && typeof frame === 'object' && 'hello' in frame) {
          clearTimeout(helloTimer);
          helloResolve(frame.hello);
        } else if (frame && typeof frame === 'object' && 'id' in frame && typeof frame.id === 'number') {
          const resolveCall = this.pending.get(frame.id);
          this.pending.delete(frame.id);
          const { id: _id, ...envelope } = frame;
          resolveCall?.(envelope as ApiEnvelope<unknown>);
        } else if (frame && typeof frame === 'object' && 'event' in frame) {
          handlers.onEvent(frame.event, frame.payload);
        } else {
          handlers.onLog?.(`${line}\n`);
        }
      });
    }
    this.exited = new Promise((resolveExit) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.exitInfo) return;
        clearTimeout(helloTimer);
        this.exitInfo = { code, signal, stderrTail: this.stderrTail, expected: this.closing };
        helloReject(new Error(`The service host stopped before it was ready (${describeExit(code, signal)}).${this.tailText()}`));
        const message = `The service host is not running (${describeExit(code, signal)}).${this.tailText()}`;
        for (const resolveCall of this.pending.values()) resolveCall({ error: { code: 'unavailable', message } });
        this.pending.clear();
        resolveExit(this.exitInfo);
      };
      child.once('exit', finish);
      // spawn() failed (ENOENT, EACCES): there will be no exit event. `on`, not `once`: a
      // later error (a failed kill) must not become an uncaught 'error' event.
      child.on('error', (err) => {
        this.stderrTail += `${err.message}\n`;
        finish(null, null);
      });
    });
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  call(call: string, request: unknown): Promise<ApiEnvelope<unknown>> {
    if (this.exitInfo || !this.child.stdin) {
      return Promise.resolve({ error: { code: 'unavailable', message: `The service host is not running.${this.tailText()}` } });
    }
    const id = this.nextId++;
    const frame: WireRequest = { id, call, request: request ?? null };
    return new Promise((resolveCall) => {
      this.pending.set(id, resolveCall);
      this.child.stdin!.write(`${JSON.stringify(frame)}\n`);
    });
  }

  /** Asks the host to stop (stdin closed); SIGTERM, then SIGKILL, if it takes too long. */
  async close(graceMs = 8000): Promise<HostExit> {
    this.closing = true;
    if (!this.exitInfo) {
      this.child.stdin?.end();
      const term = setTimeout(() => this.child.kill('SIGTERM'), graceMs);
      const kill = setTimeout(() => this.child.kill('SIGKILL'), graceMs + 3000);
      try {
        await this.exited;
      } finally {
        clearTimeout(term);
        clearTimeout(kill);
      }
    }
    return this.exited;
  }

  private tailText(): string {
    const tail = this.stderrTail.trim();
    return tail ? ` It said: ${tail.split('\n').slice(-5).join(' / ')}` : '';
  }
}

export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `stopped by ${signal}`;
  if (code === null) return 'could not be started';
  return `exit code ${code}`;
}
