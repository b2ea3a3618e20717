/**
 * Identity verification inside conversations: the client's side of
 * verification.ts. One attempt at a time per peer user, carried as control
 * messages (payload.ts) in the direct room with that user — end-to-end
 * encrypted, in room order, to every device of both users like any message.
 *
 * ```
 *  verify(bob, secret) ── start ──▶ bob's devices: `verificationRequest`
 *                                   acceptVerification(alice, secret) on one
 *                       ◀── step 2 ─ (the first device to answer runs it)
 *                       ── step 3 ──▶
 *                       ◀── step 4 ─
 *  `verification` {verified | failed | aborted} on both sides
 * ```
 *
 * What is compared is bound to both users' device keys, fetched fresh from
 * the key directory when an attempt starts here or is accepted here (a man
 * in the middle who substituted a key makes the two sides compare different
 * values: `failed`). `verified` records the peer's device keys as they were
 * bound; a later device added to the peer, or a changed key, ends it
 * (peer-keys.ts).
 *
 * Rules that keep a peer (or a replaying server) from steering a device:
 * control messages from this user's own devices are ignored (they go to the
 * peer, and reach us only as copies); a `start` older than
 * VERIFICATION_TIMEOUT_MS is ignored (a replay after being away, or a start
 * the server held back): older by this device's clock than the server's
 * time for it, or stored by the server longer after the sender's clock
 * (inside the encrypted payload) says it was written — so the server can
 * make no start look fresher than its sender wrote it, and each check
 * compares two clocks only (devices a few minutes off either way still
 * verify); at most VERIFICATION_PENDING_MAX users may have an open
 * attempt (a newer request crowds out the oldest unanswered one, and both
 * sides of that are reported); a request nobody answers expires; messages that arrive before
 * the local session exists (while the key sets are fetched) are held, a
 * few at most per attempt (verification-attempt.ts).
 *
 * Closing the client (a reload, a restart) loses no request: each open
 * attempt is kept in the client store, and the next client on the store
 * takes it up (kept-verification.ts).
 *
 * @module
 */
import { fromHex, toHex } from './_bytes.ts';
import type { Listener } from './emitter.ts';
import { SdkError } from './errors.ts';
import type { DeviceRef } from './frames.ts';
import { restoreKept, type KeptHooks, type KeptVerification, type RestoredVerifications } from './kept-verification.ts';
import { VERIFICATION_PENDING_MAX, VERIFICATION_TIMEOUT_MS } from './limits.ts';
import { verificationControl } from './payload.ts';
import type { DeviceKey } from './peer-keys.ts';
import { deviceName, hold, newAttempt, outcomeOf, parseDeviceName, requestOf, waitFor, type Attempt, type VerificationEndReason, type VerificationOutcome, type VerificationRequest } from './verification-attempt.ts';
import { decodeVerificationMessage, encodeVerificationMessage, type PeerAbortReason } from './verification-message.ts';
import type { VerificationParties } from './verification-secret.ts';
import { VerificationSession } from './verification.ts';

export type { KeptVerification, RestoredVerifications } from './kept-verification.ts';
export type { VerificationEndReason, VerificationOutcome, VerificationRequest } from './verification-attempt.ts';

export interface VerificationHooks extends KeptHooks {
  /** Both users' device keys, fresh from the key directory (and reviewed); throws when a key is refused. */
  parties(userId: string): Promise<{ readonly parties: VerificationParties; readonly remote: readonly DeviceKey[] }>;
  /** The direct room with `userId` (created when there is none). */
  room(userId: string): Promise<string>;
  /**
   * Resolves once what the server stored for this device so far has been
   * received (the client's `synced()`); may reject when the client closes.
   */
  caughtUp(): Promise<void>;
  /** Record the peer's device keys as verified. */
  verified(userId: string, remote: readonly DeviceKey[], at: number): void;
  request: Listener<VerificationRequest>;
  outcome: Listener<VerificationOutcome>;
}

export class PeerVerifications {
  readonly #me: string;
  readonly #hooks: VerificationHooks;
  readonly #attempts = new Map<string, Attempt>();

  constructor(userId: string, hooks: VerificationHooks) {
    this.#me = userId;
    this.#hooks = hooks;
  }

  /** The open request from `userId`, if one waits for an answer here. */
  request(userId: string): VerificationRequest | null {
    return this.#attempts.get(userId)?.request ?? null;
  }

