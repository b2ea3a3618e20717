/**
 * The plaintext inside every envelope: a small typed payload, so a receiver
 * knows what it got and can drop a message it has already shown (by id).
 * Everything here is encrypted and authenticated by the envelope; the
 * server never sees it. All integers big-endian.
 *
 * ```
 *  offset  size  field
 *  0       1     version = 0x01
 *  1       1     kind: 0x01 text (UTF-8) | 0x02 binary | 0x03 control | 0x04 file
 *  2       1     L: length of the message id, 1 … 64
 *  3       L     message id (ASCII [A-Za-z0-9_-]; also the room entry's clientId)
 *  3+L     8     sentAt: the sender's clock, ms since the epoch, u64be ≤ 2^53 − 1
 *  11+L    …     content (kind 0x01: strict UTF-8; kind 0x02: bytes; may be empty;
 *                kind 0x03: a control message, below; kind 0x04: a FileRef,
 *                file-transfer.ts, of a blob BLOB_BYTES_MIN … BLOB_BYTES_MAX)
 * ```
 *
 * Version 0x02 is written for a message sent in a direct room, and adds,
 * between sentAt and the content, who the room is with:
 *
 * ```
 *  11+L    1     flags: 0x01 direct (no other bit may be set)
 *  12+L    1     P: length of the peer's user id, 1 … 64
 *  13+L    P     peer user id: the room's other member, as the sender sees it
 * ```
 *
 * The server says which rooms are direct, and who is in them; this is the
 * sender's word, authenticated by the envelope. A receiver pins the room to
 * the sender (or, on the sender's own other devices, to the peer), so its
 * replies go to that user alone, whatever the server lists (inbound.ts).
 *
 * A control message is for the client, not the user: it never becomes a
 * `message` event. Its content starts with its type (0x01: a verification
 * message, verification-message.ts; 0x02: session reset, nothing after
 * it) and is at most CONTROL_BYTES_MAX long; unknown types are ignored.
 *
 * The id is chosen by the sender's SDK (16 random bytes, base64url), never
 * by the server, so a relay cannot make two different messages look like one.
 *
 * @module
 */
import { limits as protocolLimits } from '@parley/protocol';
import { ByteReader, ByteWriter, fromUtf8, utf8 } from './_bytes.ts';
import { SdkError } from './errors.ts';
import { CLIENT_ID, USER_ID } from './frames.ts';
import { ID_LENGTH_MAX } from './limits.ts';
import { VERIFICATION_MESSAGE_BYTES_MAX } from './verification-message.ts';
import { decodeAnnouncedFileRef, encodeFileRef, type FileRef } from './file-transfer.ts';

export const PAYLOAD_VERSION = 0x01;
/** The version with a direct room's peer (above). */
export const PAYLOAD_VERSION_DIRECT = 0x02;
const FLAG_DIRECT = 0x01;
const KIND_TEXT = 0x01;
const KIND_BINARY = 0x02;
const KIND_CONTROL = 0x03;
const KIND_FILE = 0x04;
/** Control message types (the first content byte of kind 0x03). */
export const CONTROL_VERIFICATION = 0x01;
/** "Start over with me": sent after a restore; decrypting it is what replaces the receiver's session. */
export const CONTROL_SESSION_RESET = 0x02;
/** Largest control content: a type byte and the largest verification message. */
export const CONTROL_BYTES_MAX = 1 + VERIFICATION_MESSAGE_BYTES_MAX;

/** Largest payload header: version, kind, id length, the longest id, sentAt, flags, peer length, the longest peer id. */
export const PAYLOAD_HEADER_MAX = 1 + 1 + 1 + ID_LENGTH_MAX + 8 + 1 + 1 + ID_LENGTH_MAX;

/** Largest message content: what fits one envelope after the header (one device; more devices may lower it, see client.send). */
export const CONTENT_BYTES_MAX = protocolLimits.PLAINTEXT_BYTES_MAX - PAYLOAD_HEADER_MAX;

export type PayloadContent =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'binary'; readonly bytes: Uint8Array }
  /** A file stored as an encrypted blob: `client.downloadFile(file)` fetches and opens it. */
  | { readonly kind: 'file'; readonly file: FileRef };

/** What a payload may carry: a user's content, or a control message (type byte first). */
export type AnyContent = PayloadContent | { readonly kind: 'control'; readonly bytes: Uint8Array };

/**
 * What the client keeps of a payload: a user's content; of a control message,
 * its type byte (absent in records kept before it was: read as a verification step).
 */
export type StoredContent = PayloadContent | { readonly kind: 'control'; readonly controlType?: number };

export type Payload = AnyContent & {
  readonly id: string;
  /** Sender's clock, ms since the epoch. */
  readonly sentAt: number;
  /** Sent in a direct room: its other member, as the sender sees it. */
  readonly direct?: string;
};

