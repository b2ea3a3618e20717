/**
 * The pure-JavaScript backend: `@noble/hashes`, `@noble/ciphers`,
 * `@noble/curves` and `micro-rsa-dsa-dh` (same author, same audit culture).
 * Selected in browsers (the `default` condition of `#backend`) and forced in
 * Node with `--conditions=parley-pure`.
 *
 * Asynchronous PBKDF2 comes from the platform's WebCrypto where it has one
 * (see pbkdf2Sha256Async). Two small pieces are ours because the libraries
 * do not offer them:
 * RSA-PSS verification that recovers the salt length from the encoding
 * (RFC 8017 §9.1.2 with sLen read from DB, as OpenSSL's "auto" mode), and
 * prime generation for 1024-bit RSA keys, which the FIPS 186-5 generator in
 * `micro-rsa-dsa-dh` deliberately refuses but Themis still allows.
 *
 * Timing: BigInt arithmetic is not constant-time. RSA private operations and
 * any key handled by this backend may leak through timing to a local
 * observer; prefer the Node backend on servers.
 *
 * @module
 */
import { cbc, gcm, ctr } from '@noble/ciphers/aes.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { invert, mod, pow } from '@noble/curves/abstract/modular.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { pbkdf2, pbkdf2Async } from '@noble/hashes/pbkdf2.js';
import { sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { IFCPrimes, OAEP, mgf1 } from 'micro-rsa-dsa-dh/rsa.js';
import { isProbablePrime } from 'micro-rsa-dsa-dh/primality.js';
import { ed25519PublicToX25519 } from './_ed25519-to-x25519.ts';
import { ed25519PublicKeyRejected, HKDF_INFO_LENGTH_MAX, HKDF_SHA256_LENGTH_MAX, type Backend, type RsaPrivateComponents, type RsaPublicComponents } from './types.ts';
import { bigIntToBytes, bytesToBigInt, concatBytes, equalBytes } from '../_bytes.ts';

/**
 * PBKDF2 without blocking: the platform's WebCrypto when there is one (every
 * browser in a secure context, Node ≥ 20). Its derivation runs off the main
 * thread; noble's async loop only yields to microtasks, so a passphrase cell
 * in a page froze it for the whole derivation (~0.5 s of 314,110
 * iterations). WebCrypto copies its inputs when called, as the cells need.
 * The same bytes either way (standard PBKDF2-HMAC-SHA-256); noble where
 * there is no WebCrypto or it refuses the input.
 */
async function pbkdf2Sha256Async(password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Promise<Uint8Array> {
  const subtle = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (subtle !== undefined) {
    let derived: ArrayBuffer | null = null;
    try {
      const key = await subtle.importKey('raw', Uint8Array.from(password), 'PBKDF2', false, ['deriveBits']);
      derived = await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: Uint8Array.from(salt), iterations }, key, length * 8);
    } catch {
      derived = null;
    }
    if (derived !== null) return new Uint8Array(derived);
  }
  return pbkdf2Async(sha256, password, salt, { c: iterations, dkLen: length });
}

const oaepSha1 = OAEP(sha1, mgf1(sha1));
const mgf1Sha256 = mgf1(sha256);

function bitLength(n: bigint): number {
  return n.toString(2).length;
}

/** Random probable prime of exactly `bits` bits with the top two bits set and gcd(p−1, e) = 1. */
function randomPrime(bits: number, e: bigint): bigint {
  for (;;) {
    const b = randomBytes(bits / 8);
    b[0] = (b[0] as number) | 0xc0;
    b[b.length - 1] = (b[b.length - 1] as number) | 1;
    const p = bytesToBigInt(b);
    if ((p - 1n) % e !== 0n && isProbablePrime(p, 40)) return p;
  }
}

function toRsaKey(p: bigint, q: bigint, e: bigint, len: number): RsaPrivateComponents {
  if (p < q) [p, q] = [q, p];
  const n = p * q;
  const phi = (p - 1n) * (q - 1n);
  const d = invert(e, phi);
  const half = len / 2;
  const fix = (v: bigint, l: number): Uint8Array => bigIntToBytes(v, l) as Uint8Array;
  return {
    n: fix(n, len),
    e: fix(e, 4),
    d: fix(d, len),
    p: fix(p, half),
    q: fix(q, half),
    dp: fix(d % (p - 1n), half),
    dq: fix(d % (q - 1n), half),
    qi: fix(invert(q, p), half),
  };
}

function pub(k: RsaPublicComponents): { n: bigint; e: bigint } {
  return { n: bytesToBigInt(k.n), e: bytesToBigInt(k.e) };
}
function priv(k: RsaPrivateComponents): { n: bigint; d: bigint } {
  return { n: bytesToBigInt(k.n), d: bytesToBigInt(k.d) };
}

