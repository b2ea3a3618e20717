/**
 * The primitives seam: everything Themis needs from a crypto provider, and
 * nothing else.
 *
 * Two implementations exist and are selected by the package's `#backend`
 * import condition: `node.ts` (over `node:crypto`, the fast path in Node) and
 * `noble.ts` (pure JS over `@noble/*`, used in browsers and forced in tests by
 * `node --conditions=parley-pure`). Both must pass the whole test suite.
 *
 * Conventions: all byte strings are plain `Uint8Array`s; integers in RSA keys
 * are big-endian, minimal or left-padded; EC public points are SEC1 (33-byte
 * compressed or 65-byte uncompressed); EC private scalars are 32 bytes
 * big-endian. Curve25519 keys (X25519, Ed25519 public keys and seeds) are
 * the 32-byte little-endian encodings of RFC 7748 / RFC 8032. Functions that
 * authenticate return `null`/`false` on failure instead of throwing, so
 * callers turn every failure into one opaque error.
 *
 * @module
 */

/** RSA private key components, all big-endian unsigned integers. */
export interface RsaPrivateComponents {
  n: Uint8Array;
  e: Uint8Array;
  d: Uint8Array;
  p: Uint8Array;
  q: Uint8Array;
  dp: Uint8Array;
  dq: Uint8Array;
  qi: Uint8Array;
}

export interface RsaPublicComponents {
  n: Uint8Array;
  e: Uint8Array;
}

export interface Backend {
  readonly name: 'node' | 'noble';

  randomBytes(length: number): Uint8Array;

