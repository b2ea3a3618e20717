/**
 * Version negotiation and device authentication on one connection
 * (docs/protocol.md, "Version negotiation" and "Authentication").
 *
 * A device proves possession of its Ed25519 identity key by signing a fresh,
 * single-use server challenge. Signed message (the server's `signedChallenge`
 * in packages/server/src/v1/auth.ts):
 *
 * ```
 * UTF-8(purpose) ‖ 0x0A ‖ nonce (32 bytes) ‖ UTF-8(userId ‖ "\n" ‖ deviceId)
 * purpose = "parley-register-v1" | "parley-login-v1"
 * ```
 *
 * The identity key is the same `IdentityKeyPair` that signs the device's
 * prekeys and takes part in PQXDH, so the server's device record and the
 * key peers pin are one key.
 *
 * After the first login a device resumes with the cheapest credential that
 * still works: its access token while it has time left, else its refresh
 * token (single use, rotated), else a new challenge signature.
 *
 * @module
 */
import { concatBytes } from '@parley/themis/hazmat';
import type { IdentityKeyPair } from '@parley/protocol';
import { fromBase64, toBase64, utf8 } from './_bytes.ts';
import type { Connection } from './connection.ts';
import { SdkError } from './errors.ts';
import { readSession, readWelcome, type ServerLimits } from './frames.ts';
import { TOKEN_REFRESH_LEAD_FRACTION, TOKEN_REFRESH_LEAD_MAX_MS } from './limits.ts';

export const PROTOCOL_VERSION = 1;
const CHALLENGE_NONCE_BYTES = 32;

export type AuthPurpose = 'parley-register-v1' | 'parley-login-v1';

/** The bytes a device signs to register or log in. */
export function challengeMessage(purpose: AuthPurpose, nonce: Uint8Array, userId: string, deviceId: string): Uint8Array {
  return concatBytes(utf8(purpose), Uint8Array.of(0x0a), nonce, utf8(`${userId}\n${deviceId}`));
}

/**
 * The bytes a new device signs so that one of the user's devices can add it
 * (`device.add`, docs/protocol.md): `parley-add-device-v1 \n userId \n deviceId`.
 */
export function deviceLinkMessage(userId: string, deviceId: string): Uint8Array {
  return utf8(`parley-add-device-v1\n${userId}\n${deviceId}`);
}

/**
 * What the adding device signs for `device.add` (docs/protocol.md):
 * `parley-approve-device-v1 \n userId \n byDeviceId \n deviceId \n` ‖ identity key.
 */
export function deviceApprovalMessage(userId: string, byDeviceId: string, deviceId: string, identityKey: Uint8Array): Uint8Array {
  return concatBytes(utf8(`parley-approve-device-v1\n${userId}\n${byDeviceId}\n${deviceId}\n`), identityKey);
}

/**
 * What a device signs to remove `deviceId` of its user, itself included
 * (`device.remove`, docs/protocol.md):
 * `parley-remove-device-v1 \n userId \n byDeviceId \n deviceId \n` ‖ the removed device's identity key.
 */
export function deviceRemovalMessage(userId: string, byDeviceId: string, deviceId: string, identityKey: Uint8Array): Uint8Array {
  return concatBytes(utf8(`parley-remove-device-v1\n${userId}\n${byDeviceId}\n${deviceId}\n`), identityKey);
}

/** A device's credentials for resuming. Times are this machine's clock. */
export interface Tokens {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** When the access token expires (ms since the epoch, local clock). */
  readonly accessExpiresAt: number;
  /** Its lifetime as issued (ms), to place the renewal. */
  readonly accessLifetimeMs: number;
}

/** When to renew an access token: a quarter of its lifetime before expiry, at most a minute before. */
export function renewalTime(tokens: Tokens): number {
  const lead = Math.min(TOKEN_REFRESH_LEAD_MAX_MS, tokens.accessLifetimeMs * TOKEN_REFRESH_LEAD_FRACTION);
  return tokens.accessExpiresAt - lead;
}

export interface Account {
  readonly userId: string;
  readonly deviceId: string;
}

/** `hello` → `welcome`: the protocol version and the limits the server announces. */
export async function hello(conn: Connection): Promise<ServerLimits> {
  const f = await conn.request({ t: 'hello', versions: [PROTOCOL_VERSION] }, ['welcome']);
  if (f['version'] !== PROTOCOL_VERSION) throw new SdkError('BAD_RESPONSE', `server chose protocol version ${String(f['version'])}`);
  return readWelcome(f);
}

