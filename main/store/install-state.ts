// Where each machine's unattended install stands, from its timeline: the installer reported
// that it read its answers (install.started) or that it finished (install.done).
import type { Store } from './open-store.js';

export interface InstallState {
  state: 'installing' | 'installed';
  /** When the installer reported it (ms since the epoch). */
  time: number;
  /** The hostname the installer reported, when it did. */
  hostname?: string;
}

/** The latest install report per machine id; machines never reported are absent. */
export function installStates(store: Store): Map<number, InstallState> {
  const rows = store.db
    .prepare(
      `SELECT e.machine_id AS machineId, e.type AS type, e.time AS time, e.details AS details FROM boot_events e
       JOIN (SELECT machine_id, max(id) AS id FROM boot_events WHERE type IN ('install.started', 'install.done') AND machine_id IS NOT NULL GROUP BY machine_id) last
       ON last.id = e.id`,
    )
    .all() as { machineId: number; type: string; time: number; details: string }[];
  const states = new Map<number, InstallState>();
  for (const row of rows) {
    let hostname: string | undefined;
    try {
      const details = JSON.parse(row.details) as { hostname?: unknown };
      if (typeof details.hostname === 'string') hostname = details.hostname;
    } catch {
      // details are ours; a damaged row still tells the state
    }
    states.set(row.machineId, { state: row.type === 'install.done' ? 'installed' : 'installing', time: row.time, ...(hostname ? { hostname } : {}) });
  }
  return states;
}
