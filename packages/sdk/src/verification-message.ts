/**
 * The verification control message: what two devices running Secure
 * Comparator (verification.ts) send each other inside their end-to-end
 * encrypted payloads — a `start` with comparator message 1, a `step` with
 * message 2, 3 or 4, or an `abort` with a reason. Encoded and parsed side
 * by side; parsing accepts exactly the sizes the comparator produces and
 * nothing after them.
 *
 * Control message (all integers big-endian; nothing may follow):
 *
 * ```
 *  offset  size  field
 *  0       1     version = 0x01
 *  1       1     kind: 0x01 start | 0x02 step | 0x03 abort
 *  2       16    verification id (random, chosen by the side that starts)
 *  ── start ───────────────────────────────────────────────────────────────
 *  18      192   comparator message 1
 *  ── step ────────────────────────────────────────────────────────────────
 *  18      1     n: 2 | 3 | 4
 *  19      …     comparator message n: exactly 352 | 256 | 96 bytes
 *  ── abort ───────────────────────────────────────────────────────────────
 *  18      1     reason: 0x01 cancelled | 0x02 timeout | 0x03 malformed |
 *                0x04 unexpected | any other value: unspecified
 * ```
 *
 * @module
 */
import { ByteReader, ByteWriter } from './_bytes.ts';
import { SdkError } from './errors.ts';

export const VERIFICATION_MESSAGE_VERSION = 0x01;
/** Random verification ids, chosen by the side that starts. */
export const VERIFICATION_ID_BYTES = 16;
/** Themis Secure Comparator message sizes by step 1 … 4 (Themis wire format; `packages/themis`, comparator). */
export const COMPARATOR_MESSAGE_BYTES: Readonly<Record<1 | 2 | 3 | 4, number>> = Object.freeze({ 1: 192, 2: 352, 3: 256, 4: 96 });
/** Largest control message: a step 2 (header, step byte, 352 bytes). */
export const VERIFICATION_MESSAGE_BYTES_MAX = 2 + VERIFICATION_ID_BYTES + 1 + 352;

const KIND_START = 0x01;
const KIND_STEP = 0x02;
const KIND_ABORT = 0x03;

/** Why the peer said it aborted (informational: the outcome is `aborted` either way). */
/** `superseded`: another device of the same user started a newer attempt with this peer, which took its place. */
export type PeerAbortReason = 'cancelled' | 'timeout' | 'malformed' | 'unexpected' | 'superseded' | 'unspecified';

const ABORT_CODES: Readonly<Record<PeerAbortReason, number>> = { unspecified: 0x00, cancelled: 0x01, timeout: 0x02, malformed: 0x03, unexpected: 0x04, superseded: 0x05 };

export type VerificationMessage =
  | { readonly kind: 'start'; readonly id: Uint8Array; readonly data: Uint8Array }
  | { readonly kind: 'step'; readonly id: Uint8Array; readonly step: 2 | 3 | 4; readonly data: Uint8Array }
  | { readonly kind: 'abort'; readonly id: Uint8Array; readonly reason: PeerAbortReason };

export function encodeVerificationMessage(m: VerificationMessage): Uint8Array {
  if (!(m.id instanceof Uint8Array) || m.id.length !== VERIFICATION_ID_BYTES) {
    throw new SdkError('INVALID_ARGUMENT', `a verification id is ${VERIFICATION_ID_BYTES} bytes`);
  }
  const w = new ByteWriter().u8(VERIFICATION_MESSAGE_VERSION);
  switch (m.kind) {
    case 'start':
      checkData(1, m.data);
      return w.u8(KIND_START).bytes(m.id).bytes(m.data).finish();
    case 'step':
      checkData(m.step, m.data);
      return w.u8(KIND_STEP).bytes(m.id).u8(m.step).bytes(m.data).finish();
    case 'abort':
      return w.u8(KIND_ABORT).bytes(m.id).u8(ABORT_CODES[m.reason]).finish();
  }
}

function checkData(step: 1 | 2 | 3 | 4, data: Uint8Array): void {
  if (!(data instanceof Uint8Array) || data.length !== COMPARATOR_MESSAGE_BYTES[step]) {
    throw new SdkError('INVALID_ARGUMENT', `comparator message ${step} is ${COMPARATOR_MESSAGE_BYTES[step]} bytes`);
  }
}

/** Parse a control message; throws `MALFORMED`. The fields are copies. */
export function decodeVerificationMessage(bytes: Uint8Array): VerificationMessage {
  if (!(bytes instanceof Uint8Array)) throw new SdkError('INVALID_ARGUMENT', 'a verification message is a Uint8Array');
  const r = new ByteReader(bytes, 'verification message');
  if (bytes.length > VERIFICATION_MESSAGE_BYTES_MAX) throw r.malformed('too long');
  if (r.u8() !== VERIFICATION_MESSAGE_VERSION) throw r.malformed('unknown version');
  const kind = r.u8();
  const id = r.bytes(VERIFICATION_ID_BYTES).slice();
  let m: VerificationMessage;
  if (kind === KIND_START) {
    m = { kind: 'start', id, data: r.bytes(COMPARATOR_MESSAGE_BYTES[1]).slice() };
  } else if (kind === KIND_STEP) {
    const step = r.u8();
    if (step !== 2 && step !== 3 && step !== 4) throw r.malformed('step out of range');
    m = { kind: 'step', id, step, data: r.bytes(COMPARATOR_MESSAGE_BYTES[step]).slice() };
  } else if (kind === KIND_ABORT) {
    const code = r.u8();
    const reason = (Object.keys(ABORT_CODES) as PeerAbortReason[]).find((k) => ABORT_CODES[k] === code) ?? 'unspecified';
    m = { kind: 'abort', id, reason };
  } else {
    throw r.malformed('unknown kind');
  }
  r.end();
  return m;
}
