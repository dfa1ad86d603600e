// Imaging jobs in the store: a capture (one PC) or a deploy (one or more PCs), and per PC its
// phase, bytes, rate and result. The agent's reports update the per-PC row; the CLI and the
// app read them. Another process on the same data folder (the CLI beside a running serve)
// sees the same rows, so a job made by the CLI is picked up by the running host.
import type Database from 'better-sqlite3';
import { normalizeMac } from '../core/index.js';

export type JobKind = 'capture' | 'deploy';
export type ThenAction = 'disk' | 'poweroff';
export type MachinePhase = 'waiting' | 'booting' | 'checking' | 'partitioning' | 'reading' | 'writing' | 'verifying' | 'naming' | 'done' | 'failed';

export const PHASES: readonly MachinePhase[] = [
  'waiting',
  'booting',
  'checking',
  'partitioning',
  'reading',
  'writing',
  'verifying',
  'naming',
  'done',
  'failed',
];
/** Phases that work on one partition at a time. */
const PARTITION_PHASES = new Set<MachinePhase>(['reading', 'writing', 'verifying']);

/**
 * Stands in a capture job for "the next machine that boots" until a PC claims it: the first
 * PC that asks for the imaging environment (its iPXE script, its grub.cfg or the agent's task).
 */
export const ANY_MACHINE = '*';

/**
 * The shortest time between two reports that a rate is measured over: the agent reports every
 * second, and once more as each partition begins, often a few ms after a tick.
 */
const MIN_RATE_SECONDS = 0.2;

/** Phases in which the agent runs and reports at least once a second. */
export const WORKING_PHASES: readonly MachinePhase[] = ['booting', 'checking', 'partitioning', 'reading', 'writing', 'verifying', 'naming'];

/** What the agent reports: phase, progress, the partition it works on, why it failed. */
export interface MachineReport {
  phase: MachinePhase;
  bytes?: number;
  total?: number;
  /** partition being read, written or verified (0 = the boot area) */
  part?: number;
  reason?: string;
}

/**
 * When a deploy's multicast stream starts: on Go only (`manual`), or once `count` of its PCs
 * are ready (all of them when absent) or `afterSeconds` after the first one is (no timer when
 * absent), whichever comes first; Go starts it in any case. A PC that comes later joins the
 * running stream and repairs what it missed.
 */
export interface StreamStartRule {
  manual: boolean;
  count?: number;
  afterSeconds?: number;
}

/** Long enough for a room switched on by hand to boot; short enough that one dead PC does not hold the others for long. */
export const DEFAULT_START_AFTER_SECONDS = 60;
export const DEFAULT_START_RULE: StreamStartRule = { manual: false, afterSeconds: DEFAULT_START_AFTER_SECONDS };
const MAX_START_AFTER_SECONDS = 24 * 3600;

/** How the caller asks for the start: `afterSeconds: null` = no timer; absent fields take the defaults. */
export interface StreamStartRequest {
  manual?: boolean;
  count?: number;
  afterSeconds?: number | null;
}

export interface ImageJob {
  id: number;
  kind: JobKind;
  image: string;
  /** disk selector: serial or model; empty = the one internal disk */
  disk?: string;
  then: ThenAction;
  createdAt: number;
  machines: JobMachine[];
  /** Of a deploy: when its stream starts (a deploy to one PC has no stream) */
  start: StreamStartRule;
  /** when the technician said Go */
  goAt?: number;
  /** when the running host started the deploy's stream */
  streamStartedAt?: number;
  /**
   * While the stream waits: the process of the host that holds it, when that host last recorded
   * where it stands (on each change), and the timer's deadline. Stands only while that process lives.
   */
  streamHostPid?: number;
  streamHeardAt?: number;
  streamDeadline?: number;
}

export interface JobMachine {
  mac: string;
  phase: MachinePhase;
  /** bytes of the current phase done, of `total` (0 when the phase has no size) */
  bytes: number;
  total: number;
  /** bytes per second over the last report interval */
  rate: number;
  /** the partition being read, written or verified (0 = the boot area), while the phase has one */
  part?: number;
  result?: 'done' | 'failed';
  reason?: string;
  updatedAt: number;
  /** Of a deploy sent as one stream: bytes this PC got from the stream and by HTTP repair, once it left the stream. */
  streamed?: number;
  repaired?: number;
  /** when the running host heard the PC ready for the deploy's stream (see ImageJob.streamHeardAt) */
  readyAt?: number;
}

