// "now", refreshed every few seconds, for "seen 12 s ago" labels.
export class Ticker {
  now = $state(Date.now());
  private timer: ReturnType<typeof setInterval> | undefined;
  start(intervalMs = 5000): void {
    this.timer ??= setInterval(() => (this.now = Date.now()), intervalMs);
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
export const ticker = new Ticker();
