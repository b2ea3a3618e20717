/**
 * Accounts in the PostgreSQL store: users and their devices (identity
 * keys), the refresh tokens sessions are renewed with (each taken once, by
 * a DELETE … RETURNING), each user's key backup and the server's own
 * secrets (the access-token key). Apart from the storage: what
 * authentication reads and writes (v1/authentication.ts,
 * v1/key-backup.ts), none of it touched by rooms or messages.
 *
 * @module
 */
import type pg from 'pg';
import {
  DEVICE_COLUMNS,
  PER_DEVICE_TABLES,
  USER_COLUMNS,
  bytes,
  checkFirstDevice,
  toDevice,
  toUser,
  type DeviceRow,
  type UserRow,
} from './_shared.ts';
import { REFRESH_ROW_COLUMNS, boundedStep, rotationResult, rotationStep, type RefreshTokenRow } from './refresh-rotation.ts';
import type { DeviceRecord, KeyBackupRecord, RefreshPolicy, RefreshRotation, RefreshSuccessor, RefreshTokenRecord, UserRecord } from './types.ts';
import { Rollback, type PostgresConnection } from './postgres-connection.ts';
import type { AccountsPart } from './_composed.ts';

export class PostgresAccounts implements AccountsPart {
  readonly #sql: PostgresConnection;

  constructor(sql: PostgresConnection) {
    this.#sql = sql;
  }

  // ---- users and devices ----

  async createUser(user: UserRecord, firstDevice?: DeviceRecord): Promise<boolean> {
    checkFirstDevice(user, firstDevice);
    const sql = 'INSERT INTO users (user_id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING';
    if (firstDevice === undefined) return (await this.#sql.changed(sql, [user.userId, user.createdAt])) === 1;
    return this.#sql.tx(async (c) => {
      if ((await this.#sql.changed(sql, [user.userId, user.createdAt], c)) !== 1) return new Rollback(false);
      await this.#insertDevice(firstDevice, c);
      return true;
    });
  }

  async getUser(userId: string): Promise<UserRecord | null> {
    const r = await this.#sql.one<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE user_id = $1`, [userId]);
    return r ? toUser(r) : null;
  }

  async addDevice(d: DeviceRecord): Promise<boolean> {
    return this.#insertDevice(d);
  }

  async #insertDevice(d: DeviceRecord, c?: pg.PoolClient): Promise<boolean> {
    const sql =
      `INSERT INTO devices (user_id, device_id, identity_key, created_at, session_epoch) SELECT $1, $2, $3::bytea, $4::bigint, $5
       WHERE NOT EXISTS (SELECT 1 FROM removed_devices WHERE user_id = $1 AND device_id = $2) ON CONFLICT DO NOTHING`;
    return (await this.#sql.changed(sql, [d.userId, d.deviceId, d.identityKey, d.createdAt, d.sessionEpoch ?? ''], c)) === 1;
  }

  async getDevice(userId: string, deviceId: string): Promise<DeviceRecord | null> {
    const sql = `SELECT ${DEVICE_COLUMNS} FROM devices WHERE user_id = $1 AND device_id = $2`;
    const r = await this.#sql.one<DeviceRow>(sql, [userId, deviceId]);
    return r ? toDevice(r) : null;
  }

  async listDevices(userId: string): Promise<DeviceRecord[]> {
    const sql = `SELECT ${DEVICE_COLUMNS} FROM devices WHERE user_id = $1 ORDER BY device_id`;
    return (await this.#sql.query<DeviceRow>(sql, [userId])).rows.map(toDevice);
  }

  async removeDevice(userId: string, deviceId: string, removedAt: number): Promise<boolean> {
    return this.#sql.tx(async (c) => {
      // The device's logins one at a time with its removal (putRefreshToken takes the same lock).
      await this.#sql.query("SELECT pg_advisory_xact_lock(hashtextextended('parley:refresh-device:' || $1 || '/' || $2, 0))", [userId, deviceId], c);
      if ((await this.#sql.changed('DELETE FROM devices WHERE user_id = $1 AND device_id = $2', [userId, deviceId], c)) !== 1) return new Rollback(false);
      for (const table of PER_DEVICE_TABLES) await this.#sql.query(`DELETE FROM ${table} WHERE user_id = $1 AND device_id = $2`, [userId, deviceId], c);
      await this.#sql.query('INSERT INTO removed_devices (user_id, device_id, removed_at) VALUES ($1, $2, $3)', [userId, deviceId, removedAt], c);
      return true;
    });
  }

  async countRemovedDevices(userId: string): Promise<number> {
    return this.#sql.count('SELECT count(*) AS n FROM removed_devices WHERE user_id = $1', [userId]);
  }

  async resetSessions(userId: string, epoch: string): Promise<number> {
    return this.#sql.tx(async (c) => {
      await this.#sql.query('DELETE FROM refresh_tokens WHERE user_id = $1', [userId], c);
      return this.#sql.changed('UPDATE devices SET session_epoch = $1 WHERE user_id = $2', [epoch, userId], c);
    });
  }

  // ---- refresh tokens ----

  // A family's rotations take its advisory lock first, so two of them (or a
  // rotation and a login dropping the family) never wait on each other's rows.

