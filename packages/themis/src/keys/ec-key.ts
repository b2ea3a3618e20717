/**
 * Themis EC key containers (P-256 only; P-384/P-521 tags are recognised and
 * refused, as Themis never generates them).
 *
 * ```
 * Private  "REC2" | size=45 | crc | 00 ‖ d (32 B, big-endian)      canonical, emitted
 *          "REC2" | size=44 | crc | d (32 B)                        accepted
 * Public   "UEC2" | size=45 | crc | 02/03 ‖ X (compressed SEC1)     canonical, emitted
 *          "UEC2" | size=77 | crc | 04 ‖ X ‖ Y (uncompressed SEC1)  accepted (Themis ≥ 0.15)
 * ```
 *
 * @module
 */
import { backend } from '#backend';
import { ThemisError, type Subsystem } from '../errors.ts';
import { readContainer, writeContainer } from '../soter/container.ts';

export const EC_PRIVATE_TAG = 'REC2';
export const EC_PUBLIC_TAG = 'UEC2';
export const EC_KEY_LENGTH = 45;

export interface EcPrivateKey {
  readonly kind: 'ec-private';
  /** 32-byte big-endian scalar. */
  readonly d: Uint8Array;
}

export interface EcPublicKey {
  readonly kind: 'ec-public';
  /** 33-byte compressed SEC1 point, validated on the curve. */
  readonly point: Uint8Array;
}

function invalid(subsystem: Subsystem, what: string): ThemisError {
  return new ThemisError(subsystem, 'INVALID_KEY', `invalid EC ${what} key`);
}

/** Parse an EC private key container (tag already known to start with `REC`). */
export function readEcPrivateKey(subsystem: Subsystem, bytes: Uint8Array): EcPrivateKey {
  const c = readContainer(bytes, true);
  if (c === null) throw invalid(subsystem, 'private');
  if (c.tag !== EC_PRIVATE_TAG) {
    if (c.tag === 'REC3' || c.tag === 'REC5') throw new ThemisError(subsystem, 'NOT_SUPPORTED', 'only P-256 EC keys are supported');
    throw invalid(subsystem, 'private');
  }
  let d: Uint8Array;
  if (c.payload.length === 33 && c.payload[0] === 0) d = c.payload.slice(1);
  else if (c.payload.length === 32) d = c.payload.slice();
  else throw invalid(subsystem, 'private');
  // Reject 0 and values ≥ n: the scalar must have a public key.
  if (!backend.p256ScalarValid(d)) {
    d.fill(0);
    throw invalid(subsystem, 'private');
  }
  return { kind: 'ec-private', d };
}

/** Parse an EC public key container (compressed or uncompressed point). */
export function readEcPublicKey(subsystem: Subsystem, bytes: Uint8Array): EcPublicKey {
  const c = readContainer(bytes, true);
  if (c === null) throw invalid(subsystem, 'public');
  if (c.tag !== EC_PUBLIC_TAG) {
    if (c.tag === 'UEC3' || c.tag === 'UEC5') throw new ThemisError(subsystem, 'NOT_SUPPORTED', 'only P-256 EC keys are supported');
    throw invalid(subsystem, 'public');
  }
  const p = c.payload;
  const shapeOk = (p.length === 33 && (p[0] === 2 || p[0] === 3)) || (p.length === 65 && p[0] === 4);
  const point = shapeOk ? backend.p256NormalizePublic(p) : null;
  if (point === null) throw invalid(subsystem, 'public');
  return { kind: 'ec-public', point };
}

export function writeEcPrivateKey(d: Uint8Array): Uint8Array {
  const payload = new Uint8Array(33);
  payload.set(d, 1);
  const out = writeContainer(EC_PRIVATE_TAG, payload);
  payload.fill(0);
  return out;
}

export function writeEcPublicKey(compressedPoint: Uint8Array): Uint8Array {
  return writeContainer(EC_PUBLIC_TAG, compressedPoint);
}

/** Generate a P-256 key pair: canonical private and public containers. */
export function generateEcKeyPair(): { privateKey: Uint8Array; publicKey: Uint8Array } {
  const d = backend.p256GeneratePrivate();
  const point = backend.p256PublicFromPrivate(d);
  if (point === null) throw new ThemisError('KeyPair', 'INTERNAL', 'key generation failed');
  const privateKey = writeEcPrivateKey(d);
  d.fill(0);
  return { privateKey, publicKey: writeEcPublicKey(point) };
}
