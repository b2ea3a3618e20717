/**
 * One room message ⇄ one envelope per device, over `@parley/protocol`'s
 * pairwise sessions.
 *
 * Sealing encrypts the payload separately for every target device (each
 * call is all-or-nothing for that device's session, so one device whose
 * identity changed or whose bundle fails does not block the others; it is
 * reported as skipped) and packs the envelopes into a body container.
 *
 * Every envelope carries the room as per-message associated data:
 * `UTF-8("parley-sdk-room-v1\n" ‖ roomId)`. The session's own associated
 * data already binds both device addresses and identity keys; binding the
 * room as well means a relay cannot move a message into another room the
 * two devices share.
 *
 * @module
 */
import { decryptFromDevice, encryptForDevices, isPrekeyMessage, ProtocolError, type DeviceAddress } from '@parley/protocol';
import { fromBase64, utf8 } from './_bytes.ts';
import { containerSize, encodeContainer, envelopeFor, type ContainerEntry } from './body-container.ts';
import type { ClientStore } from './client-store.ts';
import type { DirectoryDevice } from './device-directory.ts';
import { SdkError, type DecryptionFailureReason } from './errors.ts';
import { ENVELOPE_OVERHEAD_MAX } from './limits.ts';
import { decodePayload, type Payload } from './payload.ts';

export function roomAssociatedData(roomId: string): Uint8Array {
  return utf8(`parley-sdk-room-v1\n${roomId}`);
}

export interface SkippedDevice extends DeviceAddress {
  readonly reason: string;
}

export interface SealedMessage {
  readonly body: Uint8Array;
  readonly recipients: readonly DeviceAddress[];
  readonly skipped: readonly SkippedDevice[];
}

function same(a: DeviceAddress, b: DeviceAddress): boolean {
  return a.userId === b.userId && a.deviceId === b.deviceId;
}

/**
 * Encrypt `payload` for every device in `targets` (this device is skipped)
 * and pack the result. Throws `LIMIT` when the container could exceed
 * `bodyMax` (checked before anything is encrypted), `NO_RECIPIENTS` when no
 * device of another user can be reached.
 */
export function sealRoomMessage(store: ClientStore, me: DeviceAddress, targets: readonly DirectoryDevice[], roomId: string, payload: Uint8Array, bodyMax: number): SealedMessage {
  const skipped: SkippedDevice[] = [];
  const reachable: DirectoryDevice[] = [];
  for (const t of targets) {
    if (same(t, me)) continue;
    if (t.bundle === null && store.sessions.loadSession(t)?.established !== true) {
      skipped.push({ userId: t.userId, deviceId: t.deviceId, reason: t.problem ?? 'no session and no prekey bundle' });
      continue;
    }
    reachable.push(t);
  }
  if (!reachable.some((t) => t.userId !== me.userId)) {
    const why = skipped.filter((x) => x.userId !== me.userId).map((x) => `${x.userId}/${x.deviceId}: ${x.reason}`);
    throw new SdkError('NO_RECIPIENTS', `no device of another room member can be encrypted to${why.length > 0 ? ` (${why.join(', ')})` : ' (none listed)'}`);
  }
  // Worst case per device: a prekey message. Refuse before any session advances.
  const bound = containerSize(reachable.map((t) => ({ userId: t.userId, deviceId: t.deviceId, envelopeLength: payload.length + ENVELOPE_OVERHEAD_MAX })));
  if (bound > bodyMax) throw new SdkError('LIMIT', `message too large for ${reachable.length} devices (up to ${bound} bytes; the server takes ${bodyMax})`);

  const ad = roomAssociatedData(roomId);
  const entries: ContainerEntry[] = [];
  for (const t of reachable) {
    try {
      const [sealed] = encryptForDevices(store, me, [{ userId: t.userId, deviceId: t.deviceId, bundle: t.bundle }], payload, ad);
      if (sealed !== undefined) entries.push(sealed);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      skipped.push({ userId: t.userId, deviceId: t.deviceId, reason: e.code });
    }
  }
  if (!entries.some((e) => e.userId !== me.userId)) throw new SdkError('NO_RECIPIENTS', `no device of another room member could be encrypted to (${skipped.map((s) => `${s.userId}/${s.deviceId}: ${s.reason}`).join(', ')})`);
  return { body: encodeContainer(entries), recipients: entries.map((e) => ({ userId: e.userId, deviceId: e.deviceId })), skipped };
}

export type OpenResult =
  | { readonly ok: true; readonly payload: Payload; readonly prekeyMessage: boolean }
  | { readonly ok: false; readonly reason: DecryptionFailureReason };

const PASSED_THROUGH: readonly string[] = ['DECRYPT_FAILED', 'DUPLICATE', 'TOO_MANY_SKIPPED', 'UNTRUSTED_IDENTITY'];

/** Find this device's envelope in a room body and decrypt it. Never throws for anything the sender or relay controls. */
export function openRoomMessage(store: ClientStore, me: DeviceAddress, from: DeviceAddress, roomId: string, bodyB64: string): OpenResult {
  const body = fromBase64(bodyB64);
  if (body === null) return { ok: false, reason: 'MALFORMED_BODY' };
  let envelope: Uint8Array | null;
  try {
    envelope = envelopeFor(body, me);
  } catch {
    return { ok: false, reason: 'MALFORMED_BODY' };
  }
  if (envelope === null) return { ok: false, reason: 'NOT_ADDRESSED' };
  if (same(from, me)) return { ok: false, reason: 'DECRYPT_FAILED' };
  // Whether it may have used one of our one-time prekeys (by its type byte; trusted only once it decrypts).
  const prekeyMessage = isPrekeyMessage(envelope);
  let plaintext: Uint8Array;
  try {
    plaintext = decryptFromDevice(store, me, from, envelope, roomAssociatedData(roomId));
  } catch (e) {
    if (e instanceof ProtocolError) return { ok: false, reason: PASSED_THROUGH.includes(e.code) ? (e.code as DecryptionFailureReason) : 'DECRYPT_FAILED' };
    return { ok: false, reason: 'INTERNAL' };
  }
  try {
    return { ok: true, payload: decodePayload(plaintext), prekeyMessage };
  } catch {
    return { ok: false, reason: 'MALFORMED_PAYLOAD' };
  }
}
