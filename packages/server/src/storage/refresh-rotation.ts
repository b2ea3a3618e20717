/**
 * Refresh-token rotation with reuse detection, the policy both backends
 * apply inside one transaction (docs/protocol.md, "Refresh").
 *
 * Every login starts a *family*, named by the hash of its first refresh
 * token. Renewing spends the presented token and stores its successor in
 * the same family. A spent token presented again means one of two things:
 *
 * - the client never got its `session` answer (the connection dropped
 *   under it): within the grace period of the spend, and while the
 *   successor has never been used, the successor is revoked and a new one
 *   issued — the client renews instead of logging in again;
 * - two parties hold the same token: it was copied. Every token of the
 *   family is revoked, so the copy and the original both stop renewing and
 *   only the holder of the device key gets back in (`login`).
 *
 * A revoked successor is kept as spent, with no successor of its own: if it
 * was delivered after all, whoever presents it revokes the family.
 *
 * What a family holds is bounded: its live token and its spent ones until
 * they expire, at most `spentKept` — a family that would keep more renews
 * faster than any client needs and is revoked (never are spent tokens
 * forgotten early: renewing quickly would then push the owner's spent
 * token out, and a copy would never be caught). A device keeps at most
 * `familiesMax` logins (a new one drops the family renewed least recently,
 * and expired tokens of the device go with it).
 *
 * @module
 */

/** The outcome of presenting a refresh token. */
export type RefreshRotation =
  /** `epoch`: the device's session epoch as the rotation saw it (a sign-out that follows changes it; the session checks). */
  | { ok: true; userId: string; deviceId: string; epoch: string }
  /**
   * `reused`: a spent token outside its grace; `exhausted`: the family keeps
   * `spentKept` spent tokens already. Either way the family is revoked, and
   * whose it was is said (for the log).
   */
  | { ok: false; reason: 'reused' | 'exhausted'; userId: string; deviceId: string }
  /** `unknown` also when the token's device is gone (its family is then deleted). */
  | { ok: false; reason: 'unknown' | 'expired' };

/** The token issued in place of the presented one. */
export interface RefreshSuccessor {
  tokenHash: string;
  /** Now, in ms: when the presented token is spent and the successor issued. */
  issuedAt: number;
  expiresAt: number;
}

/** The bounds and grace a rotation applies (server limits.ts). */
export interface RefreshPolicy {
  graceMs: number;
  spentKept: number;
}

/** A stored token as rotation reads it. */
export interface RefreshTokenRow {
  tokenHash: string;
  userId: string;
  deviceId: string;
  family: string;
  expiresAt: number;
  spentAt: number | null;
  successor: string | null;
}

export const REFRESH_ROW_COLUMNS =
  'token_hash AS "tokenHash", user_id AS "userId", device_id AS "deviceId", family, expires_at AS "expiresAt", ' +
  'spent_at AS "spentAt", successor';

/** What the backend does for one presented token. */
export type RotationStep =
  | { do: 'refuse'; reason: 'unknown' | 'expired' }
  /** First use: mark it spent, store the successor. */
  | { do: 'spend' }
  /** A lost answer: mark the unused successor `revoke` spent, store a new successor. */
  | { do: 'replace'; revoke: string }
  /** Reuse, or too many spent tokens: delete every token of the family. */
  | { do: 'revoke-family'; exhausted?: true };

/**
 * Decides the step for `row` (undefined: no such token). `successorSpentAt`
 * is the successor's `spent_at` (null: live; undefined: no successor row).
 */
export function rotationStep(
  row: RefreshTokenRow | undefined,
  successorSpentAt: number | null | undefined,
  now: number,
  graceMs: number,
): RotationStep {
  if (row === undefined) return { do: 'refuse', reason: 'unknown' };
  if (row.expiresAt <= now) return { do: 'refuse', reason: 'expired' };
  if (row.spentAt === null) return { do: 'spend' };
  // Grace counts from the first spend, so retries cannot stretch it.
  if (row.successor !== null && successorSpentAt === null && now - row.spentAt <= graceMs) {
    return { do: 'replace', revoke: row.successor };
  }
  return { do: 'revoke-family' };
}

/** A renewal of a family that keeps `spentCount` unexpired spent tokens already: revoked past `spentKept`. */
export function boundedStep(step: RotationStep, spentCount: number, spentKept: number): RotationStep {
  return (step.do === 'spend' || step.do === 'replace') && spentCount >= spentKept ? { do: 'revoke-family', exhausted: true } : step;
}

/** The answer a step gives (after the backend has applied it). */
export function rotationResult(row: RefreshTokenRow | undefined, step: RotationStep, epoch: string): RefreshRotation {
  if (step.do === 'refuse' || row === undefined) return { ok: false, reason: step.do === 'refuse' ? step.reason : 'unknown' };
  if (step.do === 'revoke-family') return { ok: false, reason: step.exhausted === true ? 'exhausted' : 'reused', userId: row.userId, deviceId: row.deviceId };
  return { ok: true, userId: row.userId, deviceId: row.deviceId, epoch };
}
