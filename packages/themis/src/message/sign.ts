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
  // The caller's key object, parsed through the cache (key-cache.ts) on every
  // call: as in wasm-themis, a key changed or wiped in place takes effect.
  readonly #privKey: PrivateKey;

  constructor(privateKey: PrivateKey) {
    this.#privKey = keyArgument(privateKey, PrivateKey, 'PrivateKey');
    sharedPrivateKey(S, this.#privKey); // a bad key is refused here
  }

  sign(message: Uint8Array): Uint8Array {
    const msg = abytes(S, message, 'message');
    assertMessageLength(S, msg);
    const priv = sharedPrivateKey(S, this.#privKey);
    if (priv.kind === 'ec-private') return writeSigned(TYPE_EC_SIGNED, msg, backend.p256Sign(priv.d, msg));
    return writeSigned(TYPE_RSA_SIGNED, msg, backend.rsaPssSha256Sign(priv.c, msg));
  }

  toString(): string {
    return 'SecureMessageSign(key redacted)';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

export class SecureMessageVerify {
  // As in SecureMessageSign: the caller's key object, looked up on every call.
  readonly #pubKey: PublicKey;

  constructor(publicKey: PublicKey) {
    this.#pubKey = keyArgument(publicKey, PublicKey, 'PublicKey');
    sharedPublicKey(S, this.#pubKey);
  }

  /** Returns the signed message; throws `INVALID_SIGNATURE` if it does not verify. */
  verify(message: Uint8Array): Uint8Array {
    const buf = abytes(S, message, 'message');
    const signed = readSigned(buf);
    // Framing errors are reported as such (a signed message is public, nothing to hide);
    // the legacy numbers then match Themis (INVALID_PARAMETER), as does FAIL for a bad signature.
    if (signed === 'malformed') throw new ThemisError(S, 'MALFORMED', 'malformed signed message');
    if (signed === 'invalid') throw new ThemisError(S, 'MALFORMED', 'signed message has an empty part', { legacyCode: ThemisErrorCode.FAIL });
    const pub = sharedPublicKey(S, this.#pubKey);
    const isEc = pub.kind === 'ec-public';
    if (signed.type !== (isEc ? TYPE_EC_SIGNED : TYPE_RSA_SIGNED)) {
      throw new ThemisError(S, 'WRONG_KEY_KIND', 'signed message type does not match the key');
    }
    const ok =
      pub.kind === 'ec-public'
        ? backend.p256Verify(pub.point, signed.message, signed.signature)
        : backend.rsaPssSha256Verify(pub.c, signed.message, signed.signature);
    if (!ok) throw new ThemisError(S, 'INVALID_SIGNATURE', 'signature does not verify');
    return signed.message.slice();
  }
}
