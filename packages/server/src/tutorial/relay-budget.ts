/**
 * How much relaying the tutorial chat may do, and who gets it.
 *
 * Every line is wrapped for every recipient with that recipient's session,
 * so one line costs as much as there are clients: with C clients and lines
 * limited only per connection, a few hosts make the server do C² wraps per
 * second and stall it (every connection, /v1 and /healthz included, waits
 * on the same event loop). So relaying has a server-wide budget, in units
 * (one per recipient per started TUTORIAL_RELAY_UNIT_BYTES of line), and
 * the budget is shared fairly:
 *
 * - every address that sent a line within the last second or two (an
 *   "active" address) gets an equal share: a token bucket of
 *   budget / active addresses per second, holding one second of it. A
 *   host flooding from a few addresses gets a few shares; anyone else who
 *   speaks gets a share of the same size at once (an address new or quiet
 *   for a second finds its bucket full);
 * - the sum is bounded by a server-wide bucket of the whole budget, holding
 *   two seconds of it: the shares never add up to more than its rate, so
 *   only bursts (shares changing size as addresses come and go) reach it.
 *
 * A line costing more than a full bucket holds (a line to very many
 * recipients when a share is small) is let through when the bucket is full
 * and leaves it in debt, so it costs its sender the time it is worth, and
 * no line is refused for ever.
 *
 * @module
 */

/** The length of the window in which an address that sent a line counts as active. */
const ACTIVE_WINDOW_MS = 1000;

class Bucket {
  tokens: number;
  last: number;

  constructor(tokens: number, now: number) {
    this.tokens = tokens;
    this.last = now;
  }

  refill(rate: number, capacity: number, now: number): void {
    this.tokens = Math.min(capacity, this.tokens + (Math.max(0, now - this.last) / 1000) * rate);
    this.last = now;
  }

  /** Take `cost`, going into debt if need be, when at least `cost` (or the whole capacity) is there. */
  take(cost: number, capacity: number): boolean {
    if (this.tokens < Math.min(cost, capacity)) return false;
    this.tokens -= cost;
    return true;
  }
}

export type RelayVerdict = 'relay' | 'over-share' | 'busy';

export class RelayBudget {
  readonly #rate: number;
  readonly #now: () => number;
  readonly #server: Bucket;
  readonly #shares = new Map<string, Bucket>();
  /** Addresses that sent in the current window and in the previous one; how many of the current ones are not in the previous. */
  #current = new Set<string>();
  #previous = new Set<string>();
  #currentOnly = 0;
  #windowStart: number;

  /** `unitsPerSecond`: the server-wide budget. */
  constructor(unitsPerSecond: number, now: () => number = Date.now) {
    this.#rate = unitsPerSecond;
    this.#now = now;
    const t = now();
    this.#server = new Bucket(2 * unitsPerSecond, t);
    this.#windowStart = t;
  }

  /** Addresses active now (at least 1). */
  get active(): number {
    return Math.max(1, this.#previous.size + this.#currentOnly);
  }

  /**
   * May a line from `address` costing `cost` units be relayed? If so the
   * cost is taken from its share and from the server's bucket.
   */
  take(address: string, cost: number): RelayVerdict {
    const now = this.#now();
    this.#roll(now);
    if (!this.#current.has(address)) {
      this.#current.add(address);
      if (!this.#previous.has(address)) this.#currentOnly++;
    }
    const shareRate = this.#rate / this.active;
    let share = this.#shares.get(address);
    if (share === undefined) {
      share = new Bucket(shareRate, now);
      this.#shares.set(address, share);
    }
    share.refill(shareRate, shareRate, now);
    this.#server.refill(this.#rate, 2 * this.#rate, now);
    if (share.tokens < Math.min(cost, shareRate)) return 'over-share';
    if (!this.#server.take(cost, 2 * this.#rate)) return 'busy';
    share.take(cost, shareRate);
    return 'relay';
  }

  /** Start a new window when the current one is over; forget shares of addresses gone quiet with a full bucket. */
  #roll(now: number): void {
    if (now - this.#windowStart < ACTIVE_WINDOW_MS) return;
    // More than a whole window since the last line: nobody sent in the previous one.
    this.#previous = now - this.#windowStart < 2 * ACTIVE_WINDOW_MS ? this.#current : new Set();
    this.#current = new Set();
    this.#currentOnly = 0;
    this.#windowStart = now;
    const shareRate = this.#rate / this.active;
    for (const [address, share] of this.#shares) {
      if (this.#previous.has(address)) continue;
      share.refill(shareRate, shareRate, now);
      if (share.tokens >= shareRate) this.#shares.delete(address);
    }
  }
}
