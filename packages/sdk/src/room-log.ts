/**
 * Reading back the room logs the server stores (docs/protocol.md, "Resume
 * and history"): catching up — each new connection, and each hole a live
 * entry shows in a room (inbound.ts, "Gaps"), replays with `sync` what this
 * device has not processed, from the room cursors in the store, and only
 * then releases the deliveries held meanwhile, in room order, a part at a
 * time — and `history` pages of one room, further back.
 *
 * Separate from the client because both read the log the same way, with
 * rules of their own: a server may cut a sync or a page short, and must
 * move on when it does; a false seq from it must not make this device skip
 * real entries; only the current connection's catch-up may release held
 * entries; and whoever waits for a catch-up (`synced()`) is answered here.
 *
 * @module
 */
import type { ClientStore } from './client-store.ts';
import type { Connection } from './connection.ts';
import { SdkError } from './errors.ts';
import { optionsArg } from './_args.ts';
import type { HistoryEntry } from './events.ts';
import { readEntry, readRooms, readSynced, ROOM_ID, type RoomEntry, type RoomSummary } from './frames.ts';
import type { Inbound } from './inbound.ts';
import { CATCH_UP_PART, HISTORY_PAGE_MAX, HOLE_SYNCS_MAX, SYNC_FORMER_ROOMS_MAX, SYNC_TIMEOUT_MS } from './limits.ts';
import type { Link } from './link.ts';

const HISTORY_PAGE_DEFAULT = 50;

export interface RoomLogHooks {
  /** The client's link: requests, the server's limits, which connection is current, whether it is up, whether the client closed; and starting over. */
  readonly link: Pick<Link, 'request' | 'limits' | 'isCurrent' | 'connected' | 'ended' | 'endError' | 'assertOpen' | 'restart'>;
  readonly inbound: Pick<Inbound, 'holding' | 'flushSome' | 'historyEntry' | 'syncFrom' | 'settlePassedHoles'>;
  /** Remember the kinds of the rooms in a room list (direct-rooms.ts). */
  noteRoomKinds(rooms: readonly RoomSummary[]): void;
  /** Check the prekey stock in the background. */
  checkPrekeysSoon(): void;
  /** `fn` in one store transaction, when the store has them. */
  atomically<T>(fn: () => T): T;
  /** A new connection caught up: the `connection` event `synced`. */
  synced(): void;
  error(e: unknown): void;
}

export class RoomLog {
  readonly #store: ClientStore;
  readonly #hooks: RoomLogHooks;
  readonly #syncWaiters: { resolve: () => void; reject: (e: SdkError) => void }[] = [];

  constructor(store: ClientStore, hooks: RoomLogHooks) {
    this.#store = store;
    this.#hooks = hooks;
  }