/** EMSA-PSS-VERIFY (RFC 8017 §9.1.2), SHA-256/MGF1-SHA-256, salt length taken from the encoding. */
function pssVerifyAutoSalt(key: RsaPublicComponents, message: Uint8Array, signature: Uint8Array): boolean {
  const { n, e } = pub(key);
  const k = Math.ceil(bitLength(n) / 8);
  if (signature.length !== k) return false;
  const s = bytesToBigInt(signature);
  if (s >= n) return false;
  const emBits = bitLength(n) - 1;
  const emLen = Math.ceil(emBits / 8);
  const em = bigIntToBytes(pow(s, e, n), emLen);
  const hLen = 32;
  if (em === null || emLen < hLen + 2 || em[emLen - 1] !== 0xbc) return false;
  const maskedDB = em.subarray(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topMask = 0xff >>> (8 * emLen - emBits);
  if (((maskedDB[0] as number) & ~topMask) !== 0) return false;
  const dbMask = mgf1Sha256(h, { dkLen: maskedDB.length });
  const db = maskedDB.map((x, i) => x ^ (dbMask[i] as number));
  db[0] = (db[0] as number) & topMask;
  let i = 0;
  while (i < db.length && db[i] === 0) i++;
  if (i >= db.length || db[i] !== 0x01) return false;
  const salt = db.subarray(i + 1);
  const mPrime = new Uint8Array(8 + hLen + salt.length);
  mPrime.set(sha256(message), 8);
  mPrime.set(salt, 8 + hLen);
  return equalBytes(sha256(mPrime), h);
}

/**
 * RSASSA-PSS-SIGN (RFC 8017 §8.1.1, §9.1.1), SHA-256/MGF1-SHA-256, with the
 * largest salt the encoding has room for (as Themis, through OpenSSL).
 * Written here, not taken from `micro-rsa-dsa-dh`: its PSS signs to emLen
 * bytes instead of k, which is one byte short (or throws) for a modulus whose
 * bit length is 1 mod 8 — keys Themis accepts, though it never makes them.
 */
function pssSign(key: RsaPrivateComponents, message: Uint8Array): Uint8Array {
  const { n, d } = priv(key);
  const modBits = bitLength(n);
  const k = Math.ceil(modBits / 8);
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = 32;
  const sLen = emLen - hLen - 2;
  if (sLen < 0) throw new Error('RSA modulus too small for PSS with SHA-256');
  const salt = randomBytes(sLen);
  const mPrime = new Uint8Array(8 + hLen + sLen);
  mPrime.set(sha256(message), 8);
  mPrime.set(salt, 8 + hLen);
  const h = sha256(mPrime);
  // DB = PS ‖ 0x01 ‖ salt, PS empty at this salt length.
  const db = new Uint8Array(emLen - hLen - 1);
  db[db.length - sLen - 1] = 0x01;
  db.set(salt, db.length - sLen);
  const dbMask = mgf1Sha256(h, { dkLen: db.length });
  for (let i = 0; i < db.length; i++) db[i] = (db[i] as number) ^ (dbMask[i] as number);
  db[0] = (db[0] as number) & (0xff >>> (8 * emLen - emBits));
  const em = concatBytes(db, h, Uint8Array.of(0xbc));
  const signature = bigIntToBytes(pow(bytesToBigInt(em), d, n), k);
  salt.fill(0);
  if (signature === null) throw new Error('RSA signature does not fit the modulus');
  return signature;
}

/** Order L of the Ed25519 prime-order subgroup. */
const ED25519_L = ed25519.Point.Fn.ORDER;

/**
 * Ed25519 verification in OpenSSL's form, so both backends accept exactly the
 * same signatures: noble's own `verify` checks the cofactored equation
 * ([8][S]B = [8]R + [8][k]A), which accepts some signatures with torsion
 * components that OpenSSL's cofactorless check refuses.
 */
function ed25519VerifyCofactorless(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64 || ed25519PublicKeyRejected(publicKey)) return false;
  const r = signature.subarray(0, 32);
  const s = bytesToNumberLE(signature.subarray(32, 64));
  if (s >= ED25519_L) return false;
  try {
    const a = ed25519.Point.fromBytes(publicKey, false);
    const k = mod(bytesToNumberLE(sha512(concatBytes(r, publicKey, message))), ED25519_L);
    const check = ed25519.Point.BASE.multiplyUnsafe(s).subtract(a.multiplyUnsafe(k));
    return equalBytes(check.toBytes(), r);
  } catch {
    return false;
  }
}

function assertLength(b: Uint8Array, length: number, name: string): void {
  if (b.length !== length) throw new RangeError(`${name} must be ${length} bytes`);
}

