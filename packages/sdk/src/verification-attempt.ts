/**
 * One verification attempt with a peer user, as PeerVerifications
 * (peer-verification.ts) holds it: the request that opened it, its session
 * once this device has the key sets, and what it reports when it ends
 * ({@link VerificationOutcome}). Messages that arrive before the local
 * session exists (while the key sets are fetched) are held, at most
 * PENDING_MESSAGES_MAX per attempt.
 *
 * Separate from PeerVerifications because this is an attempt's record and
 * what the client reports of it, while the rules of when an attempt
 * opens, goes on and ends are there.
 *
 * @module
 */
import type { DeviceRef } from './frames.ts';
import type { DeviceKey } from './peer-keys.ts';
import type { PeerAbortReason } from './verification-message.ts';
import type { VerificationAbortReason, VerificationSession } from './verification.ts';

/** Messages held per attempt until its session exists (start, steps and aborts of one run are at most 4). */
const PENDING_MESSAGES_MAX = 8;

/** A user's device asks this device to verify with a shared secret. */
export interface VerificationRequest {
  readonly userId: string;
  readonly roomId: string;
  /** The device that asked. */
  readonly from: DeviceRef;
  /** The attempt's id, hex. */
  readonly verificationId: string;
  /** When the request was made (ms since the epoch): the older of the sender's clock and the server's. */
  readonly requestedAt: number;
  /**
   * Until when it can be answered here (ms since the epoch, this device's
   * clock): VERIFICATION_TIMEOUT_MS after this device got it, across
   * restarts. The peer's own wait ends about then too.
   */
  readonly expiresAt: number;
}

/** Why an attempt ended without a result: verification.ts's reasons, or the client's own. */
export type VerificationEndReason =
  | VerificationAbortReason
  /** Another device of this user answered the request. */
  | 'answered-elsewhere'
  /** The peer started another attempt, which replaced this one. */
  | 'replaced'
  /** Sending a control message failed (see the `error` event). */
  | 'send-failed'
  /** This device closed while the attempt was under way; the next client on its store told the peer. */
  | 'interrupted'
  /**
   * More requests came than VERIFICATION_PENDING_MAX: the oldest one not
   * yet answered was given up for a newer one (or, when every open attempt
   * was under way, the new one was not kept). Ask the peer to start again.
   */
  | 'crowded-out';

/** How an attempt ended. */
export interface VerificationOutcome {
  readonly userId: string;
  /** `verified`: both typed the same secret and see the same device keys; `failed`: they did not (or someone is in the middle); `aborted`: no result. */
  readonly state: 'verified' | 'failed' | 'aborted';
  readonly reason: VerificationEndReason | null;
  /** The peer's own reason when it aborted. */
  readonly peerReason: PeerAbortReason | null;
  /** The peer device the comparison ran with, when one answered. */
  readonly peerDevice: DeviceRef | null;
}

interface Pending {
  readonly message: Uint8Array;
  readonly from: string;
  readonly clocks: Clocks;
}

/** The sender's clock (inside the payload) and the server's, for a control message. */
interface Clocks {
  readonly sentAt: number;
  readonly serverTs: number;
}

export interface Attempt {
  readonly userId: string;
  roomId: string;
  session: VerificationSession | null;
  /** The peer's key set the session is bound to. */
  remote: readonly DeviceKey[] | null;
  /** An incoming request, until it is accepted here. */
  request: VerificationRequest | null;
  /** The id (hex) of the start that made the request. */
  requestId: string | null;
  /** Messages taken before the session existed, in order, with the clocks they came with. */
  readonly pending: Pending[];
  /** True while this device fetches key sets to start or accept. */
  preparing: boolean;
  /** True while accept() waits for the catch-up before it takes the request. */
  answering: boolean;
  timer: ReturnType<typeof setTimeout> | null;
  /** The last control message's send: an outcome is reported once it is stored, so the peer gets it even if we close right after. */
  lastSend: Promise<void>;
  readonly waiters: ((o: VerificationOutcome) => void)[];
  ended: boolean;
}

/** A new attempt with `userId`: no request, no session, nothing held. */
export function newAttempt(userId: string, roomId: string): Attempt {
  return { userId, roomId, session: null, remote: null, request: null, requestId: null, pending: [], preparing: false, answering: false, timer: null, lastSend: Promise.resolve(), waiters: [], ended: false };
}

/** Hold `message` until the session exists; past PENDING_MESSAGES_MAX it is dropped. */
export function hold(attempt: Attempt, message: Uint8Array, from: string, clocks: Clocks): void {
  if (attempt.pending.length < PENDING_MESSAGES_MAX) attempt.pending.push({ message: message.slice(), from, clocks });
}

export function deviceName(d: DeviceRef): string {
  return `${d.userId}/${d.deviceId}`;
}

export function parseDeviceName(name: string | null): DeviceRef | null {
  if (name === null) return null;
  const i = name.indexOf('/');
  return { userId: name.slice(0, i), deviceId: name.slice(i + 1) };
}

export function requestOf(roomId: string, from: DeviceRef, requestedAt: number, verificationId: string, expiresAt: number): VerificationRequest {
  return { userId: from.userId, roomId, from: { userId: from.userId, deviceId: from.deviceId }, verificationId, requestedAt, expiresAt };
}

/** Resolves with the attempt's outcome, once it is reported. */
export function waitFor(attempt: Attempt): Promise<VerificationOutcome> {
  return new Promise((resolve) => attempt.waiters.push(resolve));
}

export function outcomeOf(attempt: Attempt, state: VerificationOutcome['state'] = 'aborted', reason: VerificationEndReason | null = null, peerReason: PeerAbortReason | null = null): VerificationOutcome {
  return { userId: attempt.userId, state, reason, peerReason, peerDevice: parseDeviceName(attempt.session?.peer ?? null) };
}