  sha256(data: Uint8Array): Uint8Array;
  sha512(data: Uint8Array): Uint8Array;
  /** HMAC-SHA-256 over the concatenation of `parts` (no copy needed by callers). */
  hmacSha256(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array;
  pbkdf2Sha256(password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Uint8Array;
  pbkdf2Sha256Async(password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Promise<Uint8Array>;

  /** AES-GCM (key 16/24/32 bytes, 12-byte nonce, 16-byte tag). Returns ciphertext and tag separately. */
  aesGcmEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): { ciphertext: Uint8Array; tag: Uint8Array };
  /** Returns the plaintext, or null if the tag does not verify. */
  aesGcmDecrypt(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad: Uint8Array): Uint8Array | null;
  /** AES-CTR with a 16-byte initial counter block (big-endian increment), key 32 bytes. */
  aesCtr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array;

  /** A uniformly random valid P-256 private scalar (32 bytes BE). */
  p256GeneratePrivate(): Uint8Array;
  /** True iff `d` is 32 bytes encoding an integer in [1, n−1]. */
  p256ScalarValid(d: Uint8Array): boolean;
  /** Compressed public point for a private scalar; null if the scalar is not in [1, n-1]. */
  p256PublicFromPrivate(d: Uint8Array): Uint8Array | null;
  /** Validate a SEC1 point (33 or 65 bytes) and return its compressed form, or null if not on the curve. */
  p256NormalizePublic(point: Uint8Array): Uint8Array | null;
  /** Raw ECDH: the x-coordinate of d·P, 32 bytes BE; null if the point or scalar is invalid. */
  p256Ecdh(d: Uint8Array, point: Uint8Array): Uint8Array | null;
  /** ECDSA with SHA-256 over `message`; DER signature. */
  p256Sign(d: Uint8Array, message: Uint8Array): Uint8Array;
  /** Verify a DER ECDSA-SHA-256 signature; high-S accepted (Themis does not normalise). */
  p256Verify(point: Uint8Array, message: Uint8Array, derSignature: Uint8Array): boolean;

  /**
   * HKDF-SHA-256 (RFC 5869), extract then expand. `info` is at most
   * {@link HKDF_INFO_LENGTH_MAX} bytes (OpenSSL's bound, enforced by both
   * backends so they agree), `length` is 1…255·32. Throws RangeError otherwise.
   */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;

  /** AES-256-CBC with PKCS#7 padding (32-byte key, 16-byte IV). */
  aesCbcEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** AES-256-CBC decryption; null if the length or the PKCS#7 padding is wrong. */
  aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array | null;

  /** 32 random bytes: an X25519 private key (clamped when used, RFC 7748 §5). */
  x25519GeneratePrivate(): Uint8Array;
  /** The X25519 public key (u-coordinate, 32 bytes LE) of a 32-byte private key. */
  x25519PublicFromPrivate(privateKey: Uint8Array): Uint8Array;
  /**
   * X25519(privateKey, publicKey) (RFC 7748 §5, the top bit of the peer's u is
   * ignored). Null when the result is all zero — a low-order peer key, which
   * contributes nothing secret (RFC 7748 §6.1) — or when a length is wrong.
   */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null;
  /**
   * A copy of a 32-byte X25519 private key for a holder with another
   * lifetime (one that will wipe it). The copy shares whatever the backend
   * parsed of the original (node: its OpenSSL key object), so using it costs
   * no second key import.
   */
  x25519CopyPrivate(privateKey: Uint8Array): Uint8Array;

  /** The Ed25519 public key (RFC 8032 §5.1.5) of a 32-byte seed. */
  ed25519PublicFromSeed(seed: Uint8Array): Uint8Array;
  /** A deterministic Ed25519 signature (RFC 8032 §5.1.6), 64 bytes. */
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  /**
   * Strict Ed25519 verification, identical in both backends: the public key
   * must be a canonical encoding (y < p; no sign bit on x = 0) of a point that
   * is not of small order; S < L; and the group equation is checked without
   * the cofactor, by re-encoding [S]B − [k]A and comparing it with R byte for
   * byte (RFC 8032 §5.1.7 permits this form; OpenSSL, libsodium and Go use it).
   * False for any malformed input.
   */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /**
   * The birational map from an Ed25519 public key to its X25519 public key,
   * u = (1 + y) / (1 − y), as libsodium's `crypto_sign_ed25519_pk_to_curve25519`:
   * null unless the key is a canonical encoding of a point of the prime-order
   * subgroup other than the identity.
   */
  ed25519PublicToX25519(publicKey: Uint8Array): Uint8Array | null;
  /**
   * The X25519 private key of an Ed25519 seed: the clamped first half of
   * SHA-512(seed), as libsodium's `crypto_sign_ed25519_sk_to_curve25519`. Its
   * public key is `ed25519PublicToX25519(ed25519PublicFromSeed(seed))`.
   */
  ed25519SeedToX25519(seed: Uint8Array): Uint8Array;

  rsaGenerate(bits: number): RsaPrivateComponents;
  /** RSAES-OAEP with SHA-1 and MGF1-SHA-1, empty label. */
  rsaOaepSha1Encrypt(key: RsaPublicComponents, plaintext: Uint8Array): Uint8Array;
  /** Returns null on any decoding failure. */
  rsaOaepSha1Decrypt(key: RsaPrivateComponents, ciphertext: Uint8Array): Uint8Array | null;
  /** RSASSA-PSS, SHA-256, MGF1-SHA-256, maximum salt length (as Themis signs). */
  rsaPssSha256Sign(key: RsaPrivateComponents, message: Uint8Array): Uint8Array;
  /** RSASSA-PSS verify with the salt length recovered from the encoding (as Themis verifies). */
  rsaPssSha256Verify(key: RsaPublicComponents, message: Uint8Array, signature: Uint8Array): boolean;
}

/** Longest HKDF `info` either backend accepts (OpenSSL refuses more). */
export const HKDF_INFO_LENGTH_MAX = 1024;
/** Longest HKDF output: 255 blocks of SHA-256 (RFC 5869 §2.3). */
export const HKDF_SHA256_LENGTH_MAX = 255 * 32;

/**
 * Ed25519 public keys neither backend accepts for verification, whatever the
 * signature: encodings whose y (sign bit cleared) is not reduced mod p, x = 0
 * with the sign bit set, and every encoding of a point of small order (y is
 * 0, 1, p − 1 or ±y₈ for the points of order 8). Byte-level, so both backends
 * apply the same rule before the curve arithmetic.
 */
export function ed25519PublicKeyRejected(publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32) return true;
  const y = Uint8Array.from(publicKey);
  y[31] = (y[31] as number) & 0x7f;
  // y ≥ p = 2^255 − 19: bytes 1…30 are 0xff, byte 31 is 0x7f and byte 0 ≥ 0xed.
  let high = (y[31] as number) === 0x7f;
  for (let i = 1; i < 31 && high; i++) high = y[i] === 0xff;
  if (high && (y[0] as number) >= 0xed) return true;
  for (const small of SMALL_ORDER_Y) {
    let diff = 0;
    for (let i = 0; i < 32; i++) diff |= (y[i] as number) ^ (small[i] as number);
    if (diff === 0) return true;
  }
  return false;
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * y (little-endian, sign bit clear) of the eight points of order dividing 8.
 * x = 0 only for y = ±1, so the sign-bit-on-x = 0 rule is covered here too.
 */
const SMALL_ORDER_Y: readonly Uint8Array[] = [
  '0000000000000000000000000000000000000000000000000000000000000000', // order 4
  '0100000000000000000000000000000000000000000000000000000000000000', // identity
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2 (p − 1)
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8 (p − y₈)
].map(hexBytes);
