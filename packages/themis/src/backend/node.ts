/**
 * The `node:crypto` backend: OpenSSL for every primitive. Selected by the
 * `node` condition of the package's `#backend` import.
 *
 * Parsing a key into an OpenSSL `KeyObject` costs more than using it (tens to
 * hundreds of µs), so parsed keys are cached per key *buffer* in a WeakMap:
 * the cryptosystems pass their own private copies of key bytes, the cache
 * entry dies with the object that owns them, and a content check guards
 * against a caller mutating a buffer between calls.
 *
 * @module
 */
import * as crypto from 'node:crypto';
import * as v8 from 'node:v8';
import { ed25519PublicToX25519 } from './_ed25519-to-x25519.ts';
import { ed25519PublicKeyRejected, HKDF_INFO_LENGTH_MAX, HKDF_SHA256_LENGTH_MAX, type Backend, type RsaPrivateComponents, type RsaPublicComponents } from './types.ts';
import { equalBytes } from '../_bytes.ts';

/** A fresh, unpooled Uint8Array holding `b`'s bytes (pooled Buffers share memory with unrelated data). */
function own(b: Buffer): Uint8Array {
  const out = new Uint8Array(b.length);
  out.set(b);
  // The Buffer may hold a derived key or plaintext; don't leave it behind.
  b.fill(0);
  return out;
}

const P256_SPKI_COMPRESSED_PREFIX = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex');
const P256_SPKI_UNCOMPRESSED_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
/** P-256 group order n. */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

interface CacheEntry {
  snapshot: Uint8Array;
  key: crypto.KeyObject;
}

function cached(cache: WeakMap<Uint8Array, CacheEntry>, bytes: Uint8Array, make: () => crypto.KeyObject): crypto.KeyObject {
  const hit = cache.get(bytes);
  if (hit !== undefined && equalBytes(hit.snapshot, bytes)) return hit.key;
  const key = make();
  cache.set(bytes, { snapshot: Uint8Array.from(bytes), key });
  return key;
}

const ecPrivateCache = new WeakMap<Uint8Array, CacheEntry>();
const ecPublicCache = new WeakMap<Uint8Array, CacheEntry>();
const rsaPrivateCache = new WeakMap<Uint8Array, CacheEntry>();
const rsaPublicCache = new WeakMap<Uint8Array, CacheEntry>();

function scalarValid(d: Uint8Array): boolean {
  if (d.length !== 32) return false;
  let v = 0n;
  for (const x of d) v = (v << 8n) | BigInt(x);
  return v > 0n && v < P256_N;
}

function ecPrivateKey(d: Uint8Array): crypto.KeyObject {
  // A JWK carrying the public point imports ~4x faster than PKCS#8 without it,
  // because OpenSSL then need not derive the point itself.
  return cached(ecPrivateCache, d, () => {
    const e = crypto.createECDH('prime256v1');
    e.setPrivateKey(d);
    const pub = e.getPublicKey();
    return crypto.createPrivateKey({
      format: 'jwk',
      key: { kty: 'EC', crv: 'P-256', d: b64u(d), x: b64u(pub.subarray(1, 33)), y: b64u(pub.subarray(33, 65)) },
    });
  });
}

function ecPublicKey(point: Uint8Array): crypto.KeyObject {
  return cached(ecPublicCache, point, () => {
    const prefix = point.length === 33 ? P256_SPKI_COMPRESSED_PREFIX : P256_SPKI_UNCOMPRESSED_PREFIX;
    return crypto.createPublicKey({ key: Buffer.concat([prefix, point]), format: 'der', type: 'spki' });
  });
}

const b64u = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64url');
const fromB64u = (s: string | undefined): Uint8Array => own(Buffer.from(s ?? '', 'base64url'));

