// Runs a function at most once per interval, however often it is requested: progress
// arrives many times a second for a bench of PCs; the screen redraws a few times a second.

export interface Scheduler {
  now(): number;
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const browserScheduler: Scheduler = {
  now: () => Date.now(),
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface Throttle {
  /** Asks for a run: now if the last one is old enough, else at the end of the interval. */
  request(): void;
  cancel(): void;
}

export function createThrottle(run: () => void, intervalMs: number, scheduler: Scheduler = browserScheduler): Throttle {
  let last = -Infinity;
  let timer: unknown;
  const fire = () => {
    timer = undefined;
    last = scheduler.now();
    run();
  };
  return {
    request() {
      if (timer !== undefined) return;
      const wait = last + intervalMs - scheduler.now();
      if (wait <= 0) fire();
      else timer = scheduler.set(fire, wait);
    },
    cancel() {
      if (timer !== undefined) scheduler.clear(timer);
      timer = undefined;
    },
  };
}
