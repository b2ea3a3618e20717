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
 * transaction, so nothing needs coordinating across parts, and it hands
 * every method to the part of the store it belongs to — accounts, key
 * directory, rooms, room log, mailbox, blobs (postgres-*.ts), each over the
 * same pool (`PostgresConnection`, postgres-connection.ts).
 *
 * @module
 */

import { PostgresConnection, type PostgresOptions } from './postgres-connection.ts';
import { PostgresAccounts } from './postgres-accounts.ts';
import { PostgresKeyDirectory } from './postgres-key-directory.ts';
import { PostgresRooms } from './postgres-rooms.ts';
import { PostgresRoomLog } from './postgres-room-log.ts';
import { PostgresMailbox } from './postgres-mailbox.ts';
import { PostgresBlobs } from './postgres-blobs.ts';
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

export { IDLE_IN_TRANSACTION_TIMEOUT_MS, LOCK_TIMEOUT_MS, STATEMENT_TIMEOUT_MS, type PostgresOptions } from './postgres-connection.ts';

export class PostgresStorage implements Storage {
  /** Concurrent transactions may commit out of call order: the server serialises appends per room. */
  readonly appendsInCallOrder = false;
  readonly #sql: PostgresConnection;
  readonly #accounts: PostgresAccounts;
  readonly #keys: PostgresKeyDirectory;
  readonly #log: PostgresRoomLog;
  readonly #rooms: PostgresRooms;
  readonly #mailbox: PostgresMailbox;
  readonly #blobs: PostgresBlobs;

  constructor(options: PostgresOptions) {
    this.#sql = new PostgresConnection(options);
    this.#accounts = new PostgresAccounts(this.#sql);
    this.#keys = new PostgresKeyDirectory(this.#sql);
    this.#log = new PostgresRoomLog(this.#sql);
    this.#rooms = new PostgresRooms(this.#sql, this.#log);
    this.#mailbox = new PostgresMailbox(this.#sql);
    this.#blobs = new PostgresBlobs(this.#sql);
  }

  migrate(): Promise<void> {
    return this.#sql.migrate();
  }

  close(): Promise<void> {
    return this.#sql.close();
  }

  // ---- users and devices (postgres-accounts.ts) ----

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

  // ---- key directory (postgres-key-directory.ts) ----

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

  // ---- rooms and membership (postgres-rooms.ts) ----

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

  changeMember(roomId: string, userId: string, expected: Role | null, role: Role | null, event: RoomEntryInput, options: ChangeMemberOptions = {}): Promise<MembershipChange | null> {
    return this.#rooms.changeMember(roomId, userId, expected, role, event, options);
  }

  // ---- the room log (postgres-room-log.ts) ----

  append(roomId: string, input: RoomEntryInput, options: AppendOptions = {}): Promise<AppendResult> {
    return this.#log.append(roomId, input, options);
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

  // ---- per-device mailbox (postgres-mailbox.ts) ----

  enqueueMailbox(userId: string, deviceId: string, input: MailboxInput, max: number): Promise<MailboxEnqueued | null> {
    return this.#mailbox.enqueueMailbox(userId, deviceId, input, max);
  }

  readMailbox(userId: string, deviceId: string, afterId: number, limit: number): Promise<MailboxEntry[]> {
    return this.#mailbox.readMailbox(userId, deviceId, afterId, limit);
  }

  ackMailbox(userId: string, deviceId: string, upToId: number): Promise<number> {
    return this.#mailbox.ackMailbox(userId, deviceId, upToId);
  }

  // ---- refresh tokens (postgres-accounts.ts) ----

  putRefreshToken(r: RefreshTokenRecord): Promise<void> {
    return this.#accounts.putRefreshToken(r);
  }

  takeRefreshToken(tokenHash: string): Promise<RefreshTokenRecord | null> {
    return this.#accounts.takeRefreshToken(tokenHash);
  }

  deleteRefreshTokensOf(userId: string, deviceId: string): Promise<number> {
    return this.#accounts.deleteRefreshTokensOf(userId, deviceId);
  }

  // ---- read markers (postgres-rooms.ts) ----

  setReceipt(roomId: string, userId: string, kind: 'delivered' | 'read', seq: number, at: number): Promise<{ marker: ReadMarker; changed: boolean }> {
    return this.#rooms.setReceipt(roomId, userId, kind, seq, at);
  }

  listReceipts(roomId: string): Promise<ReadMarker[]> {
    return this.#rooms.listReceipts(roomId);
  }

  // ---- key backup (postgres-accounts.ts) ----

  putKeyBackup(userId: string, r: KeyBackupRecord): Promise<void> {
    return this.#accounts.putKeyBackup(userId, r);
  }

  getKeyBackup(userId: string): Promise<KeyBackupRecord | null> {
    return this.#accounts.getKeyBackup(userId);
  }

  // ---- server secrets (postgres-accounts.ts) ----

  serverSecret(name: string, initial: Uint8Array): Promise<Uint8Array> {
    return this.#accounts.serverSecret(name, initial);
  }

  // ---- blobs (postgres-blobs.ts) ----

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

  expireBlobs(cut: BlobCutoffs, limit: number): Promise<number> {
    return this.#blobs.expireBlobs(cut, limit);
  }
}
