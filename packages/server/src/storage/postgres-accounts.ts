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
  deviceLimit,
  toDevice,
  toUser,
  type DeviceRow,
  type UserRow,
} from './_shared.ts';
import { REFRESH_ROW_COLUMNS, boundedStep, rotationResult, rotationStep, type RefreshTokenRow } from './refresh-rotation.ts';
import type { DeviceAddition, DeviceLimits, DeviceRecord, DeviceRemoval, KeyBackupRecord, RefreshPolicy, RefreshRotation, RefreshSuccessor, RefreshTokenRecord, UserRecord } from './types.ts';
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

  async addDeviceWithin(d: DeviceRecord, limits: DeviceLimits): Promise<DeviceAddition> {
    return this.#sql.tx(async (c) => {
      await this.#lockUserDevices(d.userId, c);
      const devices = await this.#sql.count('SELECT count(*)::int AS n FROM devices WHERE user_id = $1', [d.userId], c);
      const removed = await this.#sql.count('SELECT count(*)::int AS n FROM removed_devices WHERE user_id = $1', [d.userId], c);
      const limit = deviceLimit(devices, removed, limits);
      if (limit !== null) return limit;
      return (await this.#insertDevice(d, c)) ? 'added' : 'taken';
    });
  }

  async removeDevice(userId: string, deviceId: string, removedAt: number): Promise<DeviceRemoval> {
    return this.#sql.tx(async (c) => {
      // Changes to one user's devices one at a time (on every process), so the last one always stays.
      await this.#lockUserDevices(userId, c);
      // The device's logins one at a time with its removal (putRefreshToken takes the same lock).
      await this.#lockDevice(userId, deviceId, c);
      await this.#lockFamiliesOf(userId, deviceId, c);
      const device = await this.#sql.one<{ key: Uint8Array }>('SELECT identity_key AS key FROM devices WHERE user_id = $1 AND device_id = $2', [userId, deviceId], c);
      if (device === undefined) return 'unknown';
      if ((await this.#sql.count('SELECT count(*)::int AS n FROM devices WHERE user_id = $1', [userId], c)) <= 1) return 'last';
      await this.#sql.query('DELETE FROM devices WHERE user_id = $1 AND device_id = $2', [userId, deviceId], c);
      for (const table of PER_DEVICE_TABLES) await this.#sql.query(`DELETE FROM ${table} WHERE user_id = $1 AND device_id = $2`, [userId, deviceId], c);
      await this.#sql.query('INSERT INTO removed_devices (user_id, device_id, identity_key, removed_at) VALUES ($1, $2, $3, $4)', [userId, deviceId, device.key, removedAt], c);
      return 'removed';
    });
  }

  async removedDeviceKey(userId: string, deviceId: string): Promise<Uint8Array | null> {
    const r = await this.#sql.one<{ key: Uint8Array }>('SELECT identity_key AS key FROM removed_devices WHERE user_id = $1 AND device_id = $2', [userId, deviceId]);
    return r === undefined ? null : bytes(r.key);
  }

  async #lockUserDevices(userId: string, c: pg.PoolClient): Promise<void> {
    await this.#sql.query("SELECT pg_advisory_xact_lock(hashtextextended('parley:devices:' || $1, 0))", [userId], c);
  }

  async resetSessions(userId: string, epoch: string): Promise<number> {
    return this.#sql.tx(async (c) => {
      await this.#lockFamiliesOf(userId, null, c);
      await this.#sql.query('DELETE FROM refresh_tokens WHERE user_id = $1', [userId], c);
      return this.#sql.changed('UPDATE devices SET session_epoch = $1 WHERE user_id = $2', [epoch, userId], c);
    });
  }

  // ---- refresh tokens ----

  // A family's rotations take its advisory lock first, so two of them (or a
  // rotation and a login dropping the family) never wait on each other's rows.

  async putRefreshToken(r: RefreshTokenRecord, familiesMax: number): Promise<boolean> {
    return this.#sql.tx(async (c) => {
      // Logins of one device one at a time: each picks the families to drop from what the last committed.
      // A removal takes the same lock, so the device is checked under it.
      await this.#lockDevice(r.userId, r.deviceId, c);
      if ((await this.#sql.count('SELECT count(*) AS n FROM devices WHERE user_id = $1 AND device_id = $2', [r.userId, r.deviceId], c)) === 0) return new Rollback(false);
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
      return true;
    });
  }

  async #lockDevice(userId: string, deviceId: string, c: pg.PoolClient): Promise<void> {
    await this.#sql.query("SELECT pg_advisory_xact_lock(hashtextextended('parley:refresh-device:' || $1 || '/' || $2, 0))", [userId, deviceId], c);
  }

  /**
   * Take the locks of every family of the user (of one device): a rotation
   * under way then commits first, and the DELETE that follows sees the
   * successor it stored — none outlives a removal or a sign-out.
   */
  async #lockFamiliesOf(userId: string, deviceId: string | null, c: pg.PoolClient): Promise<void> {
    const rows = deviceId === null
      ? await this.#sql.query<{ family: string }>('SELECT DISTINCT family FROM refresh_tokens WHERE user_id = $1', [userId], c)
      : await this.#sql.query<{ family: string }>('SELECT DISTINCT family FROM refresh_tokens WHERE user_id = $1 AND device_id = $2', [userId, deviceId], c);
    for (const f of rows.rows.map((r) => r.family).sort()) await this.#lockFamily(f, c);
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
      // Read under the family lock, which a sign-out takes before it changes the epoch.
      const epoch = row === undefined ? undefined : (await this.#sql.one<{ e: string }>('SELECT session_epoch AS e FROM devices WHERE user_id = $1 AND device_id = $2', [row.userId, row.deviceId], c))?.e;
      if (row !== undefined && epoch === undefined) {
        // A token whose device is gone: none renews, and its family goes.
        await this.#sql.query('DELETE FROM refresh_tokens WHERE family = $1', [row.family], c);
        return { ok: false, reason: 'unknown' } as const;
      }
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
      return rotationResult(row, step, epoch ?? '');
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
