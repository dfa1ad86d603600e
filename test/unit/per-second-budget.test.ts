// The one per-second budget (the DHCP thread, the log and the history keep one each): a storm
// is summed up once a second instead of one line or row per packet; normal traffic goes through in full.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock, type Clock } from '../../main/core/clock.js';
import { PerSecondBudget } from '../../main/core/per-second-budget.js';

/** Time set by the test, real timers (the surplus timer really fires). */
const clockAt = (now: () => number): Clock => ({ ...systemClock, now });

test('lines over the budget are counted and reported once their second is over', async () => {
  let now = 10_000;
  const reports: number[] = [];
  const budget = new PerSecondBudget(
    3,
    (left) => reports.push(left),
    clockAt(() => now),
  );
  const admitted = Array.from({ length: 10 }, () => budget.admit()).filter(Boolean).length;
  assert.equal(admitted, 3);
  assert.deepEqual(reports, []);
  now = 11_000;
  assert.equal(budget.admit(), true, 'a new second has its own budget');
  assert.deepEqual(reports, [7]);
  // A surplus with no later line is reported by the timer at the end of its second.
  for (let i = 0; i < 5; i++) budget.admit();
  now = 12_001;
  await new Promise((r) => setTimeout(r, 1100));
  assert.deepEqual(reports, [7, 3]);
});

test('a second within the budget reports nothing', () => {
  let now = 0;
  const reports: number[] = [];
  const budget = new PerSecondBudget(
    400,
    (left) => reports.push(left),
    clockAt(() => now),
  );
  for (let i = 0; i < 400; i++) assert.equal(budget.admit(), true);
  now = 1000;
  budget.admit();
  assert.deepEqual(reports, []);
});

test("lines another thread left out (countLeftOut) join their second's surplus, or the current one when that second is over", () => {
  let now = 20_000;
  const reports: number[] = [];
  const budget = new PerSecondBudget(
    3,
    (left) => reports.push(left),
    clockAt(() => now),
  );
  for (let i = 0; i < 5; i++) budget.admit();
  budget.countLeftOut(100, 20_000);
  now = 21_000;
  budget.admit();
  assert.deepEqual(reports, [102]);
  budget.countLeftOut(7, 20_000); // a late count for a second already reported: counted now
  now = 22_000;
  budget.admit();
  assert.deepEqual(reports, [102, 7]);
});
