/**
 * Open verifications across a restart. Closing the client (a reload, a
 * restart) loses no request: each open attempt is kept in the client
 * store ({@link KeptVerification}). The next client on the store offers a
 * request that is still unanswered again; an attempt that was under way
 * cannot go on — the comparator's secret state is never written down — so
 * the next client tells the peer it ended (`abort`, cancelled) instead of
 * leaving it to time out.
 *
 * Separate from PeerVerifications (peer-verification.ts) because taking
 * the records up runs once, when a client starts on a store, on records
 * another client wrote: they are checked before anything relies on them.
 *
 * @module
 */
import { fromHex } from './_bytes.ts';
import { SdkError } from './errors.ts';
import { VERIFICATION_PENDING_MAX, VERIFICATION_TIMEOUT_MS } from './limits.ts';
import { verificationControl } from './payload.ts';
import type { VerificationOutcome, VerificationRequest } from './verification-attempt.ts';
import { encodeVerificationMessage } from './verification-message.ts';

/**
 * An open attempt as the client store keeps it: a request waiting for an
 * answer here (with the peer's `start`), or an attempt under way, named by
 * the id its last control message carried.
 */
export type KeptVerification =
  | {
      readonly state: 'request';
      /** Its `expiresAt` is not kept: it follows from `receivedAt`. */
      readonly request: Omit<VerificationRequest, 'expiresAt'>;
      /** The peer's `start` control message. */
      readonly start: Uint8Array;
      /** When this device got it (ms, its own clock): the timeout runs from here. */
      readonly receivedAt: number;
    }
  | { readonly state: 'running'; readonly userId: string; readonly roomId: string; readonly verificationId: string };

/** A kept request, waiting for an answer here. */
export type KeptRequest = Extract<KeptVerification, { readonly state: 'request' }>;

/** What PeerVerifications.restore brought back, for the client to report. */
export interface RestoredVerifications {
  /** Requests offered again. */
  readonly requests: readonly VerificationRequest[];
  /** Attempts that ended while the client was away: `interrupted` (the peer was told), or `timeout` for a request that expired. */
  readonly outcomes: readonly VerificationOutcome[];
}

/** The hooks of PeerVerifications (VerificationHooks) that restoring uses. */
export interface KeptHooks {
  /** Send a control message in `roomId`; resolves once the server stored it. */
  send(roomId: string, control: Uint8Array): Promise<void>;
  /** Keep (or, with null, forget) the open attempt with `userId` in the client store. */
  keep(userId: string, kept: KeptVerification | null): void;
  error(e: unknown): void;
  now(): number;
}

const VERIFICATION_ID_HEX = /^[0-9a-f]{32}$/;

/** The peer user a kept record is filed under, if it names one. */
function keptUser(k: KeptVerification): string | null {
  const userId: unknown = k.state === 'request' ? k.request?.userId : k.userId;
  return typeof userId === 'string' ? userId : null;
}

/** A kept record whose fields are what restoring relies on. */
function wellFormed(k: KeptVerification): boolean {
  if (typeof k !== 'object' || k === null) return false;
  if (k.state === 'running') return typeof k.userId === 'string' && typeof k.roomId === 'string' && VERIFICATION_ID_HEX.test(k.verificationId);
  if (k.state !== 'request' || !(k.start instanceof Uint8Array) || typeof k.request !== 'object' || k.request === null) return false;
  const r = k.request;
  return typeof r.userId === 'string' && typeof r.roomId === 'string' && VERIFICATION_ID_HEX.test(r.verificationId) && Number.isSafeInteger(r.requestedAt) && Number.isSafeInteger(k.receivedAt) && r.from?.userId === r.userId && typeof r.from.deviceId === 'string';
}

/**
 * PeerVerifications.restore: `open` is its attempts by peer user, as they
 * are at each step (a user with one open is passed over: that attempt is
 * newer than the record); `reoffer` opens a kept request's attempt again,
 * as `request`, with `timeoutMs` left, without reporting it.
 */
export function restoreKept(
  kept: readonly KeptVerification[],
  open: ReadonlyMap<string, unknown>,
  hooks: KeptHooks,
  reoffer: (k: KeptRequest, request: VerificationRequest, timeoutMs: number) => void,
): RestoredVerifications {
  const requests: VerificationRequest[] = [];
  const outcomes: VerificationOutcome[] = [];
  const now = hooks.now();
  /** Forget the kept record of `userId`, unless a newer attempt with the user has taken its place. */
  const keepUnlessOpen = (userId: string): void => {
    if (!open.has(userId)) hooks.keep(userId, null);
  };
  // A record of another store implementation, or of a bug, that does not hold together is forgotten.
  const usable = kept.filter((k) => {
    if (wellFormed(k)) return true;
    const userId = keptUser(k);
    if (userId !== null) hooks.keep(userId, null);
    return false;
  });
  for (const k of usable) {
    if (k.state !== 'running' || open.has(k.userId)) continue;
    // The comparison cannot go on: tell the peer now rather than let it time out.
    const abort = encodeVerificationMessage({ kind: 'abort', id: fromHex(k.verificationId), reason: 'cancelled' });
    // Forgotten once the server has the abort: a client closed before that leaves it for the next one.
    hooks.send(k.roomId, verificationControl(abort)).then(
      () => keepUnlessOpen(k.userId),
      (e: unknown) => {
        if (SdkError.is(e, 'CLOSED')) return;
        keepUnlessOpen(k.userId);
        hooks.error(e);
      },
    );
    outcomes.push({ userId: k.userId, state: 'aborted', reason: 'interrupted', peerReason: null, peerDevice: null });
  }
  // Newest first, so that past VERIFICATION_PENDING_MAX the oldest are the ones given up (as PeerVerifications.receive does).
  const waiting = usable.flatMap((k) => (k.state === 'request' ? [k] : [])).sort((a, b) => b.receivedAt - a.receivedAt);
  for (const k of waiting) {
    const userId = k.request.userId;
    if (open.has(userId)) continue;
    // As long as it had left when the client closed: timed from when this device got it (the
    // peer's clock in requestedAt may be minutes off), never more than the whole timeout.
    const left = Math.min(VERIFICATION_TIMEOUT_MS, k.receivedAt + VERIFICATION_TIMEOUT_MS - now);
    if (left <= 0 || open.size >= VERIFICATION_PENDING_MAX) {
      hooks.keep(userId, null);
      outcomes.push({ userId, state: 'aborted', reason: left <= 0 ? 'timeout' : 'crowded-out', peerReason: null, peerDevice: k.request.from });
      continue;
    }
    const request: VerificationRequest = { ...k.request, expiresAt: now + left };
    reoffer(k, request, left);
    requests.push(request);
  }
  return { requests, outcomes };
}
