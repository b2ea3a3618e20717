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
 * @module
 */

import { SqliteConnection } from './sqlite-connection.ts';
import { SqliteRoomLog } from './sqlite-room-log.ts';
import { SqliteRooms } from './sqlite-rooms.ts';
import { SqliteBlobs } from './sqlite-blobs.ts';
import { SqliteMailbox } from './sqlite-mailbox.ts';
import { SqliteKeyDirectory } from './sqlite-key-directory.ts';
import {
  DEVICE_COLUMNS,
  REFRESH_TOKEN_COLUMNS,
  USER_COLUMNS,
  bytes,
  toDevice,
  toRefreshToken,
  toUser,
  type DeviceRow,
  type UserRow,
} from './_shared.ts';
import { NotAMemberError } from './types.ts';
import type {
  AppendOptions,
  ChangeMemberOptions,
  AppendResult,
  MembershipChange,
  Role,
  DeviceRecord,
  KeyPackage,
  MailboxEntry,
  MailboxEnqueued,
  MailboxInput,
  Member,
  OneTimePrekey,
  KeyBackupRecord,
  BlobCutoffs,
  BlobRecord,
  PqPrekey,
  ReadMarker,
  RefreshTokenRecord,
  RoomEntry,
  RoomEntryInput,
  RoomOfUser,
  RoomRecord,
  SignedPrekey,
  Storage,
  UserRecord,
} from './types.ts';

export { SQLITE_FILE_NAME } from './sqlite-connection.ts';

export class SqliteStorage implements Storage {
  readonly #sql: SqliteConnection;
  readonly #log: SqliteRoomLog;
  readonly #rooms: SqliteRooms;
  readonly #blobs: SqliteBlobs;
  readonly #mailbox: SqliteMailbox;
  readonly #keys: SqliteKeyDirectory;