async function challenge(conn: Connection): Promise<Uint8Array> {
  const f = await conn.request({ t: 'challenge' }, ['challenge']);
  const nonce = typeof f['nonce'] === 'string' ? fromBase64(f['nonce']) : null;
  if (nonce === null || nonce.length !== CHALLENGE_NONCE_BYTES) throw new SdkError('BAD_RESPONSE', 'challenge without a 32-byte nonce');
  return nonce;
}

/** Turn a `session` answer into tokens, checking it is for the device we asked about. */
function sessionTokens(f: Parameters<typeof readSession>[0], account: Account, issuedAt: number): Tokens {
  const s = readSession(f);
  if (s.userId !== account.userId || s.deviceId !== account.deviceId) throw new SdkError('BAD_RESPONSE', `session for ${s.userId}/${s.deviceId}, expected ${account.userId}/${account.deviceId}`);
  if (s.accessToken === null || s.refreshToken === null) throw new SdkError('BAD_RESPONSE', 'session without tokens');
  return { accessToken: s.accessToken, refreshToken: s.refreshToken, accessExpiresAt: issuedAt + s.expiresIn * 1000, accessLifetimeMs: s.expiresIn * 1000 };
}

function authFailed(e: unknown, what: string): unknown {
  // Said only to the removed device's own key: it will never get in again.
  if (SdkError.is(e, 'SERVER') && e.serverCode === 'device_removed') return new SdkError('DEVICE_REMOVED', `${what} refused: this device was removed from its account`, { cause: e, serverCode: e.serverCode });
  if (SdkError.is(e, 'SERVER')) return new SdkError('AUTH_FAILED', `${what} refused: ${e.message}`, { cause: e, ...(e.serverCode !== undefined && { serverCode: e.serverCode }) });
  return e;
}

/** Register a new user with its first device (the connection is then authenticated as that device). */
export async function registerDevice(conn: Connection, identity: IdentityKeyPair, account: Account): Promise<Tokens> {
  const nonce = await challenge(conn);
  const signature = identity.sign(challengeMessage('parley-register-v1', nonce, account.userId, account.deviceId));
  const started = Date.now();
  try {
    const f = await conn.request(
      { t: 'register', userId: account.userId, deviceId: account.deviceId, identityKey: toBase64(identity.publicKey), signature: toBase64(signature) },
      ['session'],
    );
    return sessionTokens(f, account, started);
  } catch (e) {
    const failed = authFailed(e, 'registration');
    // The user and device exist: maybe registered by this very identity, on an
    // attempt whose answer was lost (a tab closed, a connection dropped) — then
    // its login works, and the registration stands. Anyone else's key fails it.
    if (SdkError.is(failed, 'AUTH_FAILED') && failed.serverCode === 'conflict') {
      try {
        return await loginDevice(conn, identity, account);
      } catch {
        throw failed;
      }
    }
    throw failed;
  }
}

/** Log a registered device in by signing a challenge. */
export async function loginDevice(conn: Connection, identity: IdentityKeyPair, account: Account): Promise<Tokens> {
  const nonce = await challenge(conn);
  const signature = identity.sign(challengeMessage('parley-login-v1', nonce, account.userId, account.deviceId));
  const started = Date.now();
  try {
    const f = await conn.request({ t: 'login', userId: account.userId, deviceId: account.deviceId, signature: toBase64(signature) }, ['session']);
    return sessionTokens(f, account, started);
  } catch (e) {
    throw authFailed(e, 'login');
  }
}

/**
 * Authenticate a new connection of a device that logged in before. With
 * `renew`, the access token is replaced even if it is still valid (the
 * renewal before expiry). Falls back from token to refresh token to a
 * challenge signature; each refusal costs the server one failed attempt on
 * this connection, at most two before the signature.
 */
export async function resume(conn: Connection, identity: IdentityKeyPair, account: Account, tokens: Tokens | null, renew: boolean): Promise<Tokens> {
  if (tokens !== null && !renew && Date.now() < renewalTime(tokens)) {
    try {
      const f = await conn.request({ t: 'auth', accessToken: tokens.accessToken }, ['session']);
      const s = readSession(f);
      if (s.userId !== account.userId || s.deviceId !== account.deviceId) throw new SdkError('BAD_RESPONSE', 'auth answered for another device');
      return tokens;
    } catch (e) {
      if (!SdkError.is(e, 'SERVER')) throw e;
    }
  }
  if (tokens !== null) {
    const started = Date.now();
    try {
      const f = await conn.request({ t: 'refresh', refreshToken: tokens.refreshToken }, ['session']);
      return sessionTokens(f, account, started);
    } catch (e) {
      // Refused: spent past the server's grace for a lost answer, or its login revoked. Fall back to the identity key.
      if (!SdkError.is(e, 'SERVER')) throw e;
    }
  }
  return loginDevice(conn, identity, account);
}
