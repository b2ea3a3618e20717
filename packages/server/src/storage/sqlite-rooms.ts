/**
 * Rooms in the SQLite store: the `rooms` and `members` tables, the
 * membership changes that the writer's batch applies together with their
 * log events (`changeMemberNow`, the owner's hand-over included), and each
 * member's read markers (`read_markers`). Apart from the storage: who is in
 * a room, in which role, is one concept with its own rules, and the batch
 * only decides when a change runs.
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
import type { SqliteConnection } from './sqlite-connection.ts';
import type { SqliteRoomLog } from './sqlite-room-log.ts';
import type { ChangeMemberOptions, Member, MembershipChange, ReadMarker, Role, RoomEntry, RoomEntryInput, RoomOfUser, RoomRecord } from './types.ts';
import type { RoomsPart } from './_composed.ts';

export class SqliteRooms implements RoomsPart {
  readonly #sql: SqliteConnection;
  readonly #log: SqliteRoomLog;

  constructor(sql: SqliteConnection, log: SqliteRoomLog) {
    this.#sql = sql;
    this.#log = log;
  }

  async createRoom(room: RoomRecord): Promise<boolean> {
    // log_no: the room's number in room_log (one writer per file, so max + 1 is not raced).
    const sql = `INSERT INTO rooms (room_id, kind, created_by, created_at, log_no)
      VALUES (?, ?, ?, ?, (SELECT coalesce(max(log_no), 0) + 1 FROM rooms)) ON CONFLICT DO NOTHING`;
    return this.#sql.run(sql, room.roomId, room.kind, room.createdBy, room.createdAt) === 1;
  }

  async getRoom(roomId: string): Promise<RoomRecord | null> {
    const r = this.#sql.get<RoomRow>(`SELECT ${ROOM_COLUMNS} FROM rooms WHERE room_id = ?`, roomId);
    return r ? toRoom(r) : null;
  }

  async setMember(roomId: string, member: Member): Promise<void> {
    this.#sql.tx(() => {
      this.#sql.run(
        `INSERT INTO members (room_id, user_id, role) VALUES (?, ?, ?)
         ON CONFLICT (room_id, user_id) DO UPDATE SET role = excluded.role`,
        roomId, member.userId, member.role,
      );
      this.#sql.run('UPDATE rooms SET members_version = members_version + 1 WHERE room_id = ?', roomId);
    });
  }

  async removeMember(roomId: string, userId: string): Promise<boolean> {
    return this.#sql.tx(() => {
      const removed = this.#sql.run('DELETE FROM members WHERE room_id = ? AND user_id = ?', roomId, userId) === 1;
      if (removed) this.#sql.run('UPDATE rooms SET members_version = members_version + 1 WHERE room_id = ?', roomId);
      return removed;
    });
  }

  async getMember(roomId: string, userId: string): Promise<Member | null> {
    const sql = `SELECT ${MEMBER_COLUMNS} FROM members WHERE room_id = ? AND user_id = ?`;
    const r = this.#sql.get<MemberRow>(sql, roomId, userId);
    return r ? toMember(r) : null;
  }

  async listMembers(roomId: string): Promise<Member[]> {
    const sql = `SELECT ${MEMBER_COLUMNS} FROM members WHERE room_id = ? ORDER BY user_id`;
    return this.#sql.all<MemberRow>(sql, roomId).map(toMember);
  }

  async listRoomsOf(userId: string): Promise<RoomOfUser[]> {
    // The log's max(seq) per room (the (room, seq) index answers it), as lastSeq() reads it.
    const sql = `SELECT ${ROOM_OF_USER_COLUMNS},
        max(r.last_seq, coalesce((SELECT max(e.seq) FROM room_log e WHERE e.room = r.log_no), 0)) AS "lastSeq"
      FROM members m JOIN rooms r ON r.room_id = m.room_id WHERE m.user_id = ? ORDER BY r.room_id`;
    return this.#sql.all<RoomOfUserRow>(sql, userId).map((row) => {
      const room = toRoomOfUser(row);
      const cached = this.#log.cachedLastSeq(room.roomId);
      return cached !== undefined && cached > room.lastSeq ? { ...room, lastSeq: cached } : room;
    });
  }

  async countRoomsOf(userId: string): Promise<number> {
    return this.#sql.count('SELECT count(*) AS n FROM members WHERE user_id = ?', userId);
  }

  /**
   * Make a membership change (`Storage.changeMember`) and log its event,
   * inside the writer's batch: null if a role it was decided against has
   * changed since.
   */
  changeMemberNow(roomId: string, change: { userId: string; expected: Role | null; role: Role | null; options: ChangeMemberOptions }, event: RoomEntryInput): MembershipChange | null {
    const roleOf = (u: string): Role | null => this.#sql.get<{ role: Role }>('SELECT role FROM members WHERE room_id = ? AND user_id = ?', roomId, u)?.role ?? null;
    if (roleOf(change.userId) !== change.expected) return null;
    const { actorRole, handOver } = change.options;
    if (actorRole !== undefined && event.senderUserId !== change.userId && roleOf(event.senderUserId) !== actorRole) return null;
    if (this.#sql.get<{ one: number }>('SELECT 1 AS one FROM rooms WHERE room_id = ?', roomId) === undefined) throw unknownRoom(roomId);
    if (change.role === null) this.#sql.run('DELETE FROM members WHERE room_id = ? AND user_id = ?', roomId, change.userId);
    else if (change.expected === null) this.#sql.run('INSERT INTO members (room_id, user_id, role) VALUES (?, ?, ?)', roomId, change.userId, change.role);
    else this.#sql.run('UPDATE members SET role = ? WHERE room_id = ? AND user_id = ?', change.role, roomId, change.userId);
    const entry = this.#logMembership(roomId, event);
    let handedOver: MembershipChange['handedOver'];
    if (handOver === true && change.role === null && change.expected === 'owner') {
      const rest = this.#sql.all<MemberRow>(`SELECT ${MEMBER_COLUMNS} FROM members WHERE room_id = ? ORDER BY user_id`, roomId).map(toMember);
      const heir = rest.some((m) => m.role === 'owner') ? undefined : (rest.find((m) => m.role === 'admin') ?? rest[0]);
      if (heir !== undefined) {
        this.#sql.run("UPDATE members SET role = 'owner' WHERE room_id = ? AND user_id = ?", roomId, heir.userId);
        handedOver = { userId: heir.userId, entry: this.#logMembership(roomId, handOverEvent(event, heir.userId)) };
      }
    }
    const members = this.#sql.all<{ userId: string }>('SELECT user_id AS "userId" FROM members WHERE room_id = ? ORDER BY user_id', roomId).map((r) => r.userId);
    return { entry, members, ...(handedOver !== undefined && { handedOver }) };
  }

  #logMembership(roomId: string, event: RoomEntryInput): RoomEntry {
    this.#sql.run('UPDATE rooms SET members_version = members_version + 1 WHERE room_id = ?', roomId);
    const { entry, duplicate } = this.#log.appendOne(roomId, event);
    if (duplicate) throw new Error('storage: a membership event repeated a client id');
    return entry;
  }

  async setReceipt(roomId: string, userId: string, kind: 'delivered' | 'read', seq: number, at: number): Promise<{ marker: ReadMarker; changed: boolean }> {
    return this.#sql.tx(() => {
      const prev = this.#sql.get<ReadMarkerRow>(`SELECT ${READ_MARKER_COLUMNS} FROM read_markers WHERE room_id = ? AND user_id = ?`, roomId, userId);
      const next = raisedMarker(prev === undefined ? undefined : toReadMarker(prev), userId, kind, seq, at);
      if (next.changed) {
        this.#sql.run(
          `INSERT INTO read_markers (room_id, user_id, delivered_seq, read_seq, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (room_id, user_id) DO UPDATE
           SET delivered_seq = excluded.delivered_seq, read_seq = excluded.read_seq, updated_at = excluded.updated_at`,
          roomId, userId, next.marker.delivered, next.marker.read, next.marker.updatedAt,
        );
      }
      return next;
    });
  }

  async listReceipts(roomId: string): Promise<ReadMarker[]> {
    const sql = `SELECT ${READ_MARKER_COLUMNS} FROM read_markers WHERE room_id = ? ORDER BY user_id`;
    return this.#sql.all<ReadMarkerRow>(sql, roomId).map(toReadMarker);
  }
}
