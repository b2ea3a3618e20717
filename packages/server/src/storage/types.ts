/**
 * The storage port: everything the server persists, as one interface with
 * two implementations (embedded SQLite by default, PostgreSQL in production)
 * that pass one conformance suite (`conformance.ts`).
 *
 * The server stores ciphertext only: message bodies, mailbox payloads, key
 * backups and prekeys are opaque bytes here. Every write a client is told
 * succeeded ("acknowledged") must be durable when the promise resolves.
 *
 * Identifiers are opaque strings chosen by the server (users, devices,
 * rooms) or by the client (message client ids); the server validates their
 * shape before calling storage.
 *
 * Misuse (a page size outside 0..STORAGE_PAGE_MAX, a negative or fractional
 * number where a count or sequence number is expected) rejects with a
 * RangeError; the server's own, tighter limits live in `../limits.ts`.
 * Lists come back in a fixed order (byte order of the ids, unless a method
 * says otherwise), the same on every backend.
 *
 * @module
 */
import type { RefreshPolicy, RefreshRotation, RefreshSuccessor } from './refresh-rotation.ts';

export type { RefreshPolicy, RefreshRotation, RefreshSuccessor } from './refresh-rotation.ts';

/**
 * Largest `limit` any paged read accepts. A backstop against a caller bug
 * (a limit of Infinity would load a whole room): the protocol's page sizes
 * in `../limits.ts` are far smaller.
 */
export const STORAGE_PAGE_MAX = 10_000;

export type RoomKind = 'direct' | 'group';
export type Role = 'owner' | 'admin' | 'member';

export interface UserRecord {
  userId: string;
  createdAt: number;
}

export interface DeviceRecord {
  userId: string;
  deviceId: string;
  /** The device's identity public key (opaque bytes; the server verifies signatures with it). */
  identityKey: Uint8Array;
  createdAt: number;
  /**
   * Which of the device's access tokens are still good: the server's own
   * tokens carry it and stop working when it changes (`resetSessions`).
   * Stored as '' when absent (devices before migration 12, whose tokens
   * carried none).
   */
  sessionEpoch?: string;
}

/** Bounds on a user's devices (`addDeviceWithin`). */
export interface DeviceLimits {
  devicesMax: number;
  idsMax: number;
}

/** What `addDeviceWithin` did: added, or why not (the id is taken or a removed device's; a limit). */
export type DeviceAddition = 'added' | 'taken' | 'too-many-devices' | 'too-many-ids';

/** What `removeDevice` did: removed, or why not (no such device; the user's last one). */
export type DeviceRemoval = 'removed' | 'unknown' | 'last';

export interface SignedPrekey {
  keyId: number;
  publicKey: Uint8Array;
  signature: Uint8Array;
}

export interface OneTimePrekey {
  keyId: number;
  publicKey: Uint8Array;
}

/** A post-quantum (ML-KEM) prekey, signed by the identity key; last-resort, reusable. */
export interface PqPrekey {
  keyId: number;
  publicKey: Uint8Array;
  signature: Uint8Array;
}

export interface KeyPackage {
  /** Client-chosen reference (hash of the KeyPackage), unique per device. */
  ref: string;
  data: Uint8Array;
  /** The device's identity signature over it (key-directory.ts); absent on packages stored before it was kept. */
  signature?: Uint8Array;
}

export interface RoomRecord {
  roomId: string;
  kind: RoomKind;
  createdBy: string;
  createdAt: number;
}

/** A room as its member sees it in a list: its own role and the room's last seq. */
export interface RoomOfUser extends RoomRecord {
  role: Role;
  lastSeq: number;
}

export interface Member {
  userId: string;
  role: Role;
}

/** What a room's ordered log holds: client messages and membership events. */
export type RoomEntryKind = 'message' | 'member-added' | 'member-removed' | 'role-changed';

export interface RoomEntryInput {
  kind: RoomEntryKind;
  senderUserId: string;
  senderDeviceId: string;
  /**
   * Client-chosen id; (roomId, senderUserId, senderDeviceId, clientId) is
   * unique — a repeat returns the stored entry. (Device ids are unique per
   * user only, so the user is part of the key.)
   */
  clientId: string;
  /** Opaque: ciphertext for messages, a small JSON for events. */
  body: Uint8Array;
  createdAt: number;
}

export interface RoomEntry extends RoomEntryInput {
  roomId: string;
  /** Per-room sequence number, assigned by storage: 1, 2, 3, … with no gaps. */
  seq: number;
}

