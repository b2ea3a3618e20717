/**
 * Secure Session: a transport-free state machine, bytes in and bytes out,
 * byte-compatible with Themis (wire-format spec §5).
 *
 * ```
 * client: idle --connectionRequest()--> wait-M2 --M2--> wait-M4 --M4--> established
 * server: idle --M1--> wait-M3 --M3--> established
 * ```
 *
 * Differences from Themis that change no byte: `wrap` refuses to run before
 * the session is established (Themis encrypts under an all-zero key there);
 * replays are refused by default (see `replay-window.ts`); a failed handshake
 * step leaves the session exactly as it was.
 *
 * @module
 */
import { backend } from '#backend';
import { abytes, concatBytes, EMPTY, equalBytes, isBytes, wipe } from '../_bytes.ts';
import { decryptFailed, ThemisError, ThemisErrorCode } from '../errors.ts';
import { readEcPrivateKey, readEcPublicKey } from '../keys/ec-key.ts';
import { keyKindOf } from '../keys/asym-key.ts';
import { sharedPrivateKey, sharedPublicKey } from '../keys/key-cache.ts';
import { PrivateKey, PublicKey } from '../keys/key-classes.ts';
import { generateEcKeyPair } from '../keys/ec-key.ts';
import { MESSAGE_LENGTH_MAX, SESSION_ID_LENGTH_MAX, SESSION_TIMESTAMP_WINDOW_SECONDS } from '../limits.ts';
import { DATA_OVERHEAD } from './format.ts';
import { deriveMasterKey, deriveSessionKeys, deriveSidRaw, sessionIdFromRaw, sidRawFromSessionId } from './derive.ts';
import {
  DATA_IV_LENGTH,
  DATA_NONCE_LENGTH,
  isProtocolMessage,
  readAck,
  readDataMessage,
  readDataPlaintext,
  readFinish,
  readHello,
  writeAck,
  writeDataMessage,
  writeDataPlaintext,
  writeFinish,
  writeHello,
} from './format.ts';
import { ReplayWindow, type ReplayMode } from './replay-window.ts';
import { readSavedState, writeSavedState } from './saved-state.ts';

const S = 'SecureSession' as const;

/** Returns the static public key of the peer with this id, or null if unknown. */
export type KeyCallback = (peerId: Uint8Array) => Uint8Array | null | undefined;

export interface SecureSessionOptions {
  /** `strict` (default) refuses replays; `lenient` matches Themis's ±8 window exactly. */
  replay?: ReplayMode;
  /** Seconds since the Unix epoch; injectable for tests. */
  clock?: () => number;
}

export type SessionState = 'idle' | 'wait-m2' | 'wait-m4' | 'wait-m3' | 'established' | 'destroyed';

/** What {@link SecureSession.receive} produced. */
export type ReceiveResult =
  | { readonly kind: 'data'; readonly data: Uint8Array }
  /** A handshake reply for the peer; `established` is true after the server's last step. */
  | { readonly kind: 'send'; readonly message: Uint8Array; readonly established: boolean }
  | { readonly kind: 'established' };

interface Ephemeral {
  d: Uint8Array;
  container: Uint8Array;
}

interface Keys {
  sessionId: number;
  masterKey: Uint8Array;
  outKey: Uint8Array;
  inKey: Uint8Array;
  outSeq: number;
  window: ReplayWindow;
}

export class SecureSession {
  readonly #id: Uint8Array;
  readonly #staticKey: Uint8Array;
  #callback: KeyCallback;
  readonly #replay: ReplayMode;
  readonly #clock: () => number;
  #state: SessionState = 'idle';
  #isClient = false;
  #eph: Ephemeral | null = null;
  /** Handshake values kept between steps. */
  #peerEph: Uint8Array | null = null;
  #peerId: Uint8Array | null = null;
  #peerStatic: Uint8Array | null = null;
  #pending: { sidRaw: Uint8Array; masterKey: Uint8Array } | null = null;
  #keys: Keys | null = null;

