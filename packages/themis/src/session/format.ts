/**
 * Secure Session wire formats (wire-format spec §5.2–§5.7).
 *
 * Handshake messages are Soter containers tagged `TSPM` (CRC checked; bytes
 * after `size` ignored, as Themis does). `Ec`/`Es` are the 45-byte `UEC2`
 * containers of the ephemeral keys, exactly as transmitted.
 *
 * ```
 * M1  TSPM{ TSID{IDc} ‖ Ec ‖ Sig_c(Ec) }
 * M2  TSPM{ TSID{IDs} ‖ Es ‖ Sig_s(Es ‖ Ec ‖ IDs ‖ IDc) }
 * M3  TSPM{ Sig_c(Ec ‖ Es ‖ IDc ‖ IDs) ‖ HMAC(mk, Es ‖ sidRaw) }
 * M4  TSPM{ HMAC(mk, Ec ‖ sidRaw) }
 * ```
 *
 * Data message (wrap), 52 bytes of overhead, integers big-endian:
 * ```
 *  0      4                20                                          len−16
 *  +------+----------------+-------------------------------------------+--------+
 *  | sid  | IV (16; first  | AES-256-GCM( u32(n+12) ‖ u32(seq) ‖        |  tag   |
 *  |      | 12 = nonce)    |              u64(unix seconds) ‖ msg (n) ) |  (16)  |
 *  +------+----------------+-------------------------------------------+--------+
 * ```
 *
 * @module
 */
import { readU32BE, readU64BE, writeU32BE, writeU64BE } from '../_bytes.ts';
import { readContainer, writeContainer, CONTAINER_HEADER_LENGTH } from '../soter/container.ts';

export const PROTOCOL_TAG = 'TSPM';
export const ID_TAG = 'TSID';
export const MAC_LENGTH = 32;
/** Ephemeral key container sizes: compressed (what Themis emits) or uncompressed point. */
export const EPHEMERAL_KEY_LENGTHS: readonly number[] = [45, 77];
export const DATA_IV_LENGTH = 16;
export const DATA_NONCE_LENGTH = 12;
export const DATA_TAG_LENGTH = 16;
/** Encrypted header inside a data message: length, seq, timestamp. */
export const DATA_INNER_HEADER_LENGTH = 16;
export const DATA_OVERHEAD = 4 + DATA_IV_LENGTH + DATA_INNER_HEADER_LENGTH + DATA_TAG_LENGTH; // 52

/** M1 and M2 share a shape: an identity, an ephemeral key, a signature. */
export interface HelloMessage {
  id: Uint8Array;
  /** The ephemeral key container as sent (its own CRC is checked at import). */
  ephemeral: Uint8Array;
  signature: Uint8Array;
}

export function writeHello(id: Uint8Array, ephemeral: Uint8Array, signature: Uint8Array): Uint8Array {
  const idc = writeContainer(ID_TAG, id);
  const payload = new Uint8Array(idc.length + ephemeral.length + signature.length);
  payload.set(idc, 0);
  payload.set(ephemeral, idc.length);
  payload.set(signature, idc.length + ephemeral.length);
  return writeContainer(PROTOCOL_TAG, payload);
}

/** Parse M1/M2; null if any layer is malformed. */
export function readHello(buf: Uint8Array): HelloMessage | null {
  const outer = readContainer(buf, false);
  if (outer === null || outer.tag !== PROTOCOL_TAG) return null;
  const p = outer.payload;
  const idc = readContainer(p, false);
  if (idc === null || idc.tag !== ID_TAG || idc.payload.length === 0) return null;
  const rest = p.subarray(idc.size);
  if (rest.length < CONTAINER_HEADER_LENGTH) return null;
  const ephSize = readU32BE(rest, 4);
  if (!EPHEMERAL_KEY_LENGTHS.includes(ephSize) || rest.length <= ephSize) return null;
  return { id: idc.payload, ephemeral: rest.subarray(0, ephSize), signature: rest.subarray(ephSize) };
}

/** M3: signature ‖ MAC. */
export function writeFinish(signature: Uint8Array, mac: Uint8Array): Uint8Array {
  const payload = new Uint8Array(signature.length + mac.length);
  payload.set(signature);
  payload.set(mac, signature.length);
  return writeContainer(PROTOCOL_TAG, payload);
}

export function readFinish(buf: Uint8Array): { signature: Uint8Array; mac: Uint8Array } | null {
  const c = readContainer(buf, false);
  if (c === null || c.tag !== PROTOCOL_TAG || c.payload.length <= MAC_LENGTH) return null;
  const cut = c.payload.length - MAC_LENGTH;
  return { signature: c.payload.subarray(0, cut), mac: c.payload.subarray(cut) };
}

/** M4: the server's MAC alone. We require the full 32 bytes (Themis would take a prefix). */
export function writeAck(mac: Uint8Array): Uint8Array {
  return writeContainer(PROTOCOL_TAG, mac);
}

export function readAck(buf: Uint8Array): Uint8Array | null {
  const c = readContainer(buf, false);
  if (c === null || c.tag !== PROTOCOL_TAG || c.payload.length !== MAC_LENGTH) return null;
  return c.payload;
}

/** True if `buf` looks like a handshake container (used to route `receive`). */
export function isProtocolMessage(buf: Uint8Array): boolean {
  return buf.length >= CONTAINER_HEADER_LENGTH && buf[0] === 0x54 && buf[1] === 0x53 && buf[2] === 0x50 && buf[3] === 0x4d;
}

/** A data message's outer fields (views into the input). */
export interface DataMessage {
  sessionId: number;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
  tag: Uint8Array;
}

/**
 * Parse a data message's outer layer. We require the exact length the inner
 * header will claim (Themis would ignore bytes after the tag; no Themis
 * sender writes any).
 */
export function readDataMessage(buf: Uint8Array): DataMessage | null {
  if (buf.length < DATA_OVERHEAD) return null;
  return {
    sessionId: readU32BE(buf, 0),
    nonce: buf.subarray(4, 4 + DATA_NONCE_LENGTH),
    ciphertext: buf.subarray(4 + DATA_IV_LENGTH, buf.length - DATA_TAG_LENGTH),
    tag: buf.subarray(buf.length - DATA_TAG_LENGTH),
  };
}

export function writeDataMessage(sessionId: number, iv: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + DATA_IV_LENGTH + ciphertext.length + DATA_TAG_LENGTH);
  writeU32BE(out, 0, sessionId);
  out.set(iv, 4);
  out.set(ciphertext, 4 + DATA_IV_LENGTH);
  out.set(tag, out.length - DATA_TAG_LENGTH);
  return out;
}

/** The encrypted inner part: length, sequence number, timestamp, message. */
export interface DataPlaintext {
  seq: number;
  timestamp: number;
  message: Uint8Array;
}

export function writeDataPlaintext(seq: number, timestamp: number, message: Uint8Array): Uint8Array {
  const inner = new Uint8Array(DATA_INNER_HEADER_LENGTH + message.length);
  writeU32BE(inner, 0, message.length + 12);
  writeU32BE(inner, 4, seq);
  writeU64BE(inner, 8, timestamp);
  inner.set(message, DATA_INNER_HEADER_LENGTH);
  return inner;
}

/** Null unless the length field matches exactly. */
export function readDataPlaintext(inner: Uint8Array): DataPlaintext | null {
  if (inner.length < DATA_INNER_HEADER_LENGTH || readU32BE(inner, 0) !== inner.length - 4) return null;
  return { seq: readU32BE(inner, 4), timestamp: readU64BE(inner, 8), message: inner.subarray(DATA_INNER_HEADER_LENGTH) };
}
