// Failure counts per key and window (failed logins, backup fetches): the
// same rules in this process and in Redis, where every process of a
// deployment shares them (the Redis service on this machine;
// PARLEY_TEST_REDIS_URL overrides). A try counts from its start until it
// says it succeeded, so tries made at the same moment cannot pass the limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { FAILURE_REDIS_TIMEOUT_MS, RedisFailureWindow, failuresPrefix } from '../src/failure-window-redis.ts';
import { FailureWindow, type FailureCounter } from '../src/rate-limit.ts';
import { freePort, startRedis } from './_redis-server.ts';

const url = process.env['PARLEY_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const MAX = 3;
// Wide enough that the ~20 Redis round trips a rules() run makes before it
// waits the window out fit inside it on a loaded machine (CI).
const WINDOW_MS = 3000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function rules(name: string, counters: FailureCounter[], pastTheWindow: () => Promise<void>): Promise<void> {
  const at = (i: number): FailureCounter => counters[i % counters.length] as FailureCounter;
  // Successes give their place back: any number of them.
  for (let i = 0; i < 2 * MAX; i++) await (await at(i).begin('u@a'))?.succeeded();
  // MAX − 1 failures (spread over every counter): still allowed; the MAX-th fills the window, everywhere.
  for (let i = 0; i < MAX - 1; i++) assert.notEqual(await at(i).begin('u@a'), null, `${name}: try ${i + 1}`);
  const last = await at(MAX - 1).begin('u@a');
  assert.notEqual(last, null, `${name}: the MAX-th try`);
  for (const c of counters) assert.equal(await c.begin('u@a'), null, `${name}: at the limit`);
  assert.notEqual(await at(0).begin('u@b'), null, `${name}: other keys are their own`);
  // A try under way that succeeds frees its place.
  await last?.succeeded();
  await last?.succeeded(); // twice: once only
  assert.notEqual(await at(0).begin('u@a'), null, `${name}: a place again`);
  assert.equal(await at(1).begin('u@a'), null, `${name}: and one only`);
  // The window started at the first try; past it, allowed again.
  await pastTheWindow();
  for (const c of counters) assert.notEqual(await c.begin(`fresh-${name}`), null);
  assert.notEqual(await at(0).begin('u@a'), null, `${name}: after the window`);
}

test('failure window in this process: the limit at its edge, per key, for one window; a success gives its place back', async () => {
  let now = 1_000_000;
  const w = new FailureWindow(MAX, WINDOW_MS, () => now);
  await rules('in-process', [w], async () => {
    now += WINDOW_MS;
  });
  await w.close();
});

test('failure window in Redis: processes share the count, tries made at once cannot pass the limit, deployments are apart', async () => {
  const prefix = failuresPrefix(randomBytes(16));
  const a = await RedisFailureWindow.connect(url, prefix, MAX, WINDOW_MS);
  const b = await RedisFailureWindow.connect(url, prefix, MAX, WINDOW_MS);
  const other = await RedisFailureWindow.connect(url, failuresPrefix(randomBytes(16)), MAX, WINDOW_MS);
  try {
    await rules('redis', [a, b], () => sleep(WINDOW_MS + 100));
    // 40 tries at the same moment on two processes (none has failed yet): MAX take a place.
    const tries = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).begin('burst')));
    assert.equal(tries.filter((t) => t !== null).length, MAX);
    assert.notEqual(await other.begin('burst'), null, 'another deployment counts its own');
  } finally {
    await Promise.all([a.close(), b.close(), other.close()]);
  }
});

test('failure window in Redis: while Redis is away a try never waits on it — the process counts on its own; an unreachable Redis at start is a clear error', async () => {
  const port = await freePort();
  const redis = await startRedis(port);
  const w = await RedisFailureWindow.connect(`redis://127.0.0.1:${port}`, failuresPrefix(randomBytes(16)), MAX, 60_000);
  try {
    redis.kill('SIGKILL');
    await once(redis, 'exit');
    const t0 = Date.now();
    for (let i = 0; i < MAX; i++) assert.notEqual(await w.begin('u@a'), null);
    assert.equal(await w.begin('u@a'), null, 'the limit holds in this process');
    // A bound only (ioredis's own retries used to hold each try ~20 s); wide for a loaded machine.
    assert.ok(Date.now() - t0 < 5 * (MAX + 1) * FAILURE_REDIS_TIMEOUT_MS, `${Date.now() - t0} ms for ${MAX + 1} tries`);
  } finally {
    await w.close();
  }
  await assert.rejects(RedisFailureWindow.connect('redis://:hunter2@127.0.0.1:1', 'p', MAX), (e: Error) => /^failure counts: cannot use Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1/.test(e.message) && !e.message.includes('hunter2'));
});
