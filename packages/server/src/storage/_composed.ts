/**
 * What the stores have in common: both split into the same parts —
 * accounts, key directory, rooms, room log, mailbox, blobs — and hand each
 * `Storage` method to the same part. `ComposedStorage` is that routing,
 * written once: `SqliteStorage` and `PostgresStorage` extend it with what
 * each does its own way (appends and membership changes, migrations,
 * closing), so the two cannot drift apart in where a method goes.
 *
 * @module
 */
import type {
  DeviceAddition,
  DeviceLimits,
  DeviceRecord,
  DeviceRemoval,
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
  RefreshPolicy,
  RefreshRotation,
  RefreshSuccessor,
  RefreshTokenRecord,
  RoomEntry,
  RoomOfUser,
  RoomRecord,
  SignedPrekey,
  Storage,
  UserRecord,
} from './types.ts';

/** Users and devices, refresh tokens, key backups, server secrets. */
export type AccountsPart = Pick<Storage, 'createUser' | 'getUser' | 'addDevice' | 'getDevice' | 'listDevices' | 'addDeviceWithin' | 'removeDevice' | 'removedDeviceKey' | 'resetSessions' | 'putRefreshToken' | 'rotateRefreshToken' | 'deleteRefreshTokensOf' | 'putKeyBackup' | 'getKeyBackup' | 'serverSecret'>;
export type KeyDirectoryPart = Pick<Storage, 'setSignedPrekey' | 'getSignedPrekey' | 'addOneTimePrekeys' | 'replaceOneTimePrekeys' | 'countOneTimePrekeys' | 'countStoredOneTimePrekeys' | 'claimOneTimePrekey' | 'setPqPrekey' | 'getPqPrekey' | 'addKeyPackages' | 'countKeyPackages' | 'countStoredKeyPackages' | 'claimKeyPackage'>;
/** Rooms, members and read markers (a membership change is each store's own). */
export type RoomsPart = Pick<Storage, 'createRoom' | 'getRoom' | 'setMember' | 'removeMember' | 'getMember' | 'listMembers' | 'listRoomsOf' | 'countRoomsOf' | 'setReceipt' | 'listReceipts'>;
/** The room log's reads (an append is each store's own). */
export type RoomLogPart = Pick<Storage, 'readMembershipEvents' | 'readAfter' | 'readBefore' | 'lastSeq'>;
export type MailboxPart = Pick<Storage, 'enqueueMailbox' | 'readMailbox' | 'ackMailbox'>;
export type BlobsPart = Pick<Storage, 'createBlob' | 'getBlob' | 'putBlobChunk' | 'countBlobChunks' | 'completeBlob' | 'getBlobChunk' | 'blobUsage' | 'deleteBlob' | 'expireBlobs'>;

export interface StorageParts {
  accounts: AccountsPart;
  keys: KeyDirectoryPart;
  rooms: RoomsPart;
  log: RoomLogPart;
  mailbox: MailboxPart;
  blobs: BlobsPart;
}

export abstract class ComposedStorage implements Omit<Storage, 'appendsInCallOrder' | 'migrate' | 'close' | 'append' | 'changeMember'> {
  readonly #accounts: AccountsPart;
  readonly #keys: KeyDirectoryPart;
  readonly #rooms: RoomsPart;
  readonly #log: RoomLogPart;
  readonly #mailbox: MailboxPart;
  readonly #blobs: BlobsPart;

  constructor(parts: StorageParts) {
    this.#accounts = parts.accounts;
    this.#keys = parts.keys;
    this.#rooms = parts.rooms;
    this.#log = parts.log;
    this.#mailbox = parts.mailbox;
    this.#blobs = parts.blobs;
  }

  // ---- users and devices ----

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

  addDeviceWithin(device: DeviceRecord, limits: DeviceLimits): Promise<DeviceAddition> {
    return this.#accounts.addDeviceWithin(device, limits);
  }

  removeDevice(userId: string, deviceId: string, removedAt: number): Promise<DeviceRemoval> {
    return this.#accounts.removeDevice(userId, deviceId, removedAt);
  }