function rsaPrivateKey(k: RsaPrivateComponents): crypto.KeyObject {
  return cached(rsaPrivateCache, k.d, () =>
    crypto.createPrivateKey({
      format: 'jwk',
      key: { kty: 'RSA', n: b64u(k.n), e: b64u(k.e), d: b64u(k.d), p: b64u(k.p), q: b64u(k.q), dp: b64u(k.dp), dq: b64u(k.dq), qi: b64u(k.qi) },
    }),
  );
}

/** k: the length in bytes of the modulus `n` (big-endian, leading zero bytes not counted). */
function modulusBytes(n: Uint8Array): number {
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  return n.length - i;
}

function rsaPublicKey(k: RsaPublicComponents): crypto.KeyObject {
  return cached(rsaPublicCache, k.n, () => crypto.createPublicKey({ format: 'jwk', key: { kty: 'RSA', n: b64u(k.n), e: b64u(k.e) } }));
}

// ---- Curve25519 (RFC 7748 / RFC 8032) ----

// X25519 and Ed25519 keys enter OpenSSL as JWK, not as PKCS#8/SPKI DER:
// on Node 20 with OpenSSL 3 a DER import costs ~490 µs (private) and
// ~110 µs (public) against ~45 and ~15 µs for JWK (measured; the DER path
// goes through OpenSSL 3's slow decoder lookup, nodejs/node#50386). A
// private JWK must carry `x`, but Node builds the key from `d` alone (raw
// private key import) and derives the public half itself, so a placeholder
// is given; the RFC 7748 / 8032 vectors in test/backend-25519.test.ts check
// that the derived public keys are right.
const JWK_X_PLACEHOLDER = 'A'.repeat(43);

const x25519PrivateCache = new WeakMap<Uint8Array, CacheEntry>();
const x25519PublicCache = new WeakMap<Uint8Array, CacheEntry>();
const ed25519PrivateCache = new WeakMap<Uint8Array, CacheEntry>();
const ed25519PublicCache = new WeakMap<Uint8Array, CacheEntry>();

function okpPrivate(crv: 'X25519' | 'Ed25519', d: Uint8Array): crypto.KeyObject {
  return crypto.createPrivateKey({ key: { kty: 'OKP', crv, d: b64u(d), x: JWK_X_PLACEHOLDER }, format: 'jwk' });
}
function okpPublic(crv: 'X25519' | 'Ed25519', x: Uint8Array): crypto.KeyObject {
  return crypto.createPublicKey({ key: { kty: 'OKP', crv, x: b64u(x) }, format: 'jwk' });
}
function x25519PrivateKey(d: Uint8Array): crypto.KeyObject {
  return cached(x25519PrivateCache, d, () => okpPrivate('X25519', d));
}
function x25519PublicKey(u: Uint8Array): crypto.KeyObject {
  return cached(x25519PublicCache, u, () => okpPublic('X25519', u));
}
function ed25519PrivateKey(seed: Uint8Array): crypto.KeyObject {
  return cached(ed25519PrivateCache, seed, () => okpPrivate('Ed25519', seed));
}
function ed25519PublicKey(a: Uint8Array): crypto.KeyObject {
  return cached(ed25519PublicCache, a, () => okpPublic('Ed25519', a));
}
/**
 * The raw 32-byte public key of an OKP private key. (Exporting as JWK is
 * safe here: these KeyObjects come from createPrivateKey, never from a
 * keygen job — see rsaGenerate for the Node 20 deadlock that rule avoids.)
 */
function rawPublic(key: crypto.KeyObject): Uint8Array {
  const x = key.export({ format: 'jwk' }).x;
  const out = fromB64u(x);
  if (out.length !== 32) throw new Error('backend: OKP public key of unexpected length');
  return out;
}
function assertLength(b: Uint8Array, length: number, name: string): void {
  if (b.length !== length) throw new RangeError(`${name} must be ${length} bytes`);
}
function isZero(b: Uint8Array): boolean {
  let acc = 0;
  for (const x of b) acc |= x;
  return acc === 0;
}

