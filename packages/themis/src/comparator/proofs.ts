/**
 * The three zero-knowledge proofs of Secure Comparator (wire-format spec §6.2).
 * `n` is the one-byte position tag (1…8) that binds a proof to its place in
 * the protocol.
 *
 * ```
 * DL (64 B)           c ‖ s            proves X = x·B
 * DoubleBase (96 B)   c ‖ t1 ‖ t2      proves P = s1·g3 and Q = s2·g2 + s1·B
 * DLEquality (64 B)   c ‖ s            proves X = x·B and R = x·D
 * ```
 *
 * Verification returns false for a bad proof; the caller turns that into
 * NO_MATCH without aborting, as Themis does.
 *
 * @module
 */
import { concatBytes as concat, equalBytes } from '../_bytes.ts';
import { Base, encodePoint, hashToScalar, L, mul, mulBase, randomScalar, scalarFromLE, scalarToLE, type Point } from './group.ts';

export const DL_PROOF_LENGTH = 64;
export const DOUBLE_BASE_PROOF_LENGTH = 96;
export const DL_EQUALITY_PROOF_LENGTH = 64;

const tag = (n: number): Uint8Array => new Uint8Array([n]);
/** Responses must be < 2^253 (top three bits clear), as Themis checks. */
const responseOk = (b: Uint8Array): boolean => ((b[31] as number) & 0xe0) === 0;

export function proveDL(x: bigint, n: number): Uint8Array {
  const r = randomScalar();
  const c = hashToScalar(encodePoint(mulBase(r)), tag(n));
  return concat(scalarToLE(c), scalarToLE((c * x + r) % L));
}

export function verifyDL(proof: Uint8Array, X: Point, n: number): boolean {
  const cb = proof.subarray(0, 32);
  const sb = proof.subarray(32, 64);
  if (!responseOk(sb)) return false;
  const c = scalarFromLE(cb);
  const T = mulBase(scalarFromLE(sb), true).subtract(mul(X, c, true));
  return equalBytes(scalarToLE(hashToScalar(encodePoint(T), tag(n))), cb);
}

export function proveDoubleBase(s1: bigint, s2: bigint, g2: Point, g3: Point, n: number): Uint8Array {
  const r1 = randomScalar();
  const r2 = randomScalar();
  const R1 = mul(g3, r1);
  const R2 = mul(g2, r2).add(mulBase(r1));
  const c = hashToScalar(encodePoint(R1), encodePoint(R2), tag(n));
  return concat(scalarToLE(c), scalarToLE((c * s1 + r1) % L), scalarToLE((c * s2 + r2) % L));
}

export function verifyDoubleBase(proof: Uint8Array, P: Point, Q: Point, g2: Point, g3: Point, n: number): boolean {
  const cb = proof.subarray(0, 32);
  const t1b = proof.subarray(32, 64);
  const t2b = proof.subarray(64, 96);
  if (!responseOk(t1b) || !responseOk(t2b)) return false;
  const c = scalarFromLE(cb);
  const t1 = scalarFromLE(t1b);
  const t2 = scalarFromLE(t2b);
  const T1 = mul(g3, t1, true).subtract(mul(P, c, true));
  const T2 = mul(g2, t2, true).add(mulBase(t1, true)).subtract(mul(Q, c, true));
  return equalBytes(scalarToLE(hashToScalar(encodePoint(T1), encodePoint(T2), tag(n))), cb);
}

export function proveDLEquality(x: bigint, D: Point, n: number): Uint8Array {
  const r = randomScalar();
  const c = hashToScalar(encodePoint(mulBase(r)), encodePoint(mul(D, r)), tag(n));
  return concat(scalarToLE(c), scalarToLE((c * x + r) % L));
}

export function verifyDLEquality(proof: Uint8Array, X: Point, D: Point, R: Point, n: number): boolean {
  const cb = proof.subarray(0, 32);
  const sb = proof.subarray(32, 64);
  if (!responseOk(sb)) return false;
  const c = scalarFromLE(cb);
  const s = scalarFromLE(sb);
  const T1 = mulBase(s, true).subtract(mul(X, c, true));
  const T2 = mul(D, s, true).subtract(mul(R, c, true));
  return equalBytes(scalarToLE(hashToScalar(encodePoint(T1), encodePoint(T2), tag(n))), cb);
}

export { Base };
