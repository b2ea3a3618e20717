/**
 * The wire format of a 1:1 message. All integers big-endian.
 *
 * ```
 *  offset  size  field
 *  0       1     version = 0x01
 *  1       1     type: 0x01 message | 0x02 prekey message
 *  ── prekey message only (PQXDH initial-message fields, 1,645 bytes) ─────────
 *  2       32    IK_A   initiator's Ed25519 identity key
 *  34      32    EK_A   initiator's ephemeral X25519 key (the session's base key)
 *  66      4     signed prekey id
 *  70      1     one-time prekey used: 0x00 | 0x01
 *  71      4     one-time prekey id (0 when none was used)
 *  75      4     PQ prekey id
 *  79      1568  ML-KEM-1024 ciphertext
 *  ── header (h = 2, or 1,647 in a prekey message) ───────────────────────────
 *  h       32    DH     sender's current ratchet public key
 *  h+32    4     PN     messages in the sender's previous sending chain
 *  h+36    4     N      this message's number in its sending chain
 *  ── authentication ──────────────────────────────────────────────────────────
 *  h+40    16    header tag  HMAC-SHA-256(HK, u32be(|AD|) ‖ AD ‖ bytes 0 … h+40)[0:16]
 *  h+56    ≥32   ciphertext  AES-256-CBC ‖ 16-byte tag (message-cipher.ts), a
 *                            multiple of 16 plus 16; its associated data is
 *                            u32be(|AD|) ‖ AD ‖ u32be(|ad|) ‖ ad ‖ bytes 0 … h+56
 * ```
 *
 * AD is the session's PQXDH associated data and `ad` the caller's per-message
 * associated data. Every byte before the ciphertext is covered by the
 * ciphertext's tag, so a flipped bit anywhere fails decryption.
 *
 * Encodings are canonical (one byte string per value): a prekey message
 * without a one-time prekey must carry id 0, the flag is 0 or 1, and nothing
 * may follow the fields. The parser throws `MALFORMED`; the session reports
 * it as `DECRYPT_FAILED` like every other envelope failure.
 *
 * @module
 */
import { ByteReader, ByteWriter } from './_bytes.ts';
import { ProtocolError } from './errors.ts';
import { IDENTITY_KEY_LENGTH } from './identity.ts';
import { KEM_CIPHERTEXT_LENGTH } from './kem.ts';
import { ENVELOPE_BYTES_MAX } from './limits.ts';
import { MAC_LENGTH } from './message-cipher.ts';
import type { PrekeyMessageFields } from './pqxdh.ts';
import { bytesArgument } from './_args.ts';

export const ENVELOPE_VERSION = 0x01;
export const TYPE_MESSAGE = 0x01;
export const TYPE_PREKEY_MESSAGE = 0x02;
export const RATCHET_KEY_LENGTH = 32;
export const HEADER_LENGTH = RATCHET_KEY_LENGTH + 4 + 4;
export const HEADER_TAG_LENGTH = 16;
export const PREKEY_FIELDS_LENGTH = IDENTITY_KEY_LENGTH + 32 + 4 + 1 + 4 + 4 + KEM_CIPHERTEXT_LENGTH;
/** Shortest ciphertext: one CBC block and the tag. */
const CIPHERTEXT_MIN = 16 + MAC_LENGTH;

/** The Double Ratchet header (§3.4): the sender's ratchet key, PN and N. */
export interface MessageHeader {
  readonly ratchetKey: Uint8Array;
  readonly previousChainLength: number;
  readonly messageNumber: number;
}

export interface DecodedEnvelope {
  readonly prekey: PrekeyMessageFields | null;
  readonly header: MessageHeader;
  /** Bytes the header tag covers (everything before it). */
  readonly head: Uint8Array;
  readonly headerTag: Uint8Array;
  /** Bytes the ciphertext's tag covers besides the ADs (everything before the ciphertext). */
  readonly authenticated: Uint8Array;
  readonly ciphertext: Uint8Array;
}

