/**
 * The embedded storage backend: one SQLite file (`parley.db`) in the
 * server's data directory, through better-sqlite3 — opened, with its
 * durability settings, by `SqliteConnection` (sqlite-connection.ts).
 *
 * Concurrency: better-sqlite3 is synchronous, so within this process every
 * method runs to completion before the next starts; multi-step operations
 * (append batches, mailbox enqueue, batch inserts) are still wrapped in
 * `BEGIN IMMEDIATE` transactions, which take the database write lock up
 * front and so also stay correct if another process opens the same file.
 * Every method is `async` only to fit the port: results are already there.
 *
 * `SqliteStorage` is the coordinating core: it owns the group commit, which
 * writes appends and membership changes in call order, one transaction per
 * batch; every other method goes, as `ComposedStorage` (_composed.ts)
 * routes it, to the part of the store it belongs to — accounts, key
 * directory, rooms, room log, mailbox, blobs (sqlite-*.ts), each over the
 * same connection.
 *
 * @module
 */

import { ComposedStorage } from './_composed.ts';
import { SqliteConnection } from './sqlite-connection.ts';
import { SqliteAccounts } from './sqlite-accounts.ts';
import { SqliteKeyDirectory } from './sqlite-key-directory.ts';
import { SqliteRooms } from './sqlite-rooms.ts';
import { SqliteRoomLog } from './sqlite-room-log.ts';
import { SqliteMailbox } from './sqlite-mailbox.ts';
import { SqliteBlobs } from './sqlite-blobs.ts';
import { NotAMemberError } from './types.ts';
import type { AppendOptions, AppendResult, ChangeMemberOptions, MembershipChange, Role, RoomEntryInput, Storage } from './types.ts';

export { SQLITE_FILE_NAME } from './sqlite-connection.ts';

export class SqliteStorage extends ComposedStorage implements Storage {
  readonly #sql: SqliteConnection;
  readonly #log: SqliteRoomLog;
  readonly #rooms: SqliteRooms;

  /** Opens (creating if needed) `dir/parley.db` as a `role` connection (`SqliteConnection`). Call `migrate()` before anything else. */
  constructor(dir: string, options: { role?: 'writer' | 'reader' } = {}) {
    const sql = new SqliteConnection(dir, options);
    const log = new SqliteRoomLog(sql);
    const rooms = new SqliteRooms(sql, log);
    super({ accounts: new SqliteAccounts(sql), keys: new SqliteKeyDirectory(sql), rooms, log, mailbox: new SqliteMailbox(sql), blobs: new SqliteBlobs(sql) });
    this.#sql = sql;
    this.#log = log;
    this.#rooms = rooms;
  }

  migrate(): Promise<void> {
    return this.#sql.migrate();
  }

  #closed: Promise<void> | null = null;

  close(): Promise<void> {
    this.#closed ??= (async () => {
      // Commit appends already accepted before closing.
      this.#flushAppends();
      await this.#sql.close();
    })();
    return this.#closed;
  }

  // ---- the room log: group commit (the log itself is sqlite-room-log.ts) ----

  /**
   * Group commit: appends made in the same event-loop turn are written in one
   * transaction — one fsync for the batch instead of one per message — in
   * call order, and every promise settles only after the batch is durable.
   *
   * One INSERT per entry (`SqliteRoomLog.appendOne`, where the seq counters
   * and the dedupe probe are). A failing INSERT undoes only itself (SQLite's
   * statement-level ABORT), so one bad entry does not fail the batch. If the
   * commit fails, every entry of the batch fails and the counters are
   * reloaded from the database.
   */
  readonly appendsInCallOrder = true;
  /** Appends and membership changes (`member`), run in call order inside one transaction per batch. */
  #appendQueue: {
    roomId: string;
    input: RoomEntryInput;
    requireMember?: boolean;
    member?: { userId: string; expected: Role | null; role: Role | null; options: ChangeMemberOptions };
    resolve: (r: never) => void;
    reject: (e: unknown) => void;
  }[] = [];
  #appendScheduled = false;

  append(roomId: string, input: RoomEntryInput, options: AppendOptions = {}): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      this.#appendQueue.push({ roomId, input, ...(options.requireMember === true && { requireMember: true }), resolve, reject });
      this.#scheduleFlush();
    });
  }

  /** Queued with the appends, so its event takes its place in call order among them. */
  changeMember(roomId: string, userId: string, expected: Role | null, role: Role | null, event: RoomEntryInput, options: ChangeMemberOptions = {}): Promise<MembershipChange | null> {
    if (expected === role) return Promise.reject(new RangeError('changeMember: expected and new role are the same'));
    return new Promise<MembershipChange | null>((resolve, reject) => {
      this.#appendQueue.push({ roomId, input: event, member: { userId, expected, role, options }, resolve, reject });
      this.#scheduleFlush();
    });
  }

  #scheduleFlush(): void {
    if (!this.#appendScheduled) {
      this.#appendScheduled = true;
      setImmediate(() => this.#flushAppends());
    }
  }

  #flushAppends(): void {
    this.#appendScheduled = false;
    const batch = this.#appendQueue;
    if (batch.length === 0) return;
    this.#appendQueue = [];
    const results: (AppendResult | MembershipChange | null | { error: unknown })[] = new Array(batch.length);
    const touched = new Set<string>();
    try {
      this.#sql.tx(() => {
        for (let i = 0; i < batch.length; i++) {
          const item = batch[i] as (typeof batch)[number];
          try {
            if (item.member !== undefined) {
              // A failing change undoes only its own statements (a savepoint), as a failing INSERT does.
              const r = this.#sql.savepoint(() => this.#rooms.changeMemberNow(item.roomId, item.member as NonNullable<typeof item.member>, item.input));
              if (r !== null) touched.add(item.roomId);
              results[i] = r;
              continue;
            }
            if (item.requireMember === true && this.#sql.get<{ one: number }>('SELECT 1 AS one FROM members WHERE room_id = ? AND user_id = ?', item.roomId, item.input.senderUserId) === undefined) {
              throw new NotAMemberError(item.roomId, item.input.senderUserId);
            }
            const r = this.#log.appendOne(item.roomId, item.input);
            if (!r.duplicate) touched.add(item.roomId);
            results[i] = r;
          } catch (error) {
            results[i] = { error };
          }
        }
      });
    } catch (e) {
      for (const roomId of touched) this.#log.forget(roomId);
      for (const item of batch) item.reject(e);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i] as (typeof batch)[number];
      const r = results[i] as AppendResult | MembershipChange | null | { error: unknown };
      if (r !== null && 'error' in r) item.reject(r.error);
      else item.resolve(r as never);
    }
  }
}
