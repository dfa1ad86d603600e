// The TFTP worker's busy-wait policy (main/tftp/spin-wait.ts): spin for clients that
// answer within the budget, stop for those that do not, and probe now and then.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SPIN_PROBE_EVERY, SpinCredit } from '../../main/tftp/spin-wait.js';

/** How many of the next `waits` waits would spin, when every spin misses. */
function spinsWhenAllMiss(credit: SpinCredit, waits: number): number {
  let spins = 0;
  for (let i = 0; i < waits; i++) {
    if (!credit.shouldSpin()) continue;
    spins++;
    credit.missed();
  }
  return spins;
}

test('a client that always answers within the budget keeps the spinning on', () => {
  const credit = new SpinCredit();
  for (let i = 0; i < 1000; i++) {
    assert.equal(credit.shouldSpin(), true, `wait ${i}`);
    credit.caught();
  }
});

test('a slow client stops the spinning after a few misses; one wait in SPIN_PROBE_EVERY still probes', () => {
  const credit = new SpinCredit();
  const first = spinsWhenAllMiss(credit, 10);
  assert.ok(first >= 1 && first <= 5, `spins before backing off: ${first}`);
  // From here on only probes: about one per SPIN_PROBE_EVERY waits.
  const waits = SPIN_PROBE_EVERY * 20;
  const probes = spinsWhenAllMiss(credit, waits);
  assert.equal(probes, 20);
});

test('a mostly slow client (one answer in the budget out of four) gets no steady spinning', () => {
  const credit = new SpinCredit();
  let spins = 0;
  const waits = 10_000;
  for (let i = 0; i < waits; i++) {
    if (!credit.shouldSpin()) continue;
    spins++;
    if (spins % 4 === 0) credit.caught();
    else credit.missed();
  }
  assert.ok(spins < waits / 20, `${spins} spins in ${waits} waits`);
});

test('a client that speeds up is noticed by a probe and spun for again', () => {
  const credit = new SpinCredit();
  spinsWhenAllMiss(credit, 10);
  assert.equal(credit.shouldSpin(), false);
  let waitsUntilProbe = 1;
  while (!credit.shouldSpin()) waitsUntilProbe++;
  assert.ok(waitsUntilProbe <= SPIN_PROBE_EVERY, `probe after ${waitsUntilProbe} waits`);
  credit.caught();
  assert.equal(credit.shouldSpin(), true);
  credit.caught();
  for (let i = 0; i < 100; i++) {
    assert.equal(credit.shouldSpin(), true);
    credit.caught();
  }
});
