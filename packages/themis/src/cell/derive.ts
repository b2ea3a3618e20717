/**
 * Secure Cell key derivation (wire-format spec §3.1, §3.4, §3.5).
 *
 * ```
 * dk = SoterKDF(K, "Themis secure cell message key", [u32le(m), ctx if non-empty], keyLen)
 * ```
 * where K is the master key, or PBKDF2-HMAC-SHA-256(passphrase, salt, iters, 32)
 * in passphrase mode. Themis 0.9.6 used u64le(m); that form is only ever
 * tried when a caller opts in (`legacy`).
 *
 * @module
 */
import { backend } from '#backend';
import { u32LE } from '../_bytes.ts';
import { soterKdf } from '../soter/kdf.ts';

const MESSAGE_KEY_LABEL = 'Themis secure cell message key';
const MESSAGE_IV_LABEL = 'Themis secure cell message iv';

function u64LE(v: number): Uint8Array {
  const b = new Uint8Array(8);
  b.set(u32LE(v >>> 0));
  b.set(u32LE(Math.floor(v / 0x100000000)), 4);
  return b;
}

export function deriveMessageKey(key: Uint8Array, messageLength: number, context: Uint8Array, keyLength: number, legacy = false): Uint8Array {
  const len = legacy ? u64LE(messageLength) : u32LE(messageLength);
  const contexts = context.length > 0 ? [len, context] : [len];
  return soterKdf(key, MESSAGE_KEY_LABEL, contexts, keyLength);
}

/** Context Imprint: key from (master, m) only; IV from (dk, context). */
export function deriveImprintKeyAndIv(key: Uint8Array, messageLength: number, context: Uint8Array): { dk: Uint8Array; iv: Uint8Array } {
  const dk = soterKdf(key, MESSAGE_KEY_LABEL, [u32LE(messageLength)], 32);
  const iv = soterKdf(dk, MESSAGE_IV_LABEL, [context], 16);
  return { dk, iv };
}

/** Passphrase pre-key: always 32 bytes, whatever the AES key length. */
export const PREKEY_LENGTH = 32;

export function derivePassphrasePrekey(passphrase: Uint8Array, salt: Uint8Array, iterations: number): Uint8Array {
  return backend.pbkdf2Sha256(passphrase, salt, iterations, PREKEY_LENGTH);
}

export function derivePassphrasePrekeyAsync(passphrase: Uint8Array, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  return backend.pbkdf2Sha256Async(passphrase, salt, iterations, PREKEY_LENGTH);
}
