// At most N of one noisy kind of thing a second (per-request DHCP events in a DISCOVER
// storm); the surplus is counted and reported once, when its second is over. The DHCP
// thread (what it sends to the main thread), the log and the history each keep one, so a
// storm of thousands of packets a second costs each of them a bounded amount of work.
import { systemClock, type Clock, type TimerHandle } from './clock.js';

export class PerSecondBudget {
  private second = 0;
  private used = 0;
  private over = 0;
  private timer: TimerHandle | undefined;

  constructor(
    readonly perSecond: number,
    /**
     * Called once per second that had a surplus, with how many were left out and when that
     * second began (ms since the epoch): at the first admit() of a later second, or by a
     * timer just after the second ends when nothing follows.
     */
    private readonly reportSurplus: (leftOut: number, secondStart: number) => void,
    private readonly clock: Clock = systemClock,
  ) {}

  /** True when this one may go through; `at` is when it happened (default now). */
  admit(at = this.clock.now()): boolean {
    const second = Math.floor(at / 1000);
    if (second !== this.second) this.closeSecond(second);
    if (this.used < this.perSecond) {
      this.used++;
      return true;
    }
    this.countOver(1);
    return false;
  }

  /**
   * Ones left out before they reached this budget (another thread's own budget), in the
   * second that starts at `at` (default now): counted in that second's surplus, or in the
   * current one when that second is already reported.
   */
  countLeftOut(count: number, at = this.clock.now()): void {
    if (count <= 0) return;
    const second = Math.floor(at / 1000);
    if (second > this.second) this.closeSecond(second);
    this.countOver(count);
  }

  /** Reports the surplus counted so far now (a service stopping) and stops the timer. */
  close(): void {
    this.closeSecond(this.second);
  }

  private countOver(count: number): void {
    if (this.over === 0) {
      // When the second ends, so a storm's last second is reported even if nothing follows
      // (a timer that fires a little early still closes this second, not the current one).
      const ms = (this.second + 1) * 1000 - this.clock.now();
      this.timer = this.clock.setTimeout(() => this.closeSecond(Math.max(this.second + 1, Math.floor(this.clock.now() / 1000))), Math.max(0, ms));
    }
    this.over += count;
  }

  private closeSecond(next: number): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const over = this.over;
    const start = this.second * 1000;
    this.second = next;
    this.used = 0;
    this.over = 0;
    if (over > 0) this.reportSurplus(over, start);
  }
}
