/**
 * The server's frames (docs/protocol.md), as the SDK reads them. Nothing a
 * server sends is trusted to have the right shape: each frame the SDK acts
 * on goes through one of the small readers below, which check every field
 * they return and throw `BAD_RESPONSE` otherwise. (A server can always
 * refuse service; it must not be able to crash the client.)
 *
 * @module
 */
import { fromBase64 } from './_bytes.ts';
import { SdkError } from './errors.ts';
import { HEARTBEAT_INTERVAL_MIN_MS, ID_LENGTH_MAX, PEER_DEVICES_MAX, ROOMS_LISTED_MAX } from './limits.ts';

/** The server's identifier patterns (docs/protocol.md, "Framing"). */
export const USER_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Any frame from the server: a JSON object with a string `t`. */
export interface ServerFrame {
  readonly t: string;
  readonly re?: string;
  readonly [field: string]: unknown;
}

/** Parse one text frame; null when it is not a JSON object with a string `t`. */
export function parseServerFrame(text: string): ServerFrame | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (typeof o['t'] !== 'string') return null;
  if (o['re'] !== undefined && typeof o['re'] !== 'string') return null;
  return o as ServerFrame;
}

function bad(what: string): SdkError {
  return new SdkError('BAD_RESPONSE', `server sent an invalid ${what}`);
}

function objectField(o: unknown, what: string): Record<string, unknown> {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw bad(what);
  return o as Record<string, unknown>;
}

export function stringField(o: Record<string, unknown>, key: string, what: string, pattern?: RegExp): string {
  const v = o[key];
  if (typeof v !== 'string' || (pattern !== undefined && !pattern.test(v))) throw bad(`${what}.${key}`);
  return v;
}

export function intField(o: Record<string, unknown>, key: string, what: string, min = 0): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw bad(`${what}.${key}`);
  return v;
}

function bytesField(o: Record<string, unknown>, key: string, what: string, length?: number): Uint8Array {
  const v = o[key];
  const b = typeof v === 'string' ? fromBase64(v) : null;
  if (b === null || (length !== undefined && b.length !== length)) throw bad(`${what}.${key}`);
  return b;
}

/** A sender or recipient device as the server names it. */
export interface DeviceRef {
  readonly userId: string;
  readonly deviceId: string;
}

/** One entry of a room's log, as `msg` frames and history pages carry it. */
export interface RoomEntry {
  readonly roomId: string;
  readonly seq: number;
  /** `message`, or an event kind (`member-added`, `member-removed`, `role-changed`). */
  readonly kind: string;
  readonly from: DeviceRef;
  readonly clientId: string;
  /** Base64 as received; decoded only when needed. */
  readonly body: string;
  /** Server clock, ms since the epoch. */
  readonly ts: number;
}

export function readEntry(v: unknown): RoomEntry {
  const o = objectField(v, 'room entry');
  const from = objectField(o['from'], 'room entry sender');
  const kind = stringField(o, 'kind', 'room entry');
  if (kind.length > ID_LENGTH_MAX) throw bad('room entry kind');
  return {
    roomId: stringField(o, 'roomId', 'room entry', ROOM_ID),
    seq: intField(o, 'seq', 'room entry', 1),
    kind,
    from: { userId: stringField(from, 'userId', 'room entry sender', USER_ID), deviceId: stringField(from, 'deviceId', 'room entry sender', DEVICE_ID) },
    clientId: stringField(o, 'clientId', 'room entry', CLIENT_ID),
    body: stringField(o, 'body', 'room entry'),
    ts: intField(o, 'ts', 'room entry'),
  };
}

/** What `session` answers carry. Tokens only when new ones were issued (register, login, refresh). */
export interface SessionAnswer {
  readonly userId: string;
  readonly deviceId: string;
  readonly accessToken: string | null;
  readonly refreshToken: string | null;
  readonly expiresIn: number;
}

export function readSession(f: ServerFrame): SessionAnswer {
  const accessToken = f['accessToken'];
  const refreshToken = f['refreshToken'];
  if (accessToken !== undefined && typeof accessToken !== 'string') throw bad('session.accessToken');
  if (refreshToken !== undefined && typeof refreshToken !== 'string') throw bad('session.refreshToken');
  return {
    userId: stringField(f, 'userId', 'session', USER_ID),
    deviceId: stringField(f, 'deviceId', 'session', DEVICE_ID),
    accessToken: accessToken ?? null,
    refreshToken: refreshToken ?? null,
    expiresIn: intField(f, 'expiresIn', 'session'),
  };
}

export interface RoomSummary {
  readonly roomId: string;
  readonly kind: string;
  readonly lastSeq: number;
}

export function readRooms(f: ServerFrame): RoomSummary[] {
  const rooms = f['rooms'];
  if (!Array.isArray(rooms) || rooms.length > ROOMS_LISTED_MAX) throw bad('rooms');
  return rooms.map((r) => {
    const o = objectField(r, 'room');
    return { roomId: stringField(o, 'roomId', 'room', ROOM_ID), kind: stringField(o, 'kind', 'room'), lastSeq: intField(o, 'lastSeq', 'room') };
  });
}

