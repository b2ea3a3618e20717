/**
 * The public key classes, shaped as in `wasm-themis`: `PrivateKey`,
 * `PublicKey` and `SymmetricKey` are `Uint8Array` subclasses holding the
 * canonical Themis bytes; `KeyPair` holds one of each.
 *
 * Parsing accepts every form Themis accepts (uncompressed EC public keys,
 * 32-byte EC private payloads) and stores the canonical form (compressed,
 * 33-byte payload), so what we emit is readable by every Themis version.
 *
 * Secrets never reach `toString`, `toJSON` or Node's `util.inspect`.
 *
 * @module
 */
import { abytes } from '../_bytes.ts';
import { backend } from '#backend';
import { ThemisError } from '../errors.ts';
import { RSA_BITS_DEFAULT } from '../limits.ts';
import { keyKindOf, parsePrivateKey, parsePublicKey, type KeyKind } from './asym-key.ts';
import { generateEcKeyPair, writeEcPrivateKey, writeEcPublicKey } from './ec-key.ts';
import { generateRsaKeyPair } from './rsa-key.ts';

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

function canonicalPrivate(bytes: Uint8Array): Uint8Array {
  const k = parsePrivateKey('PrivateKey', bytes);
  if (k.kind === 'ec-private') {
    const out = writeEcPrivateKey(k.d);
    k.d.fill(0);
    return out;
  }
  for (const v of Object.values(k.c)) v.fill(0);
  return bytes;
}

function canonicalPublic(bytes: Uint8Array): Uint8Array {
  const k = parsePublicKey('PublicKey', bytes);
  return k.kind === 'ec-public' ? writeEcPublicKey(k.point) : bytes;
}

/** A Themis private key (EC P-256 or RSA), validated on construction. */
export class PrivateKey extends Uint8Array {
  // Derived arrays (slice, subarray, map) are plain Uint8Arrays, not keys.
  static get [Symbol.species](): Uint8ArrayConstructor {
    return Uint8Array;
  }

  constructor(array: Uint8Array | ArrayBuffer) {
    super(canonicalPrivate(abytes('PrivateKey', array, 'private key')));
  }

  /** `ec-private` or `rsa-private`. */
  get kind(): KeyKind {
    return keyKindOf(this) as KeyKind;
  }

  override toString(): string {
    return `PrivateKey(${this.kind}, redacted)`;
  }
  override toLocaleString(): string {
    return this.toString();
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

/** A Themis public key (EC P-256 or RSA), validated on construction. */
export class PublicKey extends Uint8Array {
  static get [Symbol.species](): Uint8ArrayConstructor {
    return Uint8Array;
  }

  constructor(array: Uint8Array | ArrayBuffer) {
    super(canonicalPublic(abytes('PublicKey', array, 'public key')));
  }

  /** `ec-public` or `rsa-public`. */
  get kind(): KeyKind {
    return keyKindOf(this) as KeyKind;
  }

  [inspectSymbol](): string {
    return `PublicKey(${this.kind}, ${this.length} bytes)`;
  }
}

/** A symmetric key for Secure Cell: 32 random bytes, or any non-empty bytes given. */
export class SymmetricKey extends Uint8Array {
  static get [Symbol.species](): Uint8ArrayConstructor {
    return Uint8Array;
  }

  constructor(array?: Uint8Array | ArrayBuffer) {
    if (array === undefined) {
      const fresh = backend.randomBytes(32);
      super(fresh);
      fresh.fill(0);
    } else {
      super(abytes('SymmetricKey', array, 'symmetric key'));
    }
  }

  override toString(): string {
    return `SymmetricKey(${this.length} bytes, redacted)`;
  }
  override toLocaleString(): string {
    return this.toString();
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

/** A private and a public key of the same family. `new KeyPair()` generates EC P-256. */
export class KeyPair {
  readonly #privateKey: PrivateKey;
  readonly #publicKey: PublicKey;

  constructor();
  constructor(privateKey: PrivateKey | Uint8Array | ArrayBuffer, publicKey: PublicKey | Uint8Array | ArrayBuffer);
  constructor(...keys: unknown[]) {
    // As in wasm-themis, the argument count decides: none generates, two import.
    if (keys.length === 0) {
      const { privateKey: sk, publicKey: pk } = generateEcKeyPair();
      this.#privateKey = new PrivateKey(sk);
      this.#publicKey = new PublicKey(pk);
      sk.fill(0);
      return;
    }
    if (keys.length !== 2) {
      throw new ThemisError('KeyPair', 'INVALID_ARGUMENT', `expected no arguments, or a private and a public key; got ${keys.length} arguments`);
    }
    const [privateKey, publicKey] = keys as [Uint8Array | ArrayBuffer, Uint8Array | ArrayBuffer];
    const sk = privateKey instanceof PrivateKey ? privateKey : new PrivateKey(privateKey);
    const pk = publicKey instanceof PublicKey ? publicKey : new PublicKey(publicKey);
    if (sk.kind.split('-')[0] !== pk.kind.split('-')[0]) {
      throw new ThemisError('KeyPair', 'WRONG_KEY_KIND', 'private and public keys are of different families');
    }
    this.#privateKey = sk;
    this.#publicKey = pk;
  }

  /** Generate an RSA key pair of 1024, 2048 (default) or 4096 bits. */
  static generateRSA(bits: number = RSA_BITS_DEFAULT): KeyPair {
    const { privateKey, publicKey } = generateRsaKeyPair(bits);
    const pair = new KeyPair(new PrivateKey(privateKey), new PublicKey(publicKey));
    privateKey.fill(0);
    return pair;
  }

  get privateKey(): PrivateKey {
    return this.#privateKey;
  }
  get publicKey(): PublicKey {
    return this.#publicKey;
  }

  toString(): string {
    return `KeyPair(${this.#publicKey.kind.split('-')[0]}, private key redacted)`;
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}