export interface AppendResult {
  entry: RoomEntry;
  /** True if (roomId, senderUserId, senderDeviceId, clientId) already existed: nothing was written. */
  duplicate: boolean;
  /**
   * The room's members (user ids, sorted) at this entry's place in the log,
   * where the store reads them inside the append (PostgreSQL, which several
   * processes change at once). Absent where one process orders every change
   * itself (SQLite): its caller's own snapshot is already exact.
   */
  members?: readonly string[];
}

export interface AppendOptions {
  /**
   * Refuse (reject with a `NotAMemberError`, nothing written) unless the
   * sender is a member at the entry's place in the log. For a server whose
   * processes change membership concurrently; one process checks its own
   * ordered snapshot instead.
   */
  requireMember?: boolean;
}

/** What `changeMember` wrote: the membership event, and the members right after it (sorted). */
export interface MembershipChange {
  entry: RoomEntry;
  members: readonly string[];
  /** With `handOver`: the heir made owner, and its `role-changed` event (logged right after `entry`). */
  handedOver?: { userId: string; entry: RoomEntry };
}

export interface ChangeMemberOptions {
  /**
   * The role the change's maker (`event.senderUserId`) had when it was
   * decided; the change applies only if they still have it (someone removed
   * or demoted meanwhile cannot still act). Not checked when they change
   * themselves (`expected` covers that).
   */
  actorRole?: Role;
  /**
   * When this removes an owner and the room keeps members but no owner: in
   * the same step, the first admin by user id (else the first member)
   * becomes owner, logged as a `role-changed` event by the same maker.
   */
  handOver?: boolean;
}

/** `append` with `requireMember`: the sender was not a member at that point. */
export class NotAMemberError extends Error {
  /** Stable across a thread boundary (the threaded SQLite store rebuilds errors by name, message and code). */
  readonly code = 'NOT_A_MEMBER';
  constructor(roomId: string, userId: string) {
    super(`storage: ${userId} is not a member of room ${roomId}`);
    this.name = 'NotAMemberError';
  }
}

export function isNotAMember(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'NOT_A_MEMBER';
}

/** `enqueueMailbox` refused an entry: the device already holds `maxFromSender` from its sender's user (nothing written). */
export class MailboxSenderFullError extends Error {
  /** Stable across a thread boundary, as NotAMemberError's. */
  readonly code = 'MAILBOX_SENDER_FULL';
  constructor(userId: string, deviceId: string, fromUserId: string) {
    super(`storage: the mailbox of ${userId}/${deviceId} holds as many entries from ${fromUserId} as it takes`);
    this.name = 'MailboxSenderFullError';
  }
}

export function isMailboxSenderFull(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'MAILBOX_SENDER_FULL';
}

/**
 * A write of a device's own rows (its prekeys and KeyPackages, its mailbox)
 * for a device that does not exist — never added, or removed meanwhile:
 * nothing written. Checked in the same step as the write, so no such row
 * outlives its device's removal.
 */
export class UnknownDeviceError extends Error {
  /** Stable across a thread boundary, as NotAMemberError's. */
  readonly code = 'UNKNOWN_DEVICE';
  constructor(userId: string, deviceId: string) {
    super(`storage: no device ${deviceId} of ${userId}`);
    this.name = 'UnknownDeviceError';
  }
}

export function isUnknownDevice(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'UNKNOWN_DEVICE';
}

export interface MailboxInput {
  fromUserId: string;
  fromDeviceId: string;
  /** Client-chosen id, unique per (recipient device, sender user and device). */
  clientId: string;
  payload: Uint8Array;
  createdAt: number;
}

export interface MailboxEntry extends MailboxInput {
  /**
   * Per-device id assigned by storage: 1, 2, 3, … for each recipient device,
   * never reused (acknowledging does not rewind it), and committed in order,
   * so a reader never sees id n+1 before id n exists.
   */
  id: number;
}

/** What `enqueueMailbox` did: the entry, and whether it was already there (a repeated clientId). */
export interface MailboxEnqueued {
  entry: MailboxEntry;
  duplicate: boolean;
}

/** The first refresh token of a login: it starts a family (refresh-rotation.ts). */
export interface RefreshTokenRecord {
  /** SHA-256 of the token (hex); the token itself is never stored. */
  tokenHash: string;
  userId: string;
  deviceId: string;
  /** Now, in ms. */
  issuedAt: number;
  expiresAt: number;
}