function gcmName(key: Uint8Array): crypto.CipherGCMTypes {
  if (key.length === 32) return 'aes-256-gcm';
  if (key.length === 24) return 'aes-192-gcm';
  if (key.length === 16) return 'aes-128-gcm';
  throw new RangeError('AES key must be 16, 24 or 32 bytes');
}

/**
 * Nonce-sized requests (≤ 16 bytes: GCM nonces, session IVs, PBKDF2 salts —
 * all public) are served from a pool filled by one CSPRNG call, which costs
 * ~0.1 µs instead of ~2 µs per call. Every byte is handed out once and zeroed
 * in the pool as it leaves. Keys and scalars (≥ 32 bytes) always come
 * straight from the CSPRNG. The pool is emptied before a V8 startup snapshot
 * is serialised, so processes started from one never share nonces.
 */
const POOL_SIZE = 4096;
const SMALL_RANDOM_MAX = 16;
const pool = new Uint8Array(POOL_SIZE);
let poolOffset = POOL_SIZE;
if (v8.startupSnapshot?.isBuildingSnapshot?.() === true) {
  v8.startupSnapshot.addSerializeCallback(() => {
    pool.fill(0);
    poolOffset = POOL_SIZE;
  });
}

function randomBytes(length: number): Uint8Array {
  if (length > SMALL_RANDOM_MAX) return own(crypto.randomBytes(length));
  if (poolOffset + length > POOL_SIZE) {
    crypto.randomFillSync(pool);
    poolOffset = 0;
  }
  const out = pool.slice(poolOffset, poolOffset + length);
  pool.fill(0, poolOffset, poolOffset + length);
  poolOffset += length;
  return out;
}

