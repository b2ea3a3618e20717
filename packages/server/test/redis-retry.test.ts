// Reconnecting to Redis: quick at first, never more than REDIS_RETRY_MAX_MS
// apart (ioredis' default waits up to 5 s, so one process could rejoin long
// after the others).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REDIS_RETRY_MAX_MS, redisRetryStrategy } from '../src/redis-retry.ts';

test('redis retry: 50 ms, doubling, capped at REDIS_RETRY_MAX_MS (plus < 50 ms of jitter), for any number of attempts', () => {
  for (let round = 0; round < 20; round++) {
    const delays = [1, 2, 3, 4, 5, 6, 10, 100, 1e6].map(redisRetryStrategy);
    const floors = [50, 100, 200, 400, 800, REDIS_RETRY_MAX_MS, REDIS_RETRY_MAX_MS, REDIS_RETRY_MAX_MS, REDIS_RETRY_MAX_MS];
    delays.forEach((d, i) => {
      assert.ok(Number.isInteger(d) && d >= (floors[i] as number) && d < (floors[i] as number) + 50, `attempt ${i}: ${d} ms`);
    });
  }
});
