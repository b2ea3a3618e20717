/**
 * "Verify with a secret we both know": two devices run Themis Secure
 * Comparator (the Socialist Millionaire Protocol) over a conversation they
 * already share, and each learns whether the other typed the same secret —
 * and nothing else about it.
 *
 * The comparison is bound to the conversation: the comparator's secret
 * covers both users' ids and all their devices' identity keys as *this*
 * device sees them (formula and why: verification-secret.ts), so a man in
 * the middle who relays the comparison makes it fail.
 *
 * A {@link VerificationSession} is a state machine for one attempt. It does
 * no I/O: it returns the control messages to send and takes the ones that
 * arrive, which the client carries inside its end-to-end encrypted
 * payloads. Input from the peer never makes it throw: whatever arrives
 * ends in a typed state (`aborted` for malformed or out-of-order input).
 *
 * ```
 *  initiator                                            responder
 *  start(secret) ──── start {id, m1} ────────────────▶ receive → awaiting-secret
 *                                                      accept(secret)
 *  receive       ◀─── step {id, 2, m2} ──────────────
 *                ──── step {id, 3, m3} ────────────────▶ receive → verified | failed
 *  receive       ◀─── step {id, 4, m4} ──────────────
 *  → verified | failed
 *  either side, any time before its result:  abort {id, reason}  → aborted
 * ```
 *
 * No "result" message is exchanged: each side computes the result itself,
 * and a claimed result from the peer would prove nothing.
 *
 * Both sides starting at once: each receives the other's `start` while
 * waiting for step 2. The attempt with the lower verification id (bytewise)
 * goes on; the side that started the other one drops its own and answers as
 * responder, with the secret it was already given. No message is sent for
 * the dropped attempt.
 *
 * The control messages' wire format: verification-message.ts.
 *
 * What it does not guarantee: a guessable secret can be guessed, one guess
 * per attempt, by a man in the middle who runs the comparison himself —
 * `failed` means "different secrets *or* someone in the middle"; treat
 * repeated failures as an attack. The result covers the key sets the caller
 * passed in: refresh the device lists first, and store with the verified
 * state the binding it was verified for.
 *
 * @module
 */
import { SecureComparator, ThemisError } from '@parley/themis';
import { backend, equalBytes, wipe } from '@parley/themis/hazmat';
import { toHex } from './_bytes.ts';
import { SdkError } from './errors.ts';
import { compareBytes, safetyNumberBinding } from './safety-number.ts';
import { encodeVerificationMessage, decodeVerificationMessage, VERIFICATION_ID_BYTES, type PeerAbortReason, type VerificationMessage } from './verification-message.ts';
import { deriveSecret, type VerificationParties } from './verification-secret.ts';

/**
 * `idle` → (`start`) → `in-progress`, or `idle` → (a peer's start) →
 * `awaiting-secret` → (`accept`) → `in-progress`; then one of the three
 * outcomes, which are final.
 */
export type VerificationState = 'idle' | 'awaiting-secret' | 'in-progress' | 'verified' | 'failed' | 'aborted';

/** Why a session ended `aborted`. */
export type VerificationAbortReason =
  /** `abort('cancelled')` here (the user gave up). */
  | 'cancelled'
  /** `abort('timeout')` here: the caller's timer ran out (the session keeps no clock). */
  | 'timeout'
  /** The peer sent a message that does not parse, or comparator data the comparator refused. */
  | 'malformed'
  /** The peer sent a well-formed message at the wrong moment: a wrong step, a second different start under one id. */
  | 'unexpected'
  /** The peer sent `abort` (its reason: `peerAbortReason`). */
  | 'peer-aborted'
  /** A bug in this code (the comparator threw something other than a ThemisError). */
  | 'internal';

/** Why a received message changed nothing. */
export type VerificationIgnored =
  /** Byte-for-byte a message this session already took. */
  | 'duplicate'
  /** The session already has its outcome. */
  | 'finished'
  /** From another device than the one this session runs with (the first one that took part). */
  | 'other-device'
  /** A step or abort of another attempt (e.g. a late message of one that ended), or a non-start message to an idle session. */
  | 'other-verification'
  /** The peer's `start` lost the tie-break against ours; the peer will answer ours. */
  | 'tie-break'
  /**
   * The peer's `start` of a new attempt while this one runs: the peer gave
   * this one up. Abort this session (send what `abort()` returns) and give
   * the message to a new one.
   */
  | 'new-verification';

export interface VerificationUpdate {
  /** The session's state afterwards. */
  readonly state: VerificationState;
  /** Send this control message to the peer now (in the same conversation), or nothing. */
  readonly reply: Uint8Array | null;
  /** Why the message changed nothing; null when it was taken (including when it aborted the session). */
  readonly ignored: VerificationIgnored | null;
}

type Role = 'initiator' | 'responder';

