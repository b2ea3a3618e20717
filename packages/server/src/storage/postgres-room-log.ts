/**
 * The room log of the PostgreSQL store (`room_entries`): an append, each
 * in its own transaction under the room row's lock, the event a membership
 * change logs inside its transaction (`PostgresRooms`), and entries read
 * back (`readAfter`, `readBefore`, membership events, `lastSeq`). Apart
 * from the storage: the seq and the member set an append is fanned out to
 * come from the room row it locks, whoever else writes the room.
 *
 * @module
 */
import type pg from 'pg';
import { MEMBERS_CACHE_MAX as MEMBER_SETS_CACHED_MAX } from '../limits.ts';
import { ENTRY_COLUMNS, assertMaxBytes, assertNonNegative, assertPage, bytes, toEntry, unknownRoom, type EntryRow } from './_shared.ts';
import { Rollback, type PostgresConnection } from './postgres-connection.ts';
import { NotAMemberError } from './types.ts';
import type { AppendOptions, AppendResult, RoomEntry, RoomEntryInput, Storage } from './types.ts';
import type { RoomLogPart } from './_composed.ts';

export class PostgresRoomLog implements RoomLogPart, Pick<Storage, 'append'> {
  readonly #sql: PostgresConnection;

  constructor(sql: PostgresConnection) {
    this.#sql = sql;
  }

  /**
   * Member sets by room, each with the `members_version` it was read at. The
   * version is bumped in every membership change's transaction, so a set
   * whose version matches the row locked by an append is exactly the set at
   * that append's place in the log, whichever process changed it last.
   */
  readonly #members = new Map<string, { version: number; members: readonly string[] }>();

  /** Within a transaction that holds the room row's lock: the room's members at `version` (from the cache when it is that version's). */
  async membersAt(c: pg.PoolClient, roomId: string, version: number): Promise<readonly string[]> {
    const cached = this.#members.get(roomId);
    if (cached !== undefined && cached.version === version) return cached.members;
    const rows = await this.#sql.query<{ userId: string }>('SELECT user_id AS "userId" FROM members WHERE room_id = $1 ORDER BY user_id', [roomId], c);
    const members = rows.rows.map((r) => r.userId);
    this.#members.delete(roomId);
    this.#members.set(roomId, { version, members });
    if (this.#members.size > MEMBER_SETS_CACHED_MAX) {
      const oldest = this.#members.keys().next();
      if (oldest.done !== true) this.#members.delete(oldest.value);
    }
    return members;
  }

