/**
 * Secure Cell, Seal mode with a passphrase (layout in `format.ts`, 70 bytes
 * of overhead).
 *
 * ```
 * prekey = PBKDF2-HMAC-SHA-256(passphrase, salt, iterations, 32)
 * dk     = SoterKDF(prekey, "Themis secure cell message key", [u32le(m), ctx?], keyLen)
 * ```
 *
 * We write 314,110 iterations and a fresh 16-byte salt (both generated here,
 * never by the caller) and honour whatever count a header carries, up to
 * `PBKDF2_ITERATIONS_MAX`. PBKDF2 is slow by design (~50 ms natively), so
 * `encryptAsync`/`decryptAsync` run it without blocking the event loop
 * (Node's thread pool, or noble's cooperative yielding in browsers).
 *
 * @module
 */
import { backend } from '#backend';
import { abytes, acontext, isBytes, readU32LE, utf8, wipe } from '../_bytes.ts';
import { decryptFailed, ThemisError, typeMismatch } from '../errors.ts';
import { MESSAGE_LENGTH_MAX, PBKDF2_ITERATIONS_DEFAULT } from '../limits.ts';
import type { SecureCellSeal } from './seal.ts';
import { deriveMessageKey, derivePassphrasePrekey, derivePassphrasePrekeyAsync } from './derive.ts';
import { NONCE_LENGTH, PASSPHRASE_SALT_LENGTH, PASSPHRASE_TOKEN_LENGTH, readPassphraseToken, writePassphraseToken, type PassphraseToken } from './format.ts';

const S = 'SecureCellSeal' as const;

interface Prepared {
  message: Uint8Array;
  context: Uint8Array;
}

function prepareEncrypt(message: unknown, context: unknown): Prepared {
  const msg = abytes(S, message, 'message');
  if (msg.length > MESSAGE_LENGTH_MAX) throw new ThemisError(S, 'LIMIT_EXCEEDED', 'message too long');
  return { message: msg, context: acontext(S, context) };
}

function finishEncrypt(prekey: Uint8Array, p: Prepared, salt: Uint8Array, iterations: number): Uint8Array {
  const m = p.message.length;
  const dk = deriveMessageKey(prekey, m, p.context, 32);
  wipe(prekey);
  const nonce = backend.randomBytes(NONCE_LENGTH);
  const { ciphertext, tag } = backend.aesGcmEncrypt(dk, nonce, p.message, p.context);
  wipe(dk);
  const out = new Uint8Array(PASSPHRASE_TOKEN_LENGTH + m);
  writePassphraseToken(out, nonce, tag, m, iterations, salt);
  out.set(ciphertext, PASSPHRASE_TOKEN_LENGTH);
  return out;
}

interface ParsedCell {
  token: PassphraseToken;
  ciphertext: Uint8Array;
  context: Uint8Array;
}

function parseCell(cellIn: unknown, context: unknown): ParsedCell {
  const cell = abytes(S, cellIn, 'message');
  const ctx = acontext(S, context);
  if (cell.length < 20) throw decryptFailed(S);
  const m = readU32LE(cell, 12);
  if (m === 0 || m > cell.length - 20) throw decryptFailed(S);
  const token = readPassphraseToken(cell.subarray(0, cell.length - m));
  if (token === 'limit') throw new ThemisError(S, 'LIMIT_EXCEEDED', 'PBKDF2 iteration count in header exceeds the allowed maximum');
  if (token === 'malformed' || token.messageLength !== m) throw decryptFailed(S);
  return { token, ciphertext: cell.subarray(cell.length - m), context: ctx };
}

function finishDecrypt(prekey: Uint8Array, c: ParsedCell): Uint8Array {
  const dk = deriveMessageKey(prekey, c.ciphertext.length, c.context, c.token.keyLength);
  wipe(prekey);
  const out = backend.aesGcmDecrypt(dk, c.token.nonce, c.ciphertext, c.token.tag, c.context);
  wipe(dk);
  if (out === null) throw decryptFailed(S);
  return out;
}

/**
 * Encrypt with an explicit iteration count. Hazmat: only for tests and tools
 * that must produce cells like other Themis versions wrote them.
 */
