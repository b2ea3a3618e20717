/**
 * Presence on the v1 protocol: who shares a room with a user learns when
 * it comes online (its first connection on any process) and goes offline
 * (its last one closes), and a member can ask which members of a room are
 * online now (`presence.get`). Ephemeral: never stored.
 *
 * This process makes the announcements of one user one after another, in
 * the order its connections arrived and left. Two processes' announcements
 * of one user can still cross on the way (each delivers to its own sockets
 * at once, to the other's through Redis): each carries the version of the
 * change, and clients keep the newest they heard.
 *
 * @module
 */
import type { HandlerContext, V1Deps } from './context.ts';
import type { PresenceGet } from './frames.ts';
import type { PresenceChange, PresenceState } from '../presence/types.ts';
import type { z } from 'zod';

export class PresenceAnnouncer {
  readonly #deps: () => V1Deps;
  /** Per user, the end of its chain of pending announcements. */
  readonly #tails = new Map<string, Promise<void>>();

  /** `deps` is read lazily: the announcer is one of them. */
  constructor(deps: () => V1Deps) {
    this.#deps = deps;
  }

  /** The user's first connection on this process authenticated. */
  arrived(userId: string): void {
    this.#then(userId, async () => {
      const d = this.#deps();
      const version = await versionOr(() => d.presence.arrive(userId));
      if (version !== 0) await announce(d, userId, true, version);
    });
  }

  /** The user's last connection on this process closed. */
  left(userId: string): void {
    this.#then(userId, async () => {
      const d = this.#deps();
      const version = await versionOr(() => d.presence.leave(userId));
      if (version !== 0) await announce(d, userId, false, version);
    });
  }

  /** Changes made elsewhere (another process lapsed, or this one came back). */
  changed(changes: readonly PresenceChange[]): void {
    for (const c of changes) this.#then(c.userId, () => announce(this.#deps(), c.userId, c.online, c.version));
  }

  /** Resolves when every announcement queued so far was made. */
  async settled(): Promise<void> {
    await Promise.all([...this.#tails.values()]);
  }

  #then(userId: string, step: () => Promise<void>): void {
    const next = (this.#tails.get(userId) ?? Promise.resolve()).then(step).catch((e: unknown) => {
      this.#deps().log.warn({ err: e instanceof Error ? e.message : String(e), userId }, 'presence announcement failed');
    });
    this.#tails.set(userId, next);
    void next.then(() => {
      if (this.#tails.get(userId) === next) this.#tails.delete(userId);
    });
  }
}

/**
 * The version of the change the presence port reports (0: none); if it
 * cannot be asked (Redis unreachable), judged as a single process would —
 * this process's own first or last connection is the change — with no
 * version (null).
 */
async function versionOr(ask: () => Promise<number>): Promise<number | null> {
  try {
    return await ask();
  } catch {
    return null;
  }
}

/**
 * Tell everyone who shares a room with `userId` that it came online or went
 * offline. Announcements of one user made by two processes can arrive in
 * either order: `version` (when known) tells clients which is the newer.
 */
async function announce(deps: V1Deps, userId: string, online: boolean, version: number | null): Promise<void> {
  const audience = new Set<string>();
  for (const r of await deps.storage.listRoomsOf(userId)) for (const u of await deps.hub.members(r.roomId)) if (u !== userId) audience.add(u);
  if (audience.size > 0) deps.hub.deliver(audience, JSON.stringify({ t: 'presence', userId, online, ...(version !== null && { version }) }));
}

/** Which members of a room are online now (members only). */
export async function onPresenceGet(ctx: HandlerContext, f: z.infer<typeof PresenceGet>): Promise<void> {
  const members = await ctx.deps.hub.members(f.roomId);
  if (!members.has(ctx.me.userId)) return ctx.error(f.id, 'not_found', 'no such room');
  const ids = [...members].sort();
  let states: Map<string, PresenceState>;
  try {
    states = await ctx.deps.presence.online(ids);
  } catch {
    return ctx.error(f.id, 'internal', 'presence is unavailable right now');
  }
  const answer = ids.map((userId) => {
    const s = states.get(userId) ?? { online: false, version: 0 };
    return { userId, online: s.online, version: s.version };
  });
  ctx.reply(f.id, { t: 'presence.state', roomId: f.roomId, members: answer });
}