export function readMembers(f: ServerFrame): string[] {
  const members = f['members'];
  if (!Array.isArray(members)) throw bad('members');
  return members.map((m) => stringField(objectField(m, 'member'), 'userId', 'member', USER_ID));
}

/** A presence version (absent: the server could not tell one; null). */
export function readPresenceVersion(o: Record<string, unknown>, what: string): number | null {
  const v = o['version'];
  if (v === undefined) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(`${what} version`);
  return v;
}

/** A `presence.state` answer: each member of the room, whether it is online, and the version of that. */
export function readPresence(f: ServerFrame): Map<string, { online: boolean; version: number | null }> {
  const members = f['members'];
  if (!Array.isArray(members)) throw bad('presence.state.members');
  const out = new Map<string, { online: boolean; version: number | null }>();
  for (const m of members) {
    const o = objectField(m, 'presence.state member');
    const online = o['online'];
    if (typeof online !== 'boolean') throw bad('presence.state member online');
    out.set(stringField(o, 'userId', 'presence.state member', USER_ID), { online, version: readPresenceVersion(o, 'presence.state member') });
  }
  return out;
}

/** A `synced` answer: the seq each room was synced to, and the rooms cut short. */
export function readSynced(f: ServerFrame): { rooms: Record<string, number>; more: string[] } {
  const rooms = objectField(f['rooms'], 'synced.rooms');
  const out: Record<string, number> = {};
  for (const roomId of Object.keys(rooms)) {
    if (!ROOM_ID.test(roomId)) throw bad('synced.rooms');
    out[roomId] = intField(rooms, roomId, 'synced.rooms');
  }
  const more = f['more'];
  if (!Array.isArray(more) || !more.every((r) => typeof r === 'string' && ROOM_ID.test(r))) throw bad('synced.more');
  return { rooms: out, more: more as string[] };
}

/** One device from a `keys` answer, bytes decoded, signatures not yet checked. */
export interface DirectoryEntry {
  readonly deviceId: string;
  readonly identityKey: Uint8Array;
  readonly signedPrekey: { keyId: number; publicKey: Uint8Array; signature: Uint8Array } | null;
  readonly oneTimePrekey: { keyId: number; publicKey: Uint8Array } | null;
  readonly pqPrekey: { keyId: number; publicKey: Uint8Array; signature: Uint8Array } | null;
}

export function readKeys(f: ServerFrame, userId: string): DirectoryEntry[] {
  if (f['userId'] !== userId) throw bad('keys.userId');
  const devices = f['devices'];
  if (!Array.isArray(devices) || devices.length > PEER_DEVICES_MAX) throw bad('keys.devices');
  const ids = new Set<string>();
  return devices.map((d) => {
    const o = objectField(d, 'keys device');
    const signed = (key: string): { keyId: number; publicKey: Uint8Array; signature: Uint8Array } | null => {
      if (o[key] === null || o[key] === undefined) return null;
      const k = objectField(o[key], key);
      return { keyId: intField(k, 'keyId', key), publicKey: bytesField(k, 'publicKey', key), signature: bytesField(k, 'signature', key) };
    };
    let oneTimePrekey: DirectoryEntry['oneTimePrekey'] = null;
    if (o['oneTimePrekey'] !== null && o['oneTimePrekey'] !== undefined) {
      const k = objectField(o['oneTimePrekey'], 'oneTimePrekey');
      oneTimePrekey = { keyId: intField(k, 'keyId', 'oneTimePrekey'), publicKey: bytesField(k, 'publicKey', 'oneTimePrekey') };
    }
    const deviceId = stringField(o, 'deviceId', 'keys device', DEVICE_ID);
    // A device listed twice (say with two keys) would let the server choose which one is trusted.
    if (ids.has(deviceId)) throw new SdkError('BAD_RESPONSE', `keys lists device ${deviceId} twice`);
    ids.add(deviceId);
    return {
      deviceId,
      identityKey: bytesField(o, 'identityKey', 'keys device', 32),
      signedPrekey: signed('signedPrekey'),
      oneTimePrekey,
      pqPrekey: signed('pqPrekey'),
    };
  });
}

/** The server's announced limits that the SDK uses (docs/protocol.md, "Version negotiation"). */
export interface ServerLimits {
  readonly bodyBytes: number | null;
  readonly historyPage: number | null;
  readonly blobBytes: number | null;
  readonly blobChunkBytes: number | null;
  /** Silence after which to send `ping`; null when the server does not answer pings. */
  readonly heartbeatMs: number | null;
}

export function readWelcome(f: ServerFrame): ServerLimits {
  const limits = typeof f['limits'] === 'object' && f['limits'] !== null ? (f['limits'] as Record<string, unknown>) : {};
  const positive = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : null);
  const heartbeat = positive(limits['heartbeatMs']);
  return {
    bodyBytes: positive(limits['bodyBytes']),
    historyPage: positive(limits['historyPage']),
    blobBytes: positive(limits['blobBytes']),
    blobChunkBytes: positive(limits['blobChunkBytes']),
    heartbeatMs: heartbeat === null ? null : Math.max(HEARTBEAT_INTERVAL_MIN_MS, heartbeat),
  };
}
