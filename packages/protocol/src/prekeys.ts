/**
 * Prekeys: what a device publishes so others can start sessions with it
 * while it is offline (PQXDH §2.4–2.5, docs/protocol.md "Key directory").
 *
 * - a signed prekey (X25519), replaced from time to time;
 * - one-time prekeys (X25519), each handed out once by the server;
 * - a signed post-quantum prekey (ML-KEM-1024), last resort, reused.
 *
 * Signed messages (Ed25519 by the device identity key), byte for byte what
 * the server verifies on upload and clients re-verify on fetch:
 *
 * ```
 * signed prekey  UTF-8("parley-signed-prekey-v1\n") ‖ u32be(keyId) ‖ publicKey (32)
 * PQ prekey      UTF-8("parley-pq-prekey-v1\n")     ‖ u32be(keyId) ‖ publicKey (1568)
 * ```
 *
 * The two purposes are distinct strings, so a signature over one kind of key
 * can never be presented as a signature over the other (PQXDH requires the
 * encodings of curve and KEM keys to be disjoint).
 *
 * Private records serialize for a PrekeyStore:
 *
 * ```
 * 0     1  version = 0x01
 * 1     1  kind: 0x01 signed prekey | 0x02 one-time prekey | 0x03 PQ prekey
 * 2     4  keyId (u32be)
 * 6     32 X25519 private key           (kinds 1, 2)
 *       64 ML-KEM-1024 seed d ‖ z       (kind 3)
 * …     64 signature                    (kinds 1, 3)
 * ```
 *
 * @module
 */
import { backend, wipe } from '@parley/themis/hazmat';
import { ByteReader, ByteWriter, concatBytes, copyBytes, isU32, u32be, utf8 } from './_bytes.ts';
import { inspectSymbol } from './_redact.ts';
import { ProtocolError } from './errors.ts';
import { IDENTITY_KEY_LENGTH, SIGNATURE_LENGTH, verifyIdentitySignature, IdentityKeyPair } from './identity.ts';
import { kemDecapsulate, kemGenerateSeed, kemKeyPair, kemPrepare, KEM_PUBLIC_KEY_LENGTH, KEM_SEED_LENGTH, type KemPrepared } from './kem.ts';
import { ONE_TIME_PREKEYS_PER_BATCH_MAX } from './limits.ts';
import { bytesArgument, instanceArgument } from './_args.ts';

export const X25519_KEY_LENGTH = 32;
const SIGNED_PREKEY_PURPOSE = utf8('parley-signed-prekey-v1\n');
const PQ_PREKEY_PURPOSE = utf8('parley-pq-prekey-v1\n');

/** The message a signed prekey's signature covers. */
export function signedPrekeyMessage(keyId: number, publicKey: Uint8Array): Uint8Array {
  assertKeyId(keyId);
  return concatBytes(SIGNED_PREKEY_PURPOSE, u32be(keyId), bytesArgument(publicKey, 'publicKey'));
}

/** The message a PQ prekey's signature covers. */
export function pqPrekeyMessage(keyId: number, publicKey: Uint8Array): Uint8Array {
  assertKeyId(keyId);
  return concatBytes(PQ_PREKEY_PURPOSE, u32be(keyId), bytesArgument(publicKey, 'publicKey'));
}

export interface SignedPrekeyPublic {
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
}
export interface OneTimePrekeyPublic {
  readonly keyId: number;
  readonly publicKey: Uint8Array;
}
export interface PqPrekeyPublic {
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
}

/** One device's published keys, as the key directory returns them (bytes decoded from base64). */
export interface PrekeyBundle {
  /** Ed25519 identity key of the device. */
  readonly identityKey: Uint8Array;
  readonly signedPrekey: SignedPrekeyPublic;
  /** Null when the server ran out of one-time prekeys for the device. */
  readonly oneTimePrekey: OneTimePrekeyPublic | null;
  readonly pqPrekey: PqPrekeyPublic;
}

const VERSION = 0x01;
const KIND_SIGNED = 0x01;
const KIND_ONE_TIME = 0x02;
const KIND_PQ = 0x03;

