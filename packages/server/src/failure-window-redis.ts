/**
 * Failures per key per window, counted in Redis so that every process of a
 * deployment shares them: with N processes a user's allowance is the limit,
 * not N times it. A key's count is one Redis integer that expires with its
 * window (set by its first try); a try takes its place with one atomic step
 * (INCR, then give it back if over the limit), so tries made at the same
 * moment on several processes cannot pass the limit together.
 *
 * This process also counts on its own (an in-process `FailureWindow`): a
 * try needs both to allow it. While Redis cannot be reached — a call fails
 * at once, there is no offline queue — or answers too slowly, the local
 * count alone decides: the limit then holds per process, rather than not at
 * all, and a login never waits on Redis.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { redactedUrl } from './redacted-url.ts';
import { redisRetryStrategy } from './redis-retry.ts';
import { FAILURE_WINDOW_MS, FailureWindow, type FailureCounter, type FailureTry } from './rate-limit.ts';

/** Longest wait for Redis in a try before the local count decides alone (ms). */
export const FAILURE_REDIS_TIMEOUT_MS = 500;

/** The key prefix of one deployment (its id keeps deployments sharing a Redis apart). */
export function failuresPrefix(deploymentId: Uint8Array): string {
  return `parley:${Buffer.from(deploymentId).toString('hex')}:failures:v1`;
}

// KEYS[1] the count. ARGV[1] window ms, ARGV[2] the limit. 1: the try takes a place; 0: the limit is reached.
const BEGIN = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then
  redis.call('DECR', KEYS[1])
  return 0
end
return 1
`;
// The try succeeded: give its place back (unless the window ended meanwhile).
const SUCCEEDED = `
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then redis.call('DECR', KEYS[1]) end
return 0
`;
const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex');
const SCRIPTS = { begin: { text: BEGIN, sha: sha1(BEGIN) }, succeeded: { text: SUCCEEDED, sha: sha1(SUCCEEDED) } };

export class RedisFailureWindow implements FailureCounter {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #max: number;
  readonly #windowMs: number;
  readonly #local: FailureWindow;

  private constructor(redis: Redis, prefix: string, max: number, windowMs: number) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#max = max;
    this.#windowMs = windowMs;
    this.#local = new FailureWindow(max, windowMs);
  }

  /** Connect; rejects, naming Redis and the URL, if it is unreachable. */
  static async connect(url: string, prefix: string, maxPerWindow: number, windowMs = FAILURE_WINDOW_MS, options: { whileDown?: boolean } = {}): Promise<RedisFailureWindow> {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: redisRetryStrategy });
    // Connection errors are retried by ioredis; without a listener they would be thrown as unhandled events.
    redis.on('error', () => undefined);
    try {
      await redis.connect();
    } catch (e) {
      // Counting on its own meanwhile, as when Redis goes away later (ioredis keeps trying).
      if (options.whileDown === true) return new RedisFailureWindow(redis, prefix, maxPerWindow, windowMs);
      redis.disconnect();
      throw new Error(`failure counts: cannot use Redis at ${redactedUrl(url)}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return new RedisFailureWindow(redis, prefix, maxPerWindow, windowMs);
  }

  /** A script's answer, or null when Redis is away or slower than FAILURE_REDIS_TIMEOUT_MS. */
  async #run(s: { text: string; sha: string }, key: string, ...args: string[]): Promise<unknown> {
    if (this.#redis.status !== 'ready') return null;
    const call = async (): Promise<unknown> => {
      try {
        return await this.#redis.evalsha(s.sha, 1, key, ...args);
      } catch (e) {
        if (!(e instanceof Error) || !e.message.startsWith('NOSCRIPT')) throw e;
        return await this.#redis.eval(s.text, 1, key, ...args);
      }
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([call(), new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), FAILURE_REDIS_TIMEOUT_MS)))]);
    } catch {
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  async begin(key: string): Promise<FailureTry | null> {
    const local = this.#local.beginNow(key);
    if (local === null) return null;
    const k = `${this.#prefix}:${key}`;
    const shared = await this.#run(SCRIPTS.begin, k, String(this.#windowMs), String(this.#max));
    if (shared === 0) {
      // The deployment's count is at the limit: this try takes no place here either.
      local.succeeded();
      return null;
    }
    let done = false;
    return {
      succeeded: async () => {
        if (done) return;
        done = true;
        local.succeeded();
        if (shared === 1) await this.#run(SCRIPTS.succeeded, k);
      },
    };
  }

  async close(): Promise<void> {
    await this.#local.close();
    // quit() needs a live connection; without one (Redis away) disconnect() stops the reconnecting for good.
    await this.#redis.quit().catch(() => undefined);
    this.#redis.disconnect();
  }
}