export const backend: Backend = {
  name: 'noble',

  randomBytes: (length) => randomBytes(length),

  sha256: (data) => sha256(data),
  sha512: (data) => sha512(data),
  hmacSha256(key, parts) {
    const h = hmac.create(sha256, key);
    for (const p of parts) h.update(p);
    return h.digest();
  },
  pbkdf2Sha256: (password, salt, iterations, length) => pbkdf2(sha256, password, salt, { c: iterations, dkLen: length }),
  pbkdf2Sha256Async: pbkdf2Sha256Async,

  aesGcmEncrypt(key, nonce, plaintext, aad) {
    const out = gcm(key, nonce, aad.length > 0 ? aad : undefined).encrypt(plaintext);
    // Copies, not views: Token Protect hands `ciphertext` to the caller, who may
    // ship its whole `.buffer` (which would carry the tag too).
    return { ciphertext: out.slice(0, plaintext.length), tag: out.slice(plaintext.length) };
  },
  aesGcmDecrypt(key, nonce, ciphertext, tag, aad) {
    const joined = new Uint8Array(ciphertext.length + tag.length);
    joined.set(ciphertext);
    joined.set(tag, ciphertext.length);
    try {
      return gcm(key, nonce, aad.length > 0 ? aad : undefined).decrypt(joined);
    } catch {
      return null;
    }
  },
  aesCtr: (key, iv, data) => ctr(key, iv).encrypt(data),

  p256GeneratePrivate: () => p256.utils.randomSecretKey(),
  p256ScalarValid: (d) => p256.utils.isValidSecretKey(d),
  p256PublicFromPrivate(d) {
    if (!p256.utils.isValidSecretKey(d)) return null;
    return p256.getPublicKey(d, true);
  },
  p256NormalizePublic(point) {
    if (point.length !== 33 && point.length !== 65) return null;
    try {
      return p256.Point.fromBytes(point).toBytes(true);
    } catch {
      return null;
    }
  },
  p256Ecdh(d, point) {
    try {
      if (!p256.utils.isValidSecretKey(d)) return null;
      return p256.getSharedSecret(d, point, true).subarray(1);
    } catch {
      return null;
    }
  },
  p256Sign: (d, message) => p256.sign(message, d, { prehash: true, lowS: false, format: 'der' }),
  p256Verify(point, message, derSignature) {
    try {
      return p256.verify(derSignature, message, point, { prehash: true, lowS: false, format: 'der' });
    } catch {
      return false;
    }
  },

  hkdfSha256(ikm, salt, info, length) {
    if (info.length > HKDF_INFO_LENGTH_MAX) throw new RangeError(`HKDF info must be at most ${HKDF_INFO_LENGTH_MAX} bytes`);
    if (!Number.isInteger(length) || length < 1 || length > HKDF_SHA256_LENGTH_MAX) throw new RangeError(`HKDF length must be 1…${HKDF_SHA256_LENGTH_MAX}`);
    return hkdf(sha256, ikm, salt, info, length);
  },

  aesCbcEncrypt(key, iv, plaintext) {
    assertLength(key, 32, 'AES-256 key');
    assertLength(iv, 16, 'CBC IV');
    return cbc(key, iv).encrypt(plaintext);
  },
  aesCbcDecrypt(key, iv, ciphertext) {
    assertLength(key, 32, 'AES-256 key');
    assertLength(iv, 16, 'CBC IV');
    if (ciphertext.length === 0 || ciphertext.length % 16 !== 0) return null;
    try {
      return cbc(key, iv).decrypt(ciphertext);
    } catch {
      return null;
    }
  },

  x25519GeneratePrivate: () => randomBytes(32),
  x25519PublicFromPrivate(privateKey) {
    assertLength(privateKey, 32, 'X25519 private key');
    return x25519.getPublicKey(privateKey);
  },
  x25519(privateKey, publicKey) {
    if (privateKey.length !== 32 || publicKey.length !== 32) return null;
    try {
      // noble throws on an all-zero result (a low-order peer key).
      return x25519.getSharedSecret(privateKey, publicKey);
    } catch {
      return null;
    }
  },
  x25519CopyPrivate(privateKey) {
    assertLength(privateKey, 32, 'X25519 private key');
    return Uint8Array.from(privateKey);
  },

  ed25519PublicFromSeed(seed) {
    assertLength(seed, 32, 'Ed25519 seed');
    return ed25519.getPublicKey(seed);
  },
  ed25519Sign(seed, message) {
    assertLength(seed, 32, 'Ed25519 seed');
    return ed25519.sign(message, seed);
  },
  ed25519Verify: (publicKey, message, signature) => ed25519VerifyCofactorless(publicKey, message, signature),
  ed25519PublicToX25519,
  ed25519SeedToX25519(seed) {
    assertLength(seed, 32, 'Ed25519 seed');
    return ed25519.utils.toMontgomerySecret(seed);
  },

  rsaGenerate(bits) {
    const e = 65537n;
    if (bits >= 2048) {
      const { p, q } = IFCPrimes(bits, e);
      return toRsaKey(p, q, e, bits / 8);
    }
    for (;;) {
      const p = randomPrime(bits / 2, e);
      const q = randomPrime(bits / 2, e);
      if (p !== q && bitLength(p * q) === bits) return toRsaKey(p, q, e, bits / 8);
    }
  },
  rsaOaepSha1Encrypt: (key, plaintext) => oaepSha1.encrypt(pub(key), plaintext),
  rsaOaepSha1Decrypt(key, ciphertext) {
    try {
      return oaepSha1.decrypt(priv(key), ciphertext);
    } catch {
      return null;
    }
  },
  rsaPssSha256Sign: (key, message) => pssSign(key, message),
  rsaPssSha256Verify: (key, message, signature) => {
    try {
      return pssVerifyAutoSalt(key, message, signature);
    } catch {
      return false;
    }
  },
};