function assertKeyId(keyId: unknown): asserts keyId is number {
  if (!isU32(keyId)) throw new ProtocolError('INVALID_ARGUMENT', 'keyId must be an integer in [0, 2^32 − 1]');
}

function readRecord(bytes: Uint8Array, kind: number, what: string): { r: ByteReader; keyId: number } {
  const r = new ByteReader(bytes, what);
  if (r.u8() !== VERSION) throw r.malformed('unknown version');
  if (r.u8() !== kind) throw r.malformed('wrong record kind');
  return { r, keyId: r.u32be() };
}

/** An X25519 prekey pair; the private half never leaves except through {@link exportPrivateKey}. */
abstract class X25519Prekey {
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  readonly #privateKey: Uint8Array;

  protected constructor(keyId: number, privateKey: Uint8Array) {
    this.keyId = keyId;
    this.#privateKey = privateKey;
    this.publicKey = backend.x25519PublicFromPrivate(privateKey);
  }

  #destroyed = false;

  /** X25519 with `publicKey`; null for a low-order key. */
  dh(publicKey: Uint8Array): Uint8Array | null {
    return backend.x25519(this.secret, publicKey);
  }

  /** A copy of the private key (the responder's first ratchet key is its signed prekey). */
  exportPrivateKey(): Uint8Array {
    return backend.x25519CopyPrivate(this.secret);
  }

