/**
 * Secure Cell, Seal mode with a master key: `token ‖ ciphertext`
 * (layout in `format.ts`, 44 bytes of overhead). Authenticated: a wrong key,
 * a wrong context or any modified byte fails as one opaque `DECRYPT_FAILED`.
 *
 * @module
 */
import { backend } from '#backend';
import { abytes, acontext, readU32LE, wipe } from '../_bytes.ts';
import { decryptFailed, ThemisError, type Subsystem } from '../errors.ts';
import { MESSAGE_LENGTH_MAX } from '../limits.ts';
import { deriveMessageKey } from './derive.ts';
import { KEY_TOKEN_LENGTH, NONCE_LENGTH, readKeyToken, writeKeyToken } from './format.ts';
import { SecureCellSealWithPassphrase } from './seal-passphrase.ts';

/** Options for decrypting cells made by old Themis versions. */
export interface CellCompatOptions {
  /**
   * Also try the Themis 0.9.6 key derivation (u64 length context) when the
   * current one fails. Off by default, as in Themis ≥ 0.13 and wasm-themis;
   * turning it on doubles the work an attacker can make a failed decrypt cost.
   */
  themis096Compat?: boolean;
}

/**
 * Read the compat option. Anything but an object means defaults: wasm-themis
 * takes no options and ignores extra arguments, so code written for it (such
 * as `keys.map(SecureCellSeal.withKey)`, which passes the index) must work.
 */
export function compatOption(options: unknown): boolean {
  if (options === null || typeof options !== 'object') return false;
  return (options as CellCompatOptions).themis096Compat === true;
}

export function assertMessageLength(subsystem: Subsystem, message: Uint8Array): void {
  if (message.length > MESSAGE_LENGTH_MAX) throw new ThemisError(subsystem, 'LIMIT_EXCEEDED', 'message too long');
}

/** Seal `message` under `key` (non-empty) with optional `context` as AAD. */
export function sealEncrypt(key: Uint8Array, message: Uint8Array, context: Uint8Array): Uint8Array {
  const m = message.length;
  const dk = deriveMessageKey(key, m, context, 32);
  const nonce = backend.randomBytes(NONCE_LENGTH);
  const { ciphertext, tag } = backend.aesGcmEncrypt(dk, nonce, message, context);
  dk.fill(0);
  const out = new Uint8Array(KEY_TOKEN_LENGTH + m);
  writeKeyToken(out, nonce, tag, m);
  out.set(ciphertext, KEY_TOKEN_LENGTH);
  return out;
}

/** Open a sealed cell; null on any failure (callers raise one opaque error). */
export function sealDecrypt(key: Uint8Array, cell: Uint8Array, context: Uint8Array, legacy = false): Uint8Array | null {
  if (cell.length < KEY_TOKEN_LENGTH + 1) return null;
  // Themis reads m first and treats everything before the last m bytes as the token.
  const m = readU32LE(cell, 12);
  if (m === 0 || m > cell.length - KEY_TOKEN_LENGTH) return null;
  const token = readKeyToken(cell.subarray(0, cell.length - m));
  if (token === null || token.messageLength !== m) return null;
  return gcmOpen(key, token.keyLength, token.nonce, token.tag, cell.subarray(cell.length - m), context, legacy);
}

/** Derive and open; with `legacy`, retry with the 0.9.6 derivation on failure. */
export function gcmOpen(
  key: Uint8Array,
  keyLength: number,
  nonce: Uint8Array,
  tag: Uint8Array,
  ciphertext: Uint8Array,
  context: Uint8Array,
  legacy: boolean,
): Uint8Array | null {
  const dk = deriveMessageKey(key, ciphertext.length, context, keyLength);
  let out = backend.aesGcmDecrypt(dk, nonce, ciphertext, tag, context);
  wipe(dk);
  if (out === null && legacy) {
    const dk096 = deriveMessageKey(key, ciphertext.length, context, keyLength, true);
    out = backend.aesGcmDecrypt(dk096, nonce, ciphertext, tag, context);
    wipe(dk096);
  }
  return out;
}

/** Secure Cell in Seal mode. Create with {@link SecureCellSeal.withKey} or {@link SecureCellSeal.withPassphrase}. */
export class SecureCellSeal {
  readonly #key: Uint8Array;
  readonly #legacy: boolean;

  /** @deprecated use {@link SecureCellSeal.withKey}; kept because wasm-themis has it. */
  constructor(masterKey: Uint8Array, options?: CellCompatOptions | null) {
    // The caller's bytes, read on every call as wasm-themis does: a key changed
    // or wiped in place takes effect, and no copy of it is left here.
    this.#key = abytes('SecureCellSeal', masterKey, 'master key');
    this.#legacy = compatOption(options);
  }

  /** A Seal cell under a symmetric master key (any non-empty bytes). */
  static withKey(masterKey: Uint8Array, options?: CellCompatOptions | null): SecureCellSeal {
    return new SecureCellSeal(masterKey, options);
  }

  /** A Seal cell under a passphrase (a string is encoded as UTF-8; bytes are used as given). */
  static withPassphrase(passphrase: string | Uint8Array | ArrayBuffer): SecureCellSealWithPassphrase {
    return new SecureCellSealWithPassphrase(passphrase);
  }

  /** The caller's master key as it is now (read on every call); a detached buffer is an empty one, refused. */
  #keyNow(): Uint8Array {
    return abytes('SecureCellSeal', this.#key, 'master key');
  }

  encrypt(message: Uint8Array, context?: Uint8Array | null): Uint8Array {
    const msg = abytes('SecureCellSeal', message, 'message');
    assertMessageLength('SecureCellSeal', msg);
    return sealEncrypt(this.#keyNow(), msg, acontext('SecureCellSeal', context));
  }

  decrypt(message: Uint8Array, context?: Uint8Array | null): Uint8Array {
    const cell = abytes('SecureCellSeal', message, 'message');
    const out = sealDecrypt(this.#keyNow(), cell, acontext('SecureCellSeal', context), this.#legacy);
    if (out === null) throw decryptFailed('SecureCellSeal');
    return out;
  }

  toString(): string {
    return 'SecureCellSeal(key redacted)';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

// wasm-themis's passphrase cell is a subclass of SecureCellSeal
// (`withPassphrase(p) instanceof SecureCellSeal`); ours lives in its own file,
// which must not import this one, so the chain is linked here.
Object.setPrototypeOf(SecureCellSealWithPassphrase.prototype, SecureCellSeal.prototype);
Object.setPrototypeOf(SecureCellSealWithPassphrase, SecureCellSeal);
