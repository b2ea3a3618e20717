/**
 * Secure Message in encryption mode: one party's private key and the other's
 * public key, both EC P-256 or both RSA (`format.ts` has the layouts).
 *
 * EC: the Seal master key is the raw ECDH x-coordinate of the two static
 * keys — the same for every message between the same pair, so it is derived
 * once per pair of key objects and kept as long as they live (it is no more
 * sensitive than the private key). Freshness comes from the Seal's random IV.
 *
 * RSA: a fresh 70-byte Seal key per message, sent under RSA-OAEP-SHA-1.
 *
 * @module
 */
import { backend } from '#backend';
import { abytes, EMPTY, wipe } from '../_bytes.ts';
import { decryptFailed, ThemisError } from '../errors.ts';
import { type ParsedPrivateKey, type ParsedPublicKey } from '../keys/asym-key.ts';
import { sharedPrivateKey, sharedPublicKey } from '../keys/key-cache.ts';
import { KeyPair, PrivateKey, PublicKey } from '../keys/key-classes.ts';
import { assertMessageLength, sealDecrypt, sealEncrypt } from '../cell/seal.ts';
import { readEcEncrypted, readRsaEncrypted, RSA_PASSWORD_LENGTH, writeEcEncrypted, writeRsaEncrypted } from './format.ts';

const S = 'SecureMessage' as const;

/**
 * The constructor's arguments: one `KeyPair`, or a `PrivateKey` and a
 * `PublicKey` in either order. Raw bytes are refused, as by wasm-themis.
 */
export function splitKeys(args: readonly unknown[]): { priv: ParsedPrivateKey; pub: ParsedPublicKey } {
  let privKey: PrivateKey;
  let pubKey: PublicKey;
  const [a, b] = args;
  if (args.length === 1) {
    if (!(a instanceof KeyPair)) throw new ThemisError(S, 'INVALID_ARGUMENT', 'expected a KeyPair, or a PrivateKey and a PublicKey');
    privKey = a.privateKey;
    pubKey = a.publicKey;
  } else if (args.length === 2) {
    if (a instanceof PrivateKey && b instanceof PublicKey) [privKey, pubKey] = [a, b];
    else if (a instanceof PublicKey && b instanceof PrivateKey) [privKey, pubKey] = [b, a];
    else if ((a instanceof PrivateKey || a instanceof PublicKey) && (b instanceof PrivateKey || b instanceof PublicKey)) {
      throw new ThemisError(S, 'WRONG_KEY_KIND', 'expected one private and one public key');
    } else throw new ThemisError(S, 'INVALID_ARGUMENT', 'expected a PrivateKey and a PublicKey');
  } else {
    throw new ThemisError(S, 'INVALID_ARGUMENT', `expected one KeyPair, or a PrivateKey and a PublicKey; got ${args.length} arguments`);
  }
  const priv = sharedPrivateKey(S, privKey);
  const pub = sharedPublicKey(S, pubKey);
  if (priv.kind.split('-')[0] !== pub.kind.split('-')[0]) {
    throw new ThemisError(S, 'WRONG_KEY_KIND', 'private and public keys must both be EC or both be RSA');
  }
  return { priv, pub };
}

/**
 * Static–static ECDH results per (parsed private key, parsed public key).
 * Parsed keys are cached per caller key object (`key-cache.ts`), so a secret
 * here lives exactly as long as both of the caller's key objects — no longer
 * than the private key it is derived from.
 */
const sharedSecrets = new WeakMap<ParsedPrivateKey, WeakMap<ParsedPublicKey, Uint8Array>>();

export class SecureMessage {
  readonly #priv: ParsedPrivateKey;
  readonly #pub: ParsedPublicKey;
  #ecShared: Uint8Array | null = null;

  /** `new SecureMessage(keyPair)` or `new SecureMessage(privateKey, publicKey)` (either order). */
  constructor(keyPair: KeyPair);
  constructor(privateKey: PrivateKey, publicKey: PublicKey);
  constructor(publicKey: PublicKey, privateKey: PrivateKey);
  constructor(...keys: unknown[]) {
    const { priv, pub } = splitKeys(keys);
    this.#priv = priv;
    this.#pub = pub;
  }

  #sharedEc(): Uint8Array {
    if (this.#ecShared === null) {
      const priv = this.#priv;
      const pub = this.#pub;
      if (priv.kind !== 'ec-private' || pub.kind !== 'ec-public') throw new ThemisError(S, 'INTERNAL', 'key kind mismatch');
      let byPub = sharedSecrets.get(priv);
      let z = byPub?.get(pub);
      if (z === undefined) {
        const computed = backend.p256Ecdh(priv.d, pub.point);
        if (computed === null) throw new ThemisError(S, 'INVALID_KEY', 'ECDH failed');
        z = computed;
        if (byPub === undefined) sharedSecrets.set(priv, (byPub = new WeakMap()));
        byPub.set(pub, z);
      }
      this.#ecShared = z;
    }
    return this.#ecShared;
  }

  encrypt(message: Uint8Array): Uint8Array {
    const msg = abytes(S, message, 'message');
    assertMessageLength(S, msg);
    if (this.#pub.kind === 'ec-public') return writeEcEncrypted(sealEncrypt(this.#sharedEc(), msg, EMPTY));
    const password = backend.randomBytes(RSA_PASSWORD_LENGTH);
    const encryptedPassword = backend.rsaOaepSha1Encrypt(this.#pub.c, password);
    const cell = sealEncrypt(password, msg, EMPTY);
    wipe(password);
    return writeRsaEncrypted(encryptedPassword, cell);
  }

  decrypt(message: Uint8Array): Uint8Array {
    const buf = abytes(S, message, 'message');
    let out: Uint8Array | null = null;
    if (this.#priv.kind === 'ec-private') {
      const cell = readEcEncrypted(buf);
      if (cell !== null) out = sealDecrypt(this.#sharedEc(), cell, EMPTY);
    } else {
      const parts = readRsaEncrypted(buf);
      const password = parts === null ? null : backend.rsaOaepSha1Decrypt(this.#priv.c, parts.encryptedPassword);
      if (parts !== null && password !== null && password.length > 0) {
        out = sealDecrypt(password, parts.cell, EMPTY);
        wipe(password);
      }
    }
    if (out === null) throw decryptFailed(S);
    return out;
  }

  toString(): string {
    return `SecureMessage(${this.#pub.kind.split('-')[0]}, keys redacted)`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
