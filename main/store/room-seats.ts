// Where each PC sits in its room: row and column, as the technician arranged the room view.
// A machine without a row here is placed by the view itself, after the seated ones.
import type Database from 'better-sqlite3';

export interface RoomSeat {
  machineId: number;
  /** 1 = the row nearest the front (the top of the view). */
  row: number;
  column: number;
}

export class RoomSeatRepository {
  constructor(private readonly db: Database.Database) {}

  /** Seats of these machines (all when not given). */
  list(machineIds?: number[]): RoomSeat[] {
    const rows = this.db.prepare('SELECT machine_id, seat_row, seat_column FROM room_seats ORDER BY seat_row, seat_column').all() as {
      machine_id: number;
      seat_row: number;
      seat_column: number;
    }[];
    const wanted = machineIds ? new Set(machineIds) : undefined;
    return rows.filter((r) => !wanted || wanted.has(r.machine_id)).map((r) => ({ machineId: r.machine_id, row: r.seat_row, column: r.seat_column }));
  }

  /** Seats these machines (one transaction); those in `clear` go back among the unplaced. */
  set(seats: { machineId: number; row: number; column: number }[], clear: number[] = []): void {
    const upsert = this.db.prepare(`INSERT INTO room_seats (machine_id, seat_row, seat_column) VALUES (?, ?, ?)
      ON CONFLICT(machine_id) DO UPDATE SET seat_row = excluded.seat_row, seat_column = excluded.seat_column`);
    const remove = this.db.prepare('DELETE FROM room_seats WHERE machine_id = ?');
    this.db.transaction(() => {
      for (const id of clear) remove.run(id);
      for (const s of seats) upsert.run(s.machineId, s.row, s.column);
    })();
  }
}