/**
 * One attempt at verifying a peer with a shared secret. Keep at most one
 * active (non-final) session per peer user and conversation. Route a
 * received control message to the active session; when there is none and
 * the message is a `start` (see {@link decodeVerificationMessage}), give it
 * to a new session, and do the same after `ignored: 'new-verification'`.
 *
 * `from` in {@link receive} names the sending device (any stable string,
 * e.g. `userId/deviceId`): a `start` may reach several devices of the peer,
 * and the session runs with the first that answers.
 */
export class VerificationSession {
  readonly #binding: Uint8Array;
  #state: VerificationState = 'idle';
  #role: Role | null = null;
  #id: Uint8Array | null = null;
  #peer: string | null = null;
  /** The derived comparator secret: kept while running (a lost tie-break needs it again), wiped at the end. */
  #secret: Uint8Array | null = null;
  #comparator: SecureComparator | null = null;
  /** The step this session waits for. */
  #expected: 2 | 3 | 4 = 2;
  /** The peer's comparator message 1, while waiting for the user's secret. */
  #pendingStart: Uint8Array | null = null;
  /** Messages taken (at most two), so exact duplicates are ignored. */
  #taken: Uint8Array[] = [];
  #abortReason: VerificationAbortReason | null = null;
  #peerAbortReason: PeerAbortReason | null = null;

  /** Throws `INVALID_ARGUMENT` for malformed parties (see `safetyNumber`). */
  constructor(parties: VerificationParties) {
    if (typeof parties !== 'object' || parties === null) throw new SdkError('INVALID_ARGUMENT', 'parties must be { local, remote }');
    this.#binding = safetyNumberBinding(parties.local, parties.remote);
  }

  get state(): VerificationState {
    return this.#state;
  }
  /** `initiator` after `start` (until a lost tie-break), `responder` after a peer's start; null while idle. */
  get role(): Role | null {
    return this.#role;
  }
  /** The current attempt's id in hex, for logs and UI; null while idle. */
  get verificationId(): string | null {
    return this.#id === null ? null : toHex(this.#id);
  }
  /** The device this session runs with (the `from` of its first peer message); null before one. */
  get peer(): string | null {
    return this.#peer;
  }
  get abortReason(): VerificationAbortReason | null {
    return this.#abortReason;
  }
  get peerAbortReason(): PeerAbortReason | null {
    return this.#peerAbortReason;
  }
  /** True once the outcome (`verified`, `failed` or `aborted`) is known. */
  get finished(): boolean {
    return this.#state === 'verified' || this.#state === 'failed' || this.#state === 'aborted';
  }

