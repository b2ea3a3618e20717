/**
 * Inbound frames of the Parley protocol v1 (docs/protocol.md), as zod
 * schemas: every frame a client sends is parsed here before anything else
 * looks at it. Strings are bounded, bytes are base64 bounded before decoding.
 *
 * @module
 */
import { z } from 'zod';
import {
  BACKUP_FETCH_SECRET_BYTES,
  BLOB_BYTES_MAX,
  BLOB_CHUNK_BYTES,
  BODY_BYTES_MAX,
  DEVICES_PER_USER_MAX,
  KEY_BACKUP_BYTES_MAX,
  HISTORY_PAGE_MAX,
  KEY_PACKAGE_BYTES_MAX,
  KEY_PACKAGES_PER_UPLOAD_MAX,
  MAILBOX_PAYLOAD_BYTES_MAX,
  ONE_TIME_PREKEYS_PER_UPLOAD_MAX,
  PQ_PREKEY_BYTES_MAX,
  PREKEY_BYTES,
  ROOM_MEMBERS_MAX,
} from '../limits.ts';

export const USER_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

const requestId = z.string().max(64).optional();
const userId = z.string().regex(USER_ID);
const deviceId = z.string().regex(DEVICE_ID);
const roomId = z.string().regex(ROOM_ID);

/**
 * JSON.parse makes `"__proto__"` an own key, and zod's records drop it
 * without validating its value: such an object is refused instead (null
 * fails the record), so every key of a record is checked.
 */
function withoutProtoKey(v: unknown): unknown {
  return typeof v === 'object' && v !== null && Object.hasOwn(v, '__proto__') ? null : v;
}
const clientId = z.string().regex(CLIENT_ID);
const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Whether no two items of a list have the same key. */
function distinct<T>(items: readonly T[], key: (item: T) => unknown): boolean {
  return new Set(items.map(key)).size === items.length;
}

/** Base64 of at most `max` decoded bytes (checked on the encoded length first). */
function b64(max: number, min = 1) {
  return z
    .string()
    .max(Math.ceil(max / 3) * 4)
    .transform((s, ctx) => {
      const bytes = decodeBase64(s);
      if (bytes === null) {
        ctx.addIssue({ code: 'custom', message: 'must be canonical base64 (RFC 4648 §4, padded)' });
        return z.NEVER;
      }
      return bytes;
    })
    .refine((b) => b.length >= min && b.length <= max, { message: `must decode to ${min}..${max} bytes` });
}

export const Hello = z.object({ t: z.literal('hello'), id: requestId, versions: z.array(z.number().int().min(1).max(0x7fffffff)).min(1).max(16) });
export const Challenge = z.object({ t: z.literal('challenge'), id: requestId });
export const Register = z.object({
  t: z.literal('register'),
  id: requestId,
  userId,
  deviceId,
  identityKey: b64(32, 32),
  signature: b64(64, 64),
});
export const BackupPut = z.object({ t: z.literal('backup.put'), id: requestId, backup: b64(KEY_BACKUP_BYTES_MAX), fetchSecret: b64(BACKUP_FETCH_SECRET_BYTES, BACKUP_FETCH_SECRET_BYTES).optional() });
export const BackupGet = z.object({ t: z.literal('backup.get'), id: requestId });

/** Blob ids: 22 characters of base64url (128 random bits), made by the server. */
export const BLOB_ID = /^[A-Za-z0-9_-]{22}$/;
const blobId = z.string().regex(BLOB_ID);
const chunkIndex = z.number().int().min(0).max(Math.ceil(BLOB_BYTES_MAX / BLOB_CHUNK_BYTES) - 1);
export const BlobCreate = z.object({ t: z.literal('blob.create'), id: requestId, size: z.number().int().min(1).max(BLOB_BYTES_MAX) });
export const BlobChunk = z.object({ t: z.literal('blob.chunk'), id: requestId, blobId, index: chunkIndex, data: b64(BLOB_CHUNK_BYTES) });
export const BlobComplete = z.object({ t: z.literal('blob.complete'), id: requestId, blobId });
export const BlobGet = z.object({ t: z.literal('blob.get'), id: requestId, blobId, index: chunkIndex });
export const BlobDelete = z.object({ t: z.literal('blob.delete'), id: requestId, blobId });
export const BackupFetch = z.object({ t: z.literal('backup.fetch'), id: requestId, userId, fetchSecret: b64(BACKUP_FETCH_SECRET_BYTES, BACKUP_FETCH_SECRET_BYTES) });
export const DeviceAdd = z.object({ t: z.literal('device.add'), id: requestId, deviceId, identityKey: b64(32, 32), signature: b64(64, 64), approval: b64(64, 64) });
export const DeviceRemove = z.object({ t: z.literal('device.remove'), id: requestId, deviceId, approval: b64(64, 64) });
export const SessionsRevoke = z.object({ t: z.literal('sessions.revoke'), id: requestId });
export const Login = z.object({ t: z.literal('login'), id: requestId, userId, deviceId, signature: b64(64, 64) });
export const Auth = z.object({ t: z.literal('auth'), id: requestId, accessToken: z.string().min(1).max(4096) });
export const Refresh = z.object({ t: z.literal('refresh'), id: requestId, refreshToken: z.string().min(1).max(256) });

