// The room view: every PC of a group as a tile in its seat, with one word for where it is
// (asleep, woken, booting, installing or writing N %, done, failed + why). Pure functions over
// each PC's boot events and its latest imaging row; the API reads those and calls them.
import type { BootEvent } from '../core/index.js';
import { diagnoseBoot, WAKE_ANSWER_MS, WAKE_NO_ANSWER } from './boot-diagnosis.js';
import { IMAGING_PHASE_WORDS, type ImagingMachineRow, type ImagingPhase, type Machine, type RoomTile, type RoomTileState } from '../../preload/api.js';

/** Events older than this say nothing about the PC now: yesterday's class is over. */
export const ROOM_IDLE_MS = 12 * 3600_000;
/** A PC that got its one boot program and stayed quiet this long runs it: the tile says done. */
export const BOOTED_QUIET_MS = 60_000;
/** Columns of a room nobody has arranged yet (five fit a phone's width). */
export const ROOM_DEFAULT_COLUMNS = 5;

export type TileState = Pick<RoomTile, 'state' | 'word' | 'percent' | 'detail' | 'since'>;

/** The PC's latest imaging row, with its job's kind and image. */
export interface TileImaging {
  kind: 'capture' | 'deploy';
  image: string;
  row: ImagingMachineRow;
}

// The firmware's own DHCP (PXE or HTTP boot) starts a boot; an installer's or an OS's DHCP
// client (no option 93) is the system that is already running.
const isFirmwareDhcp = (e: BootEvent) =>
  e.type === 'dhcp.received' && (e.arch !== undefined || /^(PXEClient|HTTPClient)/.test(e.vendorClass ?? '')) && !/(^|,)iPXE(,|$)/.test(e.userClass ?? '');

