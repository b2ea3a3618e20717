/**
 * Resume and history over v1 (docs/protocol.md, "Resume and history"):
 * `sync` streams what a device missed in each of its rooms — and in rooms
 * its user has left since, up to the removal — at the client's pace;
 * `history` answers one page of a room's log. Both read the stored log
 * back, HISTORY_PAGE_BYTES_MAX at a time. Apart from the connection: live
 * delivery (publish, fan-out) never comes here, and these reads need only
 * the socket to stream to.
 *
 * @module
 */
import type { WebSocket } from 'ws';
import type { z } from 'zod';
import { HISTORY_PAGE_BYTES_MAX, MEMBERSHIP_EVENTS_PAGE, SYNC_DRAIN_TIMEOUT_MS, SYNC_ENTRIES_PER_ROOM_MAX, SYNC_FORMER_ROOMS_MAX, SYNC_PAUSE_BYTES } from '../limits.ts';
import { membershipEventUser } from '../storage/_shared.ts';
import type { RoomEntry, Storage } from '../storage/types.ts';
import { nextTurn, type HandlerContext } from './context.ts';
import type { History, Sync } from './frames.ts';
import { entryFrame } from './hub.ts';
import { drained, sendText, unsentBytes } from './prebuilt-frame.ts';
import { roleIn } from './rooms.ts';

/** The connection a sync streams to. */
export interface SyncTarget {
  readonly ws: WebSocket;
  /** Whether the connection has closed (the rest of a sync is dropped). */
  readonly closed: boolean;
}

/** Whether a read of at most `limit` entries and HISTORY_PAGE_BYTES_MAX (Storage.readAfter) stopped at the bytes, with more entries perhaps after it. */
const cutByBytes = (entries: readonly RoomEntry[], limit: number): boolean =>
  entries.length < limit && entries.reduce((n, e) => n + e.body.byteLength, 0) >= HISTORY_PAGE_BYTES_MAX;

export async function onSync(ctx: HandlerContext, f: z.infer<typeof Sync>, self: SyncTarget): Promise<void> {
  const { storage } = ctx.deps;
  const rooms = await storage.listRoomsOf(ctx.me.userId);
  const result: Record<string, number> = {};
  const more: string[] = [];
  for (const r of rooms) {
    const after = f.rooms[r.roomId] ?? 0;
    // Nothing after `after` (lastSeq is the log's, as readAfter would see it): no read.
    if (r.lastSeq <= after) {
      result[r.roomId] = after;
      continue;
    }
    const sent = await streamRoom(storage, self, r.roomId, after, Number.MAX_SAFE_INTEGER);
    if (sent === null) return;
    result[r.roomId] = sent.last;
    if (sent.count === SYNC_ENTRIES_PER_ROOM_MAX) more.push(r.roomId);
  }
  // Rooms named that this user has left or was removed from: what it missed
  // before its removal, through the removal itself (it was a member then).
  const memberOf = new Set(rooms.map((r) => r.roomId));
  const named = Object.keys(f.rooms).filter((roomId) => !memberOf.has(roomId));
  const former = named.slice(0, SYNC_FORMER_ROOMS_MAX);
  // Beyond the limit, unread: continued like a room cut short (left out, they would read as done with).
  for (const roomId of named.slice(SYNC_FORMER_ROOMS_MAX)) {
    result[roomId] = f.rooms[roomId] ?? 0;
    more.push(roomId);
  }
  for (const roomId of former) {
    const after = f.rooms[roomId] ?? 0;
    const removedAt = await lastRemovalAfter(storage, roomId, ctx.me.userId, after);
    if (removedAt === null) continue;
    const sent = await streamRoom(storage, self, roomId, after, removedAt);
    if (sent === null) return;
    result[roomId] = sent.last;
    if (sent.last < removedAt) more.push(roomId);
  }
  ctx.send({ t: 'synced', ...(f.id !== undefined && { re: f.id }), rooms: result, more });
}

/**
 * Stream the room's entries after `after`, through `upTo`, at most
 * SYNC_ENTRIES_PER_ROOM_MAX, read HISTORY_PAGE_BYTES_MAX at a time: in one
 * read they could be 64 MiB, held in memory while a slow client reads them
 * and read in one event-loop turn (storage reads are synchronous on
 * SQLite). Yields between reads. Null if the connection closed.
 */
async function streamRoom(storage: Storage, self: SyncTarget, roomId: string, after: number, upTo: number): Promise<{ last: number; count: number } | null> {
  let last = after;
  let count = 0;
  while (count < SYNC_ENTRIES_PER_ROOM_MAX && last < upTo) {
    const limit = Math.min(SYNC_ENTRIES_PER_ROOM_MAX - count, upTo - last);
    const read = await storage.readAfter(roomId, last, limit, HISTORY_PAGE_BYTES_MAX);
    const entries = read.filter((e) => e.seq <= upTo);
    if (entries.length === 0) break;
    if (!(await stream(self, entries))) return null;
    count += entries.length;
    last = (entries[entries.length - 1] as RoomEntry).seq;
    await nextTurn();
    if (!cutByBytes(read, limit)) break;
  }
  return { last, count };
}

/**
 * Send stored entries as `msg` frames, pausing while SYNC_PAUSE_BYTES are
 * unsent until the client has read half of them. False if the connection
 * closed (or read nothing for SYNC_DRAIN_TIMEOUT_MS, and was closed for it).
 */
async function stream(self: SyncTarget, entries: readonly RoomEntry[]): Promise<boolean> {
  for (const e of entries) {
    sendText(self.ws, JSON.stringify({ t: 'msg', ...entryFrame(e) }));
    if (unsentBytes(self.ws) > SYNC_PAUSE_BYTES && !(await drained(self.ws, SYNC_PAUSE_BYTES / 2, SYNC_DRAIN_TIMEOUT_MS))) return false;
  }
  return !self.closed;
}

/** The seq of `userId`'s last removal from the room after `after`, if it is not a member since; null otherwise. */
async function lastRemovalAfter(storage: Storage, roomId: string, userId: string, after: number): Promise<number | null> {
  let removedAt: number | null = null;
  for (let cursor = after; ; ) {
    const events = await storage.readMembershipEvents(roomId, cursor, MEMBERSHIP_EVENTS_PAGE);
    for (const e of events) {
      if (membershipEventUser(e.body) !== userId) continue;
      if (e.kind === 'member-removed') removedAt = e.seq;
      else if (e.kind === 'member-added') removedAt = null;
    }
    if (events.length < MEMBERSHIP_EVENTS_PAGE) return removedAt;
    cursor = (events[events.length - 1] as RoomEntry).seq;
  }
}

export async function onHistory(ctx: HandlerContext, f: z.infer<typeof History>): Promise<void> {
  const { storage } = ctx.deps;
  if ((await roleIn(storage, f.roomId, ctx.me.userId)) === null) return ctx.error(f.id, 'not_found', 'no such room');
  const limit = f.limit ?? 50;
  const max = HISTORY_PAGE_BYTES_MAX;
  const entries = f.before !== undefined ? await storage.readBefore(f.roomId, f.before, limit, max) : await storage.readAfter(f.roomId, f.after ?? 0, limit, max);
  // Cut short: the client asks again from the last entry.
  const more = cutByBytes(entries, limit);
  ctx.send({ t: 'history', ...(f.id !== undefined && { re: f.id }), roomId: f.roomId, entries: entries.map(entryFrame), ...(more && { more: true }) });
}
