// The Images screen's words for a deploy whose stream waits to start: how many PCs are ready,
// what starts it, and when the timer does; nothing once it started.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { register } from 'node:module';
import type { ImagingJob } from '../../preload/api.js';

register('../../renderer/tools/svelte-runes-loader.mjs', import.meta.url);
const { streamStartWords } = await import('../../renderer/src/lib/state/images.svelte.js');

const clock = (t: number) => `T${t}`;
const live = (start: Partial<NonNullable<ImagingJob['stream']>['start']>): ImagingJob['stream'] => ({
  group: '239.255.66.2:4000',
  rate: 1,
  chunks: 10,
  chunksSent: 0,
  passes: 0,
  bytesSent: 0,
  start: { started: false, ready: 3, of: 8, ...start },
});

test('a waiting stream in words: the rule, the PCs ready, the time the timer starts it', () => {
  assert.equal(streamStartWords({ start: { manual: true } }, clock), 'waiting for Go (no PC ready yet)');
  assert.equal(streamStartWords({ start: { manual: true }, stream: live({}) }, clock), 'waiting for Go (3 of 8 PCs ready)');
  assert.equal(
    streamStartWords({ start: { manual: false, afterSeconds: 60 }, stream: live({ deadline: 42 }) }, clock),
    '3 of 8 PCs ready, starts when all are ready or at T42',
  );
  assert.equal(streamStartWords({ start: { manual: false, afterSeconds: 60 } }, clock), 'no PC ready yet, starts when all are ready or 60 s after the first');
  assert.equal(streamStartWords({ start: { manual: false, count: 5 }, stream: live({}) }, clock), '3 of 8 PCs ready, starts when 5 are ready');
  assert.equal(streamStartWords({ start: { manual: true }, goAt: 7 }, clock), 'Go given at T7: the stream starts as its PCs get ready');
  assert.equal(streamStartWords({ start: { manual: true }, stream: live({ started: true }) }, clock), undefined);
  assert.equal(streamStartWords({ start: { manual: true }, streamStartedAt: 9 }, clock), undefined, 'started, as the job records it');
  assert.equal(streamStartWords({}, clock), undefined, 'a capture or a deploy to one PC has no stream');
});
