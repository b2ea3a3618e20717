/**
 * Presence within one process: a set of the users connected to it, and a
 * version per user that grows with each of its changes.
 *
 * @module
 */
import type { Presence, PresenceState } from './types.ts';

export class InProcessPresence implements Presence {
  readonly #users = new Set<string>();
  /** Per user seen, the version of its last change (as many entries as users ever connected). */
  readonly #versions = new Map<string, number>();

  #bump(userId: string): number {
    const v = (this.#versions.get(userId) ?? 0) + 1;
    this.#versions.set(userId, v);
    return v;
  }

  async arrive(userId: string): Promise<number> {
    if (this.#users.has(userId)) return 0;
    this.#users.add(userId);
    return this.#bump(userId);
  }

  async leave(userId: string): Promise<number> {
    return this.#users.delete(userId) ? this.#bump(userId) : 0;
  }

  async online(userIds: readonly string[]): Promise<Map<string, PresenceState>> {
    return new Map(userIds.map((u) => [u, { online: this.#users.has(u), version: this.#versions.get(u) ?? 0 }]));
  }

  /** No other process can go away unannounced, nor this one lapse. */
  onChange(): void {}

  async close(): Promise<void> {
    this.#users.clear();
  }
}
