/**
 * The presence port: which users have an authenticated connection on some
 * server process. The hub counts a user's connections on its own process
 * and tells this port only when that count leaves or reaches zero; the port
 * answers for every process. One process uses the in-process
 * implementation; several sharing rooms use Redis (`redis.ts`) behind the
 * same interface.
 *
 * Presence is ephemeral: nothing here survives a restart, and an answer is
 * a snapshot that may be stale by the time a client reads it.
 *
 * @module
 */

/**
 * A user came online or went offline. `version` grows with every change of
 * that user's presence, in the order the changes happened, on every
 * process: announcements made by two processes can reach a client in either
 * order, and the version tells it which is the newer.
 */
export interface PresenceChange {
  readonly userId: string;
  readonly online: boolean;
  readonly version: number;
}

/** Whether a user is online now, and the version of its last change (0: none yet). */
export interface PresenceState {
  readonly online: boolean;
  readonly version: number;
}

export interface Presence {
  /**
   * The user's first connection on this process. Resolves with the
   * change's version when the user had none on any process before (it came
   * online: announce it), else 0.
   */
  arrive(userId: string): Promise<number>;
  /**
   * The user's last connection on this process closed. Resolves with the
   * change's version when the user now has none on any process (it went
   * offline: announce it), else 0.
   */
  leave(userId: string): Promise<number>;
  /** The state of each of `userIds` (every one of them is in the answer). */
  online(userIds: readonly string[]): Promise<Map<string, PresenceState>>;
  /**
   * Called with changes made without a connection of this process arriving
   * or leaving — users offline because another process stopped without
   * saying so (killed), or online again because this process's own entry
   * had lapsed (it was cut off from the others for too long) and is back:
   * announce them. Never called by the in-process implementation.
   */
  onChange(handler: (changes: PresenceChange[]) => void): void;
  /** Forget this process's users everywhere (they are announced by the caller first). */
  close(): Promise<void>;
}
