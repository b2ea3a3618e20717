/**
 * Accounts in the SQLite store: users and their devices (identity keys),
 * the refresh tokens sessions are renewed with, each user's key backup and
 * the server's own secrets (the access-token key). Apart from the storage:
 * what authentication reads and writes (v1/authentication.ts,
 * v1/key-backup.ts), none of it touched by rooms or messages.
 *
 * @module
 */
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
import type { SqliteConnection } from './sqlite-connection.ts';
import type { AccountsPart } from './_composed.ts';

export class SqliteAccounts implements AccountsPart {
  readonly #sql: SqliteConnection;

  constructor(sql: SqliteConnection) {
    this.#sql = sql;
  }

  // ---- users and devices ----

  async createUser(user: UserRecord, firstDevice?: DeviceRecord): Promise<boolean> {
    checkFirstDevice(user, firstDevice);
    const sql = 'INSERT INTO users (user_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING';
    return this.#sql.tx(() => {
      if (this.#sql.run(sql, user.userId, user.createdAt) !== 1) return false;
      if (firstDevice !== undefined) this.#insertDevice(firstDevice);
      return true;
    });
  }

  async getUser(userId: string): Promise<UserRecord | null> {
    const r = this.#sql.get<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE user_id = ?`, userId);
    return r ? toUser(r) : null;
  }

  async addDevice(d: DeviceRecord): Promise<boolean> {
    return this.#insertDevice(d);
  }

  #insertDevice(d: DeviceRecord): boolean {
    const sql =
      `INSERT INTO devices (user_id, device_id, identity_key, created_at, session_epoch) SELECT ?, ?, ?, ?, ?
       WHERE NOT EXISTS (SELECT 1 FROM removed_devices WHERE user_id = ? AND device_id = ?) ON CONFLICT DO NOTHING`;
    return this.#sql.run(sql, d.userId, d.deviceId, d.identityKey, d.createdAt, d.sessionEpoch ?? '', d.userId, d.deviceId) === 1;
  }

  async getDevice(userId: string, deviceId: string): Promise<DeviceRecord | null> {
    const sql = `SELECT ${DEVICE_COLUMNS} FROM devices WHERE user_id = ? AND device_id = ?`;
    const r = this.#sql.get<DeviceRow>(sql, userId, deviceId);
    return r ? toDevice(r) : null;
  }

  async listDevices(userId: string): Promise<DeviceRecord[]> {
    const sql = `SELECT ${DEVICE_COLUMNS} FROM devices WHERE user_id = ? ORDER BY device_id`;
    return this.#sql.all<DeviceRow>(sql, userId).map(toDevice);
  }

  async addDeviceWithin(d: DeviceRecord, limits: DeviceLimits): Promise<DeviceAddition> {
    return this.#sql.tx(() => {
      const devices = this.#sql.count('SELECT count(*) AS n FROM devices WHERE user_id = ?', d.userId);
      const removed = this.#sql.count('SELECT count(*) AS n FROM removed_devices WHERE user_id = ?', d.userId);
      const limit = deviceLimit(devices, removed, limits);
      if (limit !== null) return limit;
      return this.#insertDevice(d) ? 'added' : 'taken';
    });
  }

  async removeDevice(userId: string, deviceId: string, removedAt: number): Promise<DeviceRemoval> {
    return this.#sql.tx(() => {
      const device = this.#sql.get<{ key: Uint8Array }>('SELECT identity_key AS key FROM devices WHERE user_id = ? AND device_id = ?', userId, deviceId);
      if (device === undefined) return 'unknown';
      if (this.#sql.count('SELECT count(*) AS n FROM devices WHERE user_id = ?', userId) <= 1) return 'last';
      this.#sql.run('DELETE FROM devices WHERE user_id = ? AND device_id = ?', userId, deviceId);
      for (const table of PER_DEVICE_TABLES) this.#sql.run(`DELETE FROM ${table} WHERE user_id = ? AND device_id = ?`, userId, deviceId);
      this.#sql.run('INSERT INTO removed_devices (user_id, device_id, identity_key, removed_at) VALUES (?, ?, ?, ?)', userId, deviceId, device.key, removedAt);
      return 'removed';
    });
  }

  async removedDeviceKey(userId: string, deviceId: string): Promise<Uint8Array | null> {
    const r = this.#sql.get<{ key: Uint8Array }>('SELECT identity_key AS key FROM removed_devices WHERE user_id = ? AND device_id = ?', userId, deviceId);
    return r === undefined ? null : bytes(r.key);
  }

  async resetSessions(userId: string, epoch: string): Promise<number> {
    return this.#sql.tx(() => {
      this.#sql.run('DELETE FROM refresh_tokens WHERE user_id = ?', userId);
      return this.#sql.run('UPDATE devices SET session_epoch = ? WHERE user_id = ?', epoch, userId);
    });
  }

  // ---- refresh tokens ----

  async putRefreshToken(r: RefreshTokenRecord, familiesMax: number): Promise<boolean> {
    return this.#sql.tx(() => {
      if (this.#sql.count('SELECT count(*) AS n FROM devices WHERE user_id = ? AND device_id = ?', r.userId, r.deviceId) === 0) return false;
      this.#sql.run('DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ? AND expires_at <= ?', r.userId, r.deviceId, r.issuedAt);
      // Each family has one live (unspent) token, issued at its last renewal.
      this.#sql.run(
        `DELETE FROM refresh_tokens WHERE family IN (
           SELECT family FROM refresh_tokens WHERE user_id = ? AND device_id = ? AND spent_at IS NULL
           ORDER BY issued_at DESC, family LIMIT -1 OFFSET ?)`,
        r.userId, r.deviceId, Math.max(0, familiesMax - 1),
      );
      this.#insertRefreshToken(r, r.tokenHash);
      return true;
    });
  }

  #insertRefreshToken(r: RefreshTokenRecord, family: string): void {
    this.#sql.run(
      'INSERT INTO refresh_tokens (token_hash, user_id, device_id, family, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      r.tokenHash, r.userId, r.deviceId, family, r.issuedAt, r.expiresAt,
    );
  }

  async rotateRefreshToken(tokenHash: string, next: RefreshSuccessor, policy: RefreshPolicy): Promise<RefreshRotation> {
    return this.#sql.tx(() => {
      const row = this.#sql.get<RefreshTokenRow>(`SELECT ${REFRESH_ROW_COLUMNS} FROM refresh_tokens WHERE token_hash = ?`, tokenHash);
      const epoch = row === undefined ? undefined : this.#sql.get<{ e: string }>('SELECT session_epoch AS e FROM devices WHERE user_id = ? AND device_id = ?', row.userId, row.deviceId)?.e;
      if (row !== undefined && epoch === undefined) {
        // A token whose device is gone: none renews, and its family goes.
        this.#sql.run('DELETE FROM refresh_tokens WHERE family = ?', row.family);
        return { ok: false, reason: 'unknown' };
      }
      const successor = row?.successor == null ? undefined : this.#sql.get<{ spentAt: number | null }>('SELECT spent_at AS "spentAt" FROM refresh_tokens WHERE token_hash = ?', row.successor);
      let step = rotationStep(row, successor === undefined ? undefined : successor.spentAt, next.issuedAt, policy.graceMs);
      if (row !== undefined && (step.do === 'spend' || step.do === 'replace')) {
        // Spent tokens go once they would have expired; until then each one counts.
        this.#sql.run('DELETE FROM refresh_tokens WHERE family = ? AND spent_at IS NOT NULL AND expires_at <= ?', row.family, next.issuedAt);
        const spent = this.#sql.count('SELECT count(*) AS n FROM refresh_tokens WHERE family = ? AND spent_at IS NOT NULL', row.family);
        step = boundedStep(step, spent, policy.spentKept);
      }
      if (row !== undefined && step.do === 'revoke-family') {
        this.#sql.run('DELETE FROM refresh_tokens WHERE family = ?', row.family);
      } else if (row !== undefined && (step.do === 'spend' || step.do === 'replace')) {
        if (step.do === 'replace') this.#sql.run('UPDATE refresh_tokens SET spent_at = ? WHERE token_hash = ?', next.issuedAt, step.revoke);
        // A replace keeps the first spend's time: the grace counts from it.
        this.#sql.run('UPDATE refresh_tokens SET spent_at = COALESCE(spent_at, ?), successor = ? WHERE token_hash = ?', next.issuedAt, next.tokenHash, tokenHash);
        this.#insertRefreshToken({ ...next, userId: row.userId, deviceId: row.deviceId }, row.family);
      }
      return rotationResult(row, step, epoch ?? '');
    });
  }

  async deleteRefreshTokensOf(userId: string, deviceId: string): Promise<number> {
    return this.#sql.run('DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?', userId, deviceId);
  }

  // ---- key backup ----

  async putKeyBackup(userId: string, r: KeyBackupRecord): Promise<void> {
    this.#sql.run(
      `INSERT INTO key_backups (user_id, backup, auth_hash, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id) DO UPDATE SET backup = excluded.backup, auth_hash = excluded.auth_hash, updated_at = excluded.updated_at`,
      userId, r.backup, r.authHash, r.updatedAt,
    );
  }

  async getKeyBackup(userId: string): Promise<KeyBackupRecord | null> {
    const sql = 'SELECT backup, auth_hash AS "authHash", updated_at AS "updatedAt" FROM key_backups WHERE user_id = ?';
    const r = this.#sql.get<{ backup: Uint8Array; authHash: Uint8Array | null; updatedAt: number }>(sql, userId);
    return r ? { backup: bytes(r.backup), authHash: r.authHash === null ? null : bytes(r.authHash), updatedAt: r.updatedAt } : null;
  }

  // ---- server secrets ----

  async serverSecret(name: string, initial: Uint8Array): Promise<Uint8Array> {
    return this.#sql.tx(() => {
      this.#sql.run('INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', name, initial);
      const row = this.#sql.get<{ value: Uint8Array }>('SELECT value FROM server_secrets WHERE name = ?', name);
      if (row === undefined) throw new Error(`storage: server secret ${name} vanished`);
      return bytes(row.value);
    });
  }
}