/** A user's key backup: sealed by the client; the server keeps it opaque. */
export interface KeyBackupRecord {
  backup: Uint8Array;
  /** SHA-256 of the fetch secret the client derived from its passphrase, or null. */
  authHash: Uint8Array | null;
  updatedAt: number;
}

/** A blob (a file encrypted by its uploader): opaque bytes in chunks. */
export interface BlobRecord {
  blobId: string;
  ownerUserId: string;
  size: number;
  /** True once every chunk is stored; only complete blobs are served. */
  complete: boolean;
  createdAt: number;
  /** When it was completed (retention counts from here); null while incomplete. */
  completedAt: number | null;
}

/** How far one member of a room has received and read its log. */
export interface ReadMarker {
  userId: string;
  delivered: number;
  read: number;
  updatedAt: number;
}

export interface Storage {
  /**
   * True if appends to one room commit in the order `append` was called and
   * their promises resolve in that order (so seq order = call order). The
   * server then starts appends without waiting for the previous one, which
   * lets a backend batch them into one durable commit. False: the server
   * serialises appends per room.
   */
  readonly appendsInCallOrder: boolean;

  /** Create or upgrade the schema. Idempotent. */
  migrate(): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;

  // ---- users and devices ----
  /**
   * False if the user id is taken. With `firstDevice` (the user's), the
   * user and that device are stored together or not at all, so a crash
   * between them cannot leave a user id taken that no device can log in to.
   */
  createUser(user: UserRecord, firstDevice?: DeviceRecord): Promise<boolean>;
  getUser(userId: string): Promise<UserRecord | null>;
  /** False if the device id is taken for this user, or was a removed device's. */
  addDevice(device: DeviceRecord): Promise<boolean>;
  getDevice(userId: string, deviceId: string): Promise<DeviceRecord | null>;
  /** Ordered by deviceId. */
  listDevices(userId: string): Promise<DeviceRecord[]>;
  /**
   * Add a device of an existing user within limits, checked in the same
   * step as the write (so concurrent additions, on any process, cannot pass
   * them together): at most `devicesMax` devices, at most `idsMax` device
   * ids ever (removed devices' included).
   */
  addDeviceWithin(device: DeviceRecord, limits: DeviceLimits): Promise<DeviceAddition>;
  /**
   * Remove a device and everything kept for it — its prekeys and
   * KeyPackages, its mailbox, its refresh tokens — in one step, keeping its
   * id and key as removed (at `removedAt`) so the id is never added again.
   * Never the user's last device (`last`), checked in the same step. Writes
   * for the device racing it are either removed with it or refused (they
   * check the device in their own step), so none of its rows is left behind.
   */
  removeDevice(userId: string, deviceId: string, removedAt: number): Promise<DeviceRemoval>;
  /** The identity key of a removed device of the user, or null. */
  removedDeviceKey(userId: string, deviceId: string): Promise<Uint8Array | null>;
  /**
   * Sign the user out everywhere: every device's `sessionEpoch` becomes
   * `epoch` and every refresh token of the user is deleted, in one step.
   * Returns how many devices the user has.
   */
  resetSessions(userId: string, epoch: string): Promise<number>;

  // ---- key directory ----
  // Every write here (set…, add…, replace…) is for an existing device: for
  // one that does not exist, or is removed before the write commits, it
  // rejects with an `UnknownDeviceError` and writes nothing — checked in the
  // same step, so a write racing `removeDevice` either comes first (and is
  // removed with the device) or is refused.
  setSignedPrekey(userId: string, deviceId: string, prekey: SignedPrekey): Promise<void>;
  getSignedPrekey(userId: string, deviceId: string): Promise<SignedPrekey | null>;
  /** Adds prekeys; ids already present are ignored. Returns how many the device now has. */
  addOneTimePrekeys(userId: string, deviceId: string, prekeys: readonly OneTimePrekey[]): Promise<number>;
  countOneTimePrekeys(userId: string, deviceId: string): Promise<number>;
  /**
   * Drop every one-time prekey stored for the device and store `prekeys`
   * instead, in one step (a device restored from a backup: the stored ones
   * are its earlier copies', whose private halves it lacks). Returns how
   * many were dropped and how many the device now has.
   */
  replaceOneTimePrekeys(userId: string, deviceId: string, prekeys: readonly OneTimePrekey[]): Promise<{ dropped: number; held: number }>;
  /** How many of `keyIds` (distinct) the device has stored: what an upload of them would not add. */
  countStoredOneTimePrekeys(userId: string, deviceId: string, keyIds: readonly number[]): Promise<number>;
  /** Atomically remove and return one prekey (each is handed out exactly once; lowest keyId first), or null. */
  claimOneTimePrekey(userId: string, deviceId: string): Promise<OneTimePrekey | null>;
  setPqPrekey(userId: string, deviceId: string, prekey: PqPrekey): Promise<void>;
  getPqPrekey(userId: string, deviceId: string): Promise<PqPrekey | null>;
  /** Adds KeyPackages; refs already present are ignored. Returns how many the device now has. */
  addKeyPackages(userId: string, deviceId: string, packages: readonly KeyPackage[]): Promise<number>;
  countKeyPackages(userId: string, deviceId: string): Promise<number>;
  /** How many of `refs` (distinct) the device has stored. */
  countStoredKeyPackages(userId: string, deviceId: string, refs: readonly string[]): Promise<number>;
  /**
   * Atomically remove and return one KeyPackage (each handed out exactly
   * once; earlier batches first, by ref within a batch), or null.
   */
  claimKeyPackage(userId: string, deviceId: string): Promise<KeyPackage | null>;

