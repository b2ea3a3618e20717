/**
 * Which room entries `parley chat` has shown (chat-view.ts), so that none
 * shows twice although history, the events that arrived before the
 * conversation was on screen and live ones overlap; bounded however long
 * a chat runs.
 *
 * @module
 */

/** Room entries remembered as shown (a chat's memory stays bounded however long it runs). */
const SHOWN_ENTRIES_MAX = 10_000;

/**
 * The room entries shown so far. Not a high-water mark: our own send's
 * acknowledgement (its seq) can come before earlier messages of the peer
 * are decrypted and delivered, and a mark would then hide those. History
 * gives a floor (what it covered, or is older, is never shown again); above
 * it, each seq is remembered, the oldest forgotten past SHOWN_ENTRIES_MAX.
 */
export class ShownEntries {
  #floor = 0;
  readonly #above = new Set<number>();

  /** An entry shown from history: it and everything older count as shown. */
  history(seq: number): void {
    this.#floor = Math.max(this.#floor, seq);
  }

  /** Mark `seq` shown; false if it already was (or is history). */
  add(seq: number): boolean {
    if (seq <= this.#floor || this.#above.has(seq)) return false;
    this.#above.add(seq);
    if (this.#above.size > SHOWN_ENTRIES_MAX) {
      // The first inserted: entries arrive close to room order.
      const oldest = this.#above.values().next().value ?? 0;
      this.#above.delete(oldest);
      this.#floor = Math.max(this.#floor, oldest);
    }
    return true;
  }
}