export function encodePayload(p: Payload): Uint8Array {
  if (!CLIENT_ID.test(p.id)) throw new SdkError('INVALID_ARGUMENT', 'message id must match [A-Za-z0-9_-]{1,64}');
  if (!Number.isSafeInteger(p.sentAt) || p.sentAt < 0) throw new SdkError('INVALID_ARGUMENT', 'sentAt must be a non-negative safe integer');
  const content = p.kind === 'text' ? utf8(p.text) : p.kind === 'file' ? encodeFileRef(p.file) : p.bytes;
  if (content.length > CONTENT_BYTES_MAX) throw new SdkError('LIMIT', `message content is longer than ${CONTENT_BYTES_MAX} bytes`);
  if (p.kind === 'control' && (content.length === 0 || content.length > CONTROL_BYTES_MAX)) throw new SdkError('LIMIT', `a control message is 1…${CONTROL_BYTES_MAX} bytes`);
  if (p.direct !== undefined && !USER_ID.test(p.direct)) throw new SdkError('INVALID_ARGUMENT', 'direct must be a user id');
  const id = utf8(p.id);
  const w = new ByteWriter()
    .u8(p.direct === undefined ? PAYLOAD_VERSION : PAYLOAD_VERSION_DIRECT)
    .u8(p.kind === 'text' ? KIND_TEXT : p.kind === 'binary' ? KIND_BINARY : p.kind === 'file' ? KIND_FILE : KIND_CONTROL)
    .u8(id.length)
    .bytes(id)
    .u53be(p.sentAt);
  if (p.direct !== undefined) {
    const peer = utf8(p.direct);
    w.u8(FLAG_DIRECT).u8(peer.length).bytes(peer);
  }
  return w.bytes(content).finish();
}

/**
 * A version-1 payload from `encodePayload` as sent in a direct room with
 * `peer`: the same bytes as `encodePayload({ ...p, direct: peer })`, made
 * by one copy instead of encoding the content again.
 */
export function withDirect(payload: Uint8Array, peer: string): Uint8Array {
  if (payload[0] !== PAYLOAD_VERSION || payload.length < 3) throw new SdkError('INVALID_ARGUMENT', 'not a version 1 payload');
  if (!USER_ID.test(peer)) throw new SdkError('INVALID_ARGUMENT', 'direct must be a user id');
  const head = 3 + (payload[2] as number) + 8;
  const p = utf8(peer);
  const out = new Uint8Array(payload.length + 2 + p.length);
  out.set(payload.subarray(0, head));
  out[0] = PAYLOAD_VERSION_DIRECT;
  out[head] = FLAG_DIRECT;
  out[head + 1] = p.length;
  out.set(p, head + 2);
  out.set(payload.subarray(head), head + 2 + p.length);
  return out;
}

/** Parse a decrypted payload; throws `MALFORMED`. Binary content is a copy. */
export function decodePayload(bytes: Uint8Array): Payload {
  const r = new ByteReader(bytes, 'message payload');
  const version = r.u8();
  if (version !== PAYLOAD_VERSION && version !== PAYLOAD_VERSION_DIRECT) throw r.malformed('unknown version');
  const kind = r.u8();
  if (kind !== KIND_TEXT && kind !== KIND_BINARY && kind !== KIND_CONTROL && kind !== KIND_FILE) throw r.malformed('unknown kind');
  const idLength = r.u8();
  if (idLength === 0 || idLength > ID_LENGTH_MAX) throw r.malformed('id length out of range');
  const id = fromUtf8(r.bytes(idLength));
  if (id === null || !CLIENT_ID.test(id)) throw r.malformed('invalid id');
  const sentAt = r.u53be();
  let head: { id: string; sentAt: number; direct?: string } = { id, sentAt };
  if (version === PAYLOAD_VERSION_DIRECT) {
    if (r.u8() !== FLAG_DIRECT) throw r.malformed('unknown flags');
    const peerLength = r.u8();
    if (peerLength === 0 || peerLength > ID_LENGTH_MAX) throw r.malformed('peer length out of range');
    const peer = fromUtf8(r.bytes(peerLength));
    if (peer === null || !USER_ID.test(peer)) throw r.malformed('invalid peer user id');
    head = { id, sentAt, direct: peer };
  }
  const content = r.rest();
  if (kind === KIND_BINARY) return { kind: 'binary', bytes: content.slice(), ...head };
  // A peer's announcement: checked beyond the format (file-transfer.ts).
  if (kind === KIND_FILE) return { kind: 'file', file: decodeAnnouncedFileRef(content), ...head };
  if (kind === KIND_CONTROL) {
    if (content.length === 0 || content.length > CONTROL_BYTES_MAX) throw r.malformed('control message length out of range');
    return { kind: 'control', bytes: content.slice(), ...head };
  }
  const text = fromUtf8(content);
  if (text === null) throw r.malformed('text is not UTF-8');
  return { kind: 'text', text, ...head };
}

/** A verification control message (verification-message.ts) as control content: its type byte first. */
export function verificationControl(message: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(1 + message.length);
  bytes[0] = CONTROL_VERIFICATION;
  bytes.set(message, 1);
  return bytes;
}
