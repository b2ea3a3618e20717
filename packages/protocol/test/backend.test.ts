import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backend } from '@parley/themis/hazmat';

test('the protocol runs on the backend the test runner asked for', () => {
  const expected = process.env['PARLEY_EXPECT_BACKEND'];
  if (expected !== undefined) assert.equal(backend.name, expected);
  else assert.ok(backend.name === 'node' || backend.name === 'noble');
});
