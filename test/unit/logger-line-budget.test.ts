// The CLI's per-second budget for DHCP log lines (issue 9 item 8): a storm is summed up once
// a second instead of a line per packet; normal traffic is logged in full.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerSecondLineBudget } from '../../main/core/logger.js';

test('lines over the budget are counted and reported once their second is over', async () => {
  let now = 10_000;
  const reports: number[] = [];
  const budget = new PerSecondLineBudget(3, (left) => reports.push(left), () => now);
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
  const budget = new PerSecondLineBudget(400, (left) => reports.push(left), () => now);
  for (let i = 0; i < 400; i++) assert.equal(budget.admit(), true);
  now = 1000;
  budget.admit();
  assert.deepEqual(reports, []);
});

test("lines another thread left out (countLeftOut) join their second's surplus, or the current one when that second is over", () => {
  let now = 20_000;
  const reports: number[] = [];
  const budget = new PerSecondLineBudget(3, (left) => reports.push(left), () => now);
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
