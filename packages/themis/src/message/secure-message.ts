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
export function splitKeys(args: readonly unknown[]): { privKey: PrivateKey; pubKey: PublicKey } {
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
  return { privKey, pubKey };
}

/**
 * The parsed pair, from the per-key-object cache (`key-cache.ts`): a cache
 * hit is a lookup and a byte comparison, and a key changed in place since
 * is parsed again (or refused, if wiped), as wasm-themis reads the caller's
 * keys on every call.
 */
function parsedPair(privKey: PrivateKey, pubKey: PublicKey): { priv: ParsedPrivateKey; pub: ParsedPublicKey } {
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

function sharedEc(priv: ParsedPrivateKey, pub: ParsedPublicKey): Uint8Array {
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
  return z;
}

export class SecureMessage {
  // The caller's key objects, parsed through the cache on every call.
  readonly #privKey: PrivateKey;
  readonly #pubKey: PublicKey;
  readonly #kind: string;

  /** `new SecureMessage(keyPair)` or `new SecureMessage(privateKey, publicKey)` (either order). */
  constructor(keyPair: KeyPair);
  constructor(privateKey: PrivateKey, publicKey: PublicKey);
  constructor(publicKey: PublicKey, privateKey: PrivateKey);
  constructor(...keys: unknown[]) {
    const { privKey, pubKey } = splitKeys(keys);
    // Parsed now too, so that bad keys are refused by the constructor.
    this.#kind = parsedPair(privKey, pubKey).pub.kind.split('-')[0] ?? '';
    this.#privKey = privKey;
    this.#pubKey = pubKey;
  }

  encrypt(message: Uint8Array): Uint8Array {
    const msg = abytes(S, message, 'message');
    assertMessageLength(S, msg);
    const { priv, pub } = parsedPair(this.#privKey, this.#pubKey);
    if (pub.kind === 'ec-public') return writeEcEncrypted(sealEncrypt(sharedEc(priv, pub), msg, EMPTY));
    const password = backend.randomBytes(RSA_PASSWORD_LENGTH);
    const encryptedPassword = backend.rsaOaepSha1Encrypt(pub.c, password);
    const cell = sealEncrypt(password, msg, EMPTY);
    wipe(password);
    return writeRsaEncrypted(encryptedPassword, cell);
  }

  decrypt(message: Uint8Array): Uint8Array {
    const buf = abytes(S, message, 'message');
    const { priv, pub } = parsedPair(this.#privKey, this.#pubKey);
    let out: Uint8Array | null = null;
    if (priv.kind === 'ec-private') {
      const cell = readEcEncrypted(buf);
      if (cell !== null) out = sealDecrypt(sharedEc(priv, pub), cell, EMPTY);
    } else {
      const parts = readRsaEncrypted(buf);
      const password = parts === null ? null : backend.rsaOaepSha1Decrypt(priv.c, parts.encryptedPassword);
      if (parts !== null && password !== null && password.length > 0) {
        out = sealDecrypt(password, parts.cell, EMPTY);
        wipe(password);
      }
    }
    if (out === null) throw decryptFailed(S);
    return out;
  }

  toString(): string {
    return `SecureMessage(${this.#kind}, keys redacted)`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
