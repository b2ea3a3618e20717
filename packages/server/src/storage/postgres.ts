/**
 * The production storage backend: PostgreSQL through node-postgres (`pg`),
 * with a connection pool, the same schema as SQLite (`_schema.ts`), and
 * READ COMMITTED transactions made safe by explicit row locks:
 *
 * - Room log: `UPDATE rooms SET last_seq = last_seq + 1 … RETURNING` takes
 *   the room row's lock and hands out the next seq inside the transaction
 *   that inserts the entry. Appends to one room therefore run one after
 *   another, each commits before the next gets its seq, and a rollback
 *   returns the seq with it: gap-free, and entry n+1 is never visible
 *   before entry n. The unique index (room, sender user, sender device,
 *   client id) with `ON CONFLICT DO NOTHING` turns a repeat into a rollback
 *   and a read of the stored entry.
 * - Mailbox: the recipient device's `mailbox_counters` row plays the same
 *   role, so the fullness check, the id and the insert are one critical
 *   section per device.
 * - Claims: `DELETE … WHERE id = (SELECT … LIMIT 1 FOR UPDATE SKIP LOCKED)
 *   RETURNING`: each concurrent claimer locks a different row and deletes
 *   it, so a prekey or KeyPackage is handed out exactly once; a claimer
 *   that finds every remaining row locked gets null (they are all taken).
 * - Refresh tokens: `DELETE … RETURNING` on the primary key; a second,
 *   concurrent delete waits for the first and then finds nothing.
 *
 * `PostgresStorage` holds no logic of its own: each call runs in its own
 * transaction, so nothing needs coordinating across parts. It is the
 * parts — accounts, key directory, rooms, room log, mailbox, blobs
 * (postgres-*.ts), each over the same pool (`PostgresConnection`,
 * postgres-connection.ts) — composed as `ComposedStorage` (_composed.ts)
 * routes every method, with appends and membership changes handed to the
 * room log and rooms.
 *
 * @module
 */

import { ComposedStorage } from './_composed.ts';
import { PostgresConnection, type PostgresOptions } from './postgres-connection.ts';
import { PostgresAccounts } from './postgres-accounts.ts';
import { PostgresKeyDirectory } from './postgres-key-directory.ts';
import { PostgresRooms } from './postgres-rooms.ts';
import { PostgresRoomLog } from './postgres-room-log.ts';
import { PostgresMailbox } from './postgres-mailbox.ts';
import { PostgresBlobs } from './postgres-blobs.ts';
import type { AppendOptions, AppendResult, ChangeMemberOptions, MembershipChange, Role, RoomEntryInput, Storage } from './types.ts';

export { IDLE_IN_TRANSACTION_TIMEOUT_MS, LOCK_TIMEOUT_MS, STATEMENT_TIMEOUT_MS, type PostgresOptions } from './postgres-connection.ts';

export class PostgresStorage extends ComposedStorage implements Storage {
  /** Concurrent transactions may commit out of call order: the server serialises appends per room. */
  readonly appendsInCallOrder = false;
  readonly #sql: PostgresConnection;
  readonly #log: PostgresRoomLog;
  readonly #rooms: PostgresRooms;

  constructor(options: PostgresOptions) {
    const sql = new PostgresConnection(options);
    const log = new PostgresRoomLog(sql);
    const rooms = new PostgresRooms(sql, log);
    super({ accounts: new PostgresAccounts(sql), keys: new PostgresKeyDirectory(sql), rooms, log, mailbox: new PostgresMailbox(sql), blobs: new PostgresBlobs(sql) });
    this.#sql = sql;
    this.#log = log;
    this.#rooms = rooms;
  }

  migrate(): Promise<void> {
    return this.#sql.migrate();
  }

  close(): Promise<void> {
    return this.#sql.close();
  }

  /**
   * Hold the process lock of this database (and schema) while open: `sole`
   * for a process without a fan-out broker, which must be the only one (it
   * caches members and delivers to its own clients only), `shared` for
   * processes that share rooms through Redis. False if refused.
   */
  holdProcessLock(mode: 'sole' | 'shared'): Promise<boolean> {
    return this.#sql.holdProcessLock(mode);
  }

  append(roomId: string, input: RoomEntryInput, options: AppendOptions = {}): Promise<AppendResult> {
    return this.#log.append(roomId, input, options);
  }

  changeMember(roomId: string, userId: string, expected: Role | null, role: Role | null, event: RoomEntryInput, options: ChangeMemberOptions = {}): Promise<MembershipChange | null> {
    return this.#rooms.changeMember(roomId, userId, expected, role, event, options);
  }
}
