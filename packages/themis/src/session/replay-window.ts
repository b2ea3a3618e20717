/**
 * Which incoming sequence numbers a session accepts.
 *
 * Themis accepts seq ∈ [last − 8, last + 8] (bounds computed in u32 without
 * wrap handling) and then sets last := seq — so an exact replay is accepted.
 * `lenient` reproduces that exactly, for compatibility tests.
 *
 * `strict` (our default) accepts a subset of nothing less: every seq Themis
 * would accept (with modular distance, so the 2^32 wrap works too), except a
 * seq already accepted or older than the window below the highest one seen.
 * A correct Themis sender, reordered within its ±8 window, is never refused.
 * No byte on the wire changes.
 *
 * @module
 */
import { SESSION_REPLAY_WINDOW, SESSION_SEQ_WINDOW } from '../limits.ts';

export type ReplayMode = 'strict' | 'lenient';

/** Signed distance a − b in the u32 ring, in (−2^31, 2^31]. */
function distance(a: number, b: number): number {
  const d = (a - b) >>> 0;
  return d > 0x7fffffff ? d - 0x100000000 : d;
}

export class ReplayWindow {
  readonly mode: ReplayMode;
  /** Last accepted seq (Themis's `in_seq`). */
  #last: number;
  /** Highest accepted seq and a bitmap of accepted seqs below it (bit i = highest − i). */
  #highest: number;
  #seen: bigint;

  /**
   * `initial` is the peer's initial sequence number: the first message carries
   * it. With `seenThrough`, everything up to and including `initial` counts as
   * already received (used after restoring a saved session).
   */
  constructor(mode: ReplayMode, initial: number, seenThrough = false) {
    this.mode = mode;
    this.#last = initial >>> 0;
    this.#highest = (initial - 1) >>> 0;
    this.#seen = 0n;
    if (seenThrough) {
      this.#highest = initial >>> 0;
      this.#seen = (1n << BigInt(SESSION_REPLAY_WINDOW)) - 1n;
    }
  }

  get last(): number {
    return this.#last;
  }

  /**
   * The incoming seq to persist in a saved session: the last accepted one
   * (Themis) in lenient mode; the highest accepted one in strict mode, so that
   * after a restore nothing accepted before it can be replayed.
   */
  get savedInSeq(): number {
    return this.mode === 'lenient' ? this.#last : this.#highest;
  }

  /** Would `seq` be accepted? Pure: call {@link commit} after the message authenticates. */
  check(seq: number): boolean {
    if (this.mode === 'lenient') {
      const lo = (this.#last - SESSION_SEQ_WINDOW) >>> 0;
      const hi = (this.#last + SESSION_SEQ_WINDOW) >>> 0;
      return seq >= lo && seq <= hi;
    }
    if (Math.abs(distance(seq, this.#last)) > SESSION_SEQ_WINDOW) return false;
    const ahead = distance(seq, this.#highest);
    if (ahead > 0) return true;
    const back = -ahead;
    if (back >= SESSION_REPLAY_WINDOW) return false;
    return ((this.#seen >> BigInt(back)) & 1n) === 0n;
  }

  commit(seq: number): void {
    this.#last = seq >>> 0;
    if (this.mode === 'lenient') return;
    const ahead = distance(seq, this.#highest);
    const mask = (1n << BigInt(SESSION_REPLAY_WINDOW)) - 1n;
    if (ahead > 0) {
      this.#seen = ahead >= SESSION_REPLAY_WINDOW ? 1n : ((this.#seen << BigInt(ahead)) | 1n) & mask;
      this.#highest = seq >>> 0;
    } else {
      this.#seen |= 1n << BigInt(-ahead);
    }
  }
}
