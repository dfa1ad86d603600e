// The whole renderer's state: one instance, created in main.ts over the picked transport.
// Pushed events are routed here to the screen states; a reconnect reloads everything.
import type { AppInfo } from '../../../../preload/api.js';
import type { ApiClient, ConnectionState } from '../transport.js';
import type { Scheduler } from '../throttle.js';
import { ServicesState } from './services.svelte.js';
import { MachinesState } from './machines.svelte.js';
import { TransfersState } from './transfers.svelte.js';
import { TimelineState } from './timeline.svelte.js';
import { LibraryState } from './library.svelte.js';
import { ImagesState } from './images.svelte.js';
import { RoomState } from './room.svelte.js';

export const SCREENS = ['start', 'library', 'machines', 'room', 'images', 'live', 'timeline'] as const;
export type Screen = (typeof SCREENS)[number];

export class AppState {
  screen = $state<Screen>('start');
  connection = $state<ConnectionState>('connecting');
  info = $state.raw<AppInfo | undefined>(undefined);
  /** A load failure shown in the banner (the host is there but refused). */
  loadError = $state<string | undefined>(undefined);

  readonly services: ServicesState;
  readonly machines: MachinesState;
  readonly transfers: TransfersState;
  readonly timeline: TimelineState;
  readonly library: LibraryState;
  readonly images: ImagesState;
  readonly room: RoomState;
  private readonly stops: (() => void)[] = [];

  constructor(
    readonly api: ApiClient,
    scheduler?: Scheduler,
  ) {
    this.services = new ServicesState(api);
    this.machines = new MachinesState(api);
    this.transfers = new TransfersState(250, scheduler);
    this.timeline = new TimelineState(api, scheduler);
    // Renamed or removed entries change the Machines screen's choices.
    this.library = new LibraryState(api, () => void this.machines.load());
    this.images = new ImagesState(api, 250, scheduler);
    this.room = new RoomState(api, scheduler);
  }

  /** Subscribes to pushed events and loads every screen's data on each (re)connection. */
  connect(): void {
    this.stops.push(
      this.api.on('services:state', (s) => this.services.apply(s)),
      this.api.on('transfer:progress', (p) => this.transfers.apply(p)),
      this.api.on('machine:seen', (m) => this.machines.upsert(m, true)),
      this.api.on('timeline:event', (e) => this.timeline.apply(e)),
      this.api.on('imaging:progress', (p) => this.images.apply(p)),
      // The room view re-reads its tiles when one of its PCs has news.
      this.api.on('timeline:event', (e) => this.room.apply([e.mac])),
      this.api.on('imaging:progress', (p) => this.room.apply(p.jobs.flatMap((j) => j.machines.map((m) => m.mac)))),
      this.api.transport.onConnection((state) => {
        this.connection = state;
        if (state === 'open') void this.loadAll();
        else if (state === 'closed') this.hostGone();
      }),
    );
  }

  async loadAll(): Promise<void> {
    try {
      this.info = await this.api.call('app:info');
      const [active, history] = await Promise.all([
        this.api.call('transfers:active'),
        this.api.call('transfers:history', {}).catch(() => []),
        this.services.load(),
      ]);
      this.transfers.reset(active, history);
      await Promise.all([this.machines.load(), this.library.load(), this.images.load(), this.timeline.reload(), this.room.reload()]);
      this.loadError = undefined;
    } catch (err) {
      this.loadError = (err as Error).message;
    }
  }

  /** Status follows the host: gone, nothing is known to run or download until it is back. */
  private hostGone(): void {
    this.services.hostGone();
    this.transfers.reset([], this.transfers.history);
  }

  openTimeline(target: { machineId: number } | { mac: string }): void {
    this.screen = 'timeline';
    void this.timeline.show(target as never);
  }

  dispose(): void {
    for (const stop of this.stops.splice(0)) stop();
    this.transfers.dispose();
    this.images.dispose();
    this.room.dispose();
    this.api.transport.close();
  }
}
