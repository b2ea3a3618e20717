/**
 * Secure Cell, Context Imprint mode: deterministic, length-preserving,
 * **unauthenticated** AES-256-CTR. The same key, context and message always
 * give the same bytes (byte-equal to Themis). A wrong key or context yields
 * garbage, not an error — use it only where length must be preserved and
 * integrity comes from elsewhere.
 *
 * ```
 * dk = SoterKDF(K, "Themis secure cell message key", [u32le(m)], 32)
 * iv = SoterKDF(dk, "Themis secure cell message iv", [context], 16)
 * out = AES-256-CTR(dk, iv, message)
 * ```
 *
 * @module
 */
import { backend } from '#backend';
import { abytes, wipe } from '../_bytes.ts';
import { deriveImprintKeyAndIv } from './derive.ts';
import { assertMessageLength } from './seal.ts';

const S = 'SecureCellContextImprint' as const;

export class SecureCellContextImprint {
  readonly #key: Uint8Array;

  /** @deprecated use {@link SecureCellContextImprint.withKey}. */
  constructor(masterKey: Uint8Array) {
    // The caller's bytes, read on every call as wasm-themis does: a key changed
    // or wiped in place takes effect, and no copy of it is left here.
    this.#key = abytes(S, masterKey, 'master key');
  }

  static withKey(masterKey: Uint8Array): SecureCellContextImprint {
    return new SecureCellContextImprint(masterKey);
  }

  /** The caller's master key as it is now (read on every call); a detached buffer is an empty one, refused. */
  #keyNow(): Uint8Array {
    return abytes(S, this.#key, 'master key');
  }

  /** Context is required and must be non-empty. */
  encrypt(message: Uint8Array, context: Uint8Array): Uint8Array {
    return this.#apply(message, context);
  }

  decrypt(message: Uint8Array, context: Uint8Array): Uint8Array {
    return this.#apply(message, context);
  }

  #apply(message: Uint8Array, context: Uint8Array): Uint8Array {
    const msg = abytes(S, message, 'message');
    const ctx = abytes(S, context, 'context');
    assertMessageLength(S, msg);
    const { dk, iv } = deriveImprintKeyAndIv(this.#keyNow(), msg.length, ctx);
    const out = backend.aesCtr(dk, iv, msg);
    wipe(dk, iv);
    return out;
  }

  toString(): string {
    return 'SecureCellContextImprint(key redacted)';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
