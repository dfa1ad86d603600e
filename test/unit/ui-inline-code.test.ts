// Backtick-quoted commands in host messages become code parts on screen; nothing else changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitInlineCode } from '../../renderer/src/lib/inline-code.js';

test('paired backticks become code, the rest stays text', () => {
  assert.deepEqual(splitInlineCode('stop it (`sudo systemctl stop dnsmasq`) and try again'), [
    { text: 'stop it (', code: false },
    { text: 'sudo systemctl stop dnsmasq', code: true },
    { text: ') and try again', code: false },
  ]);
  assert.deepEqual(splitInlineCode('`a` and `b`'), [
    { text: 'a', code: true },
    { text: ' and ', code: false },
    { text: 'b', code: true },
  ]);
});

test('no backticks, a lone backtick, an empty pair: the message as written', () => {
  assert.deepEqual(splitInlineCode('plain words'), [{ text: 'plain words', code: false }]);
  assert.deepEqual(splitInlineCode('it`s odd'), [{ text: 'it`s odd', code: false }]);
  assert.deepEqual(splitInlineCode('empty `` pair, then `x'), [{ text: 'empty `` pair, then `x', code: false }]);
  assert.deepEqual(splitInlineCode(''), []);
});

test('markup in a message stays text', () => {
  assert.deepEqual(splitInlineCode('`<img src=x onerror=alert(1)>` <b>'), [
    { text: '<img src=x onerror=alert(1)>', code: true },
    { text: ' <b>', code: false },
  ]);
});
