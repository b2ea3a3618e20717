/**
 * The Double Ratchet's key derivation functions (Signal, "The Double Ratchet
 * Algorithm", revision 4, §5.2 recommendations).
 *
 * ```
 * KDF_RK(rk, dh_out) = HKDF-SHA-256(salt = rk, ikm = dh_out, info = "Parley_DoubleRatchet_RootKey_v1", 64)
 *                      → (rk', ck)           first 32 bytes, last 32 bytes
 * KDF_CK(ck)         = (HMAC-SHA-256(ck, 0x02), HMAC-SHA-256(ck, 0x01))  → (ck', mk)
 * header key hk      = HMAC-SHA-256(ck₀, 0x03)   for the chain that starts at ck₀
 * ```
 *
 * The header key is ours, not the spec's: it authenticates a message's
 * header on its own (see `double-ratchet.ts`). Using a third constant under
 * the same PRF key keeps it independent of every message and chain key.
 *
 * @module
 */
import { backend } from '@parley/themis/hazmat';
import { utf8 } from './_bytes.ts';

export const KEY_LENGTH = 32;
const ROOT_INFO = utf8('Parley_DoubleRatchet_RootKey_v1');
const MESSAGE_KEY_INPUT = Uint8Array.of(0x01);
const CHAIN_KEY_INPUT = Uint8Array.of(0x02);
const HEADER_KEY_INPUT = Uint8Array.of(0x03);

export function kdfRootKey(rootKey: Uint8Array, dhOutput: Uint8Array): { rootKey: Uint8Array; chainKey: Uint8Array } {
  const out = backend.hkdfSha256(dhOutput, rootKey, ROOT_INFO, 2 * KEY_LENGTH);
  const result = { rootKey: out.slice(0, KEY_LENGTH), chainKey: out.slice(KEY_LENGTH) };
  out.fill(0);
  return result;
}

export function kdfChainKey(chainKey: Uint8Array): { chainKey: Uint8Array; messageKey: Uint8Array } {
  return {
    chainKey: backend.hmacSha256(chainKey, [CHAIN_KEY_INPUT]),
    messageKey: backend.hmacSha256(chainKey, [MESSAGE_KEY_INPUT]),
  };
}

export function headerKey(initialChainKey: Uint8Array): Uint8Array {
  return backend.hmacSha256(initialChainKey, [HEADER_KEY_INPUT]);
}