  constructor(id: Uint8Array, privateKey: PrivateKey, keyCallback: KeyCallback, options?: SecureSessionOptions | null) {
    const sid = abytes(S, id, 'session id');
    if (sid.length > SESSION_ID_LENGTH_MAX) throw new ThemisError(S, 'LIMIT_EXCEEDED', 'session id too long');
    // A key object, as wasm-themis requires (raw bytes are refused there too).
    const key: unknown = privateKey;
    if (!(key instanceof PrivateKey)) {
      if (key instanceof PublicKey) throw new ThemisError(S, 'WRONG_KEY_KIND', 'expected a PrivateKey, got a PublicKey');
      throw new ThemisError(S, 'INVALID_ARGUMENT', 'expected a PrivateKey as the second argument');
    }
    const sk: Uint8Array = privateKey;
    if (keyKindOf(sk) !== 'ec-private') throw new ThemisError(S, 'WRONG_KEY_KIND', 'Secure Session needs an EC private key');
    if (typeof keyCallback !== 'function') throw new ThemisError(S, 'INVALID_ARGUMENT', 'keyCallback must be a function');
    this.#id = Uint8Array.from(sid);
    const parsed = sharedPrivateKey(S, sk);
    if (parsed.kind !== 'ec-private') throw new ThemisError(S, 'WRONG_KEY_KIND', 'Secure Session needs an EC private key');
    // Shared with every other user of the caller's key object: never wiped here.
    this.#staticKey = parsed.d;
    this.#callback = keyCallback;
    // Not an object: defaults, as wasm-themis ignores extra arguments.
    const opts: SecureSessionOptions = options !== null && typeof options === 'object' ? options : {};
    const replay = opts.replay ?? 'strict';
    if (replay !== 'strict' && replay !== 'lenient') throw new ThemisError(S, 'INVALID_ARGUMENT', "replay must be 'strict' or 'lenient'");
    if (opts.clock !== undefined && typeof opts.clock !== 'function') throw new ThemisError(S, 'INVALID_ARGUMENT', 'clock must be a function');
    this.#replay = replay;
    this.#clock = opts.clock ?? (() => Math.floor(Date.now() / 1000));
  }

  /**
   * The key callback, used at every lookup; assignable, as the plain property
   * it is in wasm-themis (a non-function is refused here).
   */
  get keyCallback(): KeyCallback {
    return this.#callback;
  }
  set keyCallback(callback: KeyCallback) {
    if (typeof callback !== 'function') throw new ThemisError(S, 'INVALID_ARGUMENT', 'keyCallback must be a function');
    this.#callback = callback;
  }

  /** Current state; `established()` is the wasm-themis spelling of `state === 'established'`. */
  get state(): SessionState {
    return this.#state;
  }

  established(): boolean {
    return this.#state === 'established';
  }

