// The history's per-second budget for per-request DHCP events. A lab powering on stays far
// below it (50 PCs make a few hundred a second); a DISCOVER storm (a starvation attack, a
// looping client) would otherwise cost the main thread a SQLite row per packet and fill the
// machines list with spoofed MACs. Each second's surplus becomes one `dhcp.storm` row.
import { type Clock, type Logger, PerSecondBudget } from '../core/index.js';

export interface StormRow {
  time: number;
  details: { eventsNotRecorded: number; budgetPerSecond: number };
}

export class DhcpStormCounter {
  private readonly budget: PerSecondBudget | undefined;
  private rows: StormRow[] = [];
  private lastStormSecond = -Infinity;
  /** Events over the budget, all seconds (the DHCP thread's own count included). */
  overBudget = 0;

  constructor(
    /** 0 records every event. */
    private readonly perSecond: number,
    clock: Clock,
    private readonly logger: Logger,
    /** A surplus row is waiting to be written. */
    private readonly rowWaiting: () => void,
  ) {
    this.budget = perSecond > 0 ? new PerSecondBudget(perSecond, (left, second) => this.addRow(left, second), clock) : undefined;
  }

  /** False when the event at `time` is over its second's budget (it is counted instead; nothing of it is kept). */
  admit(time: number): boolean {
    if (!this.budget || this.budget.admit(time)) return true;
    this.overBudget++;
    return false;
  }

  /** The DHCP thread's count of per-request events it did not publish, in the second starting at `time`. */
  countLeftOut(count: number, time: number): void {
    if (count <= 0) return;
    this.overBudget += count;
    if (this.budget) this.budget.countLeftOut(count, time);
    else this.addRow(count, Math.floor(time / 1000) * 1000);
  }

  /** The rows of the seconds that are over, to be written now. */
  takeRows(): StormRow[] {
    const rows = this.rows;
    this.rows = [];
    return rows;
  }

  /** Drops the rows waiting (history is off). */
  clear(): void {
    this.rows = [];
  }

  /** Closes the second being counted (its surplus becomes a row) and stops the timer. */
  close(): void {
    this.budget?.close();
  }

  private addRow(left: number, second: number): void {
    this.rows.push({ time: second, details: { eventsNotRecorded: left, budgetPerSecond: this.perSecond } });
    // Once per storm, not once per second of it.
    if (second - this.lastStormSecond > 1000) {
      this.logger.warn(
        `DHCP storm: more than ${this.perSecond} DHCP events a second; history records that many each second and counts the rest (answers are not affected)`,
        { eventsNotRecorded: left },
      );
    }
    this.lastStormSecond = second;
    this.rowWaiting();
  }
}
