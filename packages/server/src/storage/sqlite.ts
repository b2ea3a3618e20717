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
 * batch, and hands every other method to the part of the store it belongs
 * to — accounts, key directory, rooms, room log, mailbox, blobs
 * (sqlite-*.ts), each over the same connection.
 *
 * @module
 */

import { SqliteConnection } from './sqlite-connection.ts';
import { SqliteAccounts } from './sqlite-accounts.ts';
import { SqliteKeyDirectory } from './sqlite-key-directory.ts';
import { SqliteRooms } from './sqlite-rooms.ts';
import { SqliteRoomLog } from './sqlite-room-log.ts';
import { SqliteMailbox } from './sqlite-mailbox.ts';
import { SqliteBlobs } from './sqlite-blobs.ts';
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
  readonly #accounts: SqliteAccounts;
  readonly #keys: SqliteKeyDirectory;
  readonly #log: SqliteRoomLog;
  readonly #rooms: SqliteRooms;
  readonly #mailbox: SqliteMailbox;
  readonly #blobs: SqliteBlobs;

  /** Opens (creating if needed) `dir/parley.db` as a `role` connection (`SqliteConnection`). Call `migrate()` before anything else. */
  constructor(dir: string, options: { role?: 'writer' | 'reader' } = {}) {
    this.#sql = new SqliteConnection(dir, options);
    this.#accounts = new SqliteAccounts(this.#sql);
    this.#keys = new SqliteKeyDirectory(this.#sql);
    this.#log = new SqliteRoomLog(this.#sql);
    this.#rooms = new SqliteRooms(this.#sql, this.#log);
    this.#mailbox = new SqliteMailbox(this.#sql);
    this.#blobs = new SqliteBlobs(this.#sql);
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

  // ---- users and devices (sqlite-accounts.ts) ----

  createUser(user: UserRecord, firstDevice?: DeviceRecord): Promise<boolean> {
    return this.#accounts.createUser(user, firstDevice);
  }

  getUser(userId: string): Promise<UserRecord | null> {
    return this.#accounts.getUser(userId);
  }

  addDevice(d: DeviceRecord): Promise<boolean> {
    return this.#accounts.addDevice(d);
  }

  getDevice(userId: string, deviceId: string): Promise<DeviceRecord | null> {
    return this.#accounts.getDevice(userId, deviceId);
  }

  listDevices(userId: string): Promise<DeviceRecord[]> {
    return this.#accounts.listDevices(userId);
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

  // ---- refresh tokens (sqlite-accounts.ts) ----

  putRefreshToken(r: RefreshTokenRecord): Promise<void> {
    return this.#accounts.putRefreshToken(r);
  }

  takeRefreshToken(tokenHash: string): Promise<RefreshTokenRecord | null> {
    return this.#accounts.takeRefreshToken(tokenHash);
  }

  deleteRefreshTokensOf(userId: string, deviceId: string): Promise<number> {
    return this.#accounts.deleteRefreshTokensOf(userId, deviceId);
  }

  // ---- read markers (sqlite-rooms.ts) ----

  setReceipt(roomId: string, userId: string, kind: 'delivered' | 'read', seq: number, at: number): Promise<{ marker: ReadMarker; changed: boolean }> {
    return this.#rooms.setReceipt(roomId, userId, kind, seq, at);
  }

  listReceipts(roomId: string): Promise<ReadMarker[]> {
    return this.#rooms.listReceipts(roomId);
  }

  // ---- key backup (sqlite-accounts.ts) ----

  putKeyBackup(userId: string, r: KeyBackupRecord): Promise<void> {
    return this.#accounts.putKeyBackup(userId, r);
  }

  getKeyBackup(userId: string): Promise<KeyBackupRecord | null> {
    return this.#accounts.getKeyBackup(userId);
  }

  // ---- server secrets (sqlite-accounts.ts) ----

  serverSecret(name: string, initial: Uint8Array): Promise<Uint8Array> {
    return this.#accounts.serverSecret(name, initial);
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
