// When the TFTP worker busy-waits for a client's next datagram instead of sleeping in
// poll(2) (data-path-worker.ts). Sleeping costs a wake-up from another CPU per datagram:
// tens of microseconds in a VM whose idle CPUs halt at once, which bounds a lock-step
// transfer whose client and server run on different CPUs. A client that answers within the budget is caught without one; a
// client that mostly answers later (a long path, slow firmware) stops the spinning, so
// its transfer costs no CPU for nothing. Pure bookkeeping: the loop does the waiting.

/** Longest busy wait for one datagram, in ms. */
export const SPIN_BUDGET_MS = 0.1;
/** Credit: +1 for a datagram caught, -MISS_COST for a budget spent in vain. */
const CREDIT_MAX = 8;
const MISS_COST = 2;
/** With no credit left, one wait in this many still spins, to notice a client that sped up. */
export const SPIN_PROBE_EVERY = 64;

export class SpinCredit {
  private credit = CREDIT_MAX;
  private skipped = 0;

  /** Should the next wait spin? (Counts the waits that do not, for the probes.) */
  shouldSpin(): boolean {
    if (this.credit > 0) return true;
    if (++this.skipped < SPIN_PROBE_EVERY) return false;
    this.skipped = 0;
    return true;
  }

  /** The datagram came within the budget. */
  caught(): void {
    if (this.credit < CREDIT_MAX) this.credit++;
  }

  /** The budget ran out first. */
  missed(): void {
    this.credit = Math.max(0, this.credit - MISS_COST);
  }
}
