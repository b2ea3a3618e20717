/**
 * Secure Cell authentication tokens (all integers little-endian).
 *
 * Master-key token (Seal prefix, Token Protect token), 44 bytes as written:
 * ```
 *  0       4        8        12       16          28          44
 *  +-------+--------+--------+--------+-----------+-----------+
 *  |  alg  | iv_len | tag_len|   m    |  IV (12)  | tag (16)  |
 *  +-------+--------+--------+--------+-----------+-----------+
 *  0x40010100  12      16     message length
 * ```
 *
 * Passphrase token (Seal with passphrase prefix), 70 bytes as written:
 * ```
 *  0     4       8       12    16       20        32         48      52       54        70
 *  +-----+-------+-------+-----+--------+---------+----------+-------+--------+---------+
 *  | alg |iv_len |tag_len|  m  |kdf_len | IV (12) | tag (16) | iters |salt_len| salt(16)|
 *  +-----+-------+-------+-----+--------+---------+----------+-------+--------+---------+
 *  0x41010100                    22                            u32     u16
 * ```
 *
 * Reading is as lenient as Themis where Themis is lenient (IV fields ≥ 12
 * and tag fields ≥ 16 bytes, first 12/16 used; bytes after the token
 * ignored), bounded by the limits in `limits.ts`. Writing is canonical.
 *
 * @module
 */
import { readU16LE, readU32LE, writeU16LE, writeU32LE } from '../_bytes.ts';
import {
  CELL_IV_LENGTH_MAX,
  CELL_TAG_LENGTH_MAX,
  PBKDF2_ITERATIONS_MAX,
  PBKDF2_ITERATIONS_MIN,
  PBKDF2_SALT_LENGTH,
  PBKDF2_SALT_LENGTH_MAX,
} from '../limits.ts';

export const ALG_AES_GCM_256 = 0x40010100;
export const ALG_AES_GCM_256_PBKDF2 = 0x41010100;
const ALG_CIPHER_MASK = 0xf0000000;
const ALG_CIPHER_GCM = 0x40000000;
const ALG_KDF_MASK = 0x0f000000;
const ALG_KDF_NONE = 0x00000000;
const ALG_KDF_PBKDF2 = 0x01000000;
const ALG_RESERVED_MASK = 0x00f0f000;
const ALG_PADDING_MASK = 0x000f0000;
/** Every Themis GCM id carries padding nibble 1 (PKCS#7); Themis matches it exactly. */
const ALG_PADDING_GCM = 0x00010000;
const ALG_KEY_BITS_MASK = 0x00000fff;

export const NONCE_LENGTH = 12;
export const TAG_LENGTH = 16;
export const KEY_TOKEN_LENGTH = 16 + NONCE_LENGTH + TAG_LENGTH; // 44
export const PASSPHRASE_SALT_LENGTH = PBKDF2_SALT_LENGTH;
export const PASSPHRASE_TOKEN_LENGTH = 20 + NONCE_LENGTH + TAG_LENGTH + 6 + PASSPHRASE_SALT_LENGTH; // 70

export interface KeyToken {
  /** AES key length in bytes (16, 24 or 32), from the alg id. */
  keyLength: number;
  nonce: Uint8Array;
  tag: Uint8Array;
  messageLength: number;
}

export interface PassphraseToken extends KeyToken {
  iterations: number;
  salt: Uint8Array;
}

/** Read the key length from an alg id, or null if the id is not GCM with the expected KDF. */
function algKeyLength(alg: number, kdf: number): number | null {
  if ((alg & ALG_RESERVED_MASK) !== 0) return null;
  if ((alg & ALG_CIPHER_MASK) >>> 0 !== ALG_CIPHER_GCM) return null;
  if ((alg & ALG_KDF_MASK) !== kdf) return null;
  if ((alg & ALG_PADDING_MASK) !== ALG_PADDING_GCM) return null;
  const bits = alg & ALG_KEY_BITS_MASK;
  return bits === 256 || bits === 192 || bits === 128 ? bits / 8 : null;
}

