/**
 * Rooms in the PostgreSQL store: the `rooms` and `members` tables, the
 * membership changes made in one transaction with their log events
 * (`changeMember`, the owner's hand-over included), and each member's read
 * markers (`read_markers`). Apart from the storage: who is in a room, in
 * which role, is one concept with its own rules; the room log only hands
 * out the seq and the member set.
 *
 * @module
 */
import {
  MEMBER_COLUMNS,
  READ_MARKER_COLUMNS,
  ROOM_COLUMNS,
  ROOM_OF_USER_COLUMNS,
  handOverEvent,
  raisedMarker,
  toMember,
  toReadMarker,
  toRoom,
  toRoomOfUser,
  unknownRoom,
  type MemberRow,
  type ReadMarkerRow,
  type RoomOfUserRow,
  type RoomRow,
} from './_shared.ts';
import { Rollback, type PostgresConnection } from './postgres-connection.ts';
import type { PostgresRoomLog } from './postgres-room-log.ts';
import type { ChangeMemberOptions, Member, MembershipChange, ReadMarker, Role, RoomEntryInput, RoomOfUser, RoomRecord, Storage } from './types.ts';
import type { RoomsPart } from './_composed.ts';

export class PostgresRooms implements RoomsPart, Pick<Storage, 'changeMember'> {
  readonly #sql: PostgresConnection;
  readonly #log: PostgresRoomLog;

  constructor(sql: PostgresConnection, log: PostgresRoomLog) {
    this.#sql = sql;
    this.#log = log;
  }

  async createRoom(room: RoomRecord): Promise<boolean> {
    const sql =
      'INSERT INTO rooms (room_id, kind, created_by, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING';
    return (await this.#sql.changed(sql, [room.roomId, room.kind, room.createdBy, room.createdAt])) === 1;
  }

  async getRoom(roomId: string): Promise<RoomRecord | null> {
    const r = await this.#sql.one<RoomRow>(`SELECT ${ROOM_COLUMNS} FROM rooms WHERE room_id = $1`, [roomId]);
    return r ? toRoom(r) : null;
  }

  // Both bump members_version in the same statement (see PostgresRoomLog.membersAt).
  async setMember(roomId: string, member: Member): Promise<void> {
    await this.#sql.query(
      `WITH up AS (
         INSERT INTO members (room_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (room_id, user_id) DO UPDATE SET role = excluded.role RETURNING 1)
       UPDATE rooms SET members_version = members_version + 1 WHERE room_id = $1 AND EXISTS (SELECT 1 FROM up)`,
      [roomId, member.userId, member.role],
    );
  }