  /** Opens (creating if needed) `dir/parley.db` as a `role` connection (`SqliteConnection`). Call `migrate()` before anything else. */
  constructor(dir: string, options: { role?: 'writer' | 'reader' } = {}) {
    this.#sql = new SqliteConnection(dir, options);
    this.#log = new SqliteRoomLog(this.#sql);
    this.#rooms = new SqliteRooms(this.#sql, this.#log);
    this.#blobs = new SqliteBlobs(this.#sql);
    this.#mailbox = new SqliteMailbox(this.#sql);
    this.#keys = new SqliteKeyDirectory(this.#sql);
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

  // ---- users and devices ----

  async createUser(user: UserRecord): Promise<boolean> {
    const sql = 'INSERT INTO users (user_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING';
    return this.#sql.run(sql, user.userId, user.createdAt) === 1;
  }

  async getUser(userId: string): Promise<UserRecord | null> {
    const r = this.#sql.get<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE user_id = ?`, userId);
    return r ? toUser(r) : null;
  }

  async addDevice(d: DeviceRecord): Promise<boolean> {
    const sql =
      'INSERT INTO devices (user_id, device_id, identity_key, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING';
    return this.#sql.run(sql, d.userId, d.deviceId, d.identityKey, d.createdAt) === 1;
  }

  async getDevice(userId: string, deviceId: string): Promise<DeviceRecord | null> {
    const sql = `SELECT ${DEVICE_COLUMNS} FROM devices WHERE user_id = ? AND device_id = ?`;
    const r = this.#sql.get<DeviceRow>(sql, userId, deviceId);
    return r ? toDevice(r) : null;
  }

  async listDevices(userId: string): Promise<DeviceRecord[]> {
    const sql = `SELECT ${DEVICE_COLUMNS} FROM devices WHERE user_id = ? ORDER BY device_id`;
    return this.#sql.all<DeviceRow>(sql, userId).map(toDevice);
  }

  // ---- key directory (sqlite-key-directory.ts) ----

  setSignedPrekey(userId: string, deviceId: string, p: SignedPrekey): Promise<void> {
    return this.#keys.setSignedPrekey(userId, deviceId, p);
  }

  getSignedPrekey(userId: string, deviceId: string): Promise<SignedPrekey | null> {
    return this.#keys.getSignedPrekey(userId, deviceId);
  }

  addOneTimePrekeys(userId: string, deviceId: string, prekeys: readonly OneTimePrekey[]): Promise<number> {
    return this.#keys.addOneTimePrekeys(userId, deviceId, prekeys);
  }

  countOneTimePrekeys(userId: string, deviceId: string): Promise<number> {
    return this.#keys.countOneTimePrekeys(userId, deviceId);
  }

  claimOneTimePrekey(userId: string, deviceId: string): Promise<OneTimePrekey | null> {
    return this.#keys.claimOneTimePrekey(userId, deviceId);
  }

  setPqPrekey(userId: string, deviceId: string, p: PqPrekey): Promise<void> {
    return this.#keys.setPqPrekey(userId, deviceId, p);
  }

  getPqPrekey(userId: string, deviceId: string): Promise<PqPrekey | null> {
    return this.#keys.getPqPrekey(userId, deviceId);
  }

  addKeyPackages(userId: string, deviceId: string, packages: readonly KeyPackage[]): Promise<number> {
    return this.#keys.addKeyPackages(userId, deviceId, packages);
  }

  countKeyPackages(userId: string, deviceId: string): Promise<number> {
    return this.#keys.countKeyPackages(userId, deviceId);
  }

  claimKeyPackage(userId: string, deviceId: string): Promise<KeyPackage | null> {
    return this.#keys.claimKeyPackage(userId, deviceId);
  }

  // ---- rooms and membership (sqlite-rooms.ts) ----

  createRoom(room: RoomRecord): Promise<boolean> {
    return this.#rooms.createRoom(room);
  }

  getRoom(roomId: string): Promise<RoomRecord | null> {
    return this.#rooms.getRoom(roomId);
  }

  setMember(roomId: string, member: Member): Promise<void> {
    return this.#rooms.setMember(roomId, member);
  }

  removeMember(roomId: string, userId: string): Promise<boolean> {
    return this.#rooms.removeMember(roomId, userId);
  }

  getMember(roomId: string, userId: string): Promise<Member | null> {
    return this.#rooms.getMember(roomId, userId);
  }

  listMembers(roomId: string): Promise<Member[]> {
    return this.#rooms.listMembers(roomId);
  }

  listRoomsOf(userId: string): Promise<RoomOfUser[]> {
    return this.#rooms.listRoomsOf(userId);
  }

  countRoomsOf(userId: string): Promise<number> {
    return this.#rooms.countRoomsOf(userId);
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

  readMembershipEvents(roomId: string, afterSeq: number, limit: number): Promise<RoomEntry[]> {
    return this.#log.readMembershipEvents(roomId, afterSeq, limit);
  }

  readAfter(roomId: string, afterSeq: number, limit: number, maxBytes?: number): Promise<RoomEntry[]> {
    return this.#log.readAfter(roomId, afterSeq, limit, maxBytes);
  }

  readBefore(roomId: string, beforeSeq: number, limit: number, maxBytes?: number): Promise<RoomEntry[]> {
    return this.#log.readBefore(roomId, beforeSeq, limit, maxBytes);
  }

  lastSeq(roomId: string): Promise<number> {
    return this.#log.lastSeq(roomId);
  }

  // ---- per-device mailbox (sqlite-mailbox.ts) ----

  enqueueMailbox(userId: string, deviceId: string, input: MailboxInput, max: number): Promise<MailboxEnqueued | null> {
    return this.#mailbox.enqueueMailbox(userId, deviceId, input, max);
  }

  readMailbox(userId: string, deviceId: string, afterId: number, limit: number): Promise<MailboxEntry[]> {
    return this.#mailbox.readMailbox(userId, deviceId, afterId, limit);
  }

  ackMailbox(userId: string, deviceId: string, upToId: number): Promise<number> {
    return this.#mailbox.ackMailbox(userId, deviceId, upToId);
  }

  // ---- refresh tokens ----

  async putRefreshToken(r: RefreshTokenRecord): Promise<void> {
    this.#sql.run(
      'INSERT INTO refresh_tokens (token_hash, user_id, device_id, expires_at) VALUES (?, ?, ?, ?)',
      r.tokenHash, r.userId, r.deviceId, r.expiresAt,
    );
  }

  async takeRefreshToken(tokenHash: string): Promise<RefreshTokenRecord | null> {
    const sql = `DELETE FROM refresh_tokens WHERE token_hash = ? RETURNING ${REFRESH_TOKEN_COLUMNS}`;
    const r = this.#sql.get<RefreshTokenRecord>(sql, tokenHash);
    return r ? toRefreshToken(r) : null;
  }

  async deleteRefreshTokensOf(userId: string, deviceId: string): Promise<number> {
    return this.#sql.run('DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?', userId, deviceId);
  }

  // ---- read markers (sqlite-rooms.ts) ----

  setReceipt(roomId: string, userId: string, kind: 'delivered' | 'read', seq: number, at: number): Promise<{ marker: ReadMarker; changed: boolean }> {
    return this.#rooms.setReceipt(roomId, userId, kind, seq, at);
  }

  listReceipts(roomId: string): Promise<ReadMarker[]> {
    return this.#rooms.listReceipts(roomId);
  }

  // ---- key backup ----

  async putKeyBackup(userId: string, r: KeyBackupRecord): Promise<void> {
    this.#sql.run(
      `INSERT INTO key_backups (user_id, backup, auth_hash, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id) DO UPDATE SET backup = excluded.backup, auth_hash = excluded.auth_hash, updated_at = excluded.updated_at`,
      userId, r.backup, r.authHash, r.updatedAt,
    );
  }