  async #insertEntry(c: pg.PoolClient, entry: RoomEntry): Promise<boolean> {
    const n = await this.#sql.changed(
      `INSERT INTO room_entries
         (room_id, seq, kind, sender_user_id, sender_device_id, client_id, body, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (room_id, sender_user_id, sender_device_id, client_id) DO NOTHING`,
      [entry.roomId, entry.seq, entry.kind, entry.senderUserId, entry.senderDeviceId, entry.clientId, entry.body, entry.createdAt],
      c,
    );
    return n === 1;
  }

  async append(roomId: string, input: RoomEntryInput, options: AppendOptions = {}): Promise<AppendResult> {
    const body = bytes(input.body);
    const inserted = await this.#sql.tx(async (c): Promise<{ entry: RoomEntry; members: readonly string[] } | null | Rollback<null>> => {
      // Takes the room row's lock until commit: appends and membership changes of a room queue here.
      const bumped = await this.#sql.one<{ seq: number; version: number }>(
        'UPDATE rooms SET last_seq = last_seq + 1 WHERE room_id = $1 RETURNING last_seq AS seq, members_version AS version',
        [roomId],
        c,
      );
      if (!bumped) throw unknownRoom(roomId);
      const members = await this.membersAt(c, roomId, bumped.version);
      if (options.requireMember === true && !members.includes(input.senderUserId)) throw new NotAMemberError(roomId, input.senderUserId);
      const entry: RoomEntry = {
        roomId,
        seq: bumped.seq,
        kind: input.kind,
        senderUserId: input.senderUserId,
        senderDeviceId: input.senderDeviceId,
        clientId: input.clientId,
        body,
        createdAt: input.createdAt,
      };
      // A repeat: roll back, which also returns the seq we took.
      return (await this.#insertEntry(c, entry)) ? { entry, members } : new Rollback(null);
    });
    if (inserted) return { entry: inserted.entry, duplicate: false, members: inserted.members };
    const existing = await this.#sql.one<EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM room_entries
       WHERE room_id = $1 AND sender_user_id = $2 AND sender_device_id = $3 AND client_id = $4`,
      [roomId, input.senderUserId, input.senderDeviceId, input.clientId],
    );
    // The conflicting row was committed before we got the room lock, and entries are never deleted.
    if (!existing) throw new Error('storage: append conflicted with an entry that is not there');
    return { entry: toEntry(existing), duplicate: true };
  }

  /** Within a membership change's transaction: the next seq (and a new member-set version), and the event. */
  async logMembership(c: pg.PoolClient, roomId: string, event: RoomEntryInput): Promise<{ entry: RoomEntry; version: number }> {
    const bumped = await this.#sql.one<{ seq: number; version: number }>(
      'UPDATE rooms SET last_seq = last_seq + 1, members_version = members_version + 1 WHERE room_id = $1 RETURNING last_seq AS seq, members_version AS version',
      [roomId],
      c,
    );
    if (!bumped) throw unknownRoom(roomId);
    const entry: RoomEntry = { roomId, seq: bumped.seq, ...event, body: bytes(event.body) };
    if (!(await this.#insertEntry(c, entry))) throw new Error('storage: a membership event repeated a client id');
    return { entry, version: bumped.version };
  }

  async readMembershipEvents(roomId: string, afterSeq: number, limit: number): Promise<RoomEntry[]> {
    assertNonNegative(afterSeq, 'afterSeq');
    assertPage(limit);
    const sql = `SELECT ${ENTRY_COLUMNS} FROM room_entries WHERE room_id = $1 AND seq > $2 AND kind <> 'message' ORDER BY seq LIMIT $3`;
    return (await this.#sql.query<EntryRow>(sql, [roomId, afterSeq, limit])).rows.map(toEntry);
  }

  async readAfter(roomId: string, afterSeq: number, limit: number, maxBytes?: number): Promise<RoomEntry[]> {
    assertNonNegative(afterSeq, 'afterSeq');
    assertPage(limit);
    assertMaxBytes(maxBytes);
    return this.#entries('seq > $2', 'ASC', [roomId, afterSeq, limit], maxBytes);
  }

  async readBefore(roomId: string, beforeSeq: number, limit: number, maxBytes?: number): Promise<RoomEntry[]> {
    assertNonNegative(beforeSeq, 'beforeSeq');
    assertPage(limit);
    assertMaxBytes(maxBytes);
    return this.#entries('seq < $2', 'DESC', [roomId, beforeSeq, limit], maxBytes);
  }

  /** A page of the room's log ($1 the room, $3 the limit), up to the entry whose body takes the total to `maxBytes`. */
  async #entries(where: string, order: 'ASC' | 'DESC', params: [string, number, number], maxBytes: number | undefined): Promise<RoomEntry[]> {
    if (maxBytes === undefined) {
      const sql = `SELECT ${ENTRY_COLUMNS} FROM room_entries WHERE room_id = $1 AND ${where} ORDER BY seq ${order} LIMIT $3`;
      return (await this.#sql.query<EntryRow>(sql, params)).rows.map(toEntry);
    }
    // The cut is made in the database, so bodies past it never cross the
    // wire (octet_length reads a TOASTed body's size, not the body).
    const sql =
      `SELECT ${ENTRY_COLUMNS} FROM (` +
      `SELECT *, coalesce(sum(octet_length(body)) OVER (ORDER BY seq ${order} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS bytes_before ` +
      `FROM room_entries WHERE room_id = $1 AND ${where} ORDER BY seq ${order} LIMIT $3` +
      `) page WHERE bytes_before < $4 ORDER BY seq ${order}`;
    return (await this.#sql.query<EntryRow>(sql, [...params, maxBytes])).rows.map(toEntry);
  }

  async lastSeq(roomId: string): Promise<number> {
    return (await this.#sql.one<{ seq: number }>('SELECT last_seq AS seq FROM rooms WHERE room_id = $1', [roomId]))?.seq ?? 0;
  }
}
