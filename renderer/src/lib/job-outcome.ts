// A finished imaging job in one line, so the technician reads the room's outcome without
// scanning every row: how many PCs came out written and verified, when the last finished,
// and for a stream how long it ran and what the PCs got from it and by repair.
import type { ImagingJob } from '../../../preload/api.js';
import { formatBytes, formatClock, formatDuration } from './format.js';

type Outcome = Pick<ImagingJob, 'kind' | 'machines' | 'streamStartedAt'>;

/** Undefined while a PC of the job has no result yet (the rows tell the story then). */
export function jobOutcomeWords(job: Outcome, clock: (time: number) => string = formatClock): string | undefined {
  const rows = job.machines;
  if (rows.length === 0 || rows.some((r) => r.result === undefined)) return undefined;
  const done = rows.filter((r) => r.result === 'done').length;
  const failed = rows.length - done;
  const finishedAt = Math.max(...rows.map((r) => r.updatedAt));
  const pcs =
    job.kind === 'capture'
      ? done === 1
        ? 'the image is stored'
        : 'the capture failed (its row says why)'
      : rows.length === 1
        ? done === 1
          ? 'the PC is written and verified'
          : 'the PC failed (its row says why)'
        : `${done} of ${rows.length} PCs written and verified`;
  const failedWords = rows.length > 1 && failed > 0 ? `, ${failed} failed (their rows say why)` : '';
  const parts = [`Finished at ${clock(finishedAt)}: ${pcs}${failedWords}.`];
  if (job.streamStartedAt !== undefined && finishedAt >= job.streamStartedAt) {
    const streamed = rows.reduce((n, r) => n + (r.streamed ?? 0), 0);
    const repaired = rows.reduce((n, r) => n + (r.repaired ?? 0), 0);
    parts.push(
      `The stream started at ${clock(job.streamStartedAt)}, the last PC finished ${formatDuration((finishedAt - job.streamStartedAt) / 1000)} later; together they wrote ${formatBytes(streamed)} from the stream and ${formatBytes(repaired)} by repair.`,
    );
  }
  return parts.join(' ');
}
