/**
 * What a device knows of a user's device keys — its own user's too — and
 * whether it has verified them: the record behind key-change warnings and
 * the verified state.
 *
 * The key directory is the server's word. A server (or someone who took it
 * over) could list an extra device for a user, or another identity key for
 * one of its devices, and read what is then encrypted to it. So every list
 * the client fetches is reviewed against the record:
 *
 * - first sight of a user: its devices are recorded, nothing is reported
 *   (trust on first use, as Signal does);
 * - a device that appeared or disappeared: reported (`keysChanged`), and a
 *   new device ends a verification — the user verified a key set that no
 *   longer is the whole of it; a device that disappeared is remembered, and
 *   may come back only with its key;
 * - a device listed with another identity key than the one recorded (or
 *   trusted by the identity store, which pins the key of every device a
 *   session was made with): reported once per key, and **never accepted** —
 *   the recorded key stays, sessions with the new one are refused
 *   (`UNTRUSTED_IDENTITY`), and the verification ends. A Parley device id is
 *   bound to one key for life: an honest server cannot change it (a
 *   reinstalled device registers under a new id, or restores its key).
 *
 * @module
 */
import { equalBytes } from '@parley/themis/hazmat';
import { fromBase64, toBase64 } from './_bytes.ts';
import { SdkError } from './errors.ts';
import { DEVICE_ID } from './frames.ts';
import { PEER_DEVICES_MAX, PEER_REFUSED_KEYS_MAX } from './limits.ts';

const IDENTITY_KEY_BYTES = 32;

/** One device and its Ed25519 identity key. */
export interface DeviceKey {
  readonly deviceId: string;
  readonly identityKey: Uint8Array;
}

/** The verified state: the user's device keys as they were when verified, and when (ms since the epoch). */
export interface VerifiedKeys {
  readonly at: number;
  readonly devices: readonly DeviceKey[];
}

/** Kept per user in the client store (sealed at rest like every record). */
export interface PeerRecord {
  /** The devices accepted from the key directory, with the key recorded for each. */
  readonly devices: readonly DeviceKey[];
  /** Null when never verified, or when a change ended the verification. */
  readonly verified: VerifiedKeys | null;
  /** Keys listed for a recorded device and refused (each reported once); the newest PEER_REFUSED_KEYS_MAX. */
  readonly refused: readonly DeviceKey[];
  /** Devices no longer listed, with their keys: listed again, they must come back with the same key. */
  readonly former: readonly DeviceKey[];
}

/** A device listed with another identity key than the one this device trusts for it. */
export interface ChangedKey {
  readonly deviceId: string;
  readonly trustedKey: Uint8Array | null;
  readonly listedKey: Uint8Array;
}

/** What the `keysChanged` event reports. */
export interface KeysChange {
  readonly userId: string;
  /** Devices the directory lists now and did not before (in use from now on). */
  readonly added: readonly DeviceKey[];
  /** Devices it no longer lists. */
  readonly removed: readonly DeviceKey[];
  /** Devices listed with another key: refused (nothing is encrypted to it, nothing from it is accepted). */
  readonly changed: readonly ChangedKey[];
  /** Whether this user was verified before the change, and still is after it. */
  readonly wasVerified: boolean;
  readonly verified: boolean;
}

const sameKey = equalBytes;

/**
 * Review the directory's list of `userId`'s devices against `previous`
 * (module comment). `isTrusted(deviceId, key)` asks the identity store,
 * which pins the key of every device a session was made with. Returns the record to keep, and the change to
 * report (null when there is nothing to report).
 */