interface JobRow {
  id: number;
  kind: JobKind;
  image: string;
  disk: string | null;
  then_action: ThenAction;
  created_at: number;
  start_manual: number;
  start_count: number | null;
  start_after: number | null;
  go_at: number | null;
  stream_started_at: number | null;
  stream_host_pid: number | null;
  stream_heard_at: number | null;
  stream_deadline: number | null;
}
interface MachineRow {
  job_id: number;
  mac: string;
  phase: MachinePhase;
  bytes: number;
  total: number;
  rate: number;
  result: 'done' | 'failed' | null;
  reason: string | null;
  updated_at: number;
  part: number | null;
  streamed: number | null;
  repaired: number | null;
  ready_at: number | null;
}

export class ImagingJobs {
  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number = Date.now,
  ) {}

  create(input: { kind: JobKind; image: string; macs: string[]; disk?: string; then?: ThenAction; start?: StreamStartRequest }): ImageJob {
    const macs = [
      ...new Set(
        input.macs.map((m) => {
          if (m === ANY_MACHINE) {
            // A deploy writes disks: it names its machines, never "whoever boots next".
            if (input.kind !== 'capture') throw new Error('only a capture can take the next machine that boots; a deploy names its machines');
            return ANY_MACHINE;
          }
          const mac = normalizeMac(m);
          if (!mac) throw new Error(`"${m}" is not a MAC address (write it as aa:bb:cc:dd:ee:ff)`);
          return mac;
        }),
      ),
    ];
    if (macs.length === 0) throw new Error('a job needs at least one machine');
    if (input.kind === 'capture' && macs.length !== 1) throw new Error('a capture reads one machine');
    const start = startRule(input.start, macs.length);
    const now = this.now();
    const id = this.db.transaction(() => {
      // A PC belongs to one unfinished job: a new job for it replaces the old one's claim.
      const stale = this.db.prepare(`UPDATE image_job_machines SET phase = 'failed', result = 'failed', reason = ?, updated_at = ?
        WHERE mac = ? AND result IS NULL`);
      for (const mac of macs) stale.run('replaced by a newer job for this machine', now, mac);
      const row = this.db
        .prepare('INSERT INTO image_jobs (kind, image, disk, then_action, created_at, start_manual, start_count, start_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(input.kind, input.image, input.disk || null, input.then ?? 'disk', now, start.manual ? 1 : 0, start.count ?? null, start.afterSeconds ?? null);
      const insert = this.db.prepare(`INSERT INTO image_job_machines (job_id, mac, phase, updated_at) VALUES (?, ?, 'waiting', ?)`);
      for (const mac of macs) insert.run(row.lastInsertRowid, mac, now);
      return Number(row.lastInsertRowid);
    })();
    return this.get(id)!;
  }

  get(id: number): ImageJob | undefined {
    const row = this.db.prepare('SELECT * FROM image_jobs WHERE id = ?').get(id) as JobRow | undefined;
    return row ? this.toJob(row) : undefined;
  }

  list(): ImageJob[] {
    return (this.db.prepare('SELECT * FROM image_jobs ORDER BY id').all() as JobRow[]).map((r) => this.toJob(r));
  }

  /** The most recent jobs, newest first. */
  recent(limit: number): ImageJob[] {
    return (this.db.prepare('SELECT * FROM image_jobs ORDER BY id DESC LIMIT ?').all(limit) as JobRow[]).map((r) => this.toJob(r));
  }

  /** The unfinished job that names this PC, if any. */
  pendingFor(mac: string): ImageJob | undefined {
    const row = this.db
      .prepare(
        `SELECT j.* FROM image_jobs j JOIN image_job_machines m ON m.job_id = j.id
        WHERE m.mac = ? AND m.result IS NULL ORDER BY j.id DESC LIMIT 1`,
      )
      .get(normalizeMac(mac) ?? '') as JobRow | undefined;
    return row ? this.toJob(row) : undefined;
  }

  /** True while a capture waits for the next machine that boots. */
  waitingForAnyMachine(): boolean {
    return !!this.db.prepare('SELECT 1 FROM image_job_machines WHERE mac = ? AND result IS NULL LIMIT 1').get(ANY_MACHINE);
  }

  /**
   * The PC's unfinished job; or, when it has none and a capture waits for the next machine
   * that boots, that capture, now bound to this PC (the oldest such capture, once).
   */
  claimFor(mac: string): ImageJob | undefined {
    const key = normalizeMac(mac);
    if (!key) return undefined;
    return this.db.transaction(() => {
      const own = this.pendingFor(key);
      if (own) return own;
      const open = this.db.prepare('SELECT job_id FROM image_job_machines WHERE mac = ? AND result IS NULL ORDER BY job_id LIMIT 1').get(ANY_MACHINE) as
        { job_id: number } | undefined;
      if (!open) return undefined;
      this.db.prepare('UPDATE image_job_machines SET mac = ?, updated_at = ? WHERE job_id = ? AND mac = ?').run(key, this.now(), open.job_id, ANY_MACHINE);
      return this.get(open.job_id);
    })();
  }

  /** Records a report from the agent. Returns false when the PC is not in that job. */
  report(id: number, mac: string, update: MachineReport): boolean {
    const key = mac === ANY_MACHINE ? ANY_MACHINE : (normalizeMac(mac) ?? '');
    const previous = this.db.prepare('SELECT * FROM image_job_machines WHERE job_id = ? AND mac = ?').get(id, key) as MachineRow | undefined;
    if (!previous) return false;
    if (previous.result) return true; // a finished PC's row is final
    const now = this.now();
    const bytes = update.bytes ?? previous.bytes;
    const seconds = (now - previous.updated_at) / 1000;
    // A report right after the last one spans too little time to measure a rate by, and one that
    // starts a partition would measure the one before (the boot area: 440 bytes over the wait for
    // the stream's first chunk, an ETA of hours): the last rate stands until the next tick.
    const newPart = update.part !== undefined && previous.part !== null && update.part !== previous.part;
    const measured = update.phase === previous.phase && !newPart && seconds >= MIN_RATE_SECONDS && bytes >= previous.bytes;
    const rate = measured ? (bytes - previous.bytes) / seconds : previous.rate;
    const result = update.phase === 'done' ? 'done' : update.phase === 'failed' ? 'failed' : null;
    // A failed PC keeps the partition it was on, so its row says where it stopped.
    const part = PARTITION_PHASES.has(update.phase) ? (update.part ?? null) : update.phase === 'failed' ? previous.part : null;
    this.db
      .prepare(
        'UPDATE image_job_machines SET phase = ?, bytes = ?, total = ?, rate = ?, part = ?, result = ?, reason = ?, updated_at = ? WHERE job_id = ? AND mac = ?',
      )
      .run(update.phase, bytes, update.total ?? previous.total, rate, part, result, update.reason ?? previous.reason, now, id, key);
    return true;
  }

  /** What the PC got from its deploy's stream and by repair, as the stream saw it when the PC left it. */
  recordStream(id: number, mac: string, streamed: number, repaired: number): void {
    this.db
      .prepare('UPDATE image_job_machines SET streamed = ?, repaired = ? WHERE job_id = ? AND mac = ?')
      .run(streamed, repaired, id, normalizeMac(mac) ?? '');
  }

  /**
   * The technician's Go for a deploy's stream: the running host (this process or another on
   * the same data folder) starts the stream within a moment. Given twice, the first time stays.
   */
  go(id: number): ImageJob {
    const job = this.get(id);
    if (!job) throw new Error(`there is no job ${id}`);
    if (job.kind !== 'deploy') throw new Error(`job ${id} is a capture: only a deploy to several PCs has a stream to start`);
    if (job.machines.every((m) => m.result)) throw new Error(`job ${id} has ended: every PC of it is done or failed`);
    this.db.prepare('UPDATE image_jobs SET go_at = ? WHERE id = ? AND go_at IS NULL').run(this.now(), id);
    return this.get(id)!;
  }

  /** When Go was given for the job, if it was: read often by the host while a stream waits. */
  goAt(id: number): number | undefined {
    const row = this.db.prepare('SELECT go_at FROM image_jobs WHERE id = ?').get(id) as { go_at: number | null } | undefined;
    return row?.go_at ?? undefined;
  }

  /** The deploy's stream started (the first time counts). */
  recordStreamStart(id: number, at: number): void {
    this.db.prepare('UPDATE image_jobs SET stream_started_at = ? WHERE id = ? AND stream_started_at IS NULL').run(at, id);
  }

  /**
   * Where the deploy's waiting stream stands, as the host that holds it (process `pid`) sees it:
   * its PCs heard ready (each keeps when it was first) and the timer's deadline. A reader in
   * another process (bootbench image status) believes it only while that process lives.
   */
  recordStreamWait(id: number, wait: { ready: readonly string[]; deadline?: number; pid: number }): void {
    const now = this.now();
    const ready = new Set(wait.ready.map((m) => normalizeMac(m) ?? m));
    this.db.transaction(() => {
      this.db
        .prepare('UPDATE image_jobs SET stream_host_pid = ?, stream_heard_at = ?, stream_deadline = ? WHERE id = ?')
        .run(wait.pid, now, wait.deadline ?? null, id);
      const mark = this.db.prepare('UPDATE image_job_machines SET ready_at = COALESCE(ready_at, ?) WHERE job_id = ? AND mac = ?');
      const clear = this.db.prepare('UPDATE image_job_machines SET ready_at = NULL WHERE job_id = ? AND mac = ?');
      for (const { mac } of this.db.prepare('SELECT mac FROM image_job_machines WHERE job_id = ?').all(id) as { mac: string }[]) {
        if (ready.has(mac)) mark.run(now, id, mac);
        else clear.run(id, mac);
      }
    })();
  }

  /** The host no longer holds the job's waiting stream (it started, or the host stopped). */
  forgetStreamWait(id: number): void {
    this.db.transaction(() => {
      this.db.prepare('UPDATE image_jobs SET stream_host_pid = NULL, stream_heard_at = NULL, stream_deadline = NULL WHERE id = ?').run(id);
      this.db.prepare('UPDATE image_job_machines SET ready_at = NULL WHERE job_id = ?').run(id);
    })();
  }

  /** Unfinished PCs in a working phase whose last report is older than `before` (ms). */
  silentSince(before: number): { job: ImageJob; machine: JobMachine }[] {
    const rows = this.db
      .prepare(
        `SELECT job_id, mac FROM image_job_machines WHERE result IS NULL AND updated_at < ?
        AND phase IN (${WORKING_PHASES.map(() => '?').join(', ')}) ORDER BY job_id, mac`,
      )
      .all(before, ...WORKING_PHASES) as { job_id: number; mac: string }[];
    return rows.flatMap((r) => {
      const job = this.get(r.job_id);
      const machine = job?.machines.find((m) => m.mac === r.mac);
      return job && machine ? [{ job, machine }] : [];
    });
  }

  /** True while some capture's PC is working: its chunks are stored but no image names them yet. */
  captureUnderWay(): boolean {
    return !!this.db
      .prepare(
        `SELECT 1 FROM image_job_machines m JOIN image_jobs j ON j.id = m.job_id
        WHERE j.kind = 'capture' AND m.result IS NULL AND m.phase IN (${WORKING_PHASES.map(() => '?').join(', ')}) LIMIT 1`,
      )
      .get(...WORKING_PHASES);
  }

  /** Ends every unfinished PC of unfinished captures: used at start, when no capture can still be under way. */
  failUnfinishedCaptures(reason: string): number {
    return this.db
      .prepare(
        `UPDATE image_job_machines SET phase = 'failed', result = 'failed', reason = ?, updated_at = ?
        WHERE result IS NULL AND job_id IN (SELECT id FROM image_jobs WHERE kind = 'capture')`,
      )
      .run(reason, this.now()).changes;
  }

  private toJob(row: JobRow): ImageJob {
    const machines = (this.db.prepare('SELECT * FROM image_job_machines WHERE job_id = ? ORDER BY mac').all(row.id) as MachineRow[]).map((m) => ({
      mac: m.mac,
      phase: m.phase,
      bytes: m.bytes,
      total: m.total,
      rate: m.rate,
      part: m.part ?? undefined,
      result: m.result ?? undefined,
      reason: m.reason ?? undefined,
      updatedAt: m.updated_at,
      streamed: m.streamed ?? undefined,
      repaired: m.repaired ?? undefined,
      readyAt: m.ready_at ?? undefined,
    }));
    return {
      id: row.id,
      kind: row.kind,
      image: row.image,
      disk: row.disk ?? undefined,
      then: row.then_action,
      createdAt: row.created_at,
      machines,
      start: { manual: row.start_manual === 1, count: row.start_count ?? undefined, afterSeconds: row.start_after ?? undefined },
      goAt: row.go_at ?? undefined,
      streamStartedAt: row.stream_started_at ?? undefined,
      streamHostPid: row.stream_host_pid ?? undefined,
      streamHeardAt: row.stream_heard_at ?? undefined,
      streamDeadline: row.stream_deadline ?? undefined,
    };
  }
}

/** The stored rule for a request: checked, with the defaults filled in; a count of all the PCs or more is "all". */
export function startRule(request: StreamStartRequest | undefined, pcs: number): StreamStartRule {
  if (!request) return { ...DEFAULT_START_RULE };
  const { manual = false, count, afterSeconds } = request;
  if (manual) {
    if (count !== undefined || (afterSeconds !== undefined && afterSeconds !== null))
      throw new Error('a stream started by Go alone takes no number of PCs nor seconds: choose one way to start it');
    return { manual: true };
  }
  if (count !== undefined && (!Number.isInteger(count) || count < 1)) throw new Error(`start when ${count} PCs are ready: give a whole number of 1 or more`);
  if (afterSeconds !== undefined && afterSeconds !== null && (!Number.isInteger(afterSeconds) || afterSeconds < 0 || afterSeconds > MAX_START_AFTER_SECONDS))
    throw new Error(`start ${afterSeconds} s after the first PC is ready: give whole seconds from 0 to ${MAX_START_AFTER_SECONDS}`);
  return {
    manual: false,
    count: count !== undefined && count < pcs ? count : undefined,
    afterSeconds: afterSeconds === null ? undefined : (afterSeconds ?? DEFAULT_START_AFTER_SECONDS),
  };
}
