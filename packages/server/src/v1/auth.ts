/**
 * Device authentication: Ed25519 proof of possession over a single-use
 * server challenge, short-lived JWT access tokens (jose) and single-use,
 * rotated refresh tokens stored only as SHA-256 hashes.
 *
 * Signed message (docs/protocol.md):
 * ```
 * UTF-8(purpose) ‖ 0x0A ‖ nonce (32) ‖ UTF-8(userId "\n" deviceId)
 * ```
 *
 * @module
 */
import { createHash, createPublicKey, randomBytes, verify as edVerify, type KeyObject } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { ACCESS_TOKEN_TTL_S, HOST_TOKEN_CLOCK_SKEW_S, HOST_TOKEN_LIFETIME_MAX_S } from '../limits.ts';

export type Purpose = 'parley-register-v1' | 'parley-login-v1';

export function signedChallenge(purpose: Purpose, nonce: Uint8Array, userId: string, deviceId: string): Uint8Array {
  return Buffer.concat([Buffer.from(purpose + '\n', 'utf8'), nonce, Buffer.from(`${userId}\n${deviceId}`, 'utf8')]);
}

/**
 * What a new device signs with its identity key so that one of the user's
 * existing devices can add it (`device.add`): proof that whoever adds the
 * key holds it, bound to the user and the device id.
 * ```
 * UTF-8("parley-add-device-v1") ‖ 0x0A ‖ UTF-8(userId "\n" deviceId)
 * ```
 */
export function deviceLinkMessage(userId: string, deviceId: string): Uint8Array {
  return Buffer.from(`parley-add-device-v1\n${userId}\n${deviceId}`, 'utf8');
}

/**
 * What the adding device signs for `device.add`: that it, `byDeviceId`,
 * adds `deviceId` with `identityKey` to `userId`. A session alone (a token,
 * which can be copied) is not enough to add a key that then logs in by itself.
 */
export function deviceApprovalMessage(userId: string, byDeviceId: string, deviceId: string, identityKey: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from(`parley-approve-device-v1\n${userId}\n${byDeviceId}\n${deviceId}\n`, 'utf8'), identityKey]);
}

/**
 * What a device signs to remove `deviceId` (itself or another device of
 * its user) for `device.remove`. The removed device's key is bound in, so
 * an approval cannot remove a later device that reuses the id.
 */
export function deviceRemovalMessage(userId: string, byDeviceId: string, deviceId: string, identityKey: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from(`parley-remove-device-v1\n${userId}\n${byDeviceId}\n${deviceId}\n`, 'utf8'), identityKey]);
}

/** A new session epoch (`DeviceRecord.sessionEpoch`): replacing it ends the device's access tokens. */
export function newSessionEpoch(): string {
  return randomBytes(16).toString('base64url');
}

/** Verify an Ed25519 signature; false for any malformed key or signature. */
export function verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' });
    return edVerify(null, message, key, signature);
  } catch {
    return false;
  }
}

export function newRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export interface TokenClaims {
  userId: string;
  deviceId: string;
  /** Seconds since the epoch. */
  expiresAt: number;
  /**
   * The device's session epoch the token was issued under ('' for the
   * server's tokens from before epochs); null for a host application's
   * token, which the host, not the server, decides the life of.
   */
  epoch: string | null;
}

export type TokenCheck = { ok: true; claims: TokenClaims } | { ok: false; reason: 'expired' | 'invalid' };

/** What a host application may sign access tokens with. */
export interface TrustedTokenKeys {
  /** HS256 shared secret. */
  secret?: Uint8Array | null;
  /** Public key: EC P-256 (ES256), Ed25519 (EdDSA) or RSA (RS256, PS256). */
  publicKey?: KeyObject | null;
}

/** The JWS algorithms a public key is trusted for — fixed by its type, never by the token's header. */
function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'ec':
      return ['ES256'];
    case 'ed25519':
      return ['EdDSA'];
    case 'rsa':
      return ['RS256', 'PS256'];
    default:
      return [];
  }
}

/** A host token names when it was issued, not (much) in the future, and lives at most HOST_TOKEN_LIFETIME_MAX_S. */
function hostLifetimeOk(iat: unknown, exp: number): boolean {
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return false;
  return iat <= Date.now() / 1000 + HOST_TOKEN_CLOCK_SKEW_S && exp - iat <= HOST_TOKEN_LIFETIME_MAX_S;
}

/** The store's name for the HS256 secret of the server's own access tokens (`Storage.serverSecret`). */
export const TOKEN_SECRET_NAME = 'access-token-hs256';

/**
 * Issues and checks access tokens. The server's own tokens are HS256 under a
 * secret kept in the data directory; a host application's tokens are
 * accepted when signed with the configured trusted secret or public key.
 */
export class TokenIssuer {
  readonly #own: Uint8Array;
  readonly #verifiers: { key: Uint8Array | KeyObject; algorithms: string[] }[];
  readonly #ttlS: number;

  constructor(ownSecret: Uint8Array, trusted: TrustedTokenKeys = {}, ttlS: number = ACCESS_TOKEN_TTL_S) {
    this.#own = ownSecret;
    this.#ttlS = ttlS;
    this.#verifiers = [{ key: ownSecret, algorithms: ['HS256'] }];
    if (trusted.secret) this.#verifiers.push({ key: trusted.secret, algorithms: ['HS256'] });
    if (trusted.publicKey) this.#verifiers.push({ key: trusted.publicKey, algorithms: algorithmsFor(trusted.publicKey) });
  }

  async issue(userId: string, deviceId: string, epoch: string, now = Date.now()): Promise<{ token: string; expiresIn: number }> {
    const iat = Math.floor(now / 1000);
    const token = await new SignJWT({ did: deviceId, ep: epoch })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuer('parley')
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.#ttlS)
      .sign(this.#own);
    return { token, expiresIn: this.#ttlS };
  }

  async check(token: string): Promise<TokenCheck> {
    for (const [i, { key, algorithms }] of this.#verifiers.entries()) {
      try {
        const { payload } = await jwtVerify(token, key, { algorithms });
        const did = payload['did'];
        // The first verifier is the server's own key; its tokens name an epoch.
        const ep = i === 0 ? (payload['ep'] ?? '') : null;
        if (typeof payload.sub !== 'string' || typeof did !== 'string' || typeof payload.exp !== 'number' || (ep !== null && typeof ep !== 'string')) return { ok: false, reason: 'invalid' };
        if (i > 0 && !hostLifetimeOk(payload.iat, payload.exp)) return { ok: false, reason: 'invalid' };
        return { ok: true, claims: { userId: payload.sub, deviceId: did, expiresAt: payload.exp, epoch: ep } };
      } catch (e) {
        if (e instanceof joseErrors.JWTExpired) return { ok: false, reason: 'expired' };
      }
    }
    return { ok: false, reason: 'invalid' };
  }
}