export const RoomCreate = z.object({
  t: z.literal('room.create'),
  id: requestId,
  kind: z.enum(['direct', 'group']),
  members: z.array(userId).max(ROOM_MEMBERS_MAX),
});
export const RoomAdd = z.object({ t: z.literal('room.add'), id: requestId, roomId, userId, role: z.enum(['admin', 'member']).optional() });
export const RoomRemove = z.object({ t: z.literal('room.remove'), id: requestId, roomId, userId });
export const RoomLeave = z.object({ t: z.literal('room.leave'), id: requestId, roomId });
export const RoomList = z.object({ t: z.literal('room.list'), id: requestId });
export const RoomMembers = z.object({ t: z.literal('room.members'), id: requestId, roomId });

export const Publish = z.object({ t: z.literal('publish'), id: requestId, roomId, clientId, body: b64(BODY_BYTES_MAX) });
export const Sync = z.object({
  t: z.literal('sync'),
  id: requestId,
  rooms: z.preprocess(withoutProtoKey, z.record(z.string().regex(ROOM_ID), seq).refine((r) => Object.keys(r).length <= 10_000, { message: 'too many rooms' })),
});
export const History = z
  .object({
    t: z.literal('history'),
    id: requestId,
    roomId,
    before: seq.optional(),
    after: seq.optional(),
    limit: z.number().int().min(1).max(HISTORY_PAGE_MAX).optional(),
  })
  .refine((f) => (f.before === undefined) !== (f.after === undefined), { message: 'exactly one of before/after' });

const keyId = z.number().int().min(0).max(0xffffffff);
const signature = b64(64, 64);
export const KeysUpload = z.object({
  t: z.literal('keys.upload'),
  id: requestId,
  signedPrekey: z.object({ keyId, publicKey: b64(PREKEY_BYTES, PREKEY_BYTES), signature }).optional(),
  // Distinct ids: a repeat in one upload is a client bug, and storing the first of two different keys under one id would hide it.
  oneTimePrekeys: z.array(z.object({ keyId, publicKey: b64(PREKEY_BYTES, PREKEY_BYTES) })).max(ONE_TIME_PREKEYS_PER_UPLOAD_MAX).refine((list) => distinct(list, (k) => k.keyId), 'keyIds must be distinct').optional(),
  pqPrekey: z.object({ keyId, publicKey: b64(PQ_PREKEY_BYTES_MAX), signature }).optional(),
  // The device's stored one-time prekeys are dropped first (a device restored from a backup replaces its earlier copies').
  replaceOneTimePrekeys: z.literal(true).optional(),
  keyPackages: z
    .array(z.object({ ref: z.string().regex(CLIENT_ID), data: b64(KEY_PACKAGE_BYTES_MAX), signature }))
    .max(KEY_PACKAGES_PER_UPLOAD_MAX)
    .refine((list) => distinct(list, (k) => k.ref), 'refs must be distinct')
    .optional(),
});
export const KeysFetch = z.object({
  t: z.literal('keys.fetch'),
  id: requestId,
  userId,
  /** Claim one-time prekeys only for these devices (default: all); others come without one. */
  claimFor: z.array(deviceId).max(DEVICES_PER_USER_MAX).optional(),
});
export const KeysClaimKeyPackage = z.object({ t: z.literal('keys.claimKeyPackage'), id: requestId, userId, deviceId });
export const MailboxSend = z.object({ t: z.literal('mailbox.send'), id: requestId, userId, deviceId, clientId, payload: b64(MAILBOX_PAYLOAD_BYTES_MAX) });
export const MailboxAck = z.object({ t: z.literal('mailbox.ack'), id: requestId, upTo: seq });

export const Typing = z.object({ t: z.literal('typing'), id: requestId, roomId });
export const Receipt = z.object({ t: z.literal('receipt'), id: requestId, roomId, seq: seq.min(1), kind: z.enum(['delivered', 'read']) });
export const Receipts = z.object({ t: z.literal('receipts'), id: requestId, roomId });
export const PresenceGet = z.object({ t: z.literal('presence.get'), id: requestId, roomId });
export const Ping = z.object({ t: z.literal('ping'), id: requestId });

