/**
 * Authentication over v1 (docs/protocol.md, "Authentication"): the frames
 * that make a connection a session of one device — `challenge`, then
 * `register` or `login` signed over its nonce, or `auth` with an access
 * token, or `refresh`. The signatures and tokens themselves are auth.ts's;
 * adding and removing devices is devices.ts's.
 *
 * One `Authentication` per connection holds what these frames share: the
 * single-use nonce and the failed attempts, which close the connection at
 * LOGIN_ATTEMPTS_MAX. Apart from the connection: it is the way in, with
 * state of its own, while the connection handles every frame of a session.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import {
  CHALLENGE_BYTES,
  LOGIN_ATTEMPTS_MAX,
  REFRESH_FAMILIES_PER_DEVICE_MAX,
  REFRESH_REUSE_GRACE_MS,
  REFRESH_SPENT_KEPT_PER_FAMILY,
  REFRESH_TOKEN_TTL_S,
} from '../limits.ts';
import { hashToken, newRefreshToken, newSessionEpoch, signedChallenge, verifyEd25519 } from './auth.ts';
import type { V1Deps } from './context.ts';
import type { Auth, Challenge, ErrorCode, Login, Refresh, Register } from './frames.ts';
import { CLOSE_V1 } from './settings.ts';

/**
 * What a session starts with: new tokens, or the access token it was
 * opened with (expiry in seconds) — and the device's session epoch they
 * rest on (null: a host token's, which has none).
 */
export type SessionTokens =
  | { kind: 'issued'; accessToken: string; refreshToken: string; expiresIn: number; epoch: string }
  | { kind: 'presented'; expiresAt: number; epoch: string | null };

/** What authentication needs of its connection. */
export interface AuthHost {
  readonly deps: V1Deps;
  /** The peer's address: failed logins are counted per user and address. */
  readonly address: string;
  /** Whether the connection is a session already (a second one is refused). */
  authenticated(): boolean;
  send(frame: Record<string, unknown>): void;
  error(re: string | undefined, code: ErrorCode, message: string): void;
  close(code: number, reason: string): void;
  /** Make the connection a session of the device and answer `session`. */
  startSession(re: string | undefined, userId: string, deviceId: string, tokens: SessionTokens): Promise<void>;
}

/** A valid Ed25519 public key (the base point) to verify against when the device is unknown. */
const STAND_IN_KEY = new Uint8Array(Buffer.from('5866666666666666666666666666666666666666666666666666666666666666', 'hex'));

export class Authentication {
  readonly #c: AuthHost;
  #nonce: Uint8Array | null = null;
  #loginFailures = 0;

  constructor(host: AuthHost) {
    this.#c = host;
  }

  onChallenge(f: z.infer<typeof Challenge>): void {
    this.#nonce = new Uint8Array(randomBytes(CHALLENGE_BYTES));
    this.#c.send({ t: 'challenge', ...(f.id !== undefined && { re: f.id }), nonce: Buffer.from(this.#nonce).toString('base64') });
  }

