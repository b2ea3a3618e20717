/**
 * Internals shared by the SQLite and PostgreSQL backends: argument checks,
 * the column lists both backends select (aliased to the record field names),
 * and the row → record mappers. Not part of the storage port.
 *
 * @module
 */

import {
  STORAGE_PAGE_MAX,
  type DeviceLimits,
  type DeviceRecord,
  type KeyPackage,
  type MailboxEntry,
  type OneTimePrekey,
  type PqPrekey,
  type ReadMarker,
  type RoomEntry,
  type RoomEntryInput,
  type RoomEntryKind,
  type RoomKind,
  type RoomOfUser,
  type RoomRecord,
  type SignedPrekey,
  type UserRecord,
  type Member,
  type Role,
} from './types.ts';

/** A page size: an integer in 0..STORAGE_PAGE_MAX. */
export function assertPage(limit: number, name = 'limit'): void {
  if (!Number.isSafeInteger(limit) || limit < 0 || limit > STORAGE_PAGE_MAX) {
    throw new RangeError(`${name} must be an integer in 0..${STORAGE_PAGE_MAX}, got ${String(limit)}`);
  }
}

/** A page's byte bound (readAfter, readBefore): absent, or a positive safe integer. */
export function assertMaxBytes(maxBytes: number | undefined): void {
  if (maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || maxBytes < 1)) {
    throw new RangeError(`maxBytes must be a positive integer, got ${String(maxBytes)}`);
  }
}