/** Where one PC is now, from its events (oldest first or not) and its latest imaging row. */
export function roomTileState(events: BootEvent[], imaging: TileImaging | undefined, now: number): TileState {
  const recent = events.filter((e) => now - e.time <= ROOM_IDLE_MS && e.type !== 'tftp.progress' && e.type !== 'http.progress').sort((a, b) => a.time - b.time);
  let state = 'asleep' as RoomTileState;
  let since = undefined as number | undefined;
  let detail = undefined as string | undefined;
  let word = undefined as string | undefined;
  let filesThisBoot = 0;
  let bootStart = 0;
  let lastFile: { name: string; at: number } | undefined;
  const set = (s: RoomTileState, e: BootEvent, why?: string, w?: string) => {
    state = s;
    since = e.time;
    detail = why;
    word = w;
  };
  for (const e of recent) {
    const type = e.type as string;
    if (e.type === 'wake.sent') {
      if (e.packets > 0) set('woken', e, `woken through ${e.interfaceName ?? 'the bench NIC'}`);
    } else if (isFirmwareDhcp(e)) {
      filesThisBoot = 0;
      bootStart = e.time;
      lastFile = undefined;
      set('booting', e);
    } else if (e.type === 'imaging.progress') {
      const phase = e.phase as ImagingPhase;
      const words = IMAGING_PHASE_WORDS[phase] ?? phase;
      if (phase === 'failed') set('failed', e, e.reason || `the ${e.kind} of ${e.image} failed`);
      else if (phase === 'done') set('done', e, e.kind === 'capture' ? `captured into ${e.image}` : `${e.image} written and verified`);
      else if (phase === 'booting' || phase === 'waiting') set('booting', e, words);
      else set('installing', e, `${e.kind} of ${e.image}`, words);
    } else if (type === 'install.started') {
      set('installing', e, 'the installer runs with its answers');
    } else if (type === 'install.done') {
      set('done', e, 'installed');
    } else if (e.type === 'host.warning' && e.bootOnce === 'completed') {
      if (state === 'booting' || state === 'woken') set('installing', e, 'it got everything its entry needs; boot once is used');
    } else if (e.type === 'dhcp.ignored' && e.deliberate) {
      if (state !== 'failed') set('done', e, 'boots from its own disk');
    } else if ((e.type === 'tftp.done' || e.type === 'http.done') && state === 'booting') {
      lastFile = { name: e.file, at: e.time };
      // A kernel and its initrd: the installer or system it starts runs from here.
      if (++filesThisBoot >= 2) set('installing', e, `started what it was given (${filesThisBoot} files)`);
    } else if ((e.type === 'tftp.failed' || e.type === 'http.failed') && state === 'booting') {
      set('failed', e, `download of ${e.file} failed${e.reason ? `: ${e.reason}` : ''}`);
    } else if (state === 'woken' && (e.type.startsWith('dhcp.') || e.type === 'proxy.offer' || e.type === 'pxe.ack')) {
      set('booting', e);
    }
  }

  if (state === 'woken' && since !== undefined && now - since >= WAKE_ANSWER_MS) {
    return { state: 'failed', word: 'failed', detail: WAKE_NO_ANSWER, since: since + WAKE_ANSWER_MS };
  }
  if (state === 'booting') {
    const diagnosis = diagnoseBoot(
      recent.filter((e) => e.time >= bootStart),
      undefined,
      now,
    );
    if (diagnosis.level === 'problem') return { state: 'failed', word: 'failed', detail: diagnosis.message, since };
    // One boot program (a tool such as memtest, a live system) got and nothing asked since:
    // Bootbench's part is over, and "booting" would no longer be true.
    if (lastFile && now - lastFile.at >= BOOTED_QUIET_MS)
      return { state: 'done', word: 'done', detail: `booted ${lastFile.name.split('/').pop()}; nothing more asked since`, since: lastFile.at };
    detail ??= diagnosis.message;
  }
  const result: TileState = { state, word: word ?? state, detail, since };
  // The imaging row has the bytes: "writing 42 %" while it writes.
  const row = imaging?.row;
  if (state === 'installing' && row && !row.result && row.total > 0 && (row.phase === 'reading' || row.phase === 'writing' || row.phase === 'verifying')) {
    const percent = Math.min(100, Math.floor((row.bytes / row.total) * 100));
    return { ...result, word: `${row.phase} ${percent} %`, percent, since: Math.max(since ?? 0, row.updatedAt) };
  }
  if (state === 'failed' && row?.result === 'failed' && row.reason && !detail) return { ...result, detail: row.reason };
  return result;
}

/**
 * Seats: stored ones as they are; the rest after them, row by row in name order, in as many
 * columns as the arranged room has (or a few for a room nobody arranged).
 */
export function layoutRoom(
  machines: Machine[],
  seats: { machineId: number; row: number; column: number }[],
): { rows: number; columns: number; places: Map<number, { row: number; column: number; seated: boolean }> } {
  const places = new Map<number, { row: number; column: number; seated: boolean }>();
  const taken = new Set<string>();
  const ids = new Set(machines.map((m) => m.id));
  for (const s of seats) {
    if (!ids.has(s.machineId) || taken.has(`${s.row}:${s.column}`)) continue;
    places.set(s.machineId, { row: s.row, column: s.column, seated: true });
    taken.add(`${s.row}:${s.column}`);
  }
  const seated = [...places.values()];
  const columns = Math.max(1, ...seated.map((p) => p.column), seated.length ? 0 : Math.min(ROOM_DEFAULT_COLUMNS, machines.length));
  let row = seated.length ? Math.max(...seated.map((p) => p.row)) + 1 : 1;
  let column = 1;
  const rest = machines
    .filter((m) => !places.has(m.id))
    .sort((a, b) => (a.name || a.macs[0] || '').localeCompare(b.name || b.macs[0] || '', undefined, { numeric: true }));
  for (const m of rest) {
    places.set(m.id, { row, column, seated: false });
    if (++column > columns) {
      column = 1;
      row++;
    }
  }
  const rows = Math.max(0, ...[...places.values()].map((p) => p.row));
  return { rows, columns, places };
}
