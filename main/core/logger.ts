// Logging for services: one line per problem. The service host decides where lines go
// (text on stderr, or JSON lines on stdout with `--log json`).

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Collects lines in memory; for tests. */
export class MemoryLogger implements Logger {
  readonly lines: { level: LogLevel; message: string; fields?: Record<string, unknown> }[] = [];
  debug(message: string, fields?: Record<string, unknown>) { this.lines.push({ level: 'debug', message, fields }); }
  info(message: string, fields?: Record<string, unknown>) { this.lines.push({ level: 'info', message, fields }); }
  warn(message: string, fields?: Record<string, unknown>) { this.lines.push({ level: 'warn', message, fields }); }
  error(message: string, fields?: Record<string, unknown>) { this.lines.push({ level: 'error', message, fields }); }
}

/**
 * At most `perSecond` lines a second of one noisy kind (per-request DHCP events in a
 * DISCOVER storm); the surplus is counted and reported in one line when its second is over.
 * Formatting and writing a line per packet at 5,000/s cost the host's main thread more than
 * answering the packets, and floods the log a technician reads (issue 9 item 8).
 */
export class PerSecondLineBudget {
  private second = 0;
  private used = 0;
  private over = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly perSecond: number,
    /** Called once per second that had a surplus, with how many lines were left out. */
    private readonly reportSurplus: (linesLeftOut: number) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when the line may be written. */
  admit(): boolean {
    const second = Math.floor(this.now() / 1000);
    if (second !== this.second) this.closeSecond(second);
    if (this.used < this.perSecond) {
      this.used++;
      return true;
    }
    this.countOver(1, second);
    return false;
  }

  /**
   * Lines left out before they reached this budget (another thread's own budget), in the
   * second that starts at `at` (default now): counted in that second's surplus, or in the
   * current one when that second is already reported.
   */
  countLeftOut(lines: number, at = this.now()): void {
    if (lines <= 0) return;
    const second = Math.floor(at / 1000);
    if (second > this.second) this.closeSecond(second);
    this.countOver(lines, this.second);
  }

  private countOver(lines: number, second: number): void {
    if (this.over === 0) {
      this.timer = setTimeout(() => this.closeSecond(Math.floor(this.now() / 1000)), (second + 1) * 1000 - this.now() + 1);
      this.timer.unref?.();
    }
    this.over += lines;
  }

  private closeSecond(next: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.over > 0) this.reportSurplus(this.over);
    this.second = next;
    this.used = 0;
    this.over = 0;
  }
}
