/**
 * The one error class of `@parley/themis`.
 *
 * Every failure — misuse of the API, malformed input from the wire, failed
 * authentication — is a `ThemisError`. Each carries:
 *
 * - `code`: a stable string, unique across subsystems (branch on this);
 * - `errorCode`: the legacy Themis numeric status, kept so code written for
 *   `wasm-themis` keeps working (those numbers overlap across subsystems,
 *   which is why `code` exists);
 * - `subsystem`: the class that raised it.
 *
 * Decryption failure is deliberately one opaque outcome (`DECRYPT_FAILED`):
 * a bad tag, a lying header, a truncated buffer and a wrong key are not told
 * apart, so an attacker learns nothing from which one it was.
 *
 * @module
 */

/** Themis numeric status codes, as in `<themis/themis_error.h>` and `wasm-themis`. */
const CODES = {
  SUCCESS: 0,
  FAIL: 11,
  INVALID_PARAMETER: 12,
  NO_MEMORY: 13,
  BUFFER_TOO_SMALL: 14,
  DATA_CORRUPT: 15,
  INVALID_SIGNATURE: 16,
  NOT_SUPPORTED: 17,
  SSESSION_SEND_OUTPUT_TO_PEER: 1,
  SSESSION_KA_NOT_FINISHED: 19,
  SSESSION_TRANSPORT_ERROR: 20,
  SSESSION_GET_PUB_FOR_ID_CALLBACK_ERROR: 21,
  // Upstream numbers overlap across subsystems; kept as they are for compatibility.
  SCOMPARE_SEND_OUTPUT_TO_PEER: 1,
  SCOMPARE_MATCH: 21,
  SCOMPARE_NO_MATCH: 22,
  SCOMPARE_NOT_READY: 0,
} as const;
/**
 * Themis' legacy status numbers by name — and, as in wasm-themis (a
 * TypeScript enum), names by number: `ThemisErrorCode[12]` is
 * `'INVALID_PARAMETER'`; where numbers overlap, the last name wins there
 * too (`ThemisErrorCode[21]` is `'SCOMPARE_MATCH'`).
 */
export const ThemisErrorCode: typeof CODES & Readonly<Record<number, string>> = Object.freeze({
  ...CODES,
  ...Object.fromEntries(Object.entries(CODES).map(([name, value]) => [value, name])),
}) as typeof CODES & Readonly<Record<number, string>>;
export type ThemisErrorCode = (typeof CODES)[keyof typeof CODES];

/**
 * Stable string codes. Each maps to exactly one legacy number (see {@link LEGACY_CODE}).
 *
 * - API misuse: `INVALID_ARGUMENT`, `EMPTY_INPUT`, `WRONG_KEY_KIND`, `NOT_SUPPORTED`,
 *   `INVALID_STATE`.
 * - Invalid input from the wire: `INVALID_KEY`, `DECRYPT_FAILED`, `INVALID_SIGNATURE`,
 *   `MALFORMED`, `LIMIT_EXCEEDED`.
 * - Protocol flow (Secure Session / Comparator): `UNKNOWN_PEER`, `NOT_ESTABLISHED`,
 *   `REPLAY`.
 * - `INTERNAL`: a bug or a primitive that failed unexpectedly.
 */
export type ThemisErrorCodeName =
  | 'INVALID_ARGUMENT'
  | 'EMPTY_INPUT'
  | 'WRONG_KEY_KIND'
  | 'NOT_SUPPORTED'
  | 'INVALID_STATE'
  | 'INVALID_KEY'
  | 'DECRYPT_FAILED'
  | 'INVALID_SIGNATURE'
  | 'MALFORMED'
  | 'LIMIT_EXCEEDED'
  | 'UNKNOWN_PEER'
  | 'NOT_ESTABLISHED'
  | 'REPLAY'
  | 'INTERNAL';

/** One-way mapping from our string codes to the legacy Themis numbers. */
export const LEGACY_CODE: Readonly<Record<ThemisErrorCodeName, ThemisErrorCode>> = Object.freeze({
  INVALID_ARGUMENT: ThemisErrorCode.INVALID_PARAMETER,
  EMPTY_INPUT: ThemisErrorCode.INVALID_PARAMETER,
  WRONG_KEY_KIND: ThemisErrorCode.INVALID_PARAMETER,
  NOT_SUPPORTED: ThemisErrorCode.NOT_SUPPORTED,
  INVALID_STATE: ThemisErrorCode.INVALID_PARAMETER,
  INVALID_KEY: ThemisErrorCode.INVALID_PARAMETER,
  DECRYPT_FAILED: ThemisErrorCode.FAIL,
  // Themis core returns FAIL (not INVALID_SIGNATURE) when a signature does not verify.
  INVALID_SIGNATURE: ThemisErrorCode.FAIL,
  MALFORMED: ThemisErrorCode.INVALID_PARAMETER,
  LIMIT_EXCEEDED: ThemisErrorCode.INVALID_PARAMETER,
  UNKNOWN_PEER: ThemisErrorCode.SSESSION_GET_PUB_FOR_ID_CALLBACK_ERROR,
  NOT_ESTABLISHED: ThemisErrorCode.SSESSION_KA_NOT_FINISHED,
  REPLAY: ThemisErrorCode.FAIL,
  INTERNAL: ThemisErrorCode.FAIL,
});

export type Subsystem =
  | 'KeyPair'
  | 'PrivateKey'
  | 'PublicKey'
  | 'SymmetricKey'
  | 'SecureCellSeal'
  | 'SecureCellTokenProtect'
  | 'SecureCellContextImprint'
  | 'SecureMessage'
  | 'SecureSession'
  | 'SecureComparator'
  | 'Soter';

export class ThemisError extends Error {
  /** Stable string code; branch on this. */
  readonly code: ThemisErrorCodeName;
  /** Legacy Themis numeric status (as `wasm-themis` exposes it). */
  readonly errorCode: ThemisErrorCode;
  readonly subsystem: Subsystem;

  /**
   * `legacyCode` overrides the number derived from `code`, where Themis itself
   * reports one kind of failure under two numbers depending on where it is
   * detected; the string code stays accurate.
   */
  constructor(subsystem: Subsystem, code: ThemisErrorCodeName, message: string, options?: { cause?: unknown; legacyCode?: ThemisErrorCode }) {
    super(`Themis: ${subsystem}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ThemisError';
    this.code = code;
    this.errorCode = options?.legacyCode ?? LEGACY_CODE[code];
    this.subsystem = subsystem;
  }

  /** Narrowing helper: `if (ThemisError.is(e, 'DECRYPT_FAILED')) …` */
  static is(e: unknown, code?: ThemisErrorCodeName): e is ThemisError {
    return e instanceof ThemisError && (code === undefined || e.code === code);
  }
}

/** The one opaque decryption failure. */
export function decryptFailed(subsystem: Subsystem): ThemisError {
  return new ThemisError(subsystem, 'DECRYPT_FAILED', 'failed to decrypt');
}