export function reviewPeerKeys(
  userId: string,
  previous: PeerRecord | undefined,
  listed: readonly DeviceKey[],
  isTrusted: (deviceId: string, identityKey: Uint8Array) => boolean,
): { record: PeerRecord; change: KeysChange | null } {
  const before = new Map((previous?.devices ?? []).map((d) => [d.deviceId, d]));
  const former = new Map((previous?.former ?? []).map((d) => [d.deviceId, d]));
  const refused = [...(previous?.refused ?? [])];
  const devices: DeviceKey[] = [];
  const added: DeviceKey[] = [];
  const changed: ChangedKey[] = [];
  for (const d of listed) {
    const known = before.get(d.deviceId)?.identityKey ?? former.get(d.deviceId)?.identityKey;
    if (known === undefined ? isTrusted(d.deviceId, d.identityKey) : sameKey(known, d.identityKey)) {
      devices.push({ deviceId: d.deviceId, identityKey: d.identityKey.slice() });
      if (previous !== undefined && !before.has(d.deviceId)) added.push(d);
      former.delete(d.deviceId);
      continue;
    }
    // Another key for a device id: keep the one we had (if we had one), refuse the new one, report it once.
    if (known !== undefined) devices.push({ deviceId: d.deviceId, identityKey: known.slice() });
    if (!refused.some((r) => r.deviceId === d.deviceId && sameKey(r.identityKey, d.identityKey))) {
      refused.push({ deviceId: d.deviceId, identityKey: d.identityKey.slice() });
      changed.push({ deviceId: d.deviceId, trustedKey: known?.slice() ?? null, listedKey: d.identityKey.slice() });
    }
  }
  const listedIds = new Set(listed.map((d) => d.deviceId));
  const removed = [...before.values()].filter((d) => !listedIds.has(d.deviceId));
  for (const d of removed) {
    former.delete(d.deviceId);
    former.set(d.deviceId, d);
  }
  const wasVerified = previous?.verified != null;
  let verified = previous?.verified ?? null;
  if (verified !== null) {
    // A device that left does not weaken what was verified; a new or changed one does.
    if (added.length > 0 || changed.length > 0) verified = null;
    else if (removed.length > 0) verified = { at: verified.at, devices: verified.devices.filter((d) => listedIds.has(d.deviceId)) };
  }
  const record: PeerRecord = { devices, verified, refused: refused.slice(-PEER_REFUSED_KEYS_MAX), former: [...former.values()].slice(-PEER_DEVICES_MAX) };
  const change = added.length + removed.length + changed.length === 0 ? null : { userId, added, removed, changed, wasVerified, verified: verified !== null };
  return { record, change };
}

/** Whether `devices` is exactly the verified set (same ids, same keys). */
export function matchesVerified(verified: VerifiedKeys | null, devices: readonly DeviceKey[]): boolean {
  if (verified === null || verified.devices.length !== devices.length) return false;
  const byId = new Map(verified.devices.map((d) => [d.deviceId, d.identityKey]));
  return devices.every((d) => {
    const k = byId.get(d.deviceId);
    return k !== undefined && sameKey(k, d.identityKey);
  });
}

// ------------------------------------------------------------ storage form

type KeyJson = [string, string];

function keysToJson(keys: readonly DeviceKey[]): KeyJson[] {
  return keys.map((d) => [d.deviceId, toBase64(d.identityKey)]);
}

function keysFromJson(v: unknown, what: string): DeviceKey[] {
  if (!Array.isArray(v) || v.length > PEER_DEVICES_MAX + PEER_REFUSED_KEYS_MAX) throw new SdkError('STORE', `a peer record has invalid ${what}`);
  return v.map((e: unknown) => {
    const [deviceId, key] = Array.isArray(e) ? (e as unknown[]) : [];
    const identityKey = typeof key === 'string' ? fromBase64(key) : null;
    if (typeof deviceId !== 'string' || !DEVICE_ID.test(deviceId) || identityKey === null || identityKey.length !== IDENTITY_KEY_BYTES) {
      throw new SdkError('STORE', `a peer record has invalid ${what}`);
    }
    return { deviceId, identityKey };
  });
}

/** The record as plain JSON (for stores that keep JSON headers). */
export function peerRecordToJson(r: PeerRecord): Record<string, unknown> {
  return {
    devices: keysToJson(r.devices),
    verified: r.verified === null ? null : { at: r.verified.at, devices: keysToJson(r.verified.devices) },
    refused: keysToJson(r.refused),
    former: keysToJson(r.former),
  };
}

/** The inverse of peerRecordToJson; `STORE` for anything else. */
export function peerRecordFromJson(v: unknown): PeerRecord {
  if (typeof v !== 'object' || v === null) throw new SdkError('STORE', 'a peer record is not an object');
  const o = v as Record<string, unknown>;
  let verified: VerifiedKeys | null = null;
  if (o['verified'] !== null) {
    const ver = o['verified'] as Record<string, unknown> | undefined;
    const at = ver?.['at'];
    if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) throw new SdkError('STORE', 'a peer record has an invalid verified time');
    verified = { at, devices: keysFromJson(ver?.['devices'], 'verified devices') };
  }
  return { devices: keysFromJson(o['devices'], 'devices'), verified, refused: keysFromJson(o['refused'], 'refused keys'), former: keysFromJson(o['former'], 'former devices') };
}