export const Inbound = z.discriminatedUnion('t', [
  Hello,
  Challenge,
  Register,
  Login,
  Auth,
  Refresh,
  DeviceAdd,
  DeviceRemove,
  SessionsRevoke,
  BackupPut,
  BackupGet,
  BackupFetch,
  BlobCreate,
  BlobChunk,
  BlobComplete,
  BlobGet,
  BlobDelete,
  RoomCreate,
  RoomAdd,
  RoomRemove,
  RoomLeave,
  RoomList,
  RoomMembers,
  Publish,
  Sync,
  History,
  KeysUpload,
  KeysFetch,
  KeysClaimKeyPackage,
  MailboxSend,
  MailboxAck,
  Typing,
  Receipt,
  Receipts,
  PresenceGet,
  Ping,
]);

export type InboundFrame = z.infer<typeof Inbound>;

export type ErrorCode =
  | 'bad_frame'
  | 'unsupported_version'
  | 'unauthenticated'
  | 'invalid_credentials'
  | 'device_removed'
  | 'token_expired'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'rate_limited'
  | 'limit_exceeded'
  | 'internal';

const BODY_B64_MAX = Math.ceil(BODY_BYTES_MAX / 3) * 4;

/** A parsed `publish`; the fast path also keeps the body's base64 text. */
export type PublishFrame = Extract<InboundFrame, { t: 'publish' }> & { bodyB64?: string };

/**
 * `publish` is most of the traffic, so it is checked by hand — the same
 * rules as the `Publish` schema (a property test holds the two equal).
 * Returns null when the frame is not a valid publish; the schema then runs
 * and reports why.
 */
export function parsePublish(json: unknown): PublishFrame | null {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return null;
  const o = json as Record<string, unknown>;
  const { id, roomId, clientId, body } = o;
  if (o.t !== 'publish') return null;
  if (id !== undefined && (typeof id !== 'string' || id.length > 64)) return null;
  if (typeof roomId !== 'string' || !ROOM_ID.test(roomId)) return null;
  if (typeof clientId !== 'string' || !CLIENT_ID.test(clientId)) return null;
  if (typeof body !== 'string' || body.length > BODY_B64_MAX) return null;
  const bytes = decodeBase64(body);
  if (bytes === null || bytes.length < 1 || bytes.length > BODY_BYTES_MAX) return null;
  // Like the schema, unknown keys are dropped. `bodyB64` keeps the validated
  // text so the delivery need not encode the bytes again.
  return id === undefined ? { t: 'publish', roomId, clientId, body: bytes, bodyB64: body } : { t: 'publish', id, roomId, clientId, body: bytes, bodyB64: body };
}

/**
 * Decode canonical base64 (RFC 4648 §4, padded), or null. Node's decoder is
 * lenient — it skips characters outside the alphabet, stops at `=`, takes
 * base64url, and reads only the low byte of each UTF-16 unit (so "Ł",
 * U+0141, decodes as "A") — so the bytes it returns are encoded again and
 * must give back the text exactly: then the text is the one encoding of
 * the bytes, and relaying it as it came equals encoding the stored bytes.
 * (Encoding 1 KiB again costs ~0.8 µs; the alphabet regex this replaced
 * cost ~3 µs on every publish.)
 */
export function decodeBase64(s: string): Uint8Array<ArrayBuffer> | null {
  if (s.length % 4 !== 0) return null;
  const bytes = Buffer.from(s, 'base64');
  if (bytes.toString('base64') !== s) return null;
  return new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length);
}

/** Parse one text frame; the error message never echoes the input. */
/** A path element for an error message: indexes and short alphanumeric names as they are, any other key (a record's, chosen by the client) not echoed. */
function pathPart(p: PropertyKey): string {
  if (typeof p === 'number') return String(p);
  return typeof p === 'string' && /^[a-zA-Z][a-zA-Z0-9]{0,31}$/.test(p) ? p : '<key>';
}

/**
 * A frame's request id, if it has a valid one. An error answers the request's
 * id only then: a cut-down id could be another request's and pair the error
 * with the wrong request.
 */
function validId(json: unknown): string | undefined {
  const rawId = typeof json === 'object' && json !== null ? (json as { id?: unknown }).id : undefined;
  return typeof rawId === 'string' && rawId.length <= 64 ? rawId : undefined;
}

/** The request id of a frame refused before it was parsed (rate limits); undefined if none can be read. */
export function requestIdOf(text: string): string | undefined {
  try {
    return validId(JSON.parse(text));
  } catch {
    return undefined;
  }
}

export function parseFrame(text: string): { ok: true; frame: InboundFrame } | { ok: false; message: string; id?: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, message: 'not JSON' };
  }
  const fast = parsePublish(json);
  if (fast !== null) return { ok: true, frame: fast };
  const r = Inbound.safeParse(json);
  if (r.success) return { ok: true, frame: r.data };
  const id = validId(json);
  const issue = r.error.issues[0];
  const where = (issue?.path ?? []).map(pathPart).join('.');
  return { ok: false, message: `invalid frame${where ? ` at ${where}` : ''}`, ...(id !== undefined && { id }) };
}
