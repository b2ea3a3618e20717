/**
 * A session with one peer device: PQXDH to start it, the Double Ratchet for
 * every message, serialization and sealing for storage.
 *
 * A `Session` holds the current state and up to ARCHIVED_STATES_MAX earlier
 * ones. A new state replaces the current one when either side runs PQXDH
 * again (both sides started a session at once; the peer reinstalled);
 * messages still in flight on an earlier state keep decrypting, and a state
 * that decrypts a message becomes current again, so two devices that started
 * sessions simultaneously converge on one (as libsignal's session records do).
 *
 * The initiator attaches the PQXDH fields to every message until the first
 * reply arrives (Signal does the same), so losing the first message does not
 * lose the session: the responder can start from any of them. On the
 * responder's side, a prekey message whose base key matches an existing
 * state is an ordinary message of that state; only an unknown base key runs
 * PQXDH, and the one-time prekey is deleted only after the message decrypts.
 *
 * Every method is synchronous and transactional: when one throws, the session
 * (and the prekey store) are as they were.
 *
 * @module
 */
import { equalBytes, wipe } from '@parley/themis/hazmat';
import { copyBytes, EMPTY } from './_bytes.ts';
import { inspectSymbol } from './_redact.ts';
import { deviceAddress, formatAddress, type DeviceAddress } from './address.ts';
import { cloneRatchet, initInitiator, initResponder, ratchetDecrypt, ratchetEncrypt, wipeRatchet, type RatchetState } from './double-ratchet.ts';
import { readEnvelope, type DecodedEnvelope } from './envelope.ts';
import { decryptFailed, ProtocolError } from './errors.ts';
import { IdentityKeyPair } from './identity.ts';
import { ARCHIVED_STATES_MAX, ASSOCIATED_DATA_BYTES_MAX, PLAINTEXT_BYTES_MAX, RETIRED_BASE_KEYS_MAX, SKIPPED_KEYS_MAX } from './limits.ts';
import { pqxdhInitiate, pqxdhRespond, type PrekeyMessageFields } from './pqxdh.ts';
import type { PrekeyBundle } from './prekeys.ts';
import { deserializeSessionRecord, openSessionRecord, sealSessionRecord, serializeSessionRecord, stateAssociatedData, type SessionRecord, type SessionState } from './session-state.ts';
import type { PrekeyStore } from './stores.ts';
import { bytesArgument, functionArgument, instanceArgument, storeArgument } from './_args.ts';

export interface DecryptOptions {
  /** Per-message associated data; must be what the sender passed to `encrypt`. */
  readonly ad?: Uint8Array;
  /** This device's identity: needed to accept a prekey message that starts a new session. */
  readonly identity?: IdentityKeyPair;
  /** This device's prekeys: needed to accept a prekey message that starts a new session. */
  readonly prekeys?: PrekeyStore;
  /**
   * Asked, once the first message of a new session has decrypted, whether its
   * sender's identity key is acceptable; false refuses the session with
   * `UNTRUSTED_IDENTITY` (nothing is consumed). Absent: every key is accepted.
   */
  readonly isTrustedIdentity?: (identityKey: Uint8Array) => boolean;
}

function identityArgument(value: unknown): IdentityKeyPair {
  return instanceArgument(value, IdentityKeyPair, 'identity', 'IdentityKeyPair');
}

function callerAd(value: unknown): Uint8Array {
  if (value === undefined) return EMPTY;
  const ad = bytesArgument(value, 'ad');
  if (ad.length > ASSOCIATED_DATA_BYTES_MAX) throw new ProtocolError('LIMIT', `ad is longer than ${ASSOCIATED_DATA_BYTES_MAX} bytes`);
  return ad;
}

export class Session {
  readonly localAddress: DeviceAddress;
  readonly remoteAddress: DeviceAddress;
  /** Current state first. */
  #states: SessionState[];
  /** Base keys of the peer's dropped states, oldest first: their first messages are not accepted again. */
  #retired: Uint8Array[];
  #destroyed = false;

