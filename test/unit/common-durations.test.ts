import { test } from 'node:test';
import assert from 'node:assert/strict';
import { duration, parseDuration } from '../../common/src/durations.js';

test('parseDuration reads 250ms, 2s, 1m, 1h and milliseconds as a number or a string; anything else is undefined', () => {
  const good: [unknown, number][] = [['250ms', 250], ['2s', 2000], ['1.5s', 1500], [' 2 s ', 2000], ['1m', 60_000], ['1h', 3_600_000], [750, 750], ['750', 750], [0, 0]];
  for (const [value, ms] of good) assert.equal(parseDuration(value), ms, String(value));
  for (const bad of ['2x', '', 's', '-1s', -5, Infinity, NaN, true, null, undefined, '1 minute', '.5s', '1e3']) assert.equal(parseDuration(bad), undefined, String(bad));
});

test('the duration schema gives milliseconds, or the problem with what it accepts', () => {
  assert.equal(duration.parse('2s'), 2000);
  const result = duration.safeParse('soon');
  assert.equal(result.success, false);
  assert.equal(result.error?.issues[0]?.message, 'invalid duration "soon": use a number of milliseconds or a string such as "250ms", "2s", "1m"');
});