/** Parse a master-key token from the start of `buf`; null if malformed. */
export function readKeyToken(buf: Uint8Array): KeyToken | null {
  if (buf.length < 16) return null;
  const keyLength = algKeyLength(readU32LE(buf, 0), ALG_KDF_NONE);
  const ivLen = readU32LE(buf, 4);
  const tagLen = readU32LE(buf, 8);
  const messageLength = readU32LE(buf, 12);
  if (keyLength === null || ivLen < NONCE_LENGTH || ivLen > CELL_IV_LENGTH_MAX || tagLen < TAG_LENGTH || tagLen > CELL_TAG_LENGTH_MAX) {
    return null;
  }
  if (buf.length < 16 + ivLen + tagLen) return null;
  return {
    keyLength,
    nonce: buf.subarray(16, 16 + NONCE_LENGTH),
    tag: buf.subarray(16 + ivLen, 16 + ivLen + TAG_LENGTH),
    messageLength,
  };
}

/** Write a canonical 44-byte master-key token into `out` at offset 0. */
export function writeKeyToken(out: Uint8Array, nonce: Uint8Array, tag: Uint8Array, messageLength: number): void {
  writeU32LE(out, 0, ALG_AES_GCM_256);
  writeU32LE(out, 4, NONCE_LENGTH);
  writeU32LE(out, 8, TAG_LENGTH);
  writeU32LE(out, 12, messageLength);
  out.set(nonce, 16);
  out.set(tag, 16 + NONCE_LENGTH);
}

export type PassphraseTokenResult = PassphraseToken | 'malformed' | 'limit';

/** Parse a passphrase token; `'limit'` if it asks for more work than we allow. */
export function readPassphraseToken(buf: Uint8Array): PassphraseTokenResult {
  if (buf.length < 20) return 'malformed';
  const keyLength = algKeyLength(readU32LE(buf, 0), ALG_KDF_PBKDF2);
  const ivLen = readU32LE(buf, 4);
  const tagLen = readU32LE(buf, 8);
  const messageLength = readU32LE(buf, 12);
  const kdfLen = readU32LE(buf, 16);
  if (keyLength === null || ivLen < NONCE_LENGTH || ivLen > CELL_IV_LENGTH_MAX || tagLen < TAG_LENGTH || tagLen > CELL_TAG_LENGTH_MAX) {
    return 'malformed';
  }
  if (kdfLen < 6 || kdfLen > 6 + PBKDF2_SALT_LENGTH_MAX) return 'malformed';
  const kdfOff = 20 + ivLen + tagLen;
  if (buf.length < kdfOff + kdfLen) return 'malformed';
  const iterations = readU32LE(buf, kdfOff);
  const saltLen = readU16LE(buf, kdfOff + 4);
  if (saltLen + 6 > kdfLen) return 'malformed';
  if (iterations < PBKDF2_ITERATIONS_MIN) return 'malformed';
  if (iterations > PBKDF2_ITERATIONS_MAX) return 'limit';
  return {
    keyLength,
    nonce: buf.subarray(20, 20 + NONCE_LENGTH),
    tag: buf.subarray(20 + ivLen, 20 + ivLen + TAG_LENGTH),
    messageLength,
    iterations,
    salt: buf.subarray(kdfOff + 6, kdfOff + 6 + saltLen),
  };
}

/** Write a canonical 70-byte passphrase token into `out` at offset 0. */
export function writePassphraseToken(
  out: Uint8Array,
  nonce: Uint8Array,
  tag: Uint8Array,
  messageLength: number,
  iterations: number,
  salt: Uint8Array,
): void {
  writeU32LE(out, 0, ALG_AES_GCM_256_PBKDF2);
  writeU32LE(out, 4, NONCE_LENGTH);
  writeU32LE(out, 8, TAG_LENGTH);
  writeU32LE(out, 12, messageLength);
  writeU32LE(out, 16, 6 + salt.length);
  out.set(nonce, 20);
  out.set(tag, 20 + NONCE_LENGTH);
  writeU32LE(out, 20 + NONCE_LENGTH + TAG_LENGTH, iterations);
  writeU16LE(out, 20 + NONCE_LENGTH + TAG_LENGTH + 4, salt.length);
  out.set(salt, 20 + NONCE_LENGTH + TAG_LENGTH + 6);
}