export function encryptWithPassphraseIterations(passphrase: Uint8Array, message: Uint8Array, context: Uint8Array, iterations: number): Uint8Array {
  const p = prepareEncrypt(message, context);
  const salt = backend.randomBytes(PASSPHRASE_SALT_LENGTH);
  return finishEncrypt(derivePassphrasePrekey(passphrase, salt, iterations), p, salt, iterations);
}

/**
 * The type says what the prototype chain does (linked in seal.ts, which this
 * file must not import at run time): like wasm-themis's, a passphrase cell is
 * a SecureCellSeal, so code typed for wasm-themis
 * (`let cell: SecureCellSeal = SecureCellSeal.withPassphrase(p)`) compiles.
 */
// Merging is safe here: the prototype chain gives the class every SecureCellSeal member.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface SecureCellSealWithPassphrase extends SecureCellSeal {}

/** Secure Cell Seal keyed by a passphrase. Obtain with `SecureCellSeal.withPassphrase`. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class SecureCellSealWithPassphrase {
  readonly #passphrase: Uint8Array;

  constructor(passphrase: string | Uint8Array | ArrayBuffer) {
    if (typeof passphrase === 'string') {
      if (passphrase.length === 0) throw new ThemisError(S, 'EMPTY_INPUT', 'passphrase must be non-empty');
      this.#passphrase = utf8(passphrase);
    } else if (isBytes(passphrase) || passphrase instanceof ArrayBuffer) {
      // The caller's bytes, read on every call as wasm-themis does: a passphrase
      // changed or wiped in place takes effect, and no copy of it is left here.
      this.#passphrase = abytes(S, passphrase, 'passphrase');
    } else {
      throw typeMismatch(S, 'passphrase must be a string, a Uint8Array or an ArrayBuffer');
    }
  }

  /** The caller's passphrase as it is now (read on every call); a detached buffer is an empty one, refused. */
  #passphraseNow(): Uint8Array {
    return abytes(S, this.#passphrase, 'passphrase');
  }

  encrypt(message: Uint8Array, context?: Uint8Array | null): Uint8Array {
    return encryptWithPassphraseIterations(this.#passphraseNow(), message, acontext(S, context), PBKDF2_ITERATIONS_DEFAULT);
  }

  decrypt(message: Uint8Array, context?: Uint8Array | null): Uint8Array {
    const c = parseCell(message, context);
    return finishDecrypt(derivePassphrasePrekey(this.#passphraseNow(), c.token.salt, c.token.iterations), c);
  }

  /** As {@link encrypt}, without blocking the event loop during PBKDF2. */
  async encryptAsync(message: Uint8Array, context?: Uint8Array | null): Promise<Uint8Array> {
    // The inputs are taken now, as WebCrypto does: the caller may reuse (or
    // detach) its buffers while PBKDF2 runs, and the cell must hold what was
    // passed at the call, never what the buffers hold later.
    const given = prepareEncrypt(message, context);
    const passphrase = this.#passphraseNow().slice();
    const p = { message: given.message.slice(), context: given.context.slice() };
    try {
      const salt = backend.randomBytes(PASSPHRASE_SALT_LENGTH);
      const prekey = await derivePassphrasePrekeyAsync(passphrase, salt, PBKDF2_ITERATIONS_DEFAULT);
      return finishEncrypt(prekey, p, salt, PBKDF2_ITERATIONS_DEFAULT);
    } finally {
      wipe(p.message, passphrase);
    }
  }

  /** As {@link decrypt}, without blocking the event loop during PBKDF2. */
  async decryptAsync(message: Uint8Array, context?: Uint8Array | null): Promise<Uint8Array> {
    // Copies taken now (see encryptAsync).
    const c = parseCell(abytes(S, message, 'message').slice(), acontext(S, context).slice());
    const passphrase = this.#passphraseNow().slice();
    try {
      const prekey = await derivePassphrasePrekeyAsync(passphrase, c.token.salt, c.token.iterations);
      return finishDecrypt(prekey, c);
    } finally {
      wipe(passphrase);
    }
  }

  toString(): string {
    return 'SecureCellSeal(passphrase redacted)';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