  async removeMember(roomId: string, userId: string): Promise<boolean> {
    const r = await this.#sql.one<{ n: number }>(
      `WITH del AS (DELETE FROM members WHERE room_id = $1 AND user_id = $2 RETURNING 1),
            bump AS (UPDATE rooms SET members_version = members_version + 1 WHERE room_id = $1 AND EXISTS (SELECT 1 FROM del))
       SELECT count(*)::int AS n FROM del`,
      [roomId, userId],
    );
    return r?.n === 1;
  }

  async getMember(roomId: string, userId: string): Promise<Member | null> {
    const sql = `SELECT ${MEMBER_COLUMNS} FROM members WHERE room_id = $1 AND user_id = $2`;
    const r = await this.#sql.one<MemberRow>(sql, [roomId, userId]);
    return r ? toMember(r) : null;
  }

  async listMembers(roomId: string): Promise<Member[]> {
    const sql = `SELECT ${MEMBER_COLUMNS} FROM members WHERE room_id = $1 ORDER BY user_id`;
    return (await this.#sql.query<MemberRow>(sql, [roomId])).rows.map(toMember);
  }

  async listRoomsOf(userId: string): Promise<RoomOfUser[]> {
    const sql = `SELECT ${ROOM_OF_USER_COLUMNS}, r.last_seq AS "lastSeq"
      FROM members m JOIN rooms r ON r.room_id = m.room_id WHERE m.user_id = $1 ORDER BY r.room_id`;
    return (await this.#sql.query<RoomOfUserRow>(sql, [userId])).rows.map(toRoomOfUser);
  }

  async countRoomsOf(userId: string): Promise<number> {
    return this.#sql.count('SELECT count(*) AS n FROM members WHERE user_id = $1', [userId]);
  }

  async changeMember(roomId: string, userId: string, expected: Role | null, role: Role | null, event: RoomEntryInput, options: ChangeMemberOptions = {}): Promise<MembershipChange | null> {
    if (expected === role) throw new RangeError('changeMember: expected and new role are the same');
    return this.#sql.tx(async (c): Promise<MembershipChange | Rollback<null>> => {
      const locked = await this.#sql.one<{ seq: number }>('SELECT last_seq AS seq FROM rooms WHERE room_id = $1 FOR UPDATE', [roomId], c);
      if (!locked) throw unknownRoom(roomId);
      const roleOf = async (u: string): Promise<Role | null> =>
        (await this.#sql.one<{ role: Role }>('SELECT role FROM members WHERE room_id = $1 AND user_id = $2', [roomId, u], c))?.role ?? null;
      if ((await roleOf(userId)) !== expected) return new Rollback(null);
      if (options.actorRole !== undefined && event.senderUserId !== userId && (await roleOf(event.senderUserId)) !== options.actorRole) return new Rollback(null);
      if (role === null) await this.#sql.query('DELETE FROM members WHERE room_id = $1 AND user_id = $2', [roomId, userId], c);
      else if (expected === null) await this.#sql.query('INSERT INTO members (room_id, user_id, role) VALUES ($1, $2, $3)', [roomId, userId, role], c);
      else await this.#sql.query('UPDATE members SET role = $3 WHERE room_id = $1 AND user_id = $2', [roomId, userId, role], c);
      const logged = await this.#log.logMembership(c, roomId, event);
      const entry = logged.entry;
      let version = logged.version;
      let handedOver: MembershipChange['handedOver'];
      if (options.handOver === true && role === null && expected === 'owner') {
        const rest = (await this.#sql.query<MemberRow>(`SELECT ${MEMBER_COLUMNS} FROM members WHERE room_id = $1 ORDER BY user_id`, [roomId], c)).rows.map(toMember);
        const heir = rest.some((m) => m.role === 'owner') ? undefined : (rest.find((m) => m.role === 'admin') ?? rest[0]);
        if (heir !== undefined) {
          await this.#sql.query("UPDATE members SET role = 'owner' WHERE room_id = $1 AND user_id = $2", [roomId, heir.userId], c);
          const heirLogged = await this.#log.logMembership(c, roomId, handOverEvent(event, heir.userId));
          version = heirLogged.version;
          handedOver = { userId: heir.userId, entry: heirLogged.entry };
        }
      }
      return { entry, members: await this.#log.membersAt(c, roomId, version), ...(handedOver !== undefined && { handedOver }) };
    });
  }

  async setReceipt(roomId: string, userId: string, kind: 'delivered' | 'read', seq: number, at: number): Promise<{ marker: ReadMarker; changed: boolean }> {
    return this.#sql.tx(async (c) => {
      // Make sure the row exists, then lock it: concurrent receipts of one
      // member are applied one after the other and never lower a marker.
      await this.#sql.query(
        `INSERT INTO read_markers (room_id, user_id, delivered_seq, read_seq, updated_at) VALUES ($1, $2, 0, 0, $3)
         ON CONFLICT (room_id, user_id) DO NOTHING`,
        [roomId, userId, at], c,
      );
      const prev = await this.#sql.one<ReadMarkerRow>(`SELECT ${READ_MARKER_COLUMNS} FROM read_markers WHERE room_id = $1 AND user_id = $2 FOR UPDATE`, [roomId, userId], c);
      const prevMarker = prev === undefined ? undefined : toReadMarker(prev);
      // A row just created above counts as no marker before.
      const next = raisedMarker(prevMarker !== undefined && (prevMarker.delivered > 0 || prevMarker.read > 0) ? prevMarker : undefined, userId, kind, seq, at);
      if (next.changed) {
        await this.#sql.query(
          'UPDATE read_markers SET delivered_seq = $3, read_seq = $4, updated_at = $5 WHERE room_id = $1 AND user_id = $2',
          [roomId, userId, next.marker.delivered, next.marker.read, next.marker.updatedAt], c,
        );
      }
      return next;
    });
  }

  async listReceipts(roomId: string): Promise<ReadMarker[]> {
    const sql = `SELECT ${READ_MARKER_COLUMNS} FROM read_markers WHERE room_id = $1 AND (delivered_seq > 0 OR read_seq > 0) ORDER BY user_id`;
    return (await this.#sql.query<ReadMarkerRow>(sql, [roomId])).rows.map(toReadMarker);
  }
}
