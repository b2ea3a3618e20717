/**
 * The one error class of `@parley/protocol`.
 *
 * Every failure is a `ProtocolError` with a stable string `code`; branch on
 * the code, never on the message. The codes fall in three groups:
 *
 * - **API misuse** (a bug in the caller): `INVALID_ARGUMENT`, `INVALID_STATE`,
 *   `NO_SESSION`, `LIMIT`.
 * - **Input from the network or from storage**: `MALFORMED`, `BAD_SIGNATURE`,
 *   `UNTRUSTED_IDENTITY`, `DECRYPT_FAILED`, `TOO_MANY_SKIPPED`, `DUPLICATE`.
 * - **`INTERNAL`**: a primitive failed where it cannot; please report it.
 *
 * Decrypting is deliberately coarse. Anything wrong with a received envelope
 * — a bad tag, unparseable framing, an unknown or already used prekey id, a
 * low-order key, a wrong version byte — is the one outcome `DECRYPT_FAILED`,
 * because none of it is authenticated and telling the cases apart would only
 * help an attacker probe. `TOO_MANY_SKIPPED` and `DUPLICATE` are reported
 * only for messages whose header authenticates (see `double-ratchet.ts`), so
 * flipping bits in an envelope can never produce them.
 *
 * @module
 */

export type ProtocolErrorCode =
  /** An argument has the wrong type, length or range. */
  | 'INVALID_ARGUMENT'
  /** The object cannot do this now (e.g. encrypt before a session exists, or after destroy()). */
  | 'INVALID_STATE'
  /** Encrypting to a device with no session and no prekey bundle to start one. */
  | 'NO_SESSION'
  /** A caller-supplied value exceeds a limit in `limits.ts` (e.g. plaintext too long). */
  | 'LIMIT'
  /** Bytes that do not parse: a prekey bundle, a stored session or prekey record. */
  | 'MALFORMED'
  /** A prekey bundle signature does not verify under its identity key. */
  | 'BAD_SIGNATURE'
  /** The peer's identity key differs from the one the identity store trusts. */
  | 'UNTRUSTED_IDENTITY'
  /** A received envelope cannot be decrypted (one opaque outcome). */
  | 'DECRYPT_FAILED'
  /** An authentic message lies more than MAX_SKIP messages ahead of its chain. */
  | 'TOO_MANY_SKIPPED'
  /** An authentic message whose key is no longer held: a replay, or a key evicted long ago. */
  | 'DUPLICATE'
  /** A bug. */
  | 'INTERNAL';

export class ProtocolError extends Error {
  /** Stable string code; branch on this. */
  readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(`Parley protocol: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProtocolError';
    this.code = code;
  }

  /** Narrowing helper: `if (ProtocolError.is(e, 'DUPLICATE')) …` */
  static is(e: unknown, code?: ProtocolErrorCode): e is ProtocolError {
    return e instanceof ProtocolError && (code === undefined || e.code === code);
  }
}

/** The one opaque decryption failure; the message never says why. */
export function decryptFailed(): ProtocolError {
  return new ProtocolError('DECRYPT_FAILED', 'failed to decrypt');
}