export const backend: Backend = {
  name: 'node',

  randomBytes,

  sha256: (data) => own(crypto.createHash('sha256').update(data).digest()),
  sha512: (data) => own(crypto.createHash('sha512').update(data).digest()),
  hmacSha256(key, parts) {
    const h = crypto.createHmac('sha256', key);
    for (const p of parts) h.update(p);
    return own(h.digest());
  },
  pbkdf2Sha256: (password, salt, iterations, length) => own(crypto.pbkdf2Sync(password, salt, iterations, length, 'sha256')),
  pbkdf2Sha256Async: (password, salt, iterations, length) =>
    new Promise((resolve, reject) => {
      crypto.pbkdf2(password, salt, iterations, length, 'sha256', (err, key) => (err ? reject(err) : resolve(own(key))));
    }),

  aesGcmEncrypt(key, nonce, plaintext, aad) {
    const c = crypto.createCipheriv(gcmName(key), key, nonce, { authTagLength: 16 });
    if (aad.length > 0) c.setAAD(aad);
    const ciphertext = own(c.update(plaintext));
    c.final();
    return { ciphertext, tag: own(c.getAuthTag()) };
  },
  aesGcmDecrypt(key, nonce, ciphertext, tag, aad) {
    const d = crypto.createDecipheriv(gcmName(key), key, nonce, { authTagLength: 16 });
    d.setAuthTag(tag);
    if (aad.length > 0) d.setAAD(aad);
    const out = d.update(ciphertext);
    try {
      d.final();
    } catch {
      out.fill(0);
      return null;
    }
    return own(out);
  },
  aesCtr(key, iv, data) {
    const c = crypto.createCipheriv('aes-256-ctr', key, iv);
    return own(Buffer.concat([c.update(data), c.final()]));
  },

  p256GeneratePrivate() {
    const e = crypto.createECDH('prime256v1');
    e.generateKeys();
    const d = e.getPrivateKey();
    // OpenSSL returns a minimal big-endian scalar; left-pad to 32 bytes.
    const out = new Uint8Array(32);
    out.set(d, 32 - d.length);
    d.fill(0);
    return out;
  },
  p256ScalarValid: (d) => scalarValid(d),
  p256PublicFromPrivate(d) {
    if (!scalarValid(d)) return null;
    const e = crypto.createECDH('prime256v1');
    e.setPrivateKey(d);
    return own(e.getPublicKey(null, 'compressed'));
  },
  p256NormalizePublic(point) {
    if (point.length !== 33 && point.length !== 65) return null;
    try {
      return own(crypto.ECDH.convertKey(point, 'prime256v1', undefined, undefined, 'compressed') as Buffer);
    } catch {
      return null;
    }
  },
  p256Ecdh(d, point) {
    if (!scalarValid(d)) return null;
    try {
      // One ECDH object per call beats importing two KeyObjects for one-shot use;
      // callers that repeat an agreement (SecureMessage) cache its result.
      const e = crypto.createECDH('prime256v1');
      e.setPrivateKey(d);
      return own(e.computeSecret(point));
    } catch {
      return null;
    }
  },
  p256Sign: (d, message) => own(crypto.sign('sha256', message, { key: ecPrivateKey(d), dsaEncoding: 'der' })),
  p256Verify(point, message, derSignature) {
    try {
      return crypto.verify('sha256', message, { key: ecPublicKey(point), dsaEncoding: 'der' }, derSignature);
    } catch {
      return false;
    }
  },

  hkdfSha256(ikm, salt, info, length) {
    if (info.length > HKDF_INFO_LENGTH_MAX) throw new RangeError(`HKDF info must be at most ${HKDF_INFO_LENGTH_MAX} bytes`);
    if (!Number.isInteger(length) || length < 1 || length > HKDF_SHA256_LENGTH_MAX) throw new RangeError(`HKDF length must be 1…${HKDF_SHA256_LENGTH_MAX}`);
    // RFC 5869 over createHmac rather than hkdfSync, which builds a KeyObject
    // per call: ~16 µs against ~7 µs for the two HMACs of a 32-byte output
    // (measured, Node 20) — and the Double Ratchet runs one per message.
    // An empty salt needs no special case: HMAC pads any key with zeros.
    const prk = crypto.createHmac('sha256', salt).update(ikm).digest();
    const out = new Uint8Array(length);
    let t: Buffer = Buffer.alloc(0);
    for (let i = 1, at = 0; at < length; i++, at += 32) {
      const next = crypto.createHmac('sha256', prk).update(t).update(info).update(Uint8Array.of(i)).digest();
      t.fill(0);
      t = next;
      out.set(t.subarray(0, Math.min(32, length - at)), at);
    }
    prk.fill(0);
    t.fill(0);
    return out;
  },

  aesCbcEncrypt(key, iv, plaintext) {
    assertLength(key, 32, 'AES-256 key');
    assertLength(iv, 16, 'CBC IV');
    const c = crypto.createCipheriv('aes-256-cbc', key, iv);
    return own(Buffer.concat([c.update(plaintext), c.final()]));
  },
  aesCbcDecrypt(key, iv, ciphertext) {
    assertLength(key, 32, 'AES-256 key');
    assertLength(iv, 16, 'CBC IV');
    if (ciphertext.length === 0 || ciphertext.length % 16 !== 0) return null;
    const d = crypto.createDecipheriv('aes-256-cbc', key, iv);
    const head = d.update(ciphertext);
    try {
      return own(Buffer.concat([head, d.final()]));
    } catch {
      head.fill(0);
      return null;
    }
  },

  x25519GeneratePrivate: () => own(crypto.randomBytes(32)),
  x25519PublicFromPrivate(privateKey) {
    assertLength(privateKey, 32, 'X25519 private key');
    return rawPublic(x25519PrivateKey(privateKey));
  },
  x25519(privateKey, publicKey) {
    if (privateKey.length !== 32 || publicKey.length !== 32) return null;
    let shared: Uint8Array;
    try {
      shared = own(crypto.diffieHellman({ privateKey: x25519PrivateKey(privateKey), publicKey: x25519PublicKey(publicKey) }));
    } catch {
      // OpenSSL refuses an all-zero result ("failed during derivation").
      return null;
    }
    return isZero(shared) ? null : shared;
  },

  x25519CopyPrivate(privateKey) {
    assertLength(privateKey, 32, 'X25519 private key');
    const copy = Uint8Array.from(privateKey);
    const hit = x25519PrivateCache.get(privateKey);
    if (hit !== undefined && equalBytes(hit.snapshot, privateKey)) x25519PrivateCache.set(copy, { snapshot: Uint8Array.from(hit.snapshot), key: hit.key });
    return copy;
  },

  ed25519PublicFromSeed(seed) {
    assertLength(seed, 32, 'Ed25519 seed');
    return rawPublic(ed25519PrivateKey(seed));
  },
  ed25519Sign(seed, message) {
    assertLength(seed, 32, 'Ed25519 seed');
    return own(crypto.sign(null, message, ed25519PrivateKey(seed)));
  },
  ed25519Verify(publicKey, message, signature) {
    // OpenSSL checks S < L and compares the re-encoded [S]B − [k]A with R;
    // the key rule is ours (OpenSSL accepts non-canonical and small-order keys).
    if (signature.length !== 64 || ed25519PublicKeyRejected(publicKey)) return false;
    try {
      return crypto.verify(null, message, ed25519PublicKey(publicKey), signature);
    } catch {
      return false;
    }
  },
  // node:crypto has no Edwards-to-Montgomery map: shared with the pure backend.
  ed25519PublicToX25519,
  ed25519SeedToX25519(seed) {
    assertLength(seed, 32, 'Ed25519 seed');
    const h = crypto.createHash('sha512').update(seed).digest();
    const out = new Uint8Array(32);
    out.set(h.subarray(0, 32));
    h.fill(0);
    // RFC 7748 §5 clamping, as RFC 8032 §5.1.5 prunes the signing scalar.
    out[0] = (out[0] as number) & 248;
    out[31] = ((out[31] as number) & 127) | 64;
    return out;
  },

  rsaGenerate(bits) {
    // The keygen job encodes the key itself: exporting a freshly generated
    // KeyObject as JWK can deadlock Node 20 (the export holds the key's
    // mutex while allocating; a GC then finalises the keygen job, which
    // takes the same mutex — seen with Ed25519 in our benchmark).
    // (@types/node has no overload for JWK output; Node 20 supports it.)
    const generate = crypto.generateKeyPairSync as unknown as (type: 'rsa', options: object) => { privateKey: crypto.JsonWebKey };
    const { privateKey: j } = generate('rsa', { modulusLength: bits, publicExponent: 65537, publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' } });
    return { n: fromB64u(j.n), e: fromB64u(j.e), d: fromB64u(j.d), p: fromB64u(j.p), q: fromB64u(j.q), dp: fromB64u(j.dp), dq: fromB64u(j.dq), qi: fromB64u(j.qi) };
  },
  rsaOaepSha1Encrypt: (key, plaintext) =>
    own(crypto.publicEncrypt({ key: rsaPublicKey(key), padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, plaintext)),
  rsaOaepSha1Decrypt(key, ciphertext) {
    // OpenSSL left-pads a short input; RFC 8017 §7.1.2 (and the pure backend, and Themis) refuse it.
    if (ciphertext.length !== modulusBytes(key.n)) return null;
    try {
      return own(crypto.privateDecrypt({ key: rsaPrivateKey(key), padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, ciphertext));
    } catch {
      return null;
    }
  },
  rsaPssSha256Sign: (key, message) =>
    own(
      crypto.sign('sha256', message, {
        key: rsaPrivateKey(key),
        padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
        saltLength: crypto.constants.RSA_PSS_SALTLEN_MAX_SIGN,
      }),
    ),
  rsaPssSha256Verify(key, message, signature) {
    // RFC 8017 §8.1.2: a signature is exactly k bytes (OpenSSL would left-pad a shorter one).
    if (signature.length !== modulusBytes(key.n)) return false;
    try {
      return crypto.verify(
        'sha256',
        message,
        { key: rsaPublicKey(key), padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_AUTO },
        signature,
      );
    } catch {
      return false;
    }
  },
};