  // ---- rooms and membership ----
  /** False if the room id is taken. */
  createRoom(room: RoomRecord): Promise<boolean>;
  getRoom(roomId: string): Promise<RoomRecord | null>;
  /** Insert or update a member's role (no event; the server uses `changeMember`). */
  setMember(roomId: string, member: Member): Promise<void>;
  /** False if the user was not a member. */
  removeMember(roomId: string, userId: string): Promise<boolean>;
  getMember(roomId: string, userId: string): Promise<Member | null>;
  /** Ordered by userId. */
  listMembers(roomId: string): Promise<Member[]>;
  /** Ordered by roomId; one query whatever the number of rooms (`room.list` and `sync` read it). */
  listRoomsOf(userId: string): Promise<RoomOfUser[]>;
  countRoomsOf(userId: string): Promise<number>;

  // ---- the room log ----
  /**
   * Append an entry with the next sequence number, or return the existing
   * entry if (roomId, senderUserId, senderDeviceId, clientId) was appended before.
   * Sequence numbers have no gaps even under concurrent appends, and entry
   * n+1 is never visible before entry n. Rejects if the room does not exist.
   */
  append(roomId: string, input: RoomEntryInput, options?: AppendOptions): Promise<AppendResult>;
  /**
   * Set `userId`'s role to `role` (null: remove them) and append `event`
   * (a membership entry), as one step in log order with `append`: only if
   * their role is still `expected` (null: not a member) — otherwise nothing
   * is written and the result is null, so two racing changes never both
   * apply (a removal and a promotion cannot resurrect a member; two equal
   * additions log one event). `expected === role` is a caller error.
   * Rejects if the room does not exist.
   */
  changeMember(roomId: string, userId: string, expected: Role | null, role: Role | null, event: RoomEntryInput, options?: ChangeMemberOptions): Promise<MembershipChange | null>;
  /**
   * Entries with seq > afterSeq, ascending, at most `limit`. With `maxBytes`
   * the page also ends at the first entry whose body takes the bodies' total
   * to `maxBytes` or more (so it holds at least one entry, and its bodies
   * total less than `maxBytes` plus one body); no later row is read.
   */
  readAfter(roomId: string, afterSeq: number, limit: number, maxBytes?: number): Promise<RoomEntry[]>;
  /** Membership events (every kind but `message`) with seq > afterSeq, ascending, at most `limit`. */
  readMembershipEvents(roomId: string, afterSeq: number, limit: number): Promise<RoomEntry[]>;
  /** Entries with seq < beforeSeq, descending (newest first), at most `limit`; `maxBytes` as for readAfter. */
  readBefore(roomId: string, beforeSeq: number, limit: number, maxBytes?: number): Promise<RoomEntry[]>;
  /** The highest seq in the room; 0 for an empty or unknown room. */
  lastSeq(roomId: string): Promise<number>;

