// One machine's boot steps and where its last boot stopped.
import type { ApiClient } from '../transport.js';
import type { Timeline, TimelineEntry } from '../../../../preload/api.js';
import { createThrottle, type Scheduler, type Throttle } from '../throttle.js';

export type TimelineTarget = { machineId: number; mac?: undefined } | { mac: string; machineId?: undefined };

export class TimelineState {
  target = $state.raw<TimelineTarget | undefined>(undefined);
  timeline = $state.raw<Timeline | undefined>(undefined);
  loading = $state(false);
  error = $state<string | undefined>(undefined);
  private readonly refreshSoon: Throttle;

  constructor(
    private readonly api: ApiClient,
    scheduler?: Scheduler,
  ) {
    // Live events append at once; the diagnosis is re-read at most once a second.
    this.refreshSoon = createThrottle(() => void this.reload(), 1000, scheduler);
  }

  async show(target: TimelineTarget): Promise<void> {
    this.target = target;
    this.timeline = undefined;
    await this.reload();
  }

  async reload(): Promise<void> {
    const target = this.target;
    if (!target) return;
    this.loading = true;
    try {
      const timeline = await this.api.call('timeline:get', target.machineId !== undefined ? { machineId: target.machineId } : { mac: target.mac });
      if (this.target === target) {
        this.timeline = timeline;
        this.error = undefined;
      }
    } catch (err) {
      if (this.target === target) this.error = (err as Error).message;
    } finally {
      this.loading = false;
    }
  }

  /** A pushed 'timeline:event': kept when it belongs to the machine on screen. */
  apply(entry: TimelineEntry): void {
    const t = this.timeline;
    if (!t || !entry.mac) return;
    const macs = t.machine?.macs ?? (t.mac ? [t.mac] : []);
    if (!macs.includes(entry.mac)) return;
    this.timeline = { ...t, events: [...t.events, entry] };
    this.refreshSoon.request();
  }
}
