/**
 * The one error class of `@parley/sdk`.
 *
 * Every failure the SDK reports is an `SdkError` with a stable string
 * `code`; branch on the code, never on the message. The codes fall in three
 * groups:
 *
 * - **API misuse** (a bug in the caller): `INVALID_ARGUMENT`, `LIMIT`.
 * - **The network and the server**: `CLOSED`, `TIMEOUT`, `SERVER` (the server
 *   answered with an error frame; its code is in `serverCode`),
 *   `AUTH_FAILED`, `BAD_RESPONSE` (a frame that does not follow
 *   docs/protocol.md), `MALFORMED` (bytes from the wire that do not parse),
 *   `NO_RECIPIENTS` (no device of any other room member can be encrypted to).
 * - **The store on disk and key backups**: `BAD_PASSPHRASE` (the passphrase does not open
 *   the store file or a key backup), `STORE` (not a Parley store, a newer format, in use by another
 *   process, a record that does not open, or an error from the database).
 * - **`INTERNAL`**: a bug in the SDK; please report it.
 *
 * A message this device cannot decrypt is not an error of any call: it is a
 * `decryptionError` event carrying a {@link DecryptionFailureReason}.
 *
 * @module
 */

export type SdkErrorCode =
  /** An argument has the wrong type, shape or range. */
  | 'INVALID_ARGUMENT'
  /** A caller value exceeds a limit (message too large, outbound queue full). */
  | 'LIMIT'
  /** The client was closed, or the connection closed before the answer came. */
  | 'CLOSED'
  /** No answer within the request timeout. */
  | 'TIMEOUT'
  /** The server answered with an error frame; see `serverCode`. */
  | 'SERVER'
  /** Registration or login was refused. */
  | 'AUTH_FAILED'
  /** This device was removed from its account (by itself or another of the user's devices): the client has ended, and the device cannot log in again. */
  | 'DEVICE_REMOVED'
  /** The server sent a frame that does not follow the protocol. */
  | 'BAD_RESPONSE'
  /** Bytes from the wire (a room body, a payload) that do not parse. */
  | 'MALFORMED'
  /** No device of any other room member could be encrypted to. */
  | 'NO_RECIPIENTS'
  /** The key directory lists another identity key for a device than the one this device trusts (refused; see `keysChanged`). */
  | 'IDENTITY_CHANGED'
  /** The passphrase does not open the store file (nothing was changed). */
  | 'BAD_PASSPHRASE'
  /** The store file cannot be used: not a Parley store, a newer format, locked by another process, a corrupt or tampered record, a database error. */
  | 'STORE'
  /** A bug. */
  | 'INTERNAL';

/** Why a received message could not be shown (the `reason` of a `decryptionError` event). */
export type DecryptionFailureReason =
  /** The room body is not a valid container (see body-container.ts). */
  | 'MALFORMED_BODY'
  /** The body holds no envelope for this device (e.g. sent before the device existed). */
  | 'NOT_ADDRESSED'
  /** The envelope does not decrypt: tampered, misdirected, or for a session this device lost (one opaque outcome). */
  | 'DECRYPT_FAILED'
  /** An authentic envelope whose key is gone: a replay, or a message already read. */
  | 'DUPLICATE'
  /** An authentic envelope too far ahead of its chain. */
  | 'TOO_MANY_SKIPPED'
  /** The sender's identity key differs from the one this device trusts for it. */
  | 'UNTRUSTED_IDENTITY'
  /** Decrypted, but the plaintext is not a payload this SDK understands. */
  | 'MALFORMED_PAYLOAD'
  /** Sent by this very device, and no local copy is kept (an earlier store of the device, e.g. before a restore; or the server says so of another's entry). */
  | 'NO_LOCAL_COPY'
  /** A bug while decrypting. */
  | 'INTERNAL';

export class SdkError extends Error {
  /** Stable string code; branch on this. */
  readonly code: SdkErrorCode;
  /** For `SERVER` (and `AUTH_FAILED` when the server said why): the server's error code (docs/protocol.md, "Errors"). */
  readonly serverCode: string | undefined;

  constructor(code: SdkErrorCode, message: string, options?: { cause?: unknown; serverCode?: string }) {
    super(`Parley SDK: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SdkError';
    this.code = code;
    this.serverCode = options?.serverCode;
  }

  /** Narrowing helper: `if (SdkError.is(e, 'CLOSED')) …` */
  static is(e: unknown, code?: SdkErrorCode): e is SdkError {
    return e instanceof SdkError && (code === undefined || e.code === code);
  }
}

/** Any thrown value as an SdkError (a non-SdkError is a bug: `INTERNAL`). */
export function asSdkError(e: unknown): SdkError {
  if (e instanceof SdkError) return e;
  return new SdkError('INTERNAL', e instanceof Error ? e.message : String(e), { cause: e });
}