  async putRefreshToken(r: RefreshTokenRecord, familiesMax: number): Promise<void> {
    await this.#sql.tx(async (c) => {
      // Logins of one device one at a time: each picks the families to drop from what the last committed.
      await this.#sql.query("SELECT pg_advisory_xact_lock(hashtextextended('parley:refresh-device:' || $1 || '/' || $2, 0))", [r.userId, r.deviceId], c);
      await this.#sql.query('DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2 AND expires_at <= $3', [r.userId, r.deviceId, r.issuedAt], c);
      // Each family has one live (unspent) token, issued at its last renewal.
      const dropped = await this.#sql.query<{ family: string }>(
        `SELECT family FROM refresh_tokens WHERE user_id = $1 AND device_id = $2 AND spent_at IS NULL
         ORDER BY issued_at DESC, family OFFSET $3`,
        [r.userId, r.deviceId, Math.max(0, familiesMax - 1)], c,
      );
      const families = dropped.rows.map((d) => d.family).sort();
      for (const f of families) await this.#lockFamily(f, c);
      if (families.length > 0) await this.#sql.query('DELETE FROM refresh_tokens WHERE family = ANY($1)', [families], c);
      await this.#insertRefreshToken(r, r.tokenHash, c);
    });
  }

  async #lockFamily(family: string, c: pg.PoolClient): Promise<void> {
    await this.#sql.query("SELECT pg_advisory_xact_lock(hashtextextended('parley:refresh:' || $1, 0))", [family], c);
  }

  async #insertRefreshToken(r: RefreshTokenRecord, family: string, c: pg.PoolClient): Promise<void> {
    await this.#sql.query(
      'INSERT INTO refresh_tokens (token_hash, user_id, device_id, family, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)',
      [r.tokenHash, r.userId, r.deviceId, family, r.issuedAt, r.expiresAt], c,
    );
  }

  async rotateRefreshToken(tokenHash: string, next: RefreshSuccessor, policy: RefreshPolicy): Promise<RefreshRotation> {
    return this.#sql.tx(async (c) => {
      const select = `SELECT ${REFRESH_ROW_COLUMNS} FROM refresh_tokens WHERE token_hash = $1`;
      const seen = await this.#sql.one<RefreshTokenRow>(select, [tokenHash], c);
      if (seen !== undefined) await this.#lockFamily(seen.family, c);
      // Read again under the lock: a rotation that held it has committed.
      const row = seen === undefined ? undefined : await this.#sql.one<RefreshTokenRow>(select, [tokenHash], c);
      const successor = row?.successor == null ? undefined : await this.#sql.one<{ spentAt: number | null }>('SELECT spent_at AS "spentAt" FROM refresh_tokens WHERE token_hash = $1', [row.successor], c);
      let step = rotationStep(row, successor === undefined ? undefined : successor.spentAt, next.issuedAt, policy.graceMs);
      if (row !== undefined && (step.do === 'spend' || step.do === 'replace')) {
        // Spent tokens go once they would have expired; until then each one counts.
        await this.#sql.query('DELETE FROM refresh_tokens WHERE family = $1 AND spent_at IS NOT NULL AND expires_at <= $2', [row.family, next.issuedAt], c);
        const spent = await this.#sql.count('SELECT count(*)::int AS n FROM refresh_tokens WHERE family = $1 AND spent_at IS NOT NULL', [row.family], c);
        step = boundedStep(step, spent, policy.spentKept);
      }
      if (row !== undefined && step.do === 'revoke-family') {
        await this.#sql.query('DELETE FROM refresh_tokens WHERE family = $1', [row.family], c);
      } else if (row !== undefined && (step.do === 'spend' || step.do === 'replace')) {
        if (step.do === 'replace') await this.#sql.query('UPDATE refresh_tokens SET spent_at = $1 WHERE token_hash = $2', [next.issuedAt, step.revoke], c);
        // A replace keeps the first spend's time: the grace counts from it.
        await this.#sql.query('UPDATE refresh_tokens SET spent_at = COALESCE(spent_at, $1), successor = $2 WHERE token_hash = $3', [next.issuedAt, next.tokenHash, tokenHash], c);
        await this.#insertRefreshToken({ ...next, userId: row.userId, deviceId: row.deviceId }, row.family, c);
      }
      return rotationResult(row, step);
    });
  }

  async deleteRefreshTokensOf(userId: string, deviceId: string): Promise<number> {
    return this.#sql.changed('DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2', [userId, deviceId]);
  }

  // ---- key backup ----

  async putKeyBackup(userId: string, r: KeyBackupRecord): Promise<void> {
    await this.#sql.query(
      `INSERT INTO key_backups (user_id, backup, auth_hash, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (user_id) DO UPDATE SET backup = excluded.backup, auth_hash = excluded.auth_hash, updated_at = excluded.updated_at`,
      [userId, r.backup, r.authHash, r.updatedAt],
    );
  }

  async getKeyBackup(userId: string): Promise<KeyBackupRecord | null> {
    const sql = 'SELECT backup, auth_hash AS "authHash", updated_at AS "updatedAt" FROM key_backups WHERE user_id = $1';
    const r = await this.#sql.one<{ backup: Uint8Array; authHash: Uint8Array | null; updatedAt: number | string }>(sql, [userId]);
    return r ? { backup: bytes(r.backup), authHash: r.authHash === null ? null : bytes(r.authHash), updatedAt: Number(r.updatedAt) } : null;
  }

  // ---- server secrets ----

  async serverSecret(name: string, initial: Uint8Array): Promise<Uint8Array> {
    await this.#sql.query('INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, initial]);
    const row = await this.#sql.one<{ value: Uint8Array }>('SELECT value FROM server_secrets WHERE name = $1', [name]);
    if (row === undefined) throw new Error(`storage: server secret ${name} vanished`);
    return bytes(row.value);
  }
}