  /** Start an attempt; the reply is the `start` to send. Only when idle (else `INVALID_ARGUMENT`). */
  start(secret: string | Uint8Array): VerificationUpdate {
    if (this.#state !== 'idle') throw new SdkError('INVALID_ARGUMENT', `start() needs an idle session, not ${this.#state}`);
    const derived = deriveSecret(secret, this.#binding);
    const id = backend.randomBytes(VERIFICATION_ID_BYTES);
    const comparator = new SecureComparator(derived);
    const m1 = comparator.begin();
    this.#secret = derived;
    this.#comparator = comparator;
    this.#id = id;
    this.#role = 'initiator';
    this.#expected = 2;
    this.#state = 'in-progress';
    return update(this.#state, encodeVerificationMessage({ kind: 'start', id, data: m1 }));
  }

  /**
   * Answer the peer's start with the user's secret (state `awaiting-secret`,
   * else `INVALID_ARGUMENT`). The reply is step 2 — or an `abort` if the
   * peer's comparator data is unusable, the session then being `aborted`.
   */
  accept(secret: string | Uint8Array): VerificationUpdate {
    if (this.#state !== 'awaiting-secret' || this.#pendingStart === null) {
      throw new SdkError('INVALID_ARGUMENT', `accept() needs a session awaiting the secret, not ${this.#state}`);
    }
    this.#secret = deriveSecret(secret, this.#binding);
    const m1 = this.#pendingStart;
    this.#pendingStart = null;
    return this.#respond(m1);
  }

  /**
   * Take a control message from device `from`. Never throws on the
   * message's content; a non-Uint8Array or an empty `from` is a caller bug
   * (`INVALID_ARGUMENT`).
   */
  receive(message: Uint8Array, from: string): VerificationUpdate {
    if (!(message instanceof Uint8Array)) throw new SdkError('INVALID_ARGUMENT', 'a verification message is a Uint8Array');
    if (typeof from !== 'string' || from.length === 0) throw new SdkError('INVALID_ARGUMENT', 'from must name the sending device');
    if (this.finished) return this.#ignore('finished');
    if (this.#peer !== null && from !== this.#peer) return this.#ignore('other-device');
    if (this.#taken.some((t) => equalBytes(t, message))) return this.#ignore('duplicate');
    let m: VerificationMessage;
    try {
      m = decodeVerificationMessage(message);
    } catch {
      return this.#abort('malformed');
    }
    if (this.#state === 'idle') {
      if (m.kind !== 'start') return this.#ignore('other-verification');
      this.#id = m.id;
      this.#pendingStart = m.data;
      this.#peer = from;
      this.#role = 'responder';
      this.#state = 'awaiting-secret';
      this.#taken.push(message.slice());
      return update(this.#state, null);
    }
    const own = this.#id !== null && equalBytes(m.id, this.#id);
    switch (m.kind) {
      case 'abort':
        if (!own) return this.#ignore('other-verification');
        this.#peerAbortReason = m.reason;
        this.#end('aborted', 'peer-aborted');
        return update(this.#state, null);
      case 'start':
        if (own) return this.#abort('unexpected');
        if (this.#role === 'initiator' && this.#expected === 2 && this.#id !== null) {
          // Both sides started: the lower id goes on (equal ids were `own` above).
          if (compareBytes(m.id, this.#id) > 0) return this.#ignore('tie-break');
          this.#comparator?.destroy();
          this.#comparator = null;
          this.#id = m.id;
          this.#peer = from;
          this.#taken = [message.slice()];
          return this.#respond(m.data);
        }
        return this.#ignore('new-verification');
      case 'step':
        if (!own) return this.#ignore('other-verification');
        if (this.#state !== 'in-progress' || m.step !== this.#expected) return this.#abort('unexpected');
        return this.#step(m.step, m.data, message, from);
    }
  }

  /**
   * End the attempt here: the user cancelled, or the caller's timer ran
   * out. Returns the `abort` to send, or null when there is nothing to tell
   * the peer (idle, or already finished — then nothing changes).
   */
  abort(reason: 'cancelled' | 'timeout' = 'cancelled'): Uint8Array | null {
    if (reason !== 'cancelled' && reason !== 'timeout') throw new SdkError('INVALID_ARGUMENT', "reason must be 'cancelled' or 'timeout'");
    if (this.finished) return null;
    return this.#abort(reason).reply;
  }

  /** As responder: run comparator step 1 → 2 on the peer's message 1. */
  #respond(m1: Uint8Array): VerificationUpdate {
    const secret = this.#secret;
    if (secret === null) return this.#abort('internal');
    const comparator = new SecureComparator(secret);
    let m2: Uint8Array;
    try {
      m2 = comparator.proceed(m1);
    } catch (e) {
      comparator.destroy();
      return this.#abort(e instanceof ThemisError ? 'malformed' : 'internal');
    }
    // The secret is needed again only by an initiator that loses a tie-break.
    wipe(secret);
    this.#secret = null;
    this.#comparator = comparator;
    this.#role = 'responder';
    this.#expected = 3;
    this.#state = 'in-progress';
    return update(this.#state, this.#stepMessage(2, m2));
  }

  #step(step: 2 | 3 | 4, data: Uint8Array, message: Uint8Array, from: string): VerificationUpdate {
    const comparator = this.#comparator;
    if (comparator === null) return this.#abort('internal');
    let out: Uint8Array;
    try {
      out = comparator.proceed(data);
    } catch (e) {
      return this.#abort(e instanceof ThemisError ? 'malformed' : 'internal');
    }
    this.#peer ??= from;
    this.#taken.push(message.slice());
    if (step === 2) {
      // Initiator: the peer answered; no tie-break any more.
      if (this.#secret !== null) wipe(this.#secret);
      this.#secret = null;
      this.#expected = 4;
      return update(this.#state, this.#stepMessage(3, out));
    }
    const reply = step === 3 ? this.#stepMessage(4, out) : null;
    const match = comparator.complete() && comparator.compareEqual();
    this.#end(match ? 'verified' : 'failed', null);
    return update(this.#state, reply);
  }

  #stepMessage(step: 2 | 3 | 4, data: Uint8Array): Uint8Array {
    return encodeVerificationMessage({ kind: 'step', id: this.#liveId(), step, data });
  }

  #liveId(): Uint8Array {
    if (this.#id === null) throw new SdkError('INTERNAL', 'verification id missing');
    return this.#id;
  }

  /** Abort here; the reply tells the peer when there is an attempt to name. */
  #abort(reason: VerificationAbortReason): VerificationUpdate {
    const wire: PeerAbortReason = reason === 'peer-aborted' || reason === 'internal' ? 'unspecified' : reason;
    const reply = this.#id === null ? null : encodeVerificationMessage({ kind: 'abort', id: this.#id, reason: wire });
    this.#end('aborted', reason);
    return update(this.#state, reply);
  }

  #end(state: 'verified' | 'failed' | 'aborted', reason: VerificationAbortReason | null): void {
    this.#state = state;
    this.#abortReason = state === 'aborted' ? reason : null;
    this.#comparator?.destroy();
    this.#comparator = null;
    if (this.#secret !== null) wipe(this.#secret);
    this.#secret = null;
    if (this.#pendingStart !== null) wipe(this.#pendingStart);
    this.#pendingStart = null;
    this.#taken = [];
  }

  #ignore(why: VerificationIgnored): VerificationUpdate {
    return { state: this.#state, reply: null, ignored: why };
  }

  toString(): string {
    return `VerificationSession(${this.#state})`;
  }
  toJSON(): string {
    return this.toString();
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

function update(state: VerificationState, reply: Uint8Array | null): VerificationUpdate {
  return { state, reply, ignored: null };
}