export function writePrekeyFields(w: ByteWriter, f: PrekeyMessageFields): ByteWriter {
  return w
    .bytes(f.identityKey)
    .bytes(f.baseKey)
    .u32be(f.signedPrekeyId)
    .flag(f.oneTimePrekeyId !== null)
    .u32be(f.oneTimePrekeyId ?? 0)
    .u32be(f.pqPrekeyId)
    .bytes(f.kemCiphertext);
}

export function readPrekeyFields(r: ByteReader): PrekeyMessageFields {
  const identityKey = r.copy(IDENTITY_KEY_LENGTH);
  const baseKey = r.copy(32);
  const signedPrekeyId = r.u32be();
  const hasOneTime = r.flag();
  const oneTimeId = r.u32be();
  if (!hasOneTime && oneTimeId !== 0) throw r.malformed('one-time prekey id without a one-time prekey');
  const pqPrekeyId = r.u32be();
  const kemCiphertext = r.copy(KEM_CIPHERTEXT_LENGTH);
  return { identityKey, baseKey, signedPrekeyId, oneTimePrekeyId: hasOneTime ? oneTimeId : null, pqPrekeyId, kemCiphertext };
}

/** Bytes 0 … h+40: everything the header tag covers. */
export function writeEnvelopeHead(prekey: PrekeyMessageFields | null, header: MessageHeader): Uint8Array {
  const w = new ByteWriter().u8(ENVELOPE_VERSION).u8(prekey === null ? TYPE_MESSAGE : TYPE_PREKEY_MESSAGE);
  if (prekey !== null) writePrekeyFields(w, prekey);
  return w.bytes(header.ratchetKey).u32be(header.previousChainLength).u32be(header.messageNumber).finish();
}

/** The whole envelope: head ‖ header tag ‖ ciphertext. */
export function writeEnvelope(head: Uint8Array, headerTag: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return new ByteWriter().bytes(head).bytes(headerTag).bytes(ciphertext).finish();
}

/** Parse an envelope; throws `MALFORMED`. Views into `bytes` except the prekey fields and ratchet key (copied). */
export function readEnvelope(bytes: Uint8Array): DecodedEnvelope {
  if (bytes.length > ENVELOPE_BYTES_MAX) throw new ProtocolError('MALFORMED', `envelope longer than ${ENVELOPE_BYTES_MAX} bytes`);
  const r = new ByteReader(bytes, 'envelope');
  if (r.u8() !== ENVELOPE_VERSION) throw r.malformed('unknown version');
  const type = r.u8();
  if (type !== TYPE_MESSAGE && type !== TYPE_PREKEY_MESSAGE) throw r.malformed('unknown type');
  const prekey = type === TYPE_PREKEY_MESSAGE ? readPrekeyFields(r) : null;
  const header = { ratchetKey: r.copy(RATCHET_KEY_LENGTH), previousChainLength: r.u32be(), messageNumber: r.u32be() };
  const headEnd = r.offset;
  const headerTag = r.bytes(HEADER_TAG_LENGTH);
  const authenticatedEnd = r.offset;
  const ciphertext = r.rest();
  if (ciphertext.length < CIPHERTEXT_MIN || (ciphertext.length - MAC_LENGTH) % 16 !== 0) throw r.malformed('bad ciphertext length');
  return { prekey, header, head: bytes.subarray(0, headEnd), headerTag, authenticated: bytes.subarray(0, authenticatedEnd), ciphertext };
}

/** Whether `bytes` is a prekey message (by its type byte; nothing is verified). */
export function isPrekeyMessage(bytes: Uint8Array): boolean {
  bytesArgument(bytes, 'envelope');
  return bytes.length > 1 && bytes[0] === ENVELOPE_VERSION && bytes[1] === TYPE_PREKEY_MESSAGE;
}
