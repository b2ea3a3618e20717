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
 * big-endian. Functions that authenticate return `null`/`false` on failure
 * instead of throwing, so callers turn every failure into one opaque error.
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