  removedDeviceKey(userId: string, deviceId: string): Promise<Uint8Array | null> {
    return this.#accounts.removedDeviceKey(userId, deviceId);
  }

  resetSessions(userId: string, epoch: string): Promise<number> {
    return this.#accounts.resetSessions(userId, epoch);
  }

  // ---- key directory ----

  setSignedPrekey(userId: string, deviceId: string, p: SignedPrekey): Promise<void> {
    return this.#keys.setSignedPrekey(userId, deviceId, p);
  }

  getSignedPrekey(userId: string, deviceId: string): Promise<SignedPrekey | null> {
    return this.#keys.getSignedPrekey(userId, deviceId);
  }

  addOneTimePrekeys(userId: string, deviceId: string, prekeys: readonly OneTimePrekey[]): Promise<number> {
    return this.#keys.addOneTimePrekeys(userId, deviceId, prekeys);
  }

  replaceOneTimePrekeys(userId: string, deviceId: string, prekeys: readonly OneTimePrekey[]): Promise<{ dropped: number; held: number }> {
    return this.#keys.replaceOneTimePrekeys(userId, deviceId, prekeys);
  }

  countOneTimePrekeys(userId: string, deviceId: string): Promise<number> {
    return this.#keys.countOneTimePrekeys(userId, deviceId);
  }

  countStoredOneTimePrekeys(userId: string, deviceId: string, keyIds: readonly number[]): Promise<number> {
    return this.#keys.countStoredOneTimePrekeys(userId, deviceId, keyIds);
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

  countStoredKeyPackages(userId: string, deviceId: string, refs: readonly string[]): Promise<number> {
    return this.#keys.countStoredKeyPackages(userId, deviceId, refs);
  }

  claimKeyPackage(userId: string, deviceId: string): Promise<KeyPackage | null> {
    return this.#keys.claimKeyPackage(userId, deviceId);
  }

  // ---- rooms and membership ----

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

  // ---- the room log ----

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

  // ---- per-device mailbox ----

  enqueueMailbox(userId: string, deviceId: string, input: MailboxInput, max: number, maxFromSender = max): Promise<MailboxEnqueued | null> {
    return this.#mailbox.enqueueMailbox(userId, deviceId, input, max, maxFromSender);
  }

  readMailbox(userId: string, deviceId: string, afterId: number, limit: number): Promise<MailboxEntry[]> {
    return this.#mailbox.readMailbox(userId, deviceId, afterId, limit);
  }

  ackMailbox(userId: string, deviceId: string, upToId: number): Promise<number> {
    return this.#mailbox.ackMailbox(userId, deviceId, upToId);
  }

  // ---- refresh tokens ----

  putRefreshToken(r: RefreshTokenRecord, familiesMax: number): Promise<boolean> {
    return this.#accounts.putRefreshToken(r, familiesMax);
  }

  rotateRefreshToken(tokenHash: string, successor: RefreshSuccessor, policy: RefreshPolicy): Promise<RefreshRotation> {
    return this.#accounts.rotateRefreshToken(tokenHash, successor, policy);
  }

  deleteRefreshTokensOf(userId: string, deviceId: string): Promise<number> {
    return this.#accounts.deleteRefreshTokensOf(userId, deviceId);
  }

  // ---- read markers ----

  setReceipt(roomId: string, userId: string, kind: 'delivered' | 'read', seq: number, at: number): Promise<{ marker: ReadMarker; changed: boolean }> {
    return this.#rooms.setReceipt(roomId, userId, kind, seq, at);
  }

  listReceipts(roomId: string): Promise<ReadMarker[]> {
    return this.#rooms.listReceipts(roomId);
  }

  // ---- key backup ----

  putKeyBackup(userId: string, r: KeyBackupRecord): Promise<void> {
    return this.#accounts.putKeyBackup(userId, r);
  }

  getKeyBackup(userId: string): Promise<KeyBackupRecord | null> {
    return this.#accounts.getKeyBackup(userId);
  }

  // ---- server secrets ----

  serverSecret(name: string, initial: Uint8Array): Promise<Uint8Array> {
    return this.#accounts.serverSecret(name, initial);
  }

  // ---- blobs ----

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
