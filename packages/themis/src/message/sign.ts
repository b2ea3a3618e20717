/**
 * Secure Message in signature mode: the plaintext travels in the clear with
 * a signature (ECDSA P-256/SHA-256 in DER, or RSA-PSS/SHA-256 with maximum
 * salt). `format.ts` has the layout.
 *
 * Verification follows Themis: the header's type must match the key family,
 * bytes after the signature are ignored (old wrappers wrote two extra bytes),
 * and ECDSA signatures with high S are accepted (Themis never normalises).
 *
 * @module
 */
import { backend } from '#backend';
import { abytes } from '../_bytes.ts';
import { ThemisError, ThemisErrorCode } from '../errors.ts';
import type { ParsedPrivateKey, ParsedPublicKey } from '../keys/asym-key.ts';
import { sharedPrivateKey, sharedPublicKey } from '../keys/key-cache.ts';
import { PrivateKey, PublicKey } from '../keys/key-classes.ts';
import { assertMessageLength } from '../cell/seal.ts';
import { readSigned, TYPE_EC_SIGNED, TYPE_RSA_SIGNED, writeSigned } from './format.ts';

const S = 'SecureMessage' as const;

/**
 * A key object of the expected class (raw bytes are refused, as by wasm-themis).
 * Class names are spelled out: a minifier renames classes.
 */
function keyArgument<K extends PrivateKey | PublicKey>(key: unknown, expected: abstract new (...args: never[]) => K, name: 'PrivateKey' | 'PublicKey'): K {
  if (key instanceof expected) return key;
  if (key instanceof PrivateKey || key instanceof PublicKey) {
    throw new ThemisError(S, 'WRONG_KEY_KIND', `expected a ${name}, got a ${key instanceof PrivateKey ? 'PrivateKey' : 'PublicKey'}`);
  }
  throw new ThemisError(S, 'INVALID_ARGUMENT', `expected a ${name}`);
}

export class SecureMessageSign {
  readonly #priv: ParsedPrivateKey;

  constructor(privateKey: PrivateKey) {
    this.#priv = sharedPrivateKey(S, keyArgument(privateKey, PrivateKey, 'PrivateKey'));
  }

  sign(message: Uint8Array): Uint8Array {
    const msg = abytes(S, message, 'message');
    assertMessageLength(S, msg);
    if (this.#priv.kind === 'ec-private') return writeSigned(TYPE_EC_SIGNED, msg, backend.p256Sign(this.#priv.d, msg));
    return writeSigned(TYPE_RSA_SIGNED, msg, backend.rsaPssSha256Sign(this.#priv.c, msg));
  }

  toString(): string {
    return 'SecureMessageSign(key redacted)';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

export class SecureMessageVerify {
  readonly #pub: ParsedPublicKey;

  constructor(publicKey: PublicKey) {
    this.#pub = sharedPublicKey(S, keyArgument(publicKey, PublicKey, 'PublicKey'));
  }

  /** Returns the signed message; throws `INVALID_SIGNATURE` if it does not verify. */
  verify(message: Uint8Array): Uint8Array {
    const buf = abytes(S, message, 'message');
    const signed = readSigned(buf);
    // Framing errors are reported as such (a signed message is public, nothing to hide);
    // the legacy numbers then match Themis (INVALID_PARAMETER), as does FAIL for a bad signature.
    if (signed === 'malformed') throw new ThemisError(S, 'MALFORMED', 'malformed signed message');
    if (signed === 'invalid') throw new ThemisError(S, 'MALFORMED', 'signed message has an empty part', { legacyCode: ThemisErrorCode.FAIL });
    const isEc = this.#pub.kind === 'ec-public';
    if (signed.type !== (isEc ? TYPE_EC_SIGNED : TYPE_RSA_SIGNED)) {
      throw new ThemisError(S, 'WRONG_KEY_KIND', 'signed message type does not match the key');
    }
    const ok =
      this.#pub.kind === 'ec-public'
        ? backend.p256Verify(this.#pub.point, signed.message, signed.signature)
        : backend.rsaPssSha256Verify(this.#pub.c, signed.message, signed.signature);
    if (!ok) throw new ThemisError(S, 'INVALID_SIGNATURE', 'signature does not verify');
    return signed.message.slice();
  }
}
