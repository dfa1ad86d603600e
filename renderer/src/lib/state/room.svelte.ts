// The room view: one group's PCs as tiles in their seats, re-read from the host when one of
// them has news (a boot step, imaging progress), at most once a second.
import type { ApiClient } from '../transport.js';
import type { RoomStartResult, RoomTask, RoomTile, RoomView, WakeResult } from '../../../../preload/api.js';
import { createThrottle, type Scheduler, type Throttle } from '../throttle.js';

/** The seats after moving one tile to a cell: whoever sat there takes the moved tile's old seat. */
export function seatsAfterMove(tiles: RoomTile[], machineId: number, row: number, column: number): { machineId: number; row: number; column: number }[] {
  const moved = tiles.find((t) => t.machineId === machineId);
  if (!moved) return tiles.map(({ machineId: id, row: r, column: c }) => ({ machineId: id, row: r, column: c }));
  const occupant = tiles.find((t) => t.row === row && t.column === column && t.machineId !== machineId);
  // Every tile is written, so the ones the view placed stay where the technician saw them.
  return tiles.map((t) => {
    if (t.machineId === machineId) return { machineId: t.machineId, row, column };
    if (occupant && t.machineId === occupant.machineId) return { machineId: t.machineId, row: moved.row, column: moved.column };
    return { machineId: t.machineId, row: t.row, column: t.column };
  });
}

/** What a room start did, in one sentence. */
export function roomStartMessage(result: RoomStartResult, formatTime: (t: number) => string): { kind: 'ok' | 'warn'; text: string } {
  const pcs = `${result.machines} ${result.machines === 1 ? 'PC' : 'PCs'}`;
  if (result.scheduledFor !== undefined) {
    return {
      kind: 'ok',
      text: `Room ${result.group} gets ${result.what} at ${formatTime(result.scheduledFor)} (${pcs}); keep Bootbench running until then. Starting again replaces it.`,
    };
  }
  const given = `Room ${result.group}: ${pcs} get ${result.what}${result.job !== undefined ? ` (job ${result.job})` : ''}`;
  if (result.wakeProblem) return { kind: 'warn', text: `${given}, but they were not woken: ${result.wakeProblem} They run it at their next network boot.` };
  const failed = result.wake?.machines.filter((m) => m.error || m.sent === 0) ?? [];
  return {
    kind: failed.length ? 'warn' : 'ok',
    text: `${given}, and were woken through ${result.wake?.interfaceName}.${failed.length ? ` Not woken: ${failed.map((m) => `${m.name ?? m.mac} (${m.error ?? 'no packet left'})`).join(', ')}.` : ''}`,
  };
}

export class RoomState {
  group = $state('');
  view = $state.raw<RoomView | undefined>(undefined);
  error = $state<string | undefined>(undefined);
  message = $state.raw<{ kind: 'ok' | 'warn' | 'bad'; text: string } | undefined>(undefined);
  /** Arranging: tiles are moved by picking one, then its new seat. */
  arranging = $state(false);
  picked = $state<number | undefined>(undefined);
  private readonly refreshSoon: Throttle;

  constructor(
    private readonly api: ApiClient,
    scheduler?: Scheduler,
  ) {
    this.refreshSoon = createThrottle(() => void this.reload(), 1000, scheduler);
  }

  async show(group: string): Promise<void> {
    this.group = group;
    this.view = undefined;
    this.picked = undefined;
    this.message = undefined;
    await this.reload();
  }

  async reload(): Promise<void> {
    const group = this.group;
    if (!group) return;
    try {
      const view = await this.api.call('room:get', { group });
      if (this.group === group) {
        this.view = view;
        this.error = undefined;
      }
    } catch (err) {
      if (this.group === group) this.error = (err as Error).message;
    }
  }

  /** News about these MACs (a pushed event): the room is read again when one of them sits in it. */
  apply(macs: (string | undefined)[]): void {
    const view = this.view;
    if (!view || !macs.some((mac) => mac && view.tiles.some((t) => t.macs.includes(mac)))) return;
    this.refreshSoon.request();
  }

  pick(machineId: number): void {
    this.picked = this.picked === machineId ? undefined : machineId;
  }

  /** Moves the picked tile to a seat (swapping with whoever sits there) and stores the room's seats. */
  async moveTo(row: number, column: number): Promise<void> {
    const view = this.view;
    const machineId = this.picked;
    if (!view || machineId === undefined) return;
    this.picked = undefined;
    try {
      this.view = await this.api.call('room:seat', { group: view.group, seats: seatsAfterMove(view.tiles, machineId, row, column) });
      this.message = undefined;
    } catch (err) {
      this.message = { kind: 'bad', text: (err as Error).message };
    }
  }

  async start(what: RoomTask, at?: number): Promise<RoomStartResult | undefined> {
    if (!this.view) return undefined;
    try {
      const result = await this.api.call('room:start', { group: this.view.group, what, at });
      await this.reload();
      return result;
    } catch (err) {
      this.message = { kind: 'bad', text: (err as Error).message };
      return undefined;
    }
  }

  async cancelStart(): Promise<void> {
    if (!this.view) return;
    try {
      this.view = await this.api.call('room:cancel', { group: this.view.group });
      this.message = { kind: 'ok', text: `The start of room ${this.view.group} is cancelled.` };
    } catch (err) {
      this.message = { kind: 'bad', text: (err as Error).message };
    }
  }

  async wakeAll(): Promise<WakeResult | undefined> {
    if (!this.view) return undefined;
    try {
      const result = await this.api.call('machines:wake', { group: this.view.group });
      this.refreshSoon.request();
      return result;
    } catch (err) {
      this.message = { kind: 'bad', text: (err as Error).message };
      return undefined;
    }
  }

  dispose(): void {
    this.refreshSoon.cancel();
  }
}
