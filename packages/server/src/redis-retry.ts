/**
 * How Parley's Redis connections (fan-out, presence, failure counts) try
 * again after Redis goes away: every 50, 100, 200, … ms, at most every
 * REDIS_RETRY_MAX_MS. ioredis' default waits up to 5 s between attempts,
 * so after an outage one process could rejoin 5 s after the others — and
 * while it has not, it misses deliveries it will only ask its clients to
 * resync for later. A second is a small cost to Redis while it is down.
 *
 * @module
 */

/** The longest wait between two attempts to reach Redis. */
export const REDIS_RETRY_MAX_MS = 1000;

/** ioredis `retryStrategy`: `times` counts attempts from 1. */
export function redisRetryStrategy(times: number): number {
  const delay = Math.min(50 * 2 ** Math.min(times - 1, 10), REDIS_RETRY_MAX_MS);
  // A little jitter, so that processes cut off together do not retry in step.
  return delay + Math.floor(Math.random() * 50);
}
