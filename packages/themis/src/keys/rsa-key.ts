/**
 * Themis RSA key containers. Tag `RRA`/`URA` plus a size character:
 * `1` = 1024, `2` = 2048, `4` = 4096, `8` = 8192 bits. k = modulus bytes.
 * All integers big-endian, left-padded to their field width.
 *
 * ```
 * Public  "URAx" | size | crc | n (k) ‖ e (u32 BE)
 * Private "RRAx" | size | crc | d (k) ‖ p (k/2) ‖ q (k/2) ‖ dP (k/2) ‖ dQ (k/2)
 *                                ‖ qInv (k/2) ‖ n (k) ‖ e (u32 BE)
 * ```
 *
 * The public exponent must be 65537 or 3, as Themis requires.
 *
 * @module
 */
import { backend } from '#backend';
import type { RsaPrivateComponents, RsaPublicComponents } from '../backend/types.ts';
import { bigIntToBytes, bytesToBigInt, concatBytes, readU32BE } from '../_bytes.ts';
import { ThemisError, type Subsystem } from '../errors.ts';
import { readContainer, writeContainer } from '../soter/container.ts';
import { RSA_BITS_ALLOWED, RSA_BITS_DEFAULT, RSA_BITS_MAX } from '../limits.ts';

const SIZE_CHAR: Readonly<Record<string, number>> = { '1': 1024, '2': 2048, '4': 4096, '8': 8192 };
const CHAR_FOR_BITS: Readonly<Record<number, string>> = { 1024: '1', 2048: '2', 4096: '4', 8192: '8' };

export interface RsaPrivateKey {
  readonly kind: 'rsa-private';
  readonly bits: number;
  readonly c: RsaPrivateComponents;
}

export interface RsaPublicKey {
  readonly kind: 'rsa-public';
  readonly bits: number;
  readonly c: RsaPublicComponents;
}

function invalid(subsystem: Subsystem, what: string): ThemisError {
  return new ThemisError(subsystem, 'INVALID_KEY', `invalid RSA ${what} key`);
}

function exponentOk(e: Uint8Array): boolean {
  const v = readU32BE(e, 0);
  return v === 65537 || v === 3;
}

function bitsFromTag(tag: string, prefix: string): number | null {
  if (!tag.startsWith(prefix)) return null;
  const bits = SIZE_CHAR[tag[3] as string];
  return bits !== undefined && bits <= RSA_BITS_MAX ? bits : null;
}

export function readRsaPublicKey(subsystem: Subsystem, bytes: Uint8Array): RsaPublicKey {
  const c = readContainer(bytes, true);
  const bits = c === null ? null : bitsFromTag(c.tag, 'URA');
  if (c === null || bits === null) throw invalid(subsystem, 'public');
  const k = bits / 8;
  const p = c.payload;
  if (p.length !== k + 4) throw invalid(subsystem, 'public');
  const n = p.slice(0, k);
  const e = p.slice(k, k + 4);
  // The modulus must really have the declared size (top byte non-zero) and be odd.
  if (n[0] === 0 || ((n[k - 1] as number) & 1) === 0 || !exponentOk(e)) throw invalid(subsystem, 'public');
  return { kind: 'rsa-public', bits, c: { n, e } };
}

function rsaPartsConsistent(c: RsaPrivateComponents): boolean {
  const [n, e, d, p, q, dp, dq, qi] = [c.n, c.e, c.d, c.p, c.q, c.dp, c.dq, c.qi].map(bytesToBigInt) as [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];
  if (p <= 1n || q <= 1n || p * q !== n) return false;
  const p1 = p - 1n;
  const q1 = q - 1n;
  return d > 0n && d < n && (d * e) % p1 === 1n && (d * e) % q1 === 1n && dp === d % p1 && dq === d % q1 && (qi * q) % p === 1n && qi < p;
}

export function readRsaPrivateKey(subsystem: Subsystem, bytes: Uint8Array): RsaPrivateKey {
  const c = readContainer(bytes, true);
  const bits = c === null ? null : bitsFromTag(c.tag, 'RRA');
  if (c === null || bits === null) throw invalid(subsystem, 'private');
  const k = bits / 8;
  const h = k / 2;
  const p = c.payload;
  if (p.length !== k + 5 * h + k + 4) throw invalid(subsystem, 'private');
  let off = 0;
  const take = (len: number): Uint8Array => {
    const v = p.slice(off, off + len);
    off += len;
    return v;
  };
  const comp: RsaPrivateComponents = { d: take(k), p: take(h), q: take(h), dp: take(h), dq: take(h), qi: take(h), n: take(k), e: take(4) };
  // Consistency of every part: backends use different subsets (OpenSSL the CRT
  // parts, the pure-JS one d), so an inconsistent key would behave differently
  // per backend — or leak through faulty CRT results. Refuse it up front.
  const ok = comp.n[0] !== 0 && exponentOk(comp.e) && rsaPartsConsistent(comp);
  if (!ok) {
    for (const v of Object.values(comp)) v.fill(0);
    throw invalid(subsystem, 'private');
  }
  return { kind: 'rsa-private', bits, c: comp };
}

export function writeRsaPublicKey(c: RsaPublicComponents, bits: number): Uint8Array {
  const k = bits / 8;
  const n = bigIntToBytes(bytesToBigInt(c.n), k);
  const e = bigIntToBytes(bytesToBigInt(c.e), 4);
  if (n === null || e === null) throw new ThemisError('KeyPair', 'INTERNAL', 'RSA component does not fit');
  return writeContainer('URA' + CHAR_FOR_BITS[bits], concatBytes(n, e));
}

export function writeRsaPrivateKey(c: RsaPrivateComponents, bits: number): Uint8Array {
  const k = bits / 8;
  const h = k / 2;
  const fields: [Uint8Array, number][] = [
    [c.d, k],
    [c.p, h],
    [c.q, h],
    [c.dp, h],
    [c.dq, h],
    [c.qi, h],
    [c.n, k],
    [c.e, 4],
  ];
  const parts = fields.map(([v, len]) => {
    const b = bigIntToBytes(bytesToBigInt(v), len);
    if (b === null) throw new ThemisError('KeyPair', 'INTERNAL', 'RSA component does not fit');
    return b;
  });
  const payload = concatBytes(...parts);
  const out = writeContainer('RRA' + CHAR_FOR_BITS[bits], payload);
  payload.fill(0);
  for (const b of parts) b.fill(0);
  return out;
}

export function generateRsaKeyPair(bits: number = RSA_BITS_DEFAULT): { privateKey: Uint8Array; publicKey: Uint8Array } {
  if (!RSA_BITS_ALLOWED.includes(bits)) {
    throw new ThemisError('KeyPair', 'INVALID_ARGUMENT', `RSA key size must be one of ${RSA_BITS_ALLOWED.join(', ')} bits`);
  }
  const c = backend.rsaGenerate(bits);
  const privateKey = writeRsaPrivateKey(c, bits);
  const publicKey = writeRsaPublicKey(c, bits);
  for (const v of Object.values(c)) v.fill(0);
  return { privateKey, publicKey };
}