/** A count, sequence number or id bound: a non-negative safe integer. */
export function assertNonNegative(n: number, name: string): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${String(n)}`);
  }
}

/**
 * A fresh plain Uint8Array with the same bytes. Drivers hand back Node
 * Buffers (which may share a pooled slab); callers get their own copy, and
 * records never alias a caller's input.
 */
export function bytes(v: Uint8Array): Uint8Array {
  return new Uint8Array(v);
}

/**
 * A prekey batch in key-id order. Both backends insert batches in one
 * canonical order: the same outcome everywhere, and on PostgreSQL two
 * overlapping concurrent batches cannot deadlock.
 */
export function sortedPrekeys(prekeys: readonly OneTimePrekey[]): OneTimePrekey[] {
  return [...prekeys].sort((a, b) => a.keyId - b.keyId);
}

/** A KeyPackage batch in ref order (see `sortedPrekeys`); a batch is claimed in this order. */
export function sortedKeyPackages(packages: readonly KeyPackage[]): KeyPackage[] {
  return [...packages].sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
}

/** The body of a membership event (server-made, UTF-8 JSON): who, their new role (none when removed), and who did it. */
export function membershipEventBody(userId: string, role: string | null, by: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ userId, ...(role !== null && { role }), by }));
}

/** The user a membership event is about (`membershipEventBody`); null for a body that is not one. */
export function membershipEventUser(body: Uint8Array): string | null {
  try {
    const userId = (JSON.parse(new TextDecoder().decode(body)) as { userId?: unknown } | null)?.userId;
    return typeof userId === 'string' ? userId : null;
  } catch {
    return null;
  }
}

/** The `role-changed` event that hands a room to `heir` after `removal` (same maker, same time). */
export function handOverEvent(removal: RoomEntryInput, heir: string): RoomEntryInput {
  return {
    kind: 'role-changed',
    senderUserId: removal.senderUserId,
    senderDeviceId: removal.senderDeviceId,
    clientId: `${removal.clientId.slice(0, 56)}-owner`,
    body: membershipEventBody(heir, 'owner', removal.senderUserId),
    createdAt: removal.createdAt,
  };
}

/** `createUser`'s first device must be the new user's own (a caller bug otherwise). */
export function checkFirstDevice(user: UserRecord, firstDevice: DeviceRecord | undefined): void {
  if (firstDevice !== undefined && firstDevice.userId !== user.userId) throw new TypeError('createUser: the first device belongs to another user');
}

export function unknownRoom(roomId: string): Error {
  return new Error(`storage: unknown room ${JSON.stringify(roomId)}`);
}

// ---- column lists (identical SQL on both backends) ----

export const USER_COLUMNS = 'user_id AS "userId", created_at AS "createdAt"';
export const DEVICE_COLUMNS =
  'user_id AS "userId", device_id AS "deviceId", identity_key AS "identityKey", created_at AS "createdAt", ' +
  'session_epoch AS "sessionEpoch"';
export const SIGNED_PREKEY_COLUMNS = 'key_id AS "keyId", public_key AS "publicKey", signature';
export const ONE_TIME_PREKEY_COLUMNS = 'key_id AS "keyId", public_key AS "publicKey"';
export const KEY_PACKAGE_COLUMNS = 'ref, data, signature';
export const ROOM_COLUMNS = 'room_id AS "roomId", kind, created_by AS "createdBy", created_at AS "createdAt"';
export const MEMBER_COLUMNS = 'user_id AS "userId", role';
export const ENTRY_COLUMNS =
  'room_id AS "roomId", seq, kind, sender_user_id AS "senderUserId", sender_device_id AS "senderDeviceId", ' +
  'client_id AS "clientId", body, created_at AS "createdAt"';
export const MAILBOX_COLUMNS =
  'id, from_user_id AS "fromUserId", from_device_id AS "fromDeviceId", client_id AS "clientId", payload, ' +
  'created_at AS "createdAt"';

// ---- rows as the drivers return them (BLOB/BYTEA as Buffer, integers as number) ----

export interface UserRow {
  userId: string;
  createdAt: number;
}
export interface DeviceRow {
  userId: string;
  deviceId: string;
  identityKey: Uint8Array;
  createdAt: number;
  sessionEpoch: string;
}
export interface SignedPrekeyRow {
  keyId: number;
  publicKey: Uint8Array;
  signature: Uint8Array;
}
export interface OneTimePrekeyRow {
  keyId: number;
  publicKey: Uint8Array;
}
export interface KeyPackageRow {
  ref: string;
  data: Uint8Array;
  signature: Uint8Array | null;
}
export interface RoomRow {
  roomId: string;
  kind: string;
  createdBy: string;
  createdAt: number;
}
export interface MemberRow {
  userId: string;
  role: string;
}
export interface EntryRow {
  roomId: string;
  seq: number;
  kind: string;
  senderUserId: string;
  senderDeviceId: string;
  clientId: string;
  body: Uint8Array;
  createdAt: number;
}
export interface MailboxRow {
  id: number;
  fromUserId: string;
  fromDeviceId: string;
  clientId: string;
  payload: Uint8Array;
  createdAt: number;
}
export interface CountRow {
  n: number;
}

// ---- mappers (the CHECK constraints in the schema guarantee the enum casts) ----

export const toUser = (r: UserRow): UserRecord => ({ userId: r.userId, createdAt: r.createdAt });

export const toDevice = (r: DeviceRow): DeviceRecord => ({
  userId: r.userId,
  deviceId: r.deviceId,
  identityKey: bytes(r.identityKey),
  createdAt: r.createdAt,
  sessionEpoch: r.sessionEpoch,
});

/** Which of `limits` one more device would pass, given the user's devices and removed devices; null: none. */
export function deviceLimit(devices: number, removed: number, limits: DeviceLimits): 'too-many-devices' | 'too-many-ids' | null {
  if (devices >= limits.devicesMax) return 'too-many-devices';
  if (devices + removed >= limits.idsMax) return 'too-many-ids';
  return null;
}

/** The tables that hold rows of one device (by user_id and device_id), emptied when it is removed. */
export const PER_DEVICE_TABLES = ['signed_prekeys', 'pq_prekeys', 'one_time_prekeys', 'key_packages', 'mailbox', 'mailbox_counters', 'refresh_tokens'] as const;

export const toSignedPrekey = (r: SignedPrekeyRow): SignedPrekey & PqPrekey => ({
  keyId: r.keyId,
  publicKey: bytes(r.publicKey),
  signature: bytes(r.signature),
});

export const toOneTimePrekey = (r: OneTimePrekeyRow): OneTimePrekey => ({ keyId: r.keyId, publicKey: bytes(r.publicKey) });

export const toKeyPackage = (r: KeyPackageRow): KeyPackage => ({ ref: r.ref, data: bytes(r.data), ...(r.signature !== null && { signature: bytes(r.signature) }) });

export const toRoom = (r: RoomRow): RoomRecord => ({
  roomId: r.roomId,
  kind: r.kind as RoomKind,
  createdBy: r.createdBy,
  createdAt: r.createdAt,
});

export const toMember = (r: MemberRow): Member => ({ userId: r.userId, role: r.role as Role });

/** A room of `listRoomsOf`: the room's columns as `r`, the member's role, the room's last seq. */
export const ROOM_OF_USER_COLUMNS = 'r.room_id AS "roomId", r.kind, r.created_by AS "createdBy", r.created_at AS "createdAt", m.role';

export interface RoomOfUserRow extends RoomRow {
  role: string;
  lastSeq: number;
}

export const toRoomOfUser = (r: RoomOfUserRow): RoomOfUser => ({ ...toRoom(r), role: r.role as Role, lastSeq: r.lastSeq });

export const toEntry = (r: EntryRow): RoomEntry => ({
  roomId: r.roomId,
  seq: r.seq,
  kind: r.kind as RoomEntryKind,
  senderUserId: r.senderUserId,
  senderDeviceId: r.senderDeviceId,
  clientId: r.clientId,
  body: bytes(r.body),
  createdAt: r.createdAt,
});

export const toMailboxEntry = (r: MailboxRow): MailboxEntry => ({
  id: r.id,
  fromUserId: r.fromUserId,
  fromDeviceId: r.fromDeviceId,
  clientId: r.clientId,
  payload: bytes(r.payload),
  createdAt: r.createdAt,
});


// ---- read markers ----

export const READ_MARKER_COLUMNS = 'user_id AS "userId", delivered_seq AS "delivered", read_seq AS "read", updated_at AS "updatedAt"';

export interface ReadMarkerRow {
  userId: string;
  delivered: number | string;
  read: number | string;
  updatedAt: number | string;
}

export function toReadMarker(r: ReadMarkerRow): ReadMarker {
  return { userId: r.userId, delivered: Number(r.delivered), read: Number(r.read), updatedAt: Number(r.updatedAt) };
}

/** The markers after raising `kind` to `seq` (read raises delivered too); never lowered. */
export function raisedMarker(prev: ReadMarker | undefined, userId: string, kind: 'delivered' | 'read', seq: number, at: number): { marker: ReadMarker; changed: boolean } {
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError(`seq must be a positive integer, got ${String(seq)}`);
  const delivered = Math.max(prev?.delivered ?? 0, seq);
  const read = Math.max(prev?.read ?? 0, kind === 'read' ? seq : 0);
  const changed = prev === undefined || delivered !== prev.delivered || read !== prev.read;
  return { marker: { userId, delivered, read, updatedAt: changed ? at : (prev?.updatedAt ?? at) }, changed };
}