  // ---- per-device mailbox ----
  /**
   * Null if the recipient's mailbox is full (`max` entries) — nothing written;
   * a `MailboxSenderFullError` if it holds `maxFromSender` entries from the
   * sender's user already (so that one user cannot fill it for everyone).
   * A repeat clientId returns the stored entry with `duplicate` set (even
   * when the mailbox is full), so the caller pushes only what is new.
   * An `UnknownDeviceError` if the recipient device does not exist (never
   * added, or removed meanwhile) — nothing written, checked in the same step,
   * so no entry outlives its device (as the key directory's writes).
   */
  enqueueMailbox(userId: string, deviceId: string, input: MailboxInput, max: number, maxFromSender?: number): Promise<MailboxEnqueued | null>;
  /** Entries with id > afterId, ascending, at most `limit`. */
  readMailbox(userId: string, deviceId: string, afterId: number, limit: number): Promise<MailboxEntry[]>;
  /** Delete entries with id ≤ upToId. Returns how many were deleted. */
  ackMailbox(userId: string, deviceId: string, upToId: number): Promise<number>;

  // ---- refresh tokens (rotated on use, refresh-rotation.ts) ----
  /**
   * Store a login's first refresh token, starting its family. Drops the
   * device's expired tokens and, beyond `familiesMax` logins, those renewed
   * least recently. Rejects if the hash is already stored (tokens are
   * random: a repeat is a bug, never silently rebound). False, storing
   * nothing, if the device does not exist (it was removed meanwhile):
   * checked in the same step, so no token outlives its device.
   */
  putRefreshToken(record: RefreshTokenRecord, familiesMax: number): Promise<boolean>;
  /**
   * Atomically spend a presented token and store `successor` in its family,
   * or refuse it; a reused token revokes its family (refresh-rotation.ts).
   */
  rotateRefreshToken(tokenHash: string, successor: RefreshSuccessor, policy: RefreshPolicy): Promise<RefreshRotation>;
  deleteRefreshTokensOf(userId: string, deviceId: string): Promise<number>;

  // ---- read markers (receipts) ----
  /**
   * Raise a member's delivered or read marker to `seq` (never lowers it; a
   * read marker raises the delivered marker too). Returns the markers after
   * the change and whether they moved.
   */
  setReceipt(roomId: string, userId: string, kind: 'delivered' | 'read', seq: number, at: number): Promise<{ marker: ReadMarker; changed: boolean }>;
  /** Every marker of a room, by user id. */
  listReceipts(roomId: string): Promise<ReadMarker[]>;

  // ---- key backup (opaque, sealed by the client) ----
  putKeyBackup(userId: string, record: KeyBackupRecord): Promise<void>;

  // ---- values shared by every server process on this store ----
  /**
   * The stored value of `name`; if there is none, stores `initial` first.
   * Atomic: processes racing to create it all get the one that was stored.
   */
  serverSecret(name: string, initial: Uint8Array): Promise<Uint8Array>;
  getKeyBackup(userId: string): Promise<KeyBackupRecord | null>;

  // ---- blobs (opaque, encrypted by the client) ----
  /** A new, empty, incomplete blob. */
  createBlob(blob: Omit<BlobRecord, 'complete' | 'completedAt'>): Promise<void>;
  getBlob(blobId: string): Promise<BlobRecord | null>;
  /**
   * Store (or replace) chunk `index` of an incomplete blob. False, storing
   * nothing, when the blob is gone or complete — checked atomically with
   * the write, so a chunk never outlives its blob.
   */
  putBlobChunk(blobId: string, index: number, data: Uint8Array): Promise<boolean>;
  /** How many chunks of the blob are stored. */
  countBlobChunks(blobId: string): Promise<number>;
  /** Mark the blob complete at `at` (the caller checked every chunk is there). False if the blob is gone (deleted or expired meanwhile). */
  completeBlob(blobId: string, at: number): Promise<boolean>;
  getBlobChunk(blobId: string, index: number): Promise<Uint8Array | null>;
  /** The user's blobs: how many, their total size, and how many are incomplete. */
  blobUsage(userId: string): Promise<{ count: number; bytes: number; open: number }>;
  /** Remove a blob and its chunks. False if there was none. */
  deleteBlob(blobId: string): Promise<boolean>;
  /**
   * Remove, with their chunks, the incomplete blobs created before
   * `incompleteBefore` and (unless null) the complete ones completed before
   * `completeBefore` — of one owner when `ownerUserId` is given — at most
   * `limit` of them (so one call stays short). Returns how many were removed.
   */
  expireBlobs(cutoffs: BlobCutoffs, limit: number): Promise<number>;
}

/** What {@link Storage.expireBlobs} removes (times in ms since the epoch). */
export interface BlobCutoffs {
  incompleteBefore: number;
  completeBefore: number | null;
  ownerUserId?: string;
}
