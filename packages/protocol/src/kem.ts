/**
 * ML-KEM-1024 (FIPS 203), the post-quantum KEM of PQXDH.
 *
 * It comes from `@noble/post-quantum` in both environments: Node 20's
 * node:crypto has no ML-KEM, so there is no second backend to choose. The
 * private key is kept as its 64-byte FIPS 203 seed (d ‖ z) and expanded when
 * needed, which is smaller to store than the 3,168-byte expanded key and
 * cannot be inconsistent with the public key. All randomness comes from the
 * themis backend, like every other key.
 *
 * @module
 */
import { ml_kem1024, type KEMPrepared } from '@noble/post-quantum/ml-kem.js';
import { backend, wipe } from '@parley/themis/hazmat';

export const KEM_PUBLIC_KEY_LENGTH = 1568;
export const KEM_CIPHERTEXT_LENGTH = 1568;
export const KEM_SEED_LENGTH = 64;
export const KEM_SHARED_SECRET_LENGTH = 32;
/** Encapsulation randomness (FIPS 203 m). */
const KEM_MESSAGE_LENGTH = 32;

export function kemGenerateSeed(): Uint8Array {
  return backend.randomBytes(KEM_SEED_LENGTH);
}

/** Deterministic key pair from a 64-byte seed (ML-KEM.KeyGen_internal(d, z)). */
export function kemKeyPair(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  return ml_kem1024.keygen(seed);
}

/**
 * Encapsulate to `publicKey`. Null when the key fails the FIPS 203 §7.2 input
 * check (wrong length, or a coefficient not reduced mod q).
 */
export function kemEncapsulate(publicKey: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array } | null {
  if (publicKey.length !== KEM_PUBLIC_KEY_LENGTH) return null;
  // m is the preimage of the shared secret: wipe it once used.
  const m = backend.randomBytes(KEM_MESSAGE_LENGTH);
  try {
    const { cipherText, sharedSecret } = ml_kem1024.encapsulate(publicKey, m);
    return { ciphertext: cipherText, sharedSecret };
  } catch {
    return null;
  } finally {
    wipe(m);
  }
}

/**
 * Decapsulate. A ciphertext of the right length never fails: ML-KEM's
 * implicit rejection turns a tampered one into an unrelated pseudorandom
 * secret, and the AEAD of the first message catches it. Null only for a
 * wrong length.
 */
export function kemDecapsulate(ciphertext: Uint8Array, secretKey: Uint8Array, prepared?: KemPrepared): Uint8Array | null {
  if (ciphertext.length !== KEM_CIPHERTEXT_LENGTH) return null;
  try {
    return prepared === undefined ? ml_kem1024.decapsulate(ciphertext, secretKey) : prepared.decapsulate(ciphertext, secretKey);
  } catch {
    return null;
  }
}

/** A public key expanded once for repeated decapsulation (public data only: Â, t̂, H(ek)). */
export type KemPrepared = KEMPrepared;

/**
 * Expand `publicKey` for repeated use (noble's `prepare`; it checks the key
 * like encapsulation does, and refuses a secret key of another public key).
 */
export function kemPrepare(publicKey: Uint8Array): KemPrepared {
  return ml_kem1024.prepare(publicKey);
}
