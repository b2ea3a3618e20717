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

/** Failures per key per minute across connections (e.g. failed logins per user). */
export class FailureWindow {
  readonly #max: number;
  readonly #counts = new Map<string, { n: number; since: number }>();

  constructor(maxPerMinute: number) {
    this.#max = maxPerMinute;
  }

  allowed(key: string, now = Date.now()): boolean {
    const e = this.#counts.get(key);
    if (e === undefined || now - e.since >= 60_000) return true;
    return e.n < this.#max;
  }

  fail(key: string, now = Date.now()): void {
    const e = this.#counts.get(key);
    if (e === undefined || now - e.since >= 60_000) this.#counts.set(key, { n: 1, since: now });
    else e.n++;
    // Bound memory: forget stale keys when the map grows.
    if (this.#counts.size > 100_000) for (const [k, v] of this.#counts) if (now - v.since >= 60_000) this.#counts.delete(k);
  }
}