  /** The private key itself, for serialization by subclasses. */
  protected get secret(): Uint8Array {
    if (this.#destroyed) throw new ProtocolError('INVALID_STATE', `prekey ${this.keyId} was destroyed`);
    return this.#privateKey;
  }

  /** Wipe the private key (best effort); the object is unusable afterwards. */
  destroy(): void {
    wipe(this.#privateKey);
    this.#destroyed = true;
  }

  toString(): string {
    return `${this.constructor.name}(keyId ${this.keyId}, private key redacted)`;
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

export class SignedPrekey extends X25519Prekey {
  readonly signature: Uint8Array;

  private constructor(keyId: number, privateKey: Uint8Array, signature: Uint8Array) {
    super(keyId, privateKey);
    this.signature = signature;
  }

  static generate(identity: IdentityKeyPair, keyId: number): SignedPrekey {
    instanceArgument(identity, IdentityKeyPair, 'identity', 'IdentityKeyPair');
    assertKeyId(keyId);
    const privateKey = backend.x25519GeneratePrivate();
    const publicKey = backend.x25519PublicFromPrivate(privateKey);
    return new SignedPrekey(keyId, privateKey, identity.sign(signedPrekeyMessage(keyId, publicKey)));
  }

  get public(): SignedPrekeyPublic {
    return { keyId: this.keyId, publicKey: copyBytes(this.publicKey), signature: copyBytes(this.signature) };
  }

  toBytes(): Uint8Array {
    return new ByteWriter().u8(VERSION).u8(KIND_SIGNED).u32be(this.keyId).bytes(this.secret).bytes(this.signature).finish();
  }

  static fromBytes(bytes: Uint8Array): SignedPrekey {
    const { r, keyId } = readRecord(bytes, KIND_SIGNED, 'signed prekey record');
    const privateKey = r.copy(X25519_KEY_LENGTH);
    const signature = r.copy(SIGNATURE_LENGTH);
    r.end();
    return new SignedPrekey(keyId, privateKey, signature);
  }
}

export class OneTimePrekey extends X25519Prekey {
  private constructor(keyId: number, privateKey: Uint8Array) {
    super(keyId, privateKey);
  }

  /** `count` prekeys with consecutive ids from `firstKeyId` (mod 2^32). */
  static generate(firstKeyId: number, count: number): OneTimePrekey[] {
    assertKeyId(firstKeyId);
    if (Number.isInteger(count) && count > ONE_TIME_PREKEYS_PER_BATCH_MAX) throw new ProtocolError('LIMIT', `count must be at most ${ONE_TIME_PREKEYS_PER_BATCH_MAX}`);
    if (!Number.isInteger(count) || count < 1) {
      throw new ProtocolError('INVALID_ARGUMENT', `count must be 1…${ONE_TIME_PREKEYS_PER_BATCH_MAX}`);
    }
    return Array.from({ length: count }, (_, i) => new OneTimePrekey((firstKeyId + i) >>> 0, backend.x25519GeneratePrivate()));
  }

  get public(): OneTimePrekeyPublic {
    return { keyId: this.keyId, publicKey: copyBytes(this.publicKey) };
  }

  toBytes(): Uint8Array {
    return new ByteWriter().u8(VERSION).u8(KIND_ONE_TIME).u32be(this.keyId).bytes(this.secret).finish();
  }

  static fromBytes(bytes: Uint8Array): OneTimePrekey {
    const { r, keyId } = readRecord(bytes, KIND_ONE_TIME, 'one-time prekey record');
    const privateKey = r.copy(X25519_KEY_LENGTH);
    r.end();
    return new OneTimePrekey(keyId, privateKey);
  }
}

export class PqPrekey {
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
  #seed: Uint8Array;
  /** The expanded decapsulation key, kept from the key generation that gives the public key (it is the same work). */
  #secretKey: Uint8Array | null;
  /**
   * This public key, expanded once for decapsulation (noble's `prepare`: Â
   * and H(ek), public data only). A PQ prekey — the last-resort one above
   * all — is decapsulated against by every peer that starts a session.
   */
  #prepared: KemPrepared | null = null;

  private constructor(keyId: number, seed: Uint8Array, signature: Uint8Array | ((publicKey: Uint8Array) => Uint8Array)) {
    this.keyId = keyId;
    this.#seed = seed;
    const { publicKey, secretKey } = kemKeyPair(seed);
    this.#secretKey = secretKey;
    this.publicKey = publicKey;
    this.signature = typeof signature === 'function' ? signature(publicKey) : signature;
  }

  static generate(identity: IdentityKeyPair, keyId: number): PqPrekey {
    instanceArgument(identity, IdentityKeyPair, 'identity', 'IdentityKeyPair');
    assertKeyId(keyId);
    return new PqPrekey(keyId, kemGenerateSeed(), (publicKey) => identity.sign(pqPrekeyMessage(keyId, publicKey)));
  }

  get public(): PqPrekeyPublic {
    return { keyId: this.keyId, publicKey: copyBytes(this.publicKey), signature: copyBytes(this.signature) };
  }

  /** The shared secret for a KEM ciphertext (never fails on the right length: implicit rejection). */
  decapsulate(ciphertext: Uint8Array): Uint8Array | null {
    this.#live();
    this.#secretKey ??= kemKeyPair(this.#seed).secretKey;
    this.#prepared ??= kemPrepare(this.publicKey);
    return kemDecapsulate(bytesArgument(ciphertext, 'ciphertext'), this.#secretKey, this.#prepared);
  }

  toBytes(): Uint8Array {
    return new ByteWriter().u8(VERSION).u8(KIND_PQ).u32be(this.keyId).bytes(this.#live()).bytes(this.signature).finish();
  }

  static fromBytes(bytes: Uint8Array): PqPrekey {
    const { r, keyId } = readRecord(bytes, KIND_PQ, 'PQ prekey record');
    const seed = r.copy(KEM_SEED_LENGTH);
    const signature = r.copy(SIGNATURE_LENGTH);
    r.end();
    return new PqPrekey(keyId, seed, signature);
  }

  /** Wipe the private key (best effort); the object is unusable afterwards. */
  destroy(): void {
    wipe(this.#seed, this.#secretKey ?? undefined);
    this.#seed = new Uint8Array(0);
    this.#secretKey = null;
    this.#prepared?.clean();
    this.#prepared = null;
  }

  #live(): Uint8Array {
    if (this.#seed.length === 0) throw new ProtocolError('INVALID_STATE', `PQ prekey ${this.keyId} was destroyed`);
    return this.#seed;
  }

  toString(): string {
    return `PqPrekey(keyId ${this.keyId}, private key redacted)`;
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

/** The bundle a device publishes (one-time prekey optional). */
export function makePrekeyBundle(identity: IdentityKeyPair, signedPrekey: SignedPrekey, oneTimePrekey: OneTimePrekey | null, pqPrekey: PqPrekey): PrekeyBundle {
  instanceArgument(identity, IdentityKeyPair, 'identity', 'IdentityKeyPair');
  instanceArgument(signedPrekey, SignedPrekey, 'signedPrekey', 'SignedPrekey');
  if (oneTimePrekey !== null) instanceArgument(oneTimePrekey, OneTimePrekey, 'oneTimePrekey', 'OneTimePrekey (or null)');
  instanceArgument(pqPrekey, PqPrekey, 'pqPrekey', 'PqPrekey');
  return {
    identityKey: copyBytes(identity.publicKey),
    signedPrekey: signedPrekey.public,
    oneTimePrekey: oneTimePrekey === null ? null : oneTimePrekey.public,
    pqPrekey: pqPrekey.public,
  };
}

function bytesOf(value: unknown, length: number, name: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) throw new ProtocolError('MALFORMED', `prekey bundle: ${name} must be ${length} bytes`);
  return copyBytes(value);
}
function keyIdOf(value: unknown, name: string): number {
  if (!isU32(value)) throw new ProtocolError('MALFORMED', `prekey bundle: ${name} must be a u32`);
  return value;
}
function objectOf(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null) throw new ProtocolError('MALFORMED', `prekey bundle: ${name} must be an object`);
  return value as Record<string, unknown>;
}

/**
 * Check a bundle fetched from the key directory: every field has its exact
 * type and length, and both signatures verify under the identity key. Returns
 * a private copy (so the caller's object can change afterwards without effect).
 * Throws `MALFORMED` or `BAD_SIGNATURE`.
 *
 * This proves the prekeys belong to the identity key — not that the identity
 * key belongs to the user; that is the identity store's (and the user's) call.
 */
export function verifyPrekeyBundle(bundle: unknown): PrekeyBundle {
  const b = objectOf(bundle, 'bundle');
  const identityKey = bytesOf(b['identityKey'], IDENTITY_KEY_LENGTH, 'identityKey');
  const spk = objectOf(b['signedPrekey'], 'signedPrekey');
  const signedPrekey = {
    keyId: keyIdOf(spk['keyId'], 'signedPrekey.keyId'),
    publicKey: bytesOf(spk['publicKey'], X25519_KEY_LENGTH, 'signedPrekey.publicKey'),
    signature: bytesOf(spk['signature'], SIGNATURE_LENGTH, 'signedPrekey.signature'),
  };
  const otkValue = b['oneTimePrekey'];
  let oneTimePrekey: OneTimePrekeyPublic | null = null;
  if (otkValue !== null && otkValue !== undefined) {
    const otk = objectOf(otkValue, 'oneTimePrekey');
    oneTimePrekey = { keyId: keyIdOf(otk['keyId'], 'oneTimePrekey.keyId'), publicKey: bytesOf(otk['publicKey'], X25519_KEY_LENGTH, 'oneTimePrekey.publicKey') };
  }
  const pq = objectOf(b['pqPrekey'], 'pqPrekey');
  const pqPrekey = {
    keyId: keyIdOf(pq['keyId'], 'pqPrekey.keyId'),
    publicKey: bytesOf(pq['publicKey'], KEM_PUBLIC_KEY_LENGTH, 'pqPrekey.publicKey'),
    signature: bytesOf(pq['signature'], SIGNATURE_LENGTH, 'pqPrekey.signature'),
  };
  if (!verifyIdentitySignature(identityKey, signedPrekeyMessage(signedPrekey.keyId, signedPrekey.publicKey), signedPrekey.signature)) {
    throw new ProtocolError('BAD_SIGNATURE', 'signed prekey signature does not verify');
  }
  if (!verifyIdentitySignature(identityKey, pqPrekeyMessage(pqPrekey.keyId, pqPrekey.publicKey), pqPrekey.signature)) {
    throw new ProtocolError('BAD_SIGNATURE', 'PQ prekey signature does not verify');
  }
  return { identityKey, signedPrekey, oneTimePrekey, pqPrekey };
}
