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

/** wasm-themis's texts for the legacy numbers (`ThemisError.description`). */
const COMPARATOR_TEXT: Readonly<Record<number, string>> = {
  [CODES.SCOMPARE_SEND_OUTPUT_TO_PEER]: 'send data to peer',
  [CODES.SCOMPARE_MATCH]: 'data matches',
  [CODES.SCOMPARE_NO_MATCH]: 'data does not match',
  [CODES.SCOMPARE_NOT_READY]: 'comparator not ready',
};
const SESSION_TEXT: Readonly<Record<number, string>> = {
  [CODES.SSESSION_SEND_OUTPUT_TO_PEER]: 'send data to peer',
  [CODES.SSESSION_KA_NOT_FINISHED]: 'key agreement not finished',
  [CODES.SSESSION_TRANSPORT_ERROR]: 'transport layer error',
  [CODES.SSESSION_GET_PUB_FOR_ID_CALLBACK_ERROR]: 'failed to get public key for ID',
};
const GENERIC_TEXT: Readonly<Record<number, string>> = {
  [CODES.SUCCESS]: 'success',
  [CODES.FAIL]: 'failure',
  [CODES.INVALID_PARAMETER]: 'invalid parameter',
  [CODES.NO_MEMORY]: 'out of memory',
  [CODES.BUFFER_TOO_SMALL]: 'buffer too small',
  [CODES.DATA_CORRUPT]: 'corrupted data',
  [CODES.INVALID_SIGNATURE]: 'invalid signature',
  [CODES.NOT_SUPPORTED]: 'operation not supported',
};

/** The string code an app-made `new ThemisError(subsystem, errorCode)` gets (the wasm-themis form). */
function codeForNumber(errorCode: number, subsystem: string): ThemisErrorCodeName {
  if (subsystem === 'SecureComparator' && (errorCode === 0 || errorCode === 1 || errorCode === 21 || errorCode === 22)) return 'INVALID_STATE';
  switch (errorCode) {
    case CODES.INVALID_PARAMETER:
    case CODES.BUFFER_TOO_SMALL:
      return 'INVALID_ARGUMENT';
    case CODES.DATA_CORRUPT:
      return 'MALFORMED';
    case CODES.INVALID_SIGNATURE:
      return 'INVALID_SIGNATURE';
    case CODES.NOT_SUPPORTED:
      return 'NOT_SUPPORTED';
    case CODES.SSESSION_KA_NOT_FINISHED:
      return 'NOT_ESTABLISHED';
    case CODES.SSESSION_GET_PUB_FOR_ID_CALLBACK_ERROR:
      return 'UNKNOWN_PEER';
    default:
      return 'INTERNAL';
  }
}

export class ThemisError extends Error {
  /** Stable string code; branch on this. */
  readonly code: ThemisErrorCodeName;
  /** Legacy Themis numeric status (as `wasm-themis` exposes it). */
  readonly errorCode: ThemisErrorCode;
  /** The class that raised it (any string when an app makes one in the wasm-themis form). */
  readonly subsystem: string;

  /**
   * `legacyCode` overrides the number derived from `code`, where Themis itself
   * reports one kind of failure under two numbers depending on where it is
   * detected; the string code stays accurate.
   */
  constructor(subsystem: Subsystem, code: ThemisErrorCodeName, message: string, options?: { cause?: unknown; legacyCode?: ThemisErrorCode });
  /**
   * The wasm-themis form, for code that makes its own errors: the message is
   * the extra arguments joined by ", ", or else {@link ThemisError.description}.
   */
  constructor(subsystem: string, errorCode: number, ...message: string[]);
  constructor(subsystem: string, code: ThemisErrorCodeName | number, ...rest: unknown[]) {
    const legacyForm = typeof code === 'number';
    const options = legacyForm ? undefined : (rest[1] as { cause?: unknown; legacyCode?: ThemisErrorCode } | undefined);
    const text = legacyForm && rest.length === 0 ? ThemisError.description(code, subsystem) : rest.slice(0, legacyForm ? rest.length : 1).map(String).join(', ');
    super(`Themis: ${subsystem}: ${text}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ThemisError';
    this.code = legacyForm ? codeForNumber(code, subsystem) : code;
    this.errorCode = legacyForm ? (code as ThemisErrorCode) : (options?.legacyCode ?? LEGACY_CODE[code]);
    this.subsystem = subsystem;
  }

  /** Also true for a {@link typeMismatch} error, which is a TypeError as well. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, value) || (this === ThemisError && value instanceof ThemisTypeError);
  }

  /** Narrowing helper: `if (ThemisError.is(e, 'DECRYPT_FAILED')) …` */
  static is(e: unknown, code?: ThemisErrorCodeName): e is ThemisError {
    return e instanceof ThemisError && (code === undefined || e.code === code);
  }

  /**
   * wasm-themis's text for a legacy number; numbers overlap, so the
   * comparator's and the session's own meanings are looked up first.
   */
  static description(errorCode: number, subsystem?: string): string {
    if (subsystem === 'SecureComparator') {
      const text = COMPARATOR_TEXT[errorCode];
      if (text !== undefined) return text;
    }
    if (subsystem === 'SecureSession') {
      const text = SESSION_TEXT[errorCode];
      if (text !== undefined) return text;
    }
    return GENERIC_TEXT[errorCode] ?? `unknown error: ${errorCode}`;
  }
}

/**
 * An argument that is not bytes. wasm-themis throws a plain `TypeError` here,
 * and code written for it (its own test suite too) checks for one; ours must
 * still be a `ThemisError` with a code. No object has both classes on its
 * prototype chain, so this is a `TypeError` that `ThemisError` claims through
 * `Symbol.hasInstance`: `instanceof` either class holds, and `code`,
 * `errorCode` and `subsystem` are there as on every ThemisError.
 */
class ThemisTypeError extends TypeError {
  readonly code: ThemisErrorCodeName = 'INVALID_ARGUMENT';
  readonly errorCode: ThemisErrorCode = CODES.INVALID_PARAMETER;
  readonly subsystem: string;
  constructor(subsystem: Subsystem, message: string, cause?: unknown) {
    super(`Themis: ${subsystem}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = 'ThemisError';
    this.subsystem = subsystem;
  }
}

/** `INVALID_ARGUMENT` for a value of the wrong type: a ThemisError that is also a TypeError. */
export function typeMismatch(subsystem: Subsystem, message: string, cause?: unknown): ThemisError {
  return new ThemisTypeError(subsystem, message, cause) as unknown as ThemisError;
}

/** The one opaque decryption failure. */
export function decryptFailed(subsystem: Subsystem): ThemisError {
  return new ThemisError(subsystem, 'DECRYPT_FAILED', 'failed to decrypt');
}
