/**
 * Token-bucket rate limiting: `rate` tokens per second, burst `rate`.
 *
 * @module
 */
export class TokenBucket {
  readonly #rate: number;
  #tokens: number;
  #last: number;

  constructor(ratePerSecond: number, now: () => number = Date.now) {
    this.#rate = ratePerSecond;
    this.#tokens = ratePerSecond;
    this.#last = now();
    this.#now = now;
  }

  readonly #now: () => number;

  take(): boolean {
    const t = this.#now();
    this.#tokens = Math.min(this.#rate, this.#tokens + ((t - this.#last) / 1000) * this.#rate);
    this.#last = t;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** One try of a key (a login, a backup fetch): a failure unless it says it succeeded. */
export interface FailureTry {
  /** The try did not fail: it no longer counts. */
  succeeded(): Promise<void>;
}

/**
 * Failures per key in a window (failed logins per user and address, backup
 * fetches per user), counted across connections: in this process
 * (`FailureWindow`), or across every process of a deployment (Redis:
 * `failure-window-redis.ts`). A try counts from its start, as a failure,
 * until it says it succeeded: tries made at the same moment each take a
 * place, so no more than the limit can be under way or failed at once.
 */
export interface FailureCounter {
  /** Start a try of `key`; null when `key` has used up its failures for the window (refuse it). */
  begin(key: string): Promise<FailureTry | null>;
  close(): Promise<void>;
}

/** Window of a failure count (a minute: the limits are per minute). */
export const FAILURE_WINDOW_MS = 60_000;


/** Failures per key per window, in this process. */
export class FailureWindow implements FailureCounter {
  readonly #max: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #counts = new Map<string, { n: number; since: number }>();

  constructor(maxPerWindow: number, windowMs = FAILURE_WINDOW_MS, now: () => number = Date.now) {
    this.#max = maxPerWindow;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Synchronous form of {@link begin}. */
  beginNow(key: string): { succeeded(): void } | null {
    const now = this.#now();
    let e = this.#counts.get(key);
    if (e === undefined || now - e.since >= this.#windowMs) {
      e = { n: 0, since: now };
      this.#counts.set(key, e);
    }
    if (e.n >= this.#max) return null;
    e.n++;
    const entry = e;
    // Bound memory: forget stale keys when the map grows.
    if (this.#counts.size > 100_000) for (const [k, v] of this.#counts) if (now - v.since >= this.#windowMs) this.#counts.delete(k);
    let done = false;
    return {
      succeeded: () => {
        if (done) return;
        done = true;
        if (this.#counts.get(key) === entry && entry.n > 0) entry.n--;
      },
    };
  }

  async begin(key: string): Promise<FailureTry | null> {
    const t = this.beginNow(key);
    return t === null ? null : { succeeded: async () => t.succeeded() };
  }

  async close(): Promise<void> {
    this.#counts.clear();
  }
}