  /** `ParleyClient.synced`: resolves once the current connection has caught up. */
  synced(): Promise<void> {
    if (this.#hooks.link.ended) return Promise.reject(this.#hooks.link.endError);
    if (this.#hooks.link.connected && !this.#hooks.inbound.holding) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.#syncWaiters.push({ resolve, reject }));
  }

  /** The client ended: whoever waits for `synced()` fails with `error`. */
  fail(error: SdkError): void {
    for (const w of this.#syncWaiters.splice(0)) w.reject(error);
  }

  /**
   * Replay what was missed, then deliver live: after authenticating
   * (`connect`; `resume` also checks the prekey stock), or when a live
   * entry showed a hole in a room (`gap`, see inbound.ts).
   */
  async catchUp(conn: Connection, why: 'connect' | 'resume' | 'gap'): Promise<void> {
    try {
      if (why === 'resume') this.#hooks.checkPrekeysSoon();
      const listed = await this.#listedRooms(conn);
      const isListed = new Set(listed);
      for (let attempt = 1; ; attempt++) {
        const stored = this.#store.roomCursors();
        let rooms: Record<string, number> = {};
        // From below the cursor where a hole was passed over: what was missing there may have come since.
        const fromHole = new Set<string>();
        for (const roomId of listed) {
          const cursor = stored[roomId];
          if (cursor === undefined) continue;
          rooms[roomId] = this.#hooks.inbound.syncFrom(roomId, cursor);
          if (rooms[roomId] < cursor) fromHole.add(roomId);
        }
        // Rooms this device was in and the server no longer lists: it was removed (or left
        // elsewhere) while away; the server gives what it missed up to the removal.
        const former = Object.keys(stored).filter((roomId) => !isListed.has(roomId)).slice(0, SYNC_FORMER_ROOMS_MAX);
        for (const roomId of former) rooms[roomId] = stored[roomId] as number;
        const answered = new Set<string>();
        for (;;) {
          const synced = readSynced(await conn.request({ t: 'sync', rooms }, ['synced'], SYNC_TIMEOUT_MS));
          for (const roomId of Object.keys(synced.rooms)) answered.add(roomId);
          if (synced.more.length === 0) break;
          // Rooms cut short continue from the seq the server reached (docs/protocol.md, "Resume and history");
          // one it says is cut short without having moved on would be asked for again for ever.
          for (const roomId of synced.more) {
            const reached = synced.rooms[roomId];
            if (reached === undefined || reached <= (rooms[roomId] ?? 0)) throw new SdkError('BAD_RESPONSE', `the server cut the sync of room ${roomId} short without moving on`);
          }
          rooms = { ...rooms, ...synced.rooms };
        }
        // A former room with nothing more to give is done with: its cursor goes, so it is not asked for again.
        if (this.#hooks.link.isCurrent(conn)) this.#hooks.atomically(() => {
          for (const roomId of former) if (!answered.has(roomId)) this.#store.forgetRoomCursor(roomId);
        });
        // Only the current connection's catch-up may release held entries (an older one's may be incomplete).
        if (!this.#hooks.link.isCurrent(conn) || this.#hooks.link.ended) return;
        // A room still holed lost part of the replay too: sync again (inbound.ts, "Gaps").
        // A part at a time, giving the event loop back in between: a long catch-up (thousands of
        // entries) would otherwise be one task that freezes a page for seconds.
        let step = this.#hooks.atomically(() => this.#hooks.inbound.flushSome(attempt >= HOLE_SYNCS_MAX, CATCH_UP_PART));
        while (step.more) {
          await new Promise((resolve) => setTimeout(resolve, 0));
          if (!this.#hooks.link.isCurrent(conn) || this.#hooks.link.ended) return;
          step = this.#hooks.atomically(() => this.#hooks.inbound.flushSome(attempt >= HOLE_SYNCS_MAX, CATCH_UP_PART));
        }
        if (step.holed === 0) {
          this.#hooks.inbound.settlePassedHoles(fromHole);
          break;
        }
      }
      if (why !== 'gap') this.#hooks.synced();
      for (const w of this.#syncWaiters.splice(0)) w.resolve();
    } catch (e) {
      if (this.#hooks.link.ended || SdkError.is(e, 'CLOSED')) return; // the next connection catches up
      this.#hooks.error(e);
      // A sync that failed leaves a hole: start over on a new connection.
      this.#hooks.link.restart(conn, 'sync failed');
    }
  }

  /**
   * The rooms to sync (asked once per catch-up): only those the server
   * lists this user in — a room left, or one a server made up, does not
   * grow every sync (the server syncs a member room not named from 0). A
   * cursor past a listed room's last seq is moved back to it: an honest
   * server's log never shrinks, so it came from a false seq and would make
   * this device skip every real entry up to it.
   */
  async #listedRooms(conn: Connection): Promise<string[]> {
    const stored = this.#store.roomCursors();
    const listed = readRooms(await conn.request({ t: 'room.list' }, ['rooms']));
    this.#hooks.noteRoomKinds(listed);
    for (const room of listed) {
      const cursor = stored[room.roomId];
      if (cursor === undefined || cursor <= room.lastSeq) continue;
      this.#hooks.atomically(() => this.#store.rewindRoomCursor(room.roomId, room.lastSeq));
      this.#hooks.error(new SdkError('BAD_RESPONSE', `room ${room.roomId} ends at seq ${room.lastSeq}, below this device's cursor ${cursor}: a false seq was received; the cursor moves back`));
    }
    return listed.map((room) => room.roomId);
  }

  /** `ParleyClient.history`: a page of the room's log, oldest first, as this device can read it. */
  async history(roomId: string, optionsIn: { readonly before?: number; readonly limit?: number } = {}): Promise<HistoryEntry[]> {
    const options = optionsArg(optionsIn, 'options');
    this.#hooks.link.assertOpen();
    if (typeof roomId !== 'string' || !ROOM_ID.test(roomId)) throw new SdkError('INVALID_ARGUMENT', 'roomId is not a room id');
    const pageMax = Math.min(HISTORY_PAGE_MAX, this.#hooks.link.limits.historyPage ?? HISTORY_PAGE_MAX);
    const limit = options.limit ?? HISTORY_PAGE_DEFAULT;
    const before = options.before ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > pageMax) throw new SdkError('INVALID_ARGUMENT', `limit must be 1…${pageMax}`);
    if (!Number.isSafeInteger(before) || before < 0) throw new SdkError('INVALID_ARGUMENT', 'before must be a seq');
    const entries: RoomEntry[] = [];
    // A page cut short by bytes says `more`; each next page starts below the
    // last, so this ends within `limit` requests whatever the server sends.
    for (let below = before; entries.length < limit; ) {
      const f = await this.#hooks.link.request({ t: 'history', roomId, before: below, limit: limit - entries.length }, ['history']);
      const raw = f['entries'];
      const asked = limit - entries.length;
      if (f['roomId'] !== roomId || !Array.isArray(raw)) throw new SdkError('BAD_RESPONSE', 'history answer for another room or without entries');
      if (raw.length > asked) throw new SdkError('BAD_RESPONSE', `history answer with ${raw.length} entries, ${asked} asked for`);
      let lowest = below;
      for (const e of raw.map(readEntry)) {
        if (e.roomId !== roomId || e.seq >= below) continue;
        entries.push(e);
        lowest = Math.min(lowest, e.seq);
      }
      if (f['more'] !== true || lowest === below) break;
      below = lowest;
    }
    entries.sort((a, b) => a.seq - b.seq);
    return this.#hooks.atomically(() => entries.map((e) => this.#hooks.inbound.historyEntry(e)).filter((e): e is HistoryEntry => e !== null));
  }
}
