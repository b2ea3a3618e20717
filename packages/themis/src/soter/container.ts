/**
 * Soter container: the envelope of Themis keys and Secure Session handshake
 * messages.
 *
 * ```
 *  0        4        8        12
 *  +--------+--------+--------+---------------------------+
 *  |  tag   |  size  |  crc   |  payload (size − 12 bytes) |
 *  +--------+--------+--------+---------------------------+
 *   4 ASCII  u32 BE   CRC-32C, stored least-significant byte first,
 *            total    computed over the whole container with the crc
 *            length   field set to zero
 * ```
 *
 * @module
 */
import { readU32BE, readU32LE, writeU32BE, writeU32LE } from '../_bytes.ts';
import { crc32cUpdate } from './crc32c.ts';

export const CONTAINER_HEADER_LENGTH = 12;

export interface Container {
  /** 4-character ASCII tag, e.g. `UEC2`. */
  tag: string;
  /** The payload, a view into the input. */
  payload: Uint8Array;
  /** Total container length as declared by its size field. */
  size: number;
}

const ZERO4 = new Uint8Array(4);

function containerCrc(buf: Uint8Array, size: number): number {
  let c = crc32cUpdate(0xffffffff, buf.subarray(0, 8));
  c = crc32cUpdate(c, ZERO4);
  c = crc32cUpdate(c, buf.subarray(CONTAINER_HEADER_LENGTH, size));
  return (c ^ 0xffffffff) >>> 0;
}

/** Write a container with `tag` around `payload`. */
export function writeContainer(tag: string, payload: Uint8Array): Uint8Array {
  if (tag.length !== 4) throw new RangeError('container tag must be 4 characters');
  const size = CONTAINER_HEADER_LENGTH + payload.length;
  const out = new Uint8Array(size);
  for (let i = 0; i < 4; i++) out[i] = tag.charCodeAt(i) & 0xff;
  writeU32BE(out, 4, size);
  out.set(payload, CONTAINER_HEADER_LENGTH);
  writeU32LE(out, 8, containerCrc(out, size));
  return out;
}

/**
 * Parse a container. `exact`: the buffer must be exactly `size` long (keys);
 * otherwise trailing bytes beyond `size` are allowed (session messages).
 * Returns null on any structural or checksum failure.
 */
export function readContainer(buf: Uint8Array, exact: boolean): Container | null {
  if (buf.length < CONTAINER_HEADER_LENGTH) return null;
  const size = readU32BE(buf, 4);
  if (size < CONTAINER_HEADER_LENGTH || size > buf.length) return null;
  if (exact && size !== buf.length) return null;
  if (readU32LE(buf, 8) !== containerCrc(buf, size)) return null;
  let tag = '';
  for (let i = 0; i < 4; i++) tag += String.fromCharCode(buf[i] as number);
  return { tag, payload: buf.subarray(CONTAINER_HEADER_LENGTH, size), size };
}