  #ephemeral(): Ephemeral {
    if (this.#eph === null) {
      const { privateKey, publicKey } = generateEcKeyPair();
      this.#eph = { d: readEcPrivateKey(S, privateKey).d, container: publicKey };
      wipe(privateKey);
    }
    return this.#eph;
  }

  #assertAlive(): void {
    if (this.#state === 'destroyed') throw new ThemisError(S, 'INVALID_STATE', 'session destroyed');
  }

  /** Look up and validate a peer's static key; throws UNKNOWN_PEER when the callback has none. */
  #lookup(peerId: Uint8Array): Uint8Array {
    if (peerId.length > SESSION_ID_LENGTH_MAX) throw new ThemisError(S, 'LIMIT_EXCEEDED', 'peer id too long');
    // An exception from the callback (the app's own code) propagates as it is, as in wasm-themis.
    const key: unknown = this.#callback(peerId.slice());
    if (key === null || key === undefined) throw new ThemisError(S, 'UNKNOWN_PEER', 'no public key for peer id');
    // A key of the wrong kind is the app's mistake, not an unknown peer: the peer says 12 for it.
    const wrongKind = { legacyCode: ThemisErrorCode.INVALID_PARAMETER };
    if (!isBytes(key)) throw new ThemisError(S, 'UNKNOWN_PEER', 'key callback must return a public key or null', wrongKind);
    if (keyKindOf(key) !== 'ec-public') throw new ThemisError(S, 'UNKNOWN_PEER', 'peer key must be an EC public key', wrongKind);
    const parsed = sharedPublicKey(S, abytes(S, key, 'peer public key'));
    if (parsed.kind !== 'ec-public') throw new ThemisError(S, 'UNKNOWN_PEER', 'peer key must be an EC public key', wrongKind);
    return parsed.point;
  }

  /** Client: start the handshake. Returns M1 for the server. */
  connectionRequest(): Uint8Array {
    this.#assertAlive();
    if (this.#state !== 'idle') throw new ThemisError(S, 'INVALID_STATE', `cannot start a handshake in state ${this.#state}`);
    const eph = this.#ephemeral();
    const m1 = writeHello(this.#id, eph.container, backend.p256Sign(this.#staticKey, eph.container));
    this.#isClient = true;
    this.#state = 'wait-m2';
    return m1;
  }

  /**
   * Process a handshake message. Returns the reply to send, or an empty array
   * when there is nothing to send (the client's last step).
   */
  negotiateReply(message: Uint8Array): Uint8Array {
    this.#assertAlive();
    const msg = abytes(S, message, 'message');
    switch (this.#state) {
      case 'idle':
        return this.#onM1(msg);
      case 'wait-m2':
        return this.#onM2(msg);
      case 'wait-m3':
        return this.#onM3(msg);
      case 'wait-m4':
        this.#onM4(msg);
        return new Uint8Array(0);
      default:
        throw new ThemisError(S, 'INVALID_STATE', 'session is already established');
    }
  }

  #onM1(msg: Uint8Array): Uint8Array {
    const hello = readHello(msg);
    if (hello === null) throw new ThemisError(S, 'MALFORMED', 'malformed connection request');
    const peerStatic = this.#lookup(hello.id);
    this.#assertAlive();
    if (!backend.p256Verify(peerStatic, hello.ephemeral, hello.signature)) throw new ThemisError(S, 'INVALID_SIGNATURE', 'bad signature in connection request');
    const peerEphPoint = readEcPublicKey(S, hello.ephemeral).point;
    const eph = this.#ephemeral();
    const signature = backend.p256Sign(this.#staticKey, concatBytes(eph.container, hello.ephemeral, this.#id, hello.id));
    const m2 = writeHello(this.#id, eph.container, signature);
    const pending = this.#agree(hello.ephemeral, eph.container, hello.id, this.#id, peerEphPoint);
    // Commit only after every check passed.
    this.#peerEph = hello.ephemeral.slice();
    this.#peerId = hello.id.slice();
    this.#peerStatic = peerStatic;
    this.#pending = pending;
    this.#state = 'wait-m3';
    return m2;
  }

  #onM2(msg: Uint8Array): Uint8Array {
    const hello = readHello(msg);
    if (hello === null) throw new ThemisError(S, 'MALFORMED', 'malformed connection response');
    const eph = this.#ephemeral();
    const peerStatic = this.#lookup(hello.id);
    // The callback is user code: it may have destroyed this session.
    this.#assertAlive();
    const signed = concatBytes(hello.ephemeral, eph.container, hello.id, this.#id);
    if (!backend.p256Verify(peerStatic, signed, hello.signature)) throw new ThemisError(S, 'INVALID_SIGNATURE', 'bad signature in connection response');
    const peerEphPoint = readEcPublicKey(S, hello.ephemeral).point;
    const pending = this.#agree(eph.container, hello.ephemeral, this.#id, hello.id, peerEphPoint);
    const signature = backend.p256Sign(this.#staticKey, concatBytes(eph.container, hello.ephemeral, this.#id, hello.id));
    const mac = backend.hmacSha256(pending.masterKey, [hello.ephemeral, pending.sidRaw]);
    this.#peerEph = hello.ephemeral.slice();
    this.#peerId = hello.id.slice();
    this.#peerStatic = peerStatic;
    this.#pending = pending;
    this.#state = 'wait-m4';
    return writeFinish(signature, mac);
  }

  #onM3(msg: Uint8Array): Uint8Array {
    const fin = readFinish(msg);
    const eph = this.#ephemeral();
    const { pending, peerEph, peerId, peerStatic } = this.#handshakeState();
    if (fin === null) throw new ThemisError(S, 'MALFORMED', 'malformed key confirmation');
    const signed = concatBytes(peerEph, eph.container, peerId, this.#id);
    if (!backend.p256Verify(peerStatic, signed, fin.signature)) throw new ThemisError(S, 'INVALID_SIGNATURE', 'bad signature in key confirmation');
    const expected = backend.hmacSha256(pending.masterKey, [eph.container, pending.sidRaw]);
    if (!equalBytes(expected, fin.mac)) throw new ThemisError(S, 'INVALID_SIGNATURE', 'bad MAC in key confirmation');
    const m4 = writeAck(backend.hmacSha256(pending.masterKey, [peerEph, pending.sidRaw]));
    this.#establish(false, pending.sidRaw, pending.masterKey);
    return m4;
  }

  #onM4(msg: Uint8Array): void {
    const mac = readAck(msg);
    const eph = this.#ephemeral();
    const { pending } = this.#handshakeState();
    if (mac === null) throw new ThemisError(S, 'MALFORMED', 'malformed key confirmation reply');
    const expected = backend.hmacSha256(pending.masterKey, [eph.container, pending.sidRaw]);
    if (!equalBytes(expected, mac)) throw new ThemisError(S, 'INVALID_SIGNATURE', 'bad MAC in key confirmation reply');
    this.#establish(true, pending.sidRaw, pending.masterKey);
  }

  #handshakeState(): { pending: { sidRaw: Uint8Array; masterKey: Uint8Array }; peerEph: Uint8Array; peerId: Uint8Array; peerStatic: Uint8Array } {
    if (this.#pending === null || this.#peerEph === null || this.#peerId === null || this.#peerStatic === null) {
      throw new ThemisError(S, 'INTERNAL', 'handshake state missing');
    }
    return { pending: this.#pending, peerEph: this.#peerEph, peerId: this.#peerId, peerStatic: this.#peerStatic };
  }

  #agree(ec: Uint8Array, es: Uint8Array, idc: Uint8Array, ids: Uint8Array, peerEphPoint: Uint8Array): { sidRaw: Uint8Array; masterKey: Uint8Array } {
    const eph = this.#ephemeral();
    const shared = backend.p256Ecdh(eph.d, peerEphPoint);
    if (shared === null) throw new ThemisError(S, 'INVALID_KEY', 'key agreement failed');
    const sidRaw = deriveSidRaw(ec, es, idc, ids);
    const masterKey = deriveMasterKey(shared, sidRaw);
    wipe(shared);
    return { sidRaw, masterKey };
  }

  #establish(isClient: boolean, sidRaw: Uint8Array, masterKey: Uint8Array, seqs?: { out: number; in: number }): void {
    const k = deriveSessionKeys(masterKey, sidRaw);
    const peerInitial = isClient ? k.serverSeq : k.clientSeq;
    const outSeq = seqs?.out ?? (isClient ? k.clientSeq : k.serverSeq);
    const inSeq = seqs?.in ?? peerInitial;
    // A restored state counts everything up to its in_seq as received, so
    // nothing can be replayed across the restart. A strict save that has
    // received nothing writes peerInitial − 1 (window.savedInSeq), so the
    // first message still passes. Themis (and lenient mode) write peerInitial
    // both before any data and after the first message: the two cannot be
    // told apart, and the safe reading wins — such a state restored strict
    // refuses a replay of the first message, and so also refuses it when it
    // was in fact never received (restore those with replay: 'lenient').
    const seenThrough = seqs !== undefined;
    this.#keys = {
      sessionId: sessionIdFromRaw(sidRaw),
      masterKey,
      outKey: isClient ? k.clientKey : k.serverKey,
      inKey: isClient ? k.serverKey : k.clientKey,
      outSeq,
      window: new ReplayWindow(this.#replay, inSeq, seenThrough),
    };
    this.#isClient = isClient;
    this.#state = 'established';
    this.#forgetHandshake();
  }

  #forgetHandshake(): void {
    if (this.#eph !== null) wipe(this.#eph.d);
    this.#eph = null;
    // On establishment the master key moves into #keys; otherwise it dies here.
    if (this.#pending !== null && this.#state !== 'established') wipe(this.#pending.masterKey, this.#pending.sidRaw);
    this.#pending = null;
    this.#peerEph = null;
    this.#peerStatic = null;
  }

  /** The clock, refusing to run on a broken one (a NaN would disable the timestamp check). */
  #now(): number {
    const t = this.#clock();
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) throw new ThemisError(S, 'INVALID_STATE', 'clock returned an invalid time');
    return Math.floor(t);
  }

  /** `legacyCode`: the peer's number for this call (its unwrap reads an early data message as a bad handshake message: 12). */
  #established(legacyCode?: ThemisErrorCode): Keys {
    this.#assertAlive();
    if (this.#state !== 'established' || this.#keys === null) {
      throw new ThemisError(S, 'NOT_ESTABLISHED', 'session is not established', legacyCode === undefined ? undefined : { legacyCode });
    }
    return this.#keys;
  }

  /** Encrypt a message for the peer. */
  wrap(message: Uint8Array): Uint8Array {
    const k = this.#established();
    const msg = abytes(S, message, 'message');
    if (msg.length > MESSAGE_LENGTH_MAX - DATA_OVERHEAD) throw new ThemisError(S, 'LIMIT_EXCEEDED', 'message too long');
    const now = this.#now();
    const inner = writeDataPlaintext(k.outSeq, now, msg);
    const iv = backend.randomBytes(DATA_IV_LENGTH);
    const { ciphertext, tag } = backend.aesGcmEncrypt(k.outKey, iv.subarray(0, DATA_NONCE_LENGTH), inner, EMPTY);
    wipe(inner);
    k.outSeq = (k.outSeq + 1) >>> 0;
    return writeDataMessage(k.sessionId, iv, ciphertext, tag);
  }

  /** Decrypt a message from the peer. Replays, stale or tampered messages throw and change nothing. */
  unwrap(message: Uint8Array): Uint8Array {
    const k = this.#established(ThemisErrorCode.INVALID_PARAMETER);
    const msg = abytes(S, message, 'message');
    const env = readDataMessage(msg);
    if (env === null || env.sessionId !== k.sessionId) throw decryptFailed(S);
    const inner = backend.aesGcmDecrypt(k.inKey, env.nonce, env.ciphertext, env.tag, EMPTY);
    const plain = inner === null ? null : readDataPlaintext(inner);
    try {
      if (plain === null) throw decryptFailed(S);
      if (Math.abs(plain.timestamp - this.#now()) > SESSION_TIMESTAMP_WINDOW_SECONDS) {
        throw new ThemisError(S, 'REPLAY', 'message timestamp outside the accepted window');
      }
      if (!k.window.check(plain.seq)) throw new ThemisError(S, 'REPLAY', 'sequence number replayed or outside the window');
      k.window.commit(plain.seq);
      return plain.message.slice();
    } finally {
      wipe(inner ?? undefined);
    }
  }

  /**
   * One entry point for everything that arrives, in the style of PyThemis and
   * GoThemis: handshake messages yield a reply to send (or `established`),
   * data messages yield plaintext.
   */
  receive(message: Uint8Array): ReceiveResult {
    this.#assertAlive();
    const msg = abytes(S, message, 'message');
    if (this.#state !== 'established' && isProtocolMessage(msg)) {
      const reply = this.negotiateReply(msg);
      return reply.length > 0 ? { kind: 'send', message: reply, established: this.established() } : { kind: 'established' };
    }
    return { kind: 'data', data: this.unwrap(msg) };
  }

  /** The peer's id, once known (after M1 on the server, M2 on the client). */
  get peerId(): Uint8Array | null {
    return this.#peerId === null ? null : this.#peerId.slice();
  }

  /**
   * Save an established session in Themis's `TSSC` layout. The result holds
   * the master key: store it only sealed (e.g. Secure Cell), never in clear.
   */
  save(): Uint8Array {
    const k = this.#established();
    return writeSavedState({ sessionId: k.sessionId, isClient: this.#isClient, masterKey: k.masterKey, outSeq: k.outSeq, inSeq: k.window.savedInSeq });
  }

  /**
   * Restore a session saved with {@link save}. Every sequence number up to the
   * saved one counts as already received, so nothing can be replayed across
   * the restart. A state saved by Themis or in lenient mode before any data
   * arrived cannot be told from one saved after the first message: restored
   * strict, the peer's first message is refused (REPLAY); restore such a
   * state with `{ replay: 'lenient' }`.
   */
  static restore(saved: Uint8Array, id: Uint8Array, privateKey: PrivateKey, keyCallback: KeyCallback, options?: SecureSessionOptions | null): SecureSession {
    const st = readSavedState(abytes(S, saved, 'saved session'));
    if (st === null) throw new ThemisError(S, 'MALFORMED', 'malformed saved session');
    const s = new SecureSession(id, privateKey, keyCallback, options);
    s.#establish(st.isClient, sidRawFromSessionId(st.sessionId), st.masterKey, { out: st.outSeq, in: st.inSeq });
    return s;
  }

  /** Wipe keys (best effort); the session is unusable afterwards. */
  destroy(): void {
    this.#forgetHandshake();
    if (this.#keys !== null) wipe(this.#keys.masterKey, this.#keys.inKey, this.#keys.outKey);
    this.#keys = null;
    this.#state = 'destroyed';
  }

  toString(): string {
    return `SecureSession(${this.#isClient ? 'client' : 'server'}, ${this.#state})`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

