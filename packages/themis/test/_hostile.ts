/**
 * Helpers shared by the hostile-input test files (properties, malformed,
 * limits, secrets): error assertions that say exactly what went wrong, byte
 * surgery on wire formats, and safe calls into the real peer.
 */
import assert from 'node:assert/strict';
import { ThemisError, type ThemisErrorCodeName } from '../src/index.ts';
import { backend } from '../src/hazmat.ts';

function describeError(e: unknown): string {
  if (e instanceof ThemisError) return `ThemisError(${e.code})`;
  if (e instanceof Error) return `${e.constructor.name}: ${e.message.slice(0, 200)}`;
  return `non-Error value ${typeof e}`;
}

/** Assert `e` is a ThemisError whose code is one of `codes`. */
export function assertThemisError(e: unknown, codes: ThemisErrorCodeName | readonly ThemisErrorCodeName[], what = ''): void {
  const allowed = typeof codes === 'string' ? [codes] : codes;
  if (!(e instanceof ThemisError)) assert.fail(`${what}: expected ThemisError(${allowed.join('|')}), got ${describeError(e)}`);
  if (!allowed.includes(e.code)) assert.fail(`${what}: expected code ${allowed.join('|')}, got ${e.code}`);
}

/** `fn` must throw a ThemisError with one of `codes` (and nothing else). */
export function expectThemisError(fn: () => unknown, codes: ThemisErrorCodeName | readonly ThemisErrorCodeName[], what = 'call'): void {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    assertThemisError(e, codes, what);
    return;
  }
  const shown = result instanceof Uint8Array ? `${result.length} bytes` : typeof result;
  assert.fail(`${what}: expected ThemisError(${typeof codes === 'string' ? codes : codes.join('|')}), but it returned ${shown}`);
}

/** As {@link expectThemisError} for a function returning a promise (a synchronous throw also counts). */
export async function expectThemisErrorAsync(
  fn: () => Promise<unknown>,
  codes: ThemisErrorCodeName | readonly ThemisErrorCodeName[],
  what = 'call',
): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assertThemisError(e, codes, what);
    return;
  }
  assert.fail(`${what}: expected a rejection with ThemisError(${typeof codes === 'string' ? codes : codes.join('|')})`);
}

/**
 * Run a call into the real peer and report whether it threw. Its exceptions
 * are never rethrown or printed (they can carry the whole Emscripten source).
 */
export function peerOutcome(fn: () => unknown): { ok: true; value: unknown } | { ok: false; errorCode: number | undefined } {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    const code = (e as { errorCode?: unknown } | null)?.errorCode;
    return { ok: false, errorCode: typeof code === 'number' ? code : undefined };
  }
}

/** True if the peer throws for this call. */
export function peerRejects(fn: () => unknown): boolean {
  return !peerOutcome(fn).ok;
}

/** The peer's result as plain bytes; fails the test (without printing the peer's error) if it threw. */
export function peerBytes(fn: () => unknown, what = 'peer call'): Uint8Array {
  const r = peerOutcome(fn);
  if (!r.ok) assert.fail(`${what}: the peer threw (errorCode ${String(r.errorCode)})`);
  assert.ok(r.value instanceof Uint8Array, `${what}: the peer did not return bytes`);
  return Uint8Array.from(r.value);
}

// ---- byte surgery ----

export function readU32LE(b: Uint8Array, off: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);
}

/** A copy of `b` with the little-endian u32 at `off` replaced by `v`. */
export function withU32LE(b: Uint8Array, off: number, v: number): Uint8Array {
  const out = Uint8Array.from(b);
  new DataView(out.buffer).setUint32(off, v >>> 0, true);
  return out;
}

/** A copy of `b` with the little-endian u16 at `off` replaced by `v`. */
export function withU16LE(b: Uint8Array, off: number, v: number): Uint8Array {
  const out = Uint8Array.from(b);
  new DataView(out.buffer).setUint16(off, v, true);
  return out;
}

/** A copy of `b` with the big-endian u32 at `off` replaced by `v`. */
export function withU32BE(b: Uint8Array, off: number, v: number): Uint8Array {
  const out = Uint8Array.from(b);
  new DataView(out.buffer).setUint32(off, v >>> 0, false);
  return out;
}

