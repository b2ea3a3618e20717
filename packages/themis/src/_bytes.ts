/**
 * Byte helpers: boundary asserters, explicit-endianness readers and writers,
 * constant-time comparison and best-effort wiping.
 *
 * Every integer helper names its byte order; Themis mixes them (see the
 * wire-format spec §0), so there is no "default" order anywhere.
 *
 * @module
 */
import { ThemisError, typeMismatch, type Subsystem } from './errors.ts';

/** True for any `Uint8Array` (including Node `Buffer` and our key subclasses). */
export function isBytes(a: unknown): a is Uint8Array {
  // isView first: a Proxy around a Uint8Array passes instanceof but is not a view.
  return ArrayBuffer.isView(a) && (a instanceof Uint8Array || a.constructor.name === 'Uint8Array');
}

/**
 * Assert `value` is bytes (an `ArrayBuffer` is accepted and viewed) and return a
 * `Uint8Array` over it. Empty input is rejected unless `allowEmpty`.
 */
export function abytes(subsystem: Subsystem, value: unknown, name: string, allowEmpty = false): Uint8Array {
  let bytes: Uint8Array;
  // Re-view as a plain Uint8Array: subclasses (wasm-themis keys, Buffer) may
  // have a species constructor that misbehaves in subarray()/slice().
  try {
    if (isBytes(value)) bytes = speciesIsUint8Array(value) ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    else if (value instanceof ArrayBuffer) bytes = new Uint8Array(value);
    else throw typeMismatch(subsystem, `${name} must be a Uint8Array, got ${describe(value)}`);
  } catch (e) {
    if (e instanceof ThemisError) throw e;
    // e.g. a Proxy around a Uint8Array: it passes instanceof but its fields throw.
    throw typeMismatch(subsystem, `${name} must be a Uint8Array`, e);
  }
  if (!allowEmpty && bytes.length === 0) throw new ThemisError(subsystem, 'EMPTY_INPUT', `${name} must be non-empty`);
  return bytes;
}

function speciesIsUint8Array(a: Uint8Array): boolean {
  const ctor = a.constructor as { [Symbol.species]?: unknown } | undefined;
  return ctor === Uint8Array || ctor?.[Symbol.species] === Uint8Array;
}

/** Optional context: `undefined`/`null` → empty; otherwise must be bytes (may be empty). */
export function acontext(subsystem: Subsystem, value: unknown, name = 'context'): Uint8Array {
  if (value === undefined || value === null) return EMPTY;
  return abytes(subsystem, value, name, true);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'Array';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}

export const EMPTY: Uint8Array = new Uint8Array(0);

/** Copy into a fresh, plain `Uint8Array` (never a subclass, never shared memory). */
export function copyBytes(a: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  out.set(a);
  return out;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Constant-time equality for equal lengths; lengths themselves are not secret. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/**
 * Best-effort wipe. JavaScript gives no guarantee that no other copy exists
 * (the engine may have moved or copied the buffer), so this only narrows the
 * window in which a secret stays readable in memory.
 */
export function wipe(...arrays: (Uint8Array | undefined)[]): void {
  for (const a of arrays) a?.fill(0);
}

const utf8Encoder = new TextEncoder();
export function utf8(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

// ---- explicit-endianness integer helpers (all unsigned) ----

export function readU32LE(b: Uint8Array, off: number): number {
  return ((b[off] as number) | ((b[off + 1] as number) << 8) | ((b[off + 2] as number) << 16) | ((b[off + 3] as number) << 24)) >>> 0;
}
export function readU32BE(b: Uint8Array, off: number): number {
  return (((b[off] as number) << 24) | ((b[off + 1] as number) << 16) | ((b[off + 2] as number) << 8) | (b[off + 3] as number)) >>> 0;
}
export function readU16LE(b: Uint8Array, off: number): number {
  return (b[off] as number) | ((b[off + 1] as number) << 8);
}
export function writeU32LE(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}
export function writeU32BE(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}
export function writeU16LE(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}
/** u64 big-endian from a non-negative safe integer (used for Unix timestamps). */
export function writeU64BE(b: Uint8Array, off: number, v: number): void {
  writeU32BE(b, off, Math.floor(v / 0x100000000));
  writeU32BE(b, off + 4, v >>> 0);
}
/** u64 big-endian; values above 2^53 lose precision, which callers bound anyway. */
export function readU64BE(b: Uint8Array, off: number): number {
  return readU32BE(b, off) * 0x100000000 + readU32BE(b, off + 4);
}
export function u32LE(v: number): Uint8Array {
  const b = new Uint8Array(4);
  writeU32LE(b, 0, v);
  return b;
}

// ---- big integers (RSA key fields) ----

export function bytesToBigInt(b: Uint8Array): bigint {
  let hex = '';
  for (const x of b) hex += x.toString(16).padStart(2, '0');
  return hex.length === 0 ? 0n : BigInt('0x' + hex);
}
/** Big-endian, left-padded to `len`; returns null if the value does not fit. */
export function bigIntToBytes(v: bigint, len: number): Uint8Array | null {
  if (v < 0n) return null;
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  if (hex.length / 2 > len) return null;
  const out = new Uint8Array(len);
  const off = len - hex.length / 2;
  for (let i = 0; i < hex.length / 2; i++) out[off + i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Hex for tests and diagnostics of public data only. */
export function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