  async getKeyBackup(userId: string): Promise<KeyBackupRecord | null> {
    const sql = 'SELECT backup, auth_hash AS "authHash", updated_at AS "updatedAt" FROM key_backups WHERE user_id = ?';
    const r = this.#sql.get<{ backup: Uint8Array; authHash: Uint8Array | null; updatedAt: number }>(sql, userId);
    return r ? { backup: bytes(r.backup), authHash: r.authHash === null ? null : bytes(r.authHash), updatedAt: r.updatedAt } : null;
  }

  // ---- server secrets ----

  async serverSecret(name: string, initial: Uint8Array): Promise<Uint8Array> {
    return this.#sql.tx(() => {
      this.#sql.run('INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', name, initial);
      const row = this.#sql.get<{ value: Uint8Array }>('SELECT value FROM server_secrets WHERE name = ?', name);
      if (row === undefined) throw new Error(`storage: server secret ${name} vanished`);
      return bytes(row.value);
    });
  }

  // ---- blobs (sqlite-blobs.ts) ----

  createBlob(b: Omit<BlobRecord, 'complete' | 'completedAt'>): Promise<void> {
    return this.#blobs.createBlob(b);
  }

  getBlob(blobId: string): Promise<BlobRecord | null> {
    return this.#blobs.getBlob(blobId);
  }

  putBlobChunk(blobId: string, index: number, data: Uint8Array): Promise<boolean> {
    return this.#blobs.putBlobChunk(blobId, index, data);
  }

  countBlobChunks(blobId: string): Promise<number> {
    return this.#blobs.countBlobChunks(blobId);
  }

  completeBlob(blobId: string, at: number): Promise<boolean> {
    return this.#blobs.completeBlob(blobId, at);
  }

  getBlobChunk(blobId: string, index: number): Promise<Uint8Array | null> {
    return this.#blobs.getBlobChunk(blobId, index);
  }

  blobUsage(userId: string): Promise<{ count: number; bytes: number; open: number }> {
    return this.#blobs.blobUsage(userId);
  }

  deleteBlob(blobId: string): Promise<boolean> {
    return this.#blobs.deleteBlob(blobId);
  }

  expireBlobs(c: BlobCutoffs, limit: number): Promise<number> {
    return this.#blobs.expireBlobs(c, limit);
  }

}
