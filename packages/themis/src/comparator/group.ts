/**
 * The Ed25519 group as Secure Comparator uses it (wire-format spec §6.1):
 * 32-byte point encodings, little-endian scalars, SHA-512-mod-L challenges,
 * clamped secret scalars used as plain integers.
 *
 * Group arithmetic comes from `@noble/curves` (both backends; `node:crypto`
 * has no raw group operations). Multiplication here is exact for any point
 * and any non-negative integer, as in Themis: k·P is computed as
 * (k div 8)·(8·P) + (k mod 8)·P after reducing k mod 8L, so torsion components
 * of hostile points behave as they do in the C implementation instead of
 * being silently changed by a mod-L reduction.
 *
 * @module
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { backend } from '#backend';
import { concatBytes } from '../_bytes.ts';

export type Point = ReturnType<typeof ed25519.Point.fromBytes>;

export const POINT_LENGTH = 32;
export const SCALAR_LENGTH = 32;
const Base: Point = ed25519.Point.BASE;
const Zero: Point = ed25519.Point.ZERO;
/** Prime order of the base point. */
export const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const FULL_ORDER = 8n * L;

export function scalarFromLE(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number);
  return v;
}

export function scalarToLE(v: bigint): Uint8Array {
  const out = new Uint8Array(SCALAR_LENGTH);
  let x = v;
  for (let i = 0; i < SCALAR_LENGTH; i++) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

/** Clamp as X25519/Themis do: clear the 3 low bits and the top bit, set bit 254. */
export function clamp(b: Uint8Array): bigint {
  const c = b.slice(0, 32);
  c[0] = (c[0] as number) & 0xf8;
  c[31] = ((c[31] as number) & 0x3f) | 0x40;
  const v = scalarFromLE(c);
  c.fill(0);
  return v;
}

export function randomScalar(): bigint {
  const r = backend.randomBytes(32);
  const v = clamp(r);
  r.fill(0);
  return v;
}

/** H(x) = SHA-512(x) as a little-endian integer mod L. */
export function hashToScalar(...parts: Uint8Array[]): bigint {
  return scalarFromLE(backend.sha512(concatBytes(...parts))) % L;
}

/** Decode a point; null if not on the curve (non-canonical y is accepted, as ref10 does). */
export function decodePoint(b: Uint8Array): Point | null {
  try {
    return ed25519.Point.fromBytes(b.subarray(0, POINT_LENGTH), true);
  } catch {
    return null;
  }
}

export function encodePoint(p: Point): Uint8Array {
  return p.toBytes();
}

/**
 * Exact k·P for any point and any k ≥ 0. Secret scalars use noble's
 * constant-time ladder; `publicScalar` (proof verification, where every
 * scalar came from the wire) may use the faster variable-time one.
 */
export function mul(p: Point, k: bigint, publicScalar = false): Point {
  const kk = k % FULL_ORDER;
  const q = kk >> 3n;
  const r = kk & 7n;
  // 8·P by three doublings: a full scalar multiplication by 8 costs ~100x more.
  const p8 = p.double().double().double();
  let out = q === 0n ? Zero : publicScalar ? p8.multiplyUnsafe(q) : p8.multiply(q);
  if (r !== 0n) out = out.add(p.multiplyUnsafe(r));
  return out;
}

export function mulBase(k: bigint, publicScalar = false): Point {
  const kk = k % L;
  if (kk === 0n) return Zero;
  return publicScalar ? Base.multiplyUnsafe(kk) : Base.multiply(kk);
}

export function isIdentity(p: Point): boolean {
  return p.is0();
}

export { Base, Zero };