  /** Start verifying `userId` (or answer its open request) with `secret`. */
  async verify(userId: string, secret: string | Uint8Array): Promise<VerificationOutcome> {
    const open = this.#attempts.get(userId);
    if (open !== undefined && open.request !== null && !open.preparing && !open.answering) return this.accept(userId, secret);
    if (open !== undefined) throw new SdkError('INVALID_ARGUMENT', `a verification with ${userId} is already running`);
    const attempt = this.#open(userId, '');
    attempt.preparing = true;
    try {
      attempt.roomId = await this.#hooks.room(userId);
      const { parties, remote } = await this.#hooks.parties(userId);
      if (attempt.ended) return outcomeOf(attempt);
      const session = new VerificationSession(parties);
      const started = session.start(secret);
      attempt.session = session;
      attempt.remote = remote;
      attempt.preparing = false;
      const result = waitFor(attempt);
      if (started.reply !== null) this.#send(attempt, started.reply);
      // A start of the peer's that came while we prepared: the session settles the tie.
      this.#drain(attempt);
      return await result;
    } catch (e) {
      // Failed before anything went to the peer (an unknown user, a changed key): the caller has the error, and
      // there was no attempt to report. Later, the attempt ends for both sides.
      if (attempt.session === null) this.#drop(attempt);
      else this.#end(attempt, 'aborted', 'internal');
      throw e;
    }
  }

  /** An attempt that ends before anything was sent for it: gone, with no outcome (its caller gets the error). */
  #drop(attempt: Attempt): void {
    if (!this.#retire(attempt, true)) return;
    // A start of the peer's held while this one prepared is a request of its own.
    for (const p of attempt.pending.splice(0)) this.#passOn(attempt, p);
  }

  /** Answer `userId`'s open request with `secret`. */
  async accept(userId: string, secret: string | Uint8Array): Promise<VerificationOutcome> {
    const attempt = this.#attempts.get(userId);
    if (attempt === undefined || attempt.request === null || attempt.preparing || attempt.answering) throw new SdkError('INVALID_ARGUMENT', `no verification request from ${userId} waits for an answer`);
    const result = waitFor(attempt);
    // What the server already holds goes first: another device of this user
    // may have answered the request, or the peer given it up or started
    // again (the request may have been restored before the catch-up ran).
    // Answering first would run the comparator on another device's exchange.
    attempt.answering = true;
    await this.#hooks.caughtUp().catch(() => undefined);
    attempt.answering = false;
    if (attempt.ended) return result;
    attempt.preparing = true;
    try {
      const { parties, remote } = await this.#hooks.parties(userId);
      if (attempt.ended) return await result;
      const session = new VerificationSession(parties);
      attempt.session = session;
      attempt.remote = remote;
      attempt.request = null;
      attempt.preparing = false;
      // The start first: it puts the session in `awaiting-secret`.
      const start = attempt.pending.shift();
      if (start !== undefined) this.#take(attempt, start.message, start.from);
      if (!attempt.ended && session.state === 'awaiting-secret') {
        const answered = session.accept(secret);
        if (answered.reply !== null) this.#send(attempt, answered.reply);
        this.#settle(attempt);
      }
      this.#drain(attempt);
    } catch (e) {
      this.#end(attempt, 'aborted', 'internal');
      throw e;
    }
    return result;
  }

  /** Give up the attempt with `userId` (or decline its request); the peer is told. */
  cancel(userId: string): void {
    const attempt = this.#attempts.get(userId);
    if (attempt === undefined) return;
    let abort: Uint8Array | null = null;
    if (attempt.session !== null) abort = attempt.session.abort('cancelled');
    else if (attempt.requestId !== null) abort = encodeVerificationMessage({ kind: 'abort', id: fromHex(attempt.requestId), reason: 'cancelled' });
    if (abort !== null && attempt.roomId !== '') this.#send(attempt, abort);
    this.#end(attempt, 'aborted', 'cancelled');
  }

