// Runs `bootbench serve` (the real CLI) inside a namespace and collects its JSON events.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { type Lab, waitFor } from './netns.js';
import { COMPILED_CLI } from './compiled-cli.js';

export const PROJECT_ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(PROJECT_ROOT, 'main', 'cli', 'bootbench.ts');

export interface ServeEvent {
  type: string;
  time: number;
  mac?: string;
  ip?: string;
  [detail: string]: unknown;
}

export class ServeProcess {
  readonly events: ServeEvent[] = [];
  stderr = '';
  exitCode: number | null | undefined;
  private readonly child: ChildProcess;

  /**
   * `compiled`: run dist/main/cli/bootbench.js (as installed) instead of the sources through tsx; the caller checks it is current.
   * `env`: variables added to this process's environment for the host.
   */
  constructor(lab: Lab, ns: string, args: string[], options: { compiled?: boolean; env?: Record<string, string> } = {}) {
    const cli = options.compiled ? [COMPILED_CLI] : ['--import', 'tsx', CLI];
    this.child = lab.spawn(ns, process.execPath, [...cli, 'serve', '--log', 'json', ...args], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ? { ...process.env, ...options.env } : undefined,
    });
    let buffer = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          this.events.push(JSON.parse(line));
        } catch {
          this.stderr += `non-JSON stdout line: ${line}\n`;
        }
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.child.on('exit', (code) => (this.exitCode = code));
  }

  /** Resolves once every service reports running; throws with the host's own words otherwise. */
  async ready(timeoutMs = 20_000): Promise<void> {
    await waitFor(
      () => {
        if (this.exitCode !== undefined) throw new Error(`bootbench serve exited with ${this.exitCode}: ${this.stderr}${this.logText()}`);
        return this.events.some((e) => e.type === 'log' && typeof e.message === 'string' && e.message.startsWith('bootbench serving on'));
      },
      timeoutMs,
      `bootbench serve to start (${this.stderr}${this.logText()})`,
    );
  }

  logText(): string {
    return this.events
      .filter((e) => e.type === 'log')
      .map((e) => `${e.level}: ${e.message}`)
      .join('\n');
  }

  waitForEvent(predicate: (e: ServeEvent) => boolean, timeoutMs: number, what: string): Promise<ServeEvent> {
    return waitFor(() => this.events.find(predicate), timeoutMs, what);
  }

  /** Sends a signal and resolves with the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
    if (this.exitCode === undefined) {
      // `ip netns exec` execs node directly, so the signal reaches the CLI.
      this.child.kill(signal);
      await waitFor(() => this.exitCode !== undefined, timeoutMs, 'bootbench serve to exit');
    }
    return this.exitCode ?? null;
  }
}