  private constructor(record: SessionRecord) {
    // (Private in TypeScript only: plain JavaScript can still call it.)
    if (typeof record !== 'object' || record === null) throw new ProtocolError('INVALID_ARGUMENT', 'make a Session with Session.create, initiate, deserialize or open');
    this.localAddress = record.local;
    this.remoteAddress = record.remote;
    this.#states = record.states;
    this.#retired = record.retiredBaseKeys;
  }

  /** A session with no state yet: it can accept a prekey message, or `initiate`. */
  static create(local: DeviceAddress, remote: DeviceAddress): Session {
    return new Session({ local: deviceAddress(local, 'local'), remote: deviceAddress(remote, 'remote'), states: [], retiredBaseKeys: [] });
  }

  /** Verify `bundle` and run PQXDH as the initiator; the result can encrypt at once. */
  static initiate(identity: IdentityKeyPair, bundle: PrekeyBundle, local: DeviceAddress, remote: DeviceAddress): Session {
    const session = Session.create(local, remote);
    session.initiate(identity, bundle);
    return session;
  }

  /**
   * Start a new state with the peer from its prekey bundle (PQXDH initiator);
   * the current state, if any, is archived. Throws `MALFORMED` or
   * `BAD_SIGNATURE` for a bundle that does not verify.
   */
  initiate(identity: IdentityKeyPair, bundle: PrekeyBundle): void {
    this.#live();
    const init = pqxdhInitiate(identityArgument(identity), bundle);
    let ratchet: RatchetState;
    try {
      ratchet = initInitiator(init.sharedSecret, init.bundle.signedPrekey.publicKey);
    } finally {
      wipe(init.sharedSecret);
    }
    const localIdentityKey = copyBytes(identity.publicKey);
    this.#push({
      role: 'initiator',
      localIdentityKey,
      remoteIdentityKey: init.bundle.identityKey,
      baseKey: init.fields.baseKey,
      associatedData: stateAssociatedData('initiator', localIdentityKey, init.bundle.identityKey, this.localAddress, this.remoteAddress),
      pending: init.fields,
      ratchet,
    });
  }

  /** Whether there is a state to encrypt with. */
  get established(): boolean {
    return !this.#destroyed && this.#states.length > 0;
  }

  /** The peer's Ed25519 identity key in the current state, or null. */
  get remoteIdentityKey(): Uint8Array | null {
    const s = this.#states[0];
    return s === undefined ? null : copyBytes(s.remoteIdentityKey);
  }

  /** True while the current state is an initiator's that has not heard back (it still sends prekey messages). */
  get awaitingReply(): boolean {
    return this.#states[0]?.pending != null;
  }

  /** The number of states held (current plus archived). */
  get stateCount(): number {
    return this.#states.length;
  }

  /** Encrypt one message with the current state. Throws `NO_SESSION` when there is none. */
  encrypt(plaintext: Uint8Array, ad?: Uint8Array): Uint8Array {
    this.#live();
    const message = bytesArgument(plaintext, 'plaintext');
    if (message.length > PLAINTEXT_BYTES_MAX) throw new ProtocolError('LIMIT', `plaintext is longer than ${PLAINTEXT_BYTES_MAX} bytes`);
    const extra = callerAd(ad);
    const state = this.#states[0];
    if (state === undefined) throw new ProtocolError('NO_SESSION', `no session with ${formatAddress(this.remoteAddress)}: initiate() first`);
    return ratchetEncrypt(state.ratchet, state.pending, state.associatedData, extra, message);
  }

  /**
   * Decrypt one envelope from the peer. Throws `DECRYPT_FAILED` for anything
   * wrong with it; `DUPLICATE` or `TOO_MANY_SKIPPED` for an authentic message
   * whose key is gone or too far ahead; `UNTRUSTED_IDENTITY` when
   * `isTrustedIdentity` refuses a new session's sender.
   */
  decrypt(envelope: Uint8Array, options?: DecryptOptions): Uint8Array {
    this.#live();
    const bytes = bytesArgument(envelope, 'envelope');
    const opts = options ?? {};
    const ad = callerAd(opts.ad);
    let env: DecodedEnvelope;
    try {
      env = readEnvelope(bytes);
    } catch {
      throw decryptFailed();
    }
    const prekey = env.prekey;
    if (prekey === null) return this.#decryptWith(this.#states.map((_, i) => i), env, ad);
    const known = this.#states.findIndex((s) => s.role === 'responder' && equalBytes(s.baseKey, prekey.baseKey));
    if (known >= 0) return this.#decryptWith([known], env, ad);
    // A session of the peer's this one held and dropped: a replay of its first message, or a
    // late one of its messages. Its state is gone, as when a spent one-time prekey refuses a
    // replay; running PQXDH again would make it current, and the next reply unreadable.
    // (Base keys are fresh per session: a new session never matches.)
    if (this.#retired.some((k) => equalBytes(k, prekey.baseKey))) throw decryptFailed();
    return this.#accept(prekey, env, ad, opts);
  }

  /** Try the states at `indices` in order; the first that decrypts is kept (and made current). */
  #decryptWith(indices: readonly number[], env: DecodedEnvelope, ad: Uint8Array): Uint8Array {
    let authentic: ProtocolError | null = null;
    for (const i of indices) {
      const state = this.#states[i];
      if (state === undefined) continue;
      const trial = cloneRatchet(state.ratchet);
      let plaintext: Uint8Array;
      try {
        plaintext = ratchetDecrypt(trial, env, state.associatedData, ad);
      } catch (e) {
        wipeRatchet(trial, state.ratchet);
        if (!(e instanceof ProtocolError)) throw e;
        // DUPLICATE / TOO_MANY_SKIPPED come from a header that authenticated under this state: report that one.
        if (e.code !== 'DECRYPT_FAILED' && authentic === null) authentic = e;
        continue;
      }
      wipeRatchet(state.ratchet, trial);
      state.ratchet = trial;
      // Anything that decrypts in an initiator's state came from the responder: the reply has arrived.
      state.pending = null;
      if (i > 0) this.#states = [state, ...this.#states.filter((s) => s !== state)];
      this.#trimSkipped();
      return plaintext;
    }
    throw authentic ?? decryptFailed();
  }

  /** PQXDH as the responder, then the first message; the state is kept only if all of it succeeds. */
  #accept(fields: PrekeyMessageFields, env: DecodedEnvelope, ad: Uint8Array, options: DecryptOptions): Uint8Array {
    const { prekeys } = options;
    if (options.identity === undefined || prekeys === undefined) {
      throw new ProtocolError('INVALID_ARGUMENT', 'accepting a new session needs options.identity and options.prekeys');
    }
    const identity = identityArgument(options.identity);
    storeArgument(prekeys, ['loadSignedPrekey', 'loadPqPrekey', 'loadOneTimePrekey', 'removeOneTimePrekey'], 'options.prekeys');
    if (options.isTrustedIdentity !== undefined) functionArgument(options.isTrustedIdentity, 'options.isTrustedIdentity');
    const response = pqxdhRespond(identity, prekeys, fields);
    if (response === null) throw decryptFailed();
    // The state owns (and will wipe) this copy of the signed prekey's private half.
    const ratchet = initResponder(response.sharedSecret, response.signedPrekey.exportPrivateKey(), response.signedPrekey.publicKey);
    wipe(response.sharedSecret);
    const localIdentityKey = copyBytes(identity.publicKey);
    const state: SessionState = {
      role: 'responder',
      localIdentityKey,
      remoteIdentityKey: fields.identityKey,
      baseKey: fields.baseKey,
      associatedData: stateAssociatedData('responder', localIdentityKey, fields.identityKey, this.localAddress, this.remoteAddress),
      pending: null,
      ratchet,
    };
    let plaintext: Uint8Array | undefined;
    try {
      plaintext = ratchetDecrypt(ratchet, env, state.associatedData, ad);
      if (options.isTrustedIdentity !== undefined && !options.isTrustedIdentity(copyBytes(fields.identityKey))) {
        throw new ProtocolError('UNTRUSTED_IDENTITY', `identity key of ${formatAddress(this.remoteAddress)} is not trusted`);
      }
      // The claim that makes a one-time prekey one-time: whoever removes it first wins.
      if (fields.oneTimePrekeyId !== null && !prekeys.removeOneTimePrekey(fields.oneTimePrekeyId)) throw decryptFailed();
    } catch (e) {
      wipeRatchet(ratchet);
      wipe(plaintext);
      throw e;
    }
    this.#push(state);
    return plaintext;
  }

  #push(state: SessionState): void {
    this.#states.unshift(state);
    while (this.#states.length > 1 + ARCHIVED_STATES_MAX) {
      const dropped = this.#states.pop();
      if (dropped === undefined) break;
      wipeRatchet(dropped.ratchet);
      if (dropped.role === 'responder') {
        this.#retired.push(dropped.baseKey);
        if (this.#retired.length > RETIRED_BASE_KEYS_MAX) this.#retired.shift();
      }
    }
    this.#trimSkipped();
  }

  /**
   * SKIPPED_KEYS_MAX across every state: the oldest archived state's oldest
   * keys go first, the current state's last (each state already keeps its
   * own under the same bound).
   */
  #trimSkipped(): void {
    let excess = -SKIPPED_KEYS_MAX;
    for (const s of this.#states) excess += s.ratchet.skipped.size;
    for (let i = this.#states.length - 1; i >= 0 && excess > 0; i--) {
      const skipped = (this.#states[i] as SessionState).ratchet.skipped;
      for (const [id, key] of skipped) {
        if (excess <= 0) break;
        wipe(key.messageKey);
        skipped.delete(id);
        excess--;
      }
    }
  }

  #record(): SessionRecord {
    return { local: this.localAddress, remote: this.remoteAddress, states: this.#states, retiredBaseKeys: this.#retired };
  }

  /** Every state as bytes (see session-state.ts). They hold all the session's secrets: store them sealed. */
  serialize(): Uint8Array {
    this.#live();
    return serializeSessionRecord(this.#record());
  }

  /** Inverse of {@link serialize}; throws `MALFORMED`. */
  static deserialize(bytes: Uint8Array): Session {
    return new Session(deserializeSessionRecord(bytesArgument(bytes, 'bytes')));
  }

  /** Serialize and seal under `key` (SEALING_KEY_LENGTH, 32 bytes), bound to this pair of devices. */
  seal(key: Uint8Array): Uint8Array {
    this.#live();
    return sealSessionRecord(this.#record(), key);
  }

  /** Open what {@link seal} produced for (`local`, `remote`); `DECRYPT_FAILED` for a wrong key or pair. */
  static open(sealed: Uint8Array, key: Uint8Array, local: DeviceAddress, remote: DeviceAddress): Session {
    return new Session(openSessionRecord(bytesArgument(sealed, 'sealed'), key, deviceAddress(local, 'local'), deviceAddress(remote, 'remote')));
  }

  /** Wipe every secret; the object is unusable afterwards (best effort: JavaScript may have copied them). */
  destroy(): void {
    for (const s of this.#states) wipeRatchet(s.ratchet);
    this.#states = [];
    this.#destroyed = true;
  }

  #live(): void {
    if (this.#destroyed) throw new ProtocolError('INVALID_STATE', 'session was destroyed');
  }

  toString(): string {
    const n = this.#states.length;
    return `Session(${formatAddress(this.localAddress)} ↔ ${formatAddress(this.remoteAddress)}, ${n} state${n === 1 ? '' : 's'}, secrets redacted)`;
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}