  /**
   * A control message of type verification from `from` in `roomId` (room
   * order), with the sender's clock and the server's (see the module comment).
   */
  receive(roomId: string, from: DeviceRef, clocks: { readonly sentAt: number; readonly serverTs: number }, message: Uint8Array): void {
    if (from.userId === this.#me) {
      // Our own devices' messages to the peer: only another device's answer to a request open here matters.
      this.#answeredElsewhere(message);
      return;
    }
    const now = this.#hooks.now();
    const stale = now - clocks.serverTs > VERIFICATION_TIMEOUT_MS || clocks.serverTs - clocks.sentAt > VERIFICATION_TIMEOUT_MS;
    const sentAt = Math.min(clocks.sentAt, clocks.serverTs);
    const name = deviceName(from);
    const attempt = this.#attempts.get(from.userId);
    let decoded;
    try {
      decoded = decodeVerificationMessage(message);
    } catch {
      // Garbage ends a running attempt (the session aborts as `malformed`); with none, it is dropped.
      if (attempt?.session != null) this.#take(attempt, message, name);
      return;
    }
    if (attempt === undefined) {
      if (decoded.kind !== 'start' || stale) return;
      if (this.#attempts.size >= VERIFICATION_PENDING_MAX && !this.#makeRoom()) {
        this.#hooks.outcome({ userId: from.userId, state: 'aborted', reason: 'crowded-out', peerReason: null, peerDevice: { userId: from.userId, deviceId: from.deviceId } });
        return;
      }
      this.#offer(this.#open(from.userId, roomId), requestOf(roomId, from, sentAt, toHex(decoded.id), now + VERIFICATION_TIMEOUT_MS), message, now);
      return;
    }
    if (attempt.session === null) {
      if (attempt.request !== null && !attempt.preparing) {
        const id = toHex(decoded.id);
        if (decoded.kind === 'start' && id !== attempt.requestId) {
          if (stale) return;
          // The peer gave its request up for a new one. If the new one comes from
          // another of the peer's devices, the device that made the old one is still
          // waiting for an answer: tell it that it lost its place.
          if (attempt.requestId !== null && attempt.request.from.deviceId !== from.deviceId) {
            this.#send(attempt, encodeVerificationMessage({ kind: 'abort', id: fromHex(attempt.requestId), reason: 'superseded' }));
          }
          this.#end(attempt, 'aborted', 'replaced');
          this.#offer(this.#open(from.userId, roomId), requestOf(roomId, from, sentAt, id, now + VERIFICATION_TIMEOUT_MS), message, now);
          return;
        }
        if (id === attempt.requestId && decoded.kind === 'abort') {
          this.#end(attempt, 'aborted', 'peer-aborted', decoded.reason);
          return;
        }
        if (decoded.kind === 'step') {
          // The peer goes on with the answer of another device of this user —
          // to this request, or to another attempt (one that device started,
          // which won when both users started at once): this request is over.
          this.#end(attempt, 'aborted', 'answered-elsewhere');
          return;
        }
      }
      hold(attempt, message, name, clocks);
      return;
    }
    this.#take(attempt, message, name);
  }

