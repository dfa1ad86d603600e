// The Images screen's line for a finished job: PCs written and verified or failed, when the
// last finished, and for a stream how long it ran and what came from it and by repair.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ImagingMachineRow } from '../../preload/api.js';
import { jobOutcomeWords } from '../../renderer/src/lib/job-outcome.js';

const clock = (t: number) => `T${t / 1000}`;
const row = (mac: string, r: Partial<ImagingMachineRow>): ImagingMachineRow => ({ mac, phase: 'done', bytes: 0, total: 0, rate: 0, updatedAt: 0, ...r });
const MiB = 1024 * 1024;

test('nothing while a PC has no result yet', () => {
  assert.equal(jobOutcomeWords({ kind: 'deploy', machines: [row('a', { result: 'done' }), row('b', { phase: 'writing' })] }, clock), undefined);
  assert.equal(jobOutcomeWords({ kind: 'deploy', machines: [] }, clock), undefined);
});

test("a stream deploy: PCs verified, the last one's time, the stream's run and the shares summed", () => {
  const words = jobOutcomeWords(
    {
      kind: 'deploy',
      streamStartedAt: 100_000,
      machines: [
        row('a', { result: 'done', updatedAt: 130_000, streamed: 30 * MiB, repaired: 2 * MiB }),
        row('b', { result: 'done', updatedAt: 138_000, streamed: 32 * MiB, repaired: 0 }),
      ],
    },
    clock,
  );
  assert.equal(
    words,
    'Finished at T138: 2 of 2 PCs written and verified. The stream started at T100, the last PC finished 38 s later; together they wrote 62 MiB from the stream and 2.0 MiB by repair.',
  );
});

test('failures are counted and pointed at; one PC and a capture read in the singular', () => {
  assert.equal(
    jobOutcomeWords(
      { kind: 'deploy', machines: [row('a', { result: 'done', updatedAt: 5000 }), row('b', { result: 'failed', phase: 'failed', updatedAt: 9000 })] },
      clock,
    ),
    'Finished at T9: 1 of 2 PCs written and verified, 1 failed (their rows say why).',
  );
  assert.equal(jobOutcomeWords({ kind: 'capture', machines: [row('a', { result: 'done', updatedAt: 7000 })] }, clock), 'Finished at T7: the image is stored.');
  assert.equal(
    jobOutcomeWords({ kind: 'deploy', machines: [row('a', { result: 'failed', updatedAt: 7000 })] }, clock),
    'Finished at T7: the PC failed (its row says why).',
  );
});
