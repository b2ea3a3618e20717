import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backendName } from '../src/index.ts';

test('the backend selected by export conditions is the one the runner asked for', () => {
  const expected = process.env['PARLEY_EXPECT_BACKEND'];
  if (expected !== undefined) assert.equal(backendName, expected);
  else assert.ok(backendName === 'node' || backendName === 'noble');
});
