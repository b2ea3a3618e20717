/**
 * The room log of the SQLite store (`room_log`, migration 9): one entry
 * appended inside the writer's batch (`SqliteStorage`'s group commit), and
 * entries read back (`readAfter`, `readBefore`, membership events,
 * `lastSeq`). Apart from the storage: the per-room seq counters and the
 * dedupe probe are the log's own, whoever batches the appends.
 *
 * One INSERT per entry and nothing else: the next seq comes from an
 * in-memory counter per room (on first use, the larger of `rooms.last_seq`
 * and the log's max(seq) — entries are never removed, so the log itself is
 * the counter's durable form and `rooms.last_seq`, PostgreSQL's counter,
 * is not kept up to date here), and a repeated client id is found by the
 * probe of the dedupe digest before it (then the stored entry is returned).
 *
 * The counters assume this process is the file's only writer (one
 * `parley serve` per data directory); if another writer took seqs
 * meanwhile, the INSERT hits the (room, seq) index, the counter is reloaded and
 * the entry retried once — never a gap or a reused seq.
 *
 * @module
 */
import { assertMaxBytes, assertNonNegative, assertPage, bytes, toEntry, unknownRoom, type EntryRow } from './_shared.ts';
import type { Param, SqliteConnection } from './sqlite-connection.ts';
import { dedupeDigest } from './sqlite-dedupe.ts';
import type { AppendResult, RoomEntry, RoomEntryInput } from './types.ts';
import type { RoomLogPart } from './_composed.ts';

/** A room entry read from `room_log` (alias e) joined to its room (alias r). */
const LOG_COLUMNS =
  'r.room_id AS "roomId", e.seq, e.kind, e.sender_user_id AS "senderUserId", e.sender_device_id AS "senderDeviceId", ' +
  'e.client_id AS "clientId", e.body, e.created_at AS "createdAt"';
/** The log of the room whose id is the first parameter. */
const LOG_OF_ROOM = 'FROM rooms r JOIN room_log e ON e.room = r.log_no WHERE r.room_id = ?';
/** The log of the room whose number (`rooms.log_no`) is the first parameter. */
const LOG_OF_NO = 'FROM room_log e JOIN rooms r ON r.log_no = e.room WHERE e.room = ?';
/** An append's two statements, built once: the statement cache is looked up by this text on every append. */
const DEDUPE_PROBE = `SELECT ${LOG_COLUMNS} ${LOG_OF_NO} AND e.dedupe = ?`;
const INSERT_ENTRY = 'INSERT INTO room_log (room, seq, dedupe, kind, sender_user_id, sender_device_id, client_id, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)';

export class SqliteRoomLog implements RoomLogPart {
  readonly #sql: SqliteConnection;
  /** Per room in use: its `rooms.log_no` (never changes) and the seq counter. */
  readonly #logs = new Map<string, { no: number; lastSeq: number }>();

  constructor(sql: SqliteConnection) {
    this.#sql = sql;
  }

  /** The room's seq counter, if the room is in use here (undefined: read the database). */
  cachedLastSeq(roomId: string): number | undefined {
    return this.#logs.get(roomId)?.lastSeq;
  }

  /** Drop the room's counter (its batch did not commit): reloaded from the database on next use. */
  forget(roomId: string): void {
    this.#logs.delete(roomId);
  }

