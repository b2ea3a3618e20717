/**
 * A device's identity: an Ed25519 key pair held as its 32-byte seed.
 *
 * The public key is what the server registers and what peers pin. PQXDH needs
 * an X25519 identity key for DH1 and DH2; rather than a second key that would
 * need its own binding, we use the birational image of the same key (as
 * libsodium's `crypto_sign_ed25519_{pk,sk}_to_curve25519`, and as Signal's
 * XEdDSA does in the other direction). Using one Curve25519 scalar for both
 * EdDSA and X25519 is analysed in Thormarker, "On using the same key pair for
 * Ed25519 and an X25519 based KEM" (2021).
 *
 * @module
 */
import { backend, wipe } from '@parley/themis/hazmat';
import { copyBytes, toHex } from './_bytes.ts';
import { inspectSymbol } from './_redact.ts';
import { ProtocolError } from './errors.ts';
import { bytesArgument } from './_args.ts';

/** Ed25519 public keys, seeds and X25519 keys are all 32 bytes. */
export const IDENTITY_KEY_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;

export class IdentityKeyPair {
  /** Ed25519 public key: the device's identity as registered and pinned. */
  readonly publicKey: Uint8Array;
  /** X25519 form of {@link publicKey}, used in PQXDH. */
  readonly dhPublicKey: Uint8Array;
  #seed: Uint8Array;
  #dhPrivate: Uint8Array;

  private constructor(seed: Uint8Array) {
    this.#seed = seed;
    this.publicKey = backend.ed25519PublicFromSeed(seed);
    this.#dhPrivate = backend.ed25519SeedToX25519(seed);
    this.dhPublicKey = backend.x25519PublicFromPrivate(this.#dhPrivate);
  }

  static generate(): IdentityKeyPair {
    return new IdentityKeyPair(backend.randomBytes(IDENTITY_KEY_LENGTH));
  }

  /** Restore from the seed {@link exportSeed} returned (copied; the caller may wipe its buffer). */
  static fromSeed(seed: Uint8Array): IdentityKeyPair {
    if (!(seed instanceof Uint8Array) || seed.length !== IDENTITY_KEY_LENGTH) {
      throw new ProtocolError('INVALID_ARGUMENT', `identity seed must be ${IDENTITY_KEY_LENGTH} bytes`);
    }
    return new IdentityKeyPair(copyBytes(seed));
  }

  /** A copy of the secret seed, for the application to store (sealed). */
  exportSeed(): Uint8Array {
    return copyBytes(this.#live());
  }

  /** Ed25519 signature by this identity. */
  sign(message: Uint8Array): Uint8Array {
    return backend.ed25519Sign(this.#live(), bytesArgument(message, 'message'));
  }

  /** X25519 of this identity's DH form with `publicKey`; null for a low-order key. */
  dh(publicKey: Uint8Array): Uint8Array | null {
    this.#live();
    return backend.x25519(this.#dhPrivate, publicKey);
  }

  /** Wipe the secret halves (best effort: JavaScript may have copied them). */
  destroy(): void {
    wipe(this.#seed, this.#dhPrivate);
    this.#seed = new Uint8Array(0);
  }

  #live(): Uint8Array {
    if (this.#seed.length === 0) throw new ProtocolError('INVALID_STATE', 'identity key pair was destroyed');
    return this.#seed;
  }

  toString(): string {
    return 'IdentityKeyPair(private key redacted)';
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

/** Verify an Ed25519 signature by an identity key (strict: see the themis backend). */
export function verifyIdentitySignature(identityKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  return backend.ed25519Verify(bytesArgument(identityKey, 'identityKey'), bytesArgument(message, 'message'), bytesArgument(signature, 'signature'));
}

/**
 * The X25519 form of a peer's identity key, or null when the key is not a
 * valid Ed25519 key of the prime-order subgroup (small order, mixed order,
 * non-canonical, not on the curve).
 */
export function identityDhKey(identityKey: Uint8Array): Uint8Array | null {
  if (identityKey.length !== IDENTITY_KEY_LENGTH) return null;
  const id = toHex(identityKey);
  let known = dhKeyCache.get(id);
  if (known === undefined) {
    known = backend.ed25519PublicToX25519(identityKey);
    if (dhKeyCache.size >= DH_KEY_CACHE_SIZE) dhKeyCache.delete(dhKeyCache.keys().next().value ?? '');
    dhKeyCache.set(id, known);
  }
  return known === null ? null : copyBytes(known);
}

/**
 * Converting a key costs a subgroup check (a full scalar multiplication, ~1.5 ms
 * in either backend), and the same peers' keys come back for every session;
 * the map is public data, so a small cache by value is safe.
 */
const DH_KEY_CACHE_SIZE = 256;
const dhKeyCache = new Map<string, Uint8Array | null>();