  /** Take the connection's nonce (single use). */
  #takeNonce(): Uint8Array | null {
    const n = this.#nonce;
    this.#nonce = null;
    return n;
  }

  failLogin(re: string | undefined, message: string, code: 'invalid_credentials' | 'device_removed' = 'invalid_credentials'): void {
    this.#loginFailures++;
    this.#c.error(re, code, message);
    if (this.#loginFailures >= LOGIN_ATTEMPTS_MAX) this.#c.close(CLOSE_V1.POLICY, 'too many failed attempts');
  }

  async onRegister(f: z.infer<typeof Register>): Promise<void> {
    const c = this.#c;
    if (c.authenticated()) return c.error(f.id, 'bad_frame', 'already authenticated');
    const nonce = this.#takeNonce();
    if (nonce === null) return this.failLogin(f.id, 'ask for a challenge first');
    if (!verifyEd25519(f.identityKey, signedChallenge('parley-register-v1', nonce, f.userId, f.deviceId), f.signature)) {
      return this.failLogin(f.id, 'signature does not verify');
    }
    const now = Date.now();
    const device = { userId: f.userId, deviceId: f.deviceId, identityKey: f.identityKey, createdAt: now, sessionEpoch: newSessionEpoch() };
    if (!(await c.deps.storage.createUser({ userId: f.userId, createdAt: now }, device))) return c.error(f.id, 'conflict', 'user id taken');
    c.deps.log.info({ userId: f.userId, deviceId: f.deviceId }, 'user registered');
    await this.#loggedIn(f.id, f.userId, f.deviceId);
  }

  async onLogin(f: z.infer<typeof Login>): Promise<void> {
    const c = this.#c;
    if (c.authenticated()) return c.error(f.id, 'bad_frame', 'already authenticated');
    const nonce = this.#takeNonce();
    if (nonce === null) return this.failLogin(f.id, 'ask for a challenge first');
    // Per user *and address*: a login proves possession of the device key, so
    // failures guess nothing; counting them per user alone would let anyone
    // lock a user out by sending bad signatures in their name.
    const failureKey = `${f.userId}@${c.address}`;
    // The try counts as a failure from here until it succeeds (concurrent tries each take a place).
    const attempt = await c.deps.loginFailures.begin(failureKey);
    if (attempt === null) return c.error(f.id, 'rate_limited', 'too many failed logins for this user from this address; wait a minute');
    const device = await c.deps.storage.getDevice(f.userId, f.deviceId);
    const removedKey = device === null ? await c.deps.storage.removedDeviceKey(f.userId, f.deviceId) : null;
    // An unknown device costs a verification too, so the answer's timing does not tell which devices exist.
    const verified = verifyEd25519(device?.identityKey ?? removedKey ?? STAND_IN_KEY, signedChallenge('parley-login-v1', nonce, f.userId, f.deviceId), f.signature);
    // Only the removed device's own key learns that it was removed (so it stops trying).
    if (removedKey !== null && verified) return this.failLogin(f.id, 'this device was removed from its account', 'device_removed');
    if (device === null || !verified) return this.failLogin(f.id, 'unknown device or bad signature');
    await attempt.succeeded();
    await this.#loggedIn(f.id, f.userId, f.deviceId);
  }

  /** Start the session of a device that just proved its key, with a new login's tokens. */
  async #loggedIn(re: string | undefined, userId: string, deviceId: string): Promise<void> {
    const tokens = await this.#newLogin(userId, deviceId);
    // Removed between the check and now.
    if (tokens === null) return this.failLogin(re, 'unknown device or bad signature');
    await this.#c.startSession(re, userId, deviceId, tokens);
  }

  async onAuth(f: z.infer<typeof Auth>): Promise<void> {
    const c = this.#c;
    if (c.authenticated()) return c.error(f.id, 'bad_frame', 'already authenticated');
    const r = await c.deps.tokens.check(f.accessToken);
    if (!r.ok) return r.reason === 'expired' ? c.error(f.id, 'token_expired', 'access token expired') : this.failLogin(f.id, 'invalid access token');
    const device = await c.deps.storage.getDevice(r.claims.userId, r.claims.deviceId);
    if (device === null) {
      // A token this server issued to the device is its word that it is that device.
      const removed = r.claims.epoch !== null && (await c.deps.storage.removedDeviceKey(r.claims.userId, r.claims.deviceId)) !== null;
      return removed ? this.failLogin(f.id, 'this device was removed from its account', 'device_removed') : this.failLogin(f.id, 'unknown device');
    }
    // Issued before the user signed out everywhere (`sessions.revoke`).
    if (r.claims.epoch !== null && r.claims.epoch !== device.sessionEpoch) return this.failLogin(f.id, 'access token signed out');
    await c.startSession(f.id, r.claims.userId, r.claims.deviceId, { kind: 'presented', expiresAt: r.claims.expiresAt, epoch: r.claims.epoch });
  }

  /** Renew with a refresh token: rotated, a reused one revoking its login (storage/refresh-rotation.ts). */
  async onRefresh(f: z.infer<typeof Refresh>): Promise<void> {
    const c = this.#c;
    if (c.authenticated()) return c.error(f.id, 'bad_frame', 'already authenticated');
    const next = newRefreshToken();
    const now = Date.now();
    const successor = { tokenHash: next.hash, issuedAt: now, expiresAt: now + REFRESH_TOKEN_TTL_S * 1000 };
    const policy = { graceMs: REFRESH_REUSE_GRACE_MS, spentKept: REFRESH_SPENT_KEPT_PER_FAMILY };
    const r = await c.deps.storage.rotateRefreshToken(hashToken(f.refreshToken), successor, policy);
    if (!r.ok) {
      // Two holders of one token, or renewals faster than any client makes: worth an operator's eye (no token or hash in the log).
      if (r.reason === 'reused') c.deps.log.warn({ userId: r.userId, deviceId: r.deviceId, address: c.address }, 'spent refresh token presented again; its login is revoked');
      if (r.reason === 'exhausted') c.deps.log.warn({ userId: r.userId, deviceId: r.deviceId, address: c.address }, 'a login renewed more often than REFRESH_SPENT_KEPT_PER_FAMILY allows; it is revoked');
      return this.failLogin(f.id, 'refresh token not valid');
    }
    // The epoch the rotation saw: a sign-out committed since makes this session end as it starts.
    await c.startSession(f.id, r.userId, r.deviceId, await this.#tokens(r.userId, r.deviceId, next.token, r.epoch));
  }

  /** A login's tokens: a new access token and the first refresh token of a new family; null if the device is gone. */
  async #newLogin(userId: string, deviceId: string): Promise<(SessionTokens & { kind: 'issued' }) | null> {
    const refresh = newRefreshToken();
    const now = Date.now();
    const record = { tokenHash: refresh.hash, userId, deviceId, issuedAt: now, expiresAt: now + REFRESH_TOKEN_TTL_S * 1000 };
    if (!(await this.#c.deps.storage.putRefreshToken(record, REFRESH_FAMILIES_PER_DEVICE_MAX))) return null;
    // A key login: the device's epoch now (a sign-out does not end what the key proves).
    const device = await this.#c.deps.storage.getDevice(userId, deviceId);
    if (device === null) return null;
    return this.#tokens(userId, deviceId, refresh.token, device.sessionEpoch ?? '');
  }

  async #tokens(userId: string, deviceId: string, refreshToken: string, epoch: string): Promise<SessionTokens & { kind: 'issued' }> {
    const access = await this.#c.deps.tokens.issue(userId, deviceId, epoch);
    return { kind: 'issued', accessToken: access.token, refreshToken, expiresIn: access.expiresIn, epoch };
  }
}