  #loadLog(roomId: string): { no: number; lastSeq: number } {
    const row = this.#sql.get<{ seq: number; logNo: number }>('SELECT last_seq AS seq, log_no AS "logNo" FROM rooms WHERE room_id = ?', roomId);
    if (row === undefined) throw unknownRoom(roomId);
    // The log's max(seq) is the durable counter here; rooms.last_seq (written
    // by PostgreSQL, and by SQLite before it stopped keeping it) can only be behind.
    const max = this.#sql.get<{ seq: number | null }>('SELECT max(seq) AS seq FROM room_log WHERE room = ?', row.logNo)?.seq ?? 0;
    const log = { no: row.logNo, lastSeq: Math.max(row.seq, max) };
    this.#logs.set(roomId, log);
    return log;
  }

  /** Append one entry, or find it already there (same sender device and client id); inside the caller's transaction. */
  appendOne(roomId: string, input: RoomEntryInput, retried = false): AppendResult {
    const log = this.#logs.get(roomId) ?? this.#loadLog(roomId);
    const entry: RoomEntry = {
      roomId,
      seq: log.lastSeq + 1,
      kind: input.kind,
      senderUserId: input.senderUserId,
      senderDeviceId: input.senderDeviceId,
      clientId: input.clientId,
      body: bytes(input.body),
      createdAt: input.createdAt,
    };
    const logNo = log.no;
    // A repeat is found through the dedupe digest, and decided by the ids
    // (sqlite-dedupe.ts). A separate probe, then a plain INSERT: cheaper in
    // SQLite than one INSERT … WHERE NOT EXISTS (bench/room-log.bench.mjs).
    const dedupe = dedupeDigest(input.senderUserId, input.senderDeviceId, input.clientId);
    const candidates = this.#sql.all<EntryRow>(DEDUPE_PROBE, logNo, dedupe);
    for (const c of candidates) {
      if (c.senderUserId === input.senderUserId && c.senderDeviceId === input.senderDeviceId && c.clientId === input.clientId) {
        return { entry: toEntry(c), duplicate: true };
      }
    }
    try {
      this.#sql.run(INSERT_ENTRY, logNo, entry.seq, dedupe, entry.kind, entry.senderUserId, entry.senderDeviceId, entry.clientId, entry.body, entry.createdAt);
    } catch (e) {
      if (retried || (e as { code?: unknown }).code !== 'SQLITE_CONSTRAINT_UNIQUE') throw e;
      this.#loadLog(roomId);
      return this.appendOne(roomId, input, true);
    }
    log.lastSeq = entry.seq;
    return { entry, duplicate: false };
  }

  async readMembershipEvents(roomId: string, afterSeq: number, limit: number): Promise<RoomEntry[]> {
    assertNonNegative(afterSeq, 'afterSeq');
    assertPage(limit);
    const sql = `SELECT ${LOG_COLUMNS} ${LOG_OF_ROOM} AND e.seq > ? AND e.kind <> 'message' ORDER BY e.seq LIMIT ?`;
    return this.#sql.all<EntryRow>(sql, roomId, afterSeq, limit).map(toEntry);
  }

  async readAfter(roomId: string, afterSeq: number, limit: number, maxBytes?: number): Promise<RoomEntry[]> {
    assertNonNegative(afterSeq, 'afterSeq');
    assertPage(limit);
    assertMaxBytes(maxBytes);
    const sql = `SELECT ${LOG_COLUMNS} ${LOG_OF_ROOM} AND e.seq > ? ORDER BY e.seq LIMIT ?`;
    return this.#entries(sql, maxBytes, roomId, afterSeq, limit);
  }

  async readBefore(roomId: string, beforeSeq: number, limit: number, maxBytes?: number): Promise<RoomEntry[]> {
    assertNonNegative(beforeSeq, 'beforeSeq');
    assertPage(limit);
    assertMaxBytes(maxBytes);
    const sql = `SELECT ${LOG_COLUMNS} ${LOG_OF_ROOM} AND e.seq < ? ORDER BY e.seq DESC LIMIT ?`;
    return this.#entries(sql, maxBytes, roomId, beforeSeq, limit);
  }

  /** The entries `sql` selects, up to the one whose body takes their total to `maxBytes`. */
  #entries(sql: string, maxBytes: number | undefined, ...params: Param[]): RoomEntry[] {
    if (maxBytes === undefined) return this.#sql.all<EntryRow>(sql, ...params).map(toEntry);
    const out: RoomEntry[] = [];
    let bytes = 0;
    // Row by row, so the rows past the cut (and their bodies) are never read:
    // this read runs on the event loop.
    for (const row of this.#sql.stmt(sql).iterate(...params) as IterableIterator<EntryRow>) {
      out.push(toEntry(row));
      bytes += row.body.byteLength;
      if (bytes >= maxBytes) break;
    }
    return out;
  }

  async lastSeq(roomId: string): Promise<number> {
    const cached = this.#logs.get(roomId)?.lastSeq;
    if (cached !== undefined) return cached;
    // The log is the counter's durable form (entries are never removed); the (room, seq) index answers this.
    return this.#sql.get<{ seq: number | null }>(`SELECT max(e.seq) AS seq ${LOG_OF_ROOM}`, roomId)?.seq ?? 0;
  }
}
