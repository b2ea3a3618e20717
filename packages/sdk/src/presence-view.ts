/**
 * What this client has heard of other users' presence, on the current
 * connection: `presence` events and `presence.get` answers, taken by
 * version (docs/protocol.md, "Presence, typing, receipts") — two server
 * processes' announcements of one user can cross on the way, and the older
 * must not win. Bounded by PRESENCE_KNOWN_MAX users, the longest unheard-of
 * forgotten first, so a server's frames cannot make it grow without end.
 *
 * @module
 */
import { PRESENCE_KNOWN_MAX } from './limits.ts';

export class PresenceView {
  /** Insertion-ordered: the first keys are the longest unheard-of. */
  readonly #heard = new Map<string, { online: boolean; version: number | null }>();

  /** Online, offline, or null before anything was heard of `userId`. */
  get(userId: string): boolean | null {
    return this.#heard.get(userId)?.online ?? null;
  }

  /**
   * Take what was heard unless a newer version was heard already; a
   * snapshot (an answer) may repeat the version it reports, an event may
   * not. A version of null (the server could not tell one) is always taken.
   * Returns whether it was taken.
   */
  note(userId: string, online: boolean, version: number | null, snapshot = false): boolean {
    const known = this.#heard.get(userId)?.version ?? null;
    if (version !== null && known !== null && (snapshot ? version < known : version <= known)) return false;
    this.#heard.delete(userId);
    this.#heard.set(userId, { online, version: version ?? known });
    if (this.#heard.size > PRESENCE_KNOWN_MAX) {
      const oldest = this.#heard.keys().next().value;
      if (oldest !== undefined) this.#heard.delete(oldest);
    }
    return true;
  }

  /** A new connection: what the last one heard may be stale, and a restarted server counts versions anew. */
  clear(): void {
    this.#heard.clear();
  }
}
