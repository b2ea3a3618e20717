/**
 * Byte helpers for the SDK's own formats (body-container.ts, payload.ts):
 * strict UTF-8, standard base64 (RFC 4648 §4, padded) and base64url ids,
 * and a bounds-checked reader/writer pair. No Node `Buffer`, so the same
 * code runs in browsers.
 *
 * Every integer is big-endian; the helpers say so in their names.
 *
 * @module
 */
import { concatBytes } from '@parley/themis/hazmat';
import { SdkError } from './errors.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Strict UTF-8 decoding; null for invalid sequences. */
export function fromUtf8(b: Uint8Array): string | null {
  try {
    return decoder.decode(b);
  } catch {
    return null;
  }
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const LOOKUP = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) LOOKUP[ALPHABET.charCodeAt(i)] = i;

/** Standard padded base64. */
export function toBase64(b: Uint8Array): string {
  const parts: string[] = [];
  let chunk = '';
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const v = ((b[i] as number) << 16) | ((b[i + 1] as number) << 8) | (b[i + 2] as number);
    chunk += ALPHABET.charAt(v >>> 18) + ALPHABET.charAt((v >>> 12) & 63) + ALPHABET.charAt((v >>> 6) & 63) + ALPHABET.charAt(v & 63);
    if (chunk.length >= 8192) {
      parts.push(chunk);
      chunk = '';
    }
  }
  const rest = b.length - i;
  if (rest === 1) {
    const v = (b[i] as number) << 16;
    chunk += ALPHABET.charAt(v >>> 18) + ALPHABET.charAt((v >>> 12) & 63) + '==';
  } else if (rest === 2) {
    const v = ((b[i] as number) << 16) | ((b[i + 1] as number) << 8);
    chunk += ALPHABET.charAt(v >>> 18) + ALPHABET.charAt((v >>> 12) & 63) + ALPHABET.charAt((v >>> 6) & 63) + '=';
  }
  parts.push(chunk);
  return parts.join('');
}

/** Decode canonical padded base64; null for anything else (wrong length, foreign characters, non-zero spare bits). */
export function fromBase64(s: string): Uint8Array | null {
  if (s.length % 4 !== 0) return null;
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    const last = i + 4 === s.length;
    const c0 = sextet(s, i);
    const c1 = sextet(s, i + 1);
    const c2 = last && pad === 2 ? 0 : sextet(s, i + 2);
    const c3 = last && pad >= 1 ? 0 : sextet(s, i + 3);
    if (c0 < 0 || c1 < 0 || c2 < 0 || c3 < 0) return null;
    const v = (c0 << 18) | (c1 << 12) | (c2 << 6) | c3;
    out[o++] = v >>> 16;
    if (!(last && pad === 2)) out[o++] = (v >>> 8) & 0xff;
    else if ((v & 0xffff) !== 0) return null;
    if (!(last && pad >= 1)) out[o++] = v & 0xff;
    else if (pad === 1 && (v & 0xff) !== 0) return null;
  }
  return out;
}

function sextet(s: string, i: number): number {
  const c = s.charCodeAt(i);
  return c < 128 ? (LOOKUP[c] as number) : -1;
}

/** `n` random bytes from the platform's CSPRNG (Web Crypto: Node ≥ 19 and browsers). */
export function randomBytes(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

/** A fresh message id: 16 random bytes as unpadded base64url (22 characters, matching the server's clientId pattern). */
export function randomId(): string {
  return toBase64(randomBytes(16)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Reads a byte string front to back. Every read checks the remaining length
 * first and throws `MALFORMED`, so a parser is a straight sequence of reads
 * with no arithmetic on untrusted lengths.
 */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #what: string;
  #offset = 0;

  constructor(bytes: Uint8Array, what: string) {
    this.#bytes = bytes;
    this.#what = what;
  }

  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }
  /** A view (not a copy) of the next `length` bytes. */
  bytes(length: number): Uint8Array {
    if (length > this.remaining) throw this.malformed('truncated');
    const out = this.#bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return out;
  }
  u8(): number {
    return this.bytes(1)[0] as number;
  }
  u16be(): number {
    const b = this.bytes(2);
    return ((b[0] as number) << 8) | (b[1] as number);
  }
  u32be(): number {
    const b = this.bytes(4);
    return (((b[0] as number) << 24) | ((b[1] as number) << 16) | ((b[2] as number) << 8) | (b[3] as number)) >>> 0;
  }
  /** A u64be that must fit a JavaScript safe integer (≤ 2^53 − 1). */
  u53be(): number {
    const high = this.u32be();
    const low = this.u32be();
    if (high > 0x1f_ffff) throw this.malformed('integer above 2^53 − 1');
    return high * 0x1_0000_0000 + low;
  }
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }
  /** Throws unless every byte was consumed. */
  end(): void {
    if (this.remaining !== 0) throw this.malformed('trailing bytes');
  }
  malformed(why: string): SdkError {
    return new SdkError('MALFORMED', `${this.#what}: ${why}`);
  }
}

/** Appends fields; `finish()` returns the concatenation. */
export class ByteWriter {
  readonly #parts: Uint8Array[] = [];

  bytes(b: Uint8Array): this {
    this.#parts.push(b);
    return this;
  }
  u8(v: number): this {
    this.#parts.push(Uint8Array.of(v & 0xff));
    return this;
  }
  u16be(v: number): this {
    this.#parts.push(Uint8Array.of((v >>> 8) & 0xff, v & 0xff));
    return this;
  }
  u32be(v: number): this {
    this.#parts.push(Uint8Array.of((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff));
    return this;
  }
  /** A safe integer (0 … 2^53 − 1) as u64be. */
  u53be(v: number): this {
    return this.u32be(Math.floor(v / 0x1_0000_0000)).u32be(v >>> 0);
  }
  finish(): Uint8Array {
    return concatBytes(...this.#parts);
  }
}

/** Lowercase hex of `b` (ids in logs, keys of maps). */
export function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/** The bytes of lowercase or uppercase hex made by `toHex` (the caller checks where it came from). */
export function fromHex(s: string): Uint8Array {
  const out = new Uint8Array(s.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return out;
}