  /**
   * Another device of this user sent step 2 of an attempt whose request is
   * open here and not yet answered here: that device answered it, and the
   * peer runs the comparison with it (the first to answer) — ended here,
   * without telling the peer, before a step meant for that device could be
   * taken as a reply to ours.
   */
  #answeredElsewhere(message: Uint8Array): void {
    let m;
    try {
      m = decodeVerificationMessage(message);
    } catch {
      return;
    }
    if (m.kind !== 'step' || m.step !== 2) return;
    const id = toHex(m.id);
    for (const a of this.#attempts.values()) {
      if (a.session === null && a.requestId === id) this.#end(a, 'aborted', 'answered-elsewhere');
    }
  }

  /** Every request that waits for an answer here. */
  requests(): VerificationRequest[] {
    const out: VerificationRequest[] = [];
    for (const a of this.#attempts.values()) if (a.request !== null) out.push(a.request);
    return out;
  }

  /**
   * End every attempt (the client closed). Their records stay in the store,
   * for {@link restore} on the next client.
   */
  closeAll(): void {
    for (const a of [...this.#attempts.values()]) this.#end(a, 'aborted', 'cancelled', null, false);
  }

  /**
   * Take up what an earlier client on this store kept (call once, when the
   * client has connected, before anything is received). Requests still
   * fresh are offered again, each with the rest of its time; an attempt
   * that was under way is ended and the peer told. Nothing is reported
   * through the hooks: the caller reports what this returns.
   */
  restore(kept: readonly KeptVerification[]): RestoredVerifications {
    return restoreKept(kept, this.#attempts, this.#hooks, (k, request, timeoutMs) => this.#offer(this.#open(request.userId, request.roomId, timeoutMs), request, k.start, k.receivedAt, false));
  }

  /**
   * Give up the oldest request nobody has answered yet, so that users who
   * keep sending starts cannot hold every place and make a newer request
   * vanish unseen; false when every open attempt is under way.
   */
  #makeRoom(): boolean {
    for (const a of this.#attempts.values()) {
      if (a.request !== null && a.session === null && !a.preparing) {
        this.#end(a, 'aborted', 'crowded-out');
        return true;
      }
    }
    return false;
  }

  #open(userId: string, roomId: string, timeoutMs = VERIFICATION_TIMEOUT_MS): Attempt {
    const attempt = newAttempt(userId, roomId);
    attempt.timer = setTimeout(() => this.#timeout(attempt), Math.max(0, timeoutMs));
    this.#attempts.set(userId, attempt);
    return attempt;
  }

  /** Make `attempt` the request `start` made; kept in the store, and reported unless `announce` is false. */
  #offer(attempt: Attempt, request: VerificationRequest, start: Uint8Array, receivedAt: number, announce = true): void {
    attempt.roomId = request.roomId;
    attempt.requestId = request.verificationId;
    attempt.pending.push({ message: start.slice(), from: deviceName(request.from), clocks: { sentAt: request.requestedAt, serverTs: request.requestedAt } });
    attempt.request = request;
    this.#hooks.keep(attempt.userId, { state: 'request', request, start: start.slice(), receivedAt });
    if (announce) this.#hooks.request(request);
  }

  /** Feed one message to the session; send its reply; end the attempt if that settled it. */
  #take(attempt: Attempt, message: Uint8Array, from: string): void {
    const session = attempt.session;
    if (session === null || attempt.ended) return;
    const update = session.receive(message, from);
    if (update.ignored === 'new-verification') {
      // The peer started over: this attempt ends, the new start becomes a request.
      const abort = session.abort('cancelled');
      if (abort !== null) this.#send(attempt, abort);
      this.#end(attempt, 'aborted', 'replaced');
      const sender = parseDeviceName(from);
      if (sender !== null) this.receive(attempt.roomId, sender, { sentAt: this.#hooks.now(), serverTs: this.#hooks.now() }, message);
      return;
    }
    if (update.reply !== null) this.#send(attempt, update.reply);
    this.#settle(attempt);
  }

  #drain(attempt: Attempt): void {
    for (const p of attempt.pending.splice(0)) {
      if (!attempt.ended) {
        this.#take(attempt, p.message, p.from);
        continue;
      }
      // The attempt ended on an earlier message (the peer's abort): what came after it — a new start — is the next attempt's.
      this.#passOn(attempt, p);
    }
  }

  /** A message held for an attempt that has ended goes through `receive` again, as if it came now. */
  #passOn(attempt: Attempt, p: Attempt['pending'][number]): void {
    const sender = parseDeviceName(p.from);
    if (sender !== null) this.receive(attempt.roomId, sender, p.clocks, p.message);
  }

  #settle(attempt: Attempt): void {
    const s = attempt.session;
    if (s === null || !s.finished) return;
    if (s.state === 'verified' && attempt.remote !== null) this.#hooks.verified(attempt.userId, attempt.remote, this.#hooks.now());
    this.#end(attempt, s.state as 'verified' | 'failed' | 'aborted', s.abortReason, s.peerAbortReason);
  }

  #timeout(attempt: Attempt): void {
    attempt.timer = null;
    if (attempt.ended) return;
    const abort = attempt.session?.abort('timeout') ?? null;
    if (abort !== null) this.#send(attempt, abort);
    this.#end(attempt, 'aborted', 'timeout');
  }

  #send(attempt: Attempt, control: Uint8Array): void {
    const sent = decodeVerificationMessage(control);
    // Under way from now on: kept under the id the peer knows it by (a tie-break may change it).
    if (sent.kind !== 'abort' && !attempt.ended) {
      this.#hooks.keep(attempt.userId, { state: 'running', userId: attempt.userId, roomId: attempt.roomId, verificationId: toHex(sent.id) });
    }
    attempt.lastSend = this.#hooks.send(attempt.roomId, verificationControl(control)).catch((e: unknown) => {
      this.#hooks.error(e);
      if (!attempt.ended) {
        attempt.session?.abort('cancelled');
        this.#end(attempt, 'aborted', 'send-failed');
      }
    });
  }

  /** `forget`: false when the client closes, so the next one on the store takes the attempt up ({@link restore}). */
  #end(attempt: Attempt, state: VerificationOutcome['state'], reason: VerificationEndReason | null, peerReason: PeerAbortReason | null = null, forget = true): void {
    if (!this.#retire(attempt, forget)) return;
    const outcome = outcomeOf(attempt, state, reason, peerReason);
    const report = (): void => {
      for (const w of attempt.waiters.splice(0)) w(outcome);
      this.#hooks.outcome(outcome);
    };
    // After our last message is stored (or failed): a caller that closes on the outcome does not cut it off.
    void attempt.lastSend.then(report);
  }

  /** Mark `attempt` ended and let it go (its kept record too, if `forget`); false if it had ended already. */
  #retire(attempt: Attempt, forget: boolean): boolean {
    if (attempt.ended) return false;
    attempt.ended = true;
    if (attempt.timer !== null) clearTimeout(attempt.timer);
    if (this.#attempts.get(attempt.userId) === attempt) {
      this.#attempts.delete(attempt.userId);
      if (forget) this.#hooks.keep(attempt.userId, null);
    }
    return true;
  }
}

