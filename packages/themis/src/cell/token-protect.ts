/**
 * Secure Cell, Token Protect mode: the ciphertext has the plaintext's length
 * and the 44-byte authentication token travels separately (same token
 * layout, derivation and AAD as Seal; `format.ts`).
 *
 * @module
 */
import { backend } from '#backend';
import { abytes, acontext } from '../_bytes.ts';
import { decryptFailed, typeMismatch } from '../errors.ts';
import { deriveMessageKey } from './derive.ts';
import { KEY_TOKEN_LENGTH, NONCE_LENGTH, readKeyToken, writeKeyToken } from './format.ts';
import { assertMessageLength, compatOption, gcmOpen, type CellCompatOptions } from './seal.ts';

const S = 'SecureCellTokenProtect' as const;

/**
 * The optional context: omitted or `null` is none. An explicit `undefined`
 * is a wrong type here, as in wasm-themis (whose Seal takes it, and so does ours).
 */
function optionalContext(rest: readonly unknown[]): Uint8Array {
  if (rest.length > 0 && rest[0] === undefined) throw typeMismatch(S, 'context must be a Uint8Array or null, got undefined');
  return acontext(S, rest[0]);
}

export class SecureCellTokenProtect {
  readonly #key: Uint8Array;
  readonly #legacy: boolean;

  /** @deprecated use {@link SecureCellTokenProtect.withKey}. */
  constructor(masterKey: Uint8Array, options?: CellCompatOptions | null) {
    // The caller's bytes, read on every call as wasm-themis does: a key changed
    // or wiped in place takes effect, and no copy of it is left here.
    this.#key = abytes(S, masterKey, 'master key');
    this.#legacy = compatOption(options);
  }

  static withKey(masterKey: Uint8Array, options?: CellCompatOptions | null): SecureCellTokenProtect {
    return new SecureCellTokenProtect(masterKey, options);
  }

  /** The caller's master key as it is now (read on every call); a detached buffer is an empty one, refused. */
  #keyNow(): Uint8Array {
    return abytes(S, this.#key, 'master key');
  }

  encrypt(message: Uint8Array, context?: Uint8Array | null): { data: Uint8Array; token: Uint8Array };
  encrypt(message: Uint8Array, ...context: unknown[]): { data: Uint8Array; token: Uint8Array } {
    const msg = abytes(S, message, 'message');
    assertMessageLength(S, msg);
    const ctx = optionalContext(context);
    const dk = deriveMessageKey(this.#keyNow(), msg.length, ctx, 32);
    const nonce = backend.randomBytes(NONCE_LENGTH);
    const { ciphertext, tag } = backend.aesGcmEncrypt(dk, nonce, msg, ctx);
    dk.fill(0);
    const token = new Uint8Array(KEY_TOKEN_LENGTH);
    writeKeyToken(token, nonce, tag, msg.length);
    return { data: ciphertext, token };
  }

  decrypt(message: Uint8Array, token: Uint8Array, context?: Uint8Array | null): Uint8Array;
  decrypt(message: Uint8Array, token: Uint8Array, ...context: unknown[]): Uint8Array {
    const data = abytes(S, message, 'message');
    const tok = abytes(S, token, 'token');
    const ctx = optionalContext(context);
    const t = readKeyToken(tok);
    if (t === null || t.messageLength !== data.length) throw decryptFailed(S);
    const out = gcmOpen(this.#keyNow(), t.keyLength, t.nonce, t.tag, data, ctx, this.#legacy);
    if (out === null) throw decryptFailed(S);
    return out;
  }

  toString(): string {
    return 'SecureCellTokenProtect(key redacted)';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
