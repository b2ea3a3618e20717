/**
 * Secure Message wire formats. Header integers are written in host order by
 * Themis, which only supports little-endian hosts: we read and write LE.
 * Headers are not covered by the signature or MAC.
 *
 * Signed (sign / verify):
 * ```
 *  0        4        8        12            12+ml
 *  +--------+--------+--------+-------------+-----------+ (trailing bytes allowed)
 *  |  type  |   ml   |   sl   | message (ml)| signature |
 *  +--------+--------+--------+-------------+-----------+
 *  0x26042620 EC / 0x26042610 RSA
 * ```
 *
 * Encrypted, EC (0x26042720), master key = raw P-256 ECDH x-coordinate:
 * ```
 *  0        4             8
 *  +--------+-------------+----------------------------------+
 *  |  type  | total length| Secure Cell Seal, no context     |
 *  +--------+-------------+----------------------------------+
 * ```
 *
 * Encrypted, RSA (0x26042710), master key = 70 random bytes sent under OAEP:
 * ```
 *  0        4        8        12           12+L
 *  +--------+--------+--------+------------+-------------------------------+
 *  |  type  | total  |   L    | OAEP(70 B) | Secure Cell Seal, no context  |
 *  +--------+--------+--------+------------+-------------------------------+
 * ```
 * Decryption requires `total` to equal the buffer length exactly.
 *
 * @module
 */
import { readU32LE, writeU32LE } from '../_bytes.ts';

export const TYPE_RSA_SIGNED = 0x26042610;
export const TYPE_EC_SIGNED = 0x26042620;
export const TYPE_RSA_ENCRYPTED = 0x26042710;
export const TYPE_EC_ENCRYPTED = 0x26042720;

export const SIGNED_HEADER_LENGTH = 12;
export const EC_ENCRYPTED_HEADER_LENGTH = 8;
export const RSA_ENCRYPTED_HEADER_LENGTH = 12;
/** Length of the random Secure Cell key inside an RSA encrypted message. */
export const RSA_PASSWORD_LENGTH = 70;

export interface SignedMessage {
  type: number;
  message: Uint8Array;
  signature: Uint8Array;
}

/**
 * Why a signed message could not be read. Both are framing errors, but
 * Themis reports `malformed` (shorter than type + length, or lengths past the
 * end) as INVALID_PARAMETER and `invalid` (a header shorter than 12 bytes, or
 * an empty part) as FAIL; callers keep that split in the legacy number.
 */
export type SignedReadError = 'malformed' | 'invalid';

/** Parse a signed message. */
export function readSigned(buf: Uint8Array): SignedMessage | SignedReadError {
  if (buf.length < 8) return 'malformed';
  if (buf.length < SIGNED_HEADER_LENGTH) return 'invalid';
  const type = readU32LE(buf, 0);
  const ml = readU32LE(buf, 4);
  const sl = readU32LE(buf, 8);
  if (ml === 0 || sl === 0) return 'invalid';
  // Sums stay exact: each term < 2^32, well inside 2^53.
  if (SIGNED_HEADER_LENGTH + ml + sl > buf.length) return 'malformed';
  return {
    type,
    message: buf.subarray(SIGNED_HEADER_LENGTH, SIGNED_HEADER_LENGTH + ml),
    signature: buf.subarray(SIGNED_HEADER_LENGTH + ml, SIGNED_HEADER_LENGTH + ml + sl),
  };
}

export function writeSigned(type: number, message: Uint8Array, signature: Uint8Array): Uint8Array {
  const out = new Uint8Array(SIGNED_HEADER_LENGTH + message.length + signature.length);
  writeU32LE(out, 0, type);
  writeU32LE(out, 4, message.length);
  writeU32LE(out, 8, signature.length);
  out.set(message, SIGNED_HEADER_LENGTH);
  out.set(signature, SIGNED_HEADER_LENGTH + message.length);
  return out;
}

/** Type of any Secure Message, or null if too short. */
export function messageType(buf: Uint8Array): number | null {
  return buf.length >= 4 ? readU32LE(buf, 0) : null;
}

/** The sealed cell of an EC encrypted message; null if the header is wrong. */
export function readEcEncrypted(buf: Uint8Array): Uint8Array | null {
  if (buf.length <= EC_ENCRYPTED_HEADER_LENGTH) return null;
  if (readU32LE(buf, 0) !== TYPE_EC_ENCRYPTED || readU32LE(buf, 4) !== buf.length) return null;
  return buf.subarray(EC_ENCRYPTED_HEADER_LENGTH);
}

export function writeEcEncrypted(cell: Uint8Array): Uint8Array {
  const out = new Uint8Array(EC_ENCRYPTED_HEADER_LENGTH + cell.length);
  writeU32LE(out, 0, TYPE_EC_ENCRYPTED);
  writeU32LE(out, 4, out.length);
  out.set(cell, EC_ENCRYPTED_HEADER_LENGTH);
  return out;
}

export interface RsaEncrypted {
  encryptedPassword: Uint8Array;
  cell: Uint8Array;
}

export function readRsaEncrypted(buf: Uint8Array): RsaEncrypted | null {
  if (buf.length <= RSA_ENCRYPTED_HEADER_LENGTH) return null;
  if (readU32LE(buf, 0) !== TYPE_RSA_ENCRYPTED || readU32LE(buf, 4) !== buf.length) return null;
  const l = readU32LE(buf, 8);
  if (l === 0 || l > buf.length - RSA_ENCRYPTED_HEADER_LENGTH) return null;
  return {
    encryptedPassword: buf.subarray(RSA_ENCRYPTED_HEADER_LENGTH, RSA_ENCRYPTED_HEADER_LENGTH + l),
    cell: buf.subarray(RSA_ENCRYPTED_HEADER_LENGTH + l),
  };
}

export function writeRsaEncrypted(encryptedPassword: Uint8Array, cell: Uint8Array): Uint8Array {
  const out = new Uint8Array(RSA_ENCRYPTED_HEADER_LENGTH + encryptedPassword.length + cell.length);
  writeU32LE(out, 0, TYPE_RSA_ENCRYPTED);
  writeU32LE(out, 4, out.length);
  writeU32LE(out, 8, encryptedPassword.length);
  out.set(encryptedPassword, RSA_ENCRYPTED_HEADER_LENGTH);
  out.set(cell, RSA_ENCRYPTED_HEADER_LENGTH + encryptedPassword.length);
  return out;
}
