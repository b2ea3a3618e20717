/**
 * Byte helpers: concatenation, explicit big-endian integers, UTF-8, and a
 * bounds-checked reader/writer pair for the wire and storage formats.
 *
 * Every integer on the wire is big-endian; the helpers say so in their names
 * anyway, so no reader has to remember a default.
 *
 * @module
 */
import { ProtocolError } from './errors.ts';

export const EMPTY: Uint8Array = new Uint8Array(0);

// Concatenation and plain copies are Themis's own (one implementation).
import { concatBytes, copyBytes } from '@parley/themis/hazmat';
export { concatBytes, copyBytes };

export function u32be(value: number): Uint8Array {
  const out = new Uint8Array(4);
  writeU32BE(out, 0, value);
  return out;
}

export function writeU32BE(b: Uint8Array, offset: number, value: number): void {
  b[offset] = (value >>> 24) & 0xff;
  b[offset + 1] = (value >>> 16) & 0xff;
  b[offset + 2] = (value >>> 8) & 0xff;
  b[offset + 3] = value & 0xff;
}

export function readU32BE(b: Uint8Array, offset: number): number {
  return (((b[offset] as number) << 24) | ((b[offset + 1] as number) << 16) | ((b[offset + 2] as number) << 8) | (b[offset + 3] as number)) >>> 0;
}

/** `u32be(length) ‖ bytes`: an unambiguous piece of a MAC or KDF input. */
export function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  return concatBytes(u32be(bytes.length), bytes);
}

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

export function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/** True iff `n` is an integer in [0, 2^32 − 1]. */
export function isU32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff;
}

/**
 * Reads a byte string front to back. Every read checks the remaining length
 * first and throws `MALFORMED` when it is short, so a parser is a straight
 * sequence of reads with no arithmetic on untrusted lengths.
 */
export class ByteReader {
  readonly #bytes: Uint8Array;
  #offset = 0;
  readonly #what: string;

  constructor(bytes: Uint8Array, what: string) {
    this.#bytes = bytes;
    this.#what = what;
  }

  get offset(): number {
    return this.#offset;
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
  /** A private copy of the next `length` bytes (for anything kept past parsing). */
  copy(length: number): Uint8Array {
    return copyBytes(this.bytes(length));
  }
  u8(): number {
    return this.bytes(1)[0] as number;
  }
  u16be(): number {
    const b = this.bytes(2);
    return ((b[0] as number) << 8) | (b[1] as number);
  }
  u32be(): number {
    return readU32BE(this.bytes(4), 0);
  }
  /** 0 → false, 1 → true, anything else is malformed (one encoding per value). */
  flag(): boolean {
    const v = this.u8();
    if (v > 1) throw this.malformed('flag is neither 0 nor 1');
    return v === 1;
  }
  /** The rest of the input. */
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }
  /** Throws unless every byte was consumed (no trailing data). */
  end(): void {
    if (this.remaining !== 0) throw this.malformed('trailing bytes');
  }
  malformed(why: string): ProtocolError {
    return new ProtocolError('MALFORMED', `${this.#what}: ${why}`);
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
    this.#parts.push(u32be(v));
    return this;
  }
  flag(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }
  finish(): Uint8Array {
    return concatBytes(...this.#parts);
  }
}