/** A copy of `b` with bit `bit` (0 = least significant bit of byte 0) flipped. */
export function flipBit(b: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(b);
  out[bit >> 3] = (out[bit >> 3] as number) ^ (1 << (bit & 7));
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Rewrite a Secure Cell auth token so its IV field is `ivLen` bytes and its
 * tag field `tagLen` bytes, keeping the real nonce as the first 12 bytes of
 * the IV field and the real tag as the first 16 bytes of the tag field
 * (Themis uses exactly those and ignores the rest; neither length field is
 * authenticated). `ivOffset` is 16 for master-key tokens and 20 for
 * passphrase tokens; everything after the 12 + 16 canonical bytes (the KDF
 * section of a passphrase token, the ciphertext of a Seal) is kept as is.
 */
export function widenIvAndTag(cell: Uint8Array, ivOffset: number, ivLen: number, tagLen: number, filler = 0xa5): Uint8Array {
  const head = Uint8Array.from(cell.subarray(0, ivOffset));
  const nonce = cell.subarray(ivOffset, ivOffset + 12);
  const tag = cell.subarray(ivOffset + 12, ivOffset + 28);
  const rest = cell.subarray(ivOffset + 28);
  const ivPad = new Uint8Array(ivLen - 12).fill(filler);
  const tagPad = new Uint8Array(tagLen - 16).fill(filler ^ 0xff);
  const out = concat(head, nonce, ivPad, tag, tagPad, rest);
  return withU32LE(withU32LE(out, 4, ivLen), 8, tagLen);
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

// ---- PBKDF2 interception ----

/** Thrown by the intercepted PBKDF2 instead of running it. */
export class Pbkdf2Intercepted extends Error {
  readonly iterations: number;
  constructor(iterations: number) {
    super(`PBKDF2 was called with ${iterations} iterations`);
    this.name = 'Pbkdf2Intercepted';
    this.iterations = iterations;
  }
}

/**
 * Run `body` with the backend's PBKDF2 (sync and async) replaced by a stub
 * that throws {@link Pbkdf2Intercepted}. This shows whether a header's
 * iteration count was accepted by the parser, and with what value PBKDF2
 * would have run, without paying for millions of iterations. Only our own
 * backend is touched, and it is restored afterwards.
 */
export async function withPbkdf2Intercepted<T>(body: () => T | Promise<T>): Promise<T> {
  const sync = backend.pbkdf2Sha256;
  const async = backend.pbkdf2Sha256Async;
  backend.pbkdf2Sha256 = (_p, _s, iterations) => {
    throw new Pbkdf2Intercepted(iterations);
  };
  backend.pbkdf2Sha256Async = (_p, _s, iterations) => Promise.reject(new Pbkdf2Intercepted(iterations));
  try {
    return await body();
  } finally {
    backend.pbkdf2Sha256 = sync;
    backend.pbkdf2Sha256Async = async;
  }
}

// ---- Secure Message verification outcomes ----

export const TYPE_EC_SIGNED = 0x26042620;
export const TYPE_RSA_SIGNED = 0x26042610;

/**
 * The codes `SecureMessageVerify#verify` may reject `buf` with, from the
 * documented contract: empty input is EMPTY_INPUT; a header whose lengths do
 * not fit the buffer (or are zero) is MALFORMED; a type other than the key's
 * signed type is WRONG_KEY_KIND (either of the two when both are wrong); a
 * well-framed message of the right type that does not verify is
 * INVALID_SIGNATURE.
 */
export function verifyRejectionCodes(buf: Uint8Array, keyType: number): ThemisErrorCodeName[] {
  if (buf.length === 0) return ['EMPTY_INPUT'];
  const typeBad = buf.length < 4 || readU32LE(buf, 0) !== keyType;
  const ml = buf.length >= 12 ? readU32LE(buf, 4) : 0;
  const sl = buf.length >= 12 ? readU32LE(buf, 8) : 0;
  // Every framing error is MALFORMED (its legacy number follows Themis's own
  // split between INVALID_PARAMETER and FAIL; interop tests check that).
  if (buf.length < 12 || ml === 0 || sl === 0 || 12 + ml + sl > buf.length) return typeBad ? ['MALFORMED', 'WRONG_KEY_KIND'] : ['MALFORMED'];
  if (typeBad) return ['WRONG_KEY_KIND'];
  return ['INVALID_SIGNATURE'];
}
