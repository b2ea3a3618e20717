/**
 * ENCRYPT / DECRYPT of the Double Ratchet (§5.2): AES-256-CBC with PKCS#7
 * padding, then HMAC-SHA-256 over the associated data and the ciphertext
 * (encrypt-then-MAC), all keys and the IV derived from the message key:
 *
 * ```
 * HKDF-SHA-256(salt = 0^32, ikm = mk, info = "Parley_DoubleRatchet_MessageKeys_v1", 80)
 *   → enc key (32) ‖ auth key (32) ‖ IV (16)
 * ciphertext = AES-256-CBC(enc key, IV, plaintext) ‖ HMAC-SHA-256(auth key, AD ‖ CBC output)[0:16]
 * ```
 *
 * Why CBC + HMAC and not AES-GCM with a derived nonce: each message key is
 * meant to be used once, but a session restored from an old backup, or a
 * crash between sending and saving, re-uses one with a different plaintext.
 * With GCM that leaks the XOR of the two plaintexts and the GHASH key, which
 * forges messages under that key; with CBC and a fixed IV it leaks only
 * whether the two plaintexts share a prefix of whole blocks, and HMAC has no
 * key to lose. This is the construction the spec recommends (and Signal
 * uses). The tag is truncated to 128 bits (as HMAC-SHA-256-128, RFC 4868)
 * and compared in constant time before any decryption, so there is no
 * padding oracle: a bad tag and bad padding are the same `null`.
 *
 * `associatedData` must be unambiguous on its own (the caller length-prefixes
 * its variable parts); the CBC output is what follows it.
 *
 * @module
 */
import { backend, equalBytes, wipe } from '@parley/themis/hazmat';
import { utf8 } from './_bytes.ts';

export const MAC_LENGTH = 16;
const BLOCK = 16;
const INFO = utf8('Parley_DoubleRatchet_MessageKeys_v1');
const ZERO_SALT = new Uint8Array(32);

function keys(messageKey: Uint8Array): { enc: Uint8Array; auth: Uint8Array; iv: Uint8Array; wipe(): void } {
  const okm = backend.hkdfSha256(messageKey, ZERO_SALT, INFO, 80);
  return { enc: okm.subarray(0, 32), auth: okm.subarray(32, 64), iv: okm.subarray(64, 80), wipe: () => wipe(okm) };
}

function tag(authKey: Uint8Array, associatedData: Uint8Array, body: Uint8Array): Uint8Array {
  return backend.hmacSha256(authKey, [associatedData, body]).subarray(0, MAC_LENGTH);
}

/** Length of the ciphertext for a plaintext of `length` bytes. */
export function ciphertextLength(length: number): number {
  return (Math.floor(length / BLOCK) + 1) * BLOCK + MAC_LENGTH;
}

export function encryptMessage(messageKey: Uint8Array, plaintext: Uint8Array, associatedData: Uint8Array): Uint8Array {
  const k = keys(messageKey);
  try {
    const body = backend.aesCbcEncrypt(k.enc, k.iv, plaintext);
    const out = new Uint8Array(body.length + MAC_LENGTH);
    out.set(body);
    out.set(tag(k.auth, associatedData, body), body.length);
    return out;
  } finally {
    k.wipe();
  }
}

/** The plaintext, or null for any failure (wrong key, tag, padding or length). */
export function decryptMessage(messageKey: Uint8Array, ciphertext: Uint8Array, associatedData: Uint8Array): Uint8Array | null {
  if (ciphertext.length < BLOCK + MAC_LENGTH || (ciphertext.length - MAC_LENGTH) % BLOCK !== 0) return null;
  const body = ciphertext.subarray(0, ciphertext.length - MAC_LENGTH);
  const k = keys(messageKey);
  try {
    if (!equalBytes(tag(k.auth, associatedData, body), ciphertext.subarray(body.length))) return null;
    return backend.aesCbcDecrypt(k.enc, k.iv, body);
  } finally {
    k.wipe();
  }
}
