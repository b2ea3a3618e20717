/**
 * The public-key directory in the SQLite store (v1/key-directory.ts): per
 * device a signed prekey, a post-quantum prekey, one-time prekeys and MLS
 * KeyPackages, the last two each handed out once (one DELETE … RETURNING
 * per claim). Apart from the storage: tables of their own, read and written
 * by the key directory alone. Every write checks, in its transaction, that
 * the device exists (`SqliteConnection.deviceTx`): none outlives a removal.
 *
 * @module
 */
import {
  KEY_PACKAGE_COLUMNS,
  ONE_TIME_PREKEY_COLUMNS,
  SIGNED_PREKEY_COLUMNS,
  sortedKeyPackages,
  sortedPrekeys,
  toKeyPackage,
  toOneTimePrekey,
  toSignedPrekey,
  type KeyPackageRow,
  type OneTimePrekeyRow,
  type SignedPrekeyRow,
} from './_shared.ts';
import type { KeyPackage, OneTimePrekey, PqPrekey, SignedPrekey } from './types.ts';
import type { SqliteConnection } from './sqlite-connection.ts';
import type { KeyDirectoryPart } from './_composed.ts';

export class SqliteKeyDirectory implements KeyDirectoryPart {
  readonly #sql: SqliteConnection;

  constructor(sql: SqliteConnection) {
    this.#sql = sql;
  }

  async setSignedPrekey(userId: string, deviceId: string, p: SignedPrekey): Promise<void> {
    this.#sql.deviceTx(userId, deviceId, () => this.#sql.run(
      `INSERT INTO signed_prekeys (user_id, device_id, key_id, public_key, signature) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (user_id, device_id) DO UPDATE
       SET key_id = excluded.key_id, public_key = excluded.public_key, signature = excluded.signature`,
      userId, deviceId, p.keyId, p.publicKey, p.signature,
    ));
  }

  async getSignedPrekey(userId: string, deviceId: string): Promise<SignedPrekey | null> {
    const sql = `SELECT ${SIGNED_PREKEY_COLUMNS} FROM signed_prekeys WHERE user_id = ? AND device_id = ?`;
    const r = this.#sql.get<SignedPrekeyRow>(sql, userId, deviceId);
    return r ? toSignedPrekey(r) : null;
  }

  async addOneTimePrekeys(userId: string, deviceId: string, prekeys: readonly OneTimePrekey[]): Promise<number> {
    const insert =
      'INSERT INTO one_time_prekeys (user_id, device_id, key_id, public_key) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING';
    return this.#sql.deviceTx(userId, deviceId, () => {
      for (const p of sortedPrekeys(prekeys)) this.#sql.run(insert, userId, deviceId, p.keyId, p.publicKey);
      return this.#countOneTimePrekeys(userId, deviceId);
    });
  }

  async replaceOneTimePrekeys(userId: string, deviceId: string, prekeys: readonly OneTimePrekey[]): Promise<{ dropped: number; held: number }> {
    const insert = 'INSERT INTO one_time_prekeys (user_id, device_id, key_id, public_key) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING';
    return this.#sql.deviceTx(userId, deviceId, () => {
      const dropped = this.#sql.run('DELETE FROM one_time_prekeys WHERE user_id = ? AND device_id = ?', userId, deviceId);
      for (const p of sortedPrekeys(prekeys)) this.#sql.run(insert, userId, deviceId, p.keyId, p.publicKey);
      return { dropped, held: this.#countOneTimePrekeys(userId, deviceId) };
    });
  }

  #countOneTimePrekeys(userId: string, deviceId: string): number {
    const sql = 'SELECT count(*) AS n FROM one_time_prekeys WHERE user_id = ? AND device_id = ?';
    return this.#sql.count(sql, userId, deviceId);
  }

  async countOneTimePrekeys(userId: string, deviceId: string): Promise<number> {
    return this.#countOneTimePrekeys(userId, deviceId);
  }

  async countStoredOneTimePrekeys(userId: string, deviceId: string, keyIds: readonly number[]): Promise<number> {
    const sql = 'SELECT count(*) AS n FROM one_time_prekeys WHERE user_id = ? AND device_id = ? AND key_id IN (SELECT value FROM json_each(?))';
    return this.#sql.count(sql, userId, deviceId, JSON.stringify(keyIds));
  }

  async claimOneTimePrekey(userId: string, deviceId: string): Promise<OneTimePrekey | null> {
    // One statement: SQLite makes all of a DELETE … RETURNING's changes in
    // its first step, under the write lock, so no two calls get the same key.
    const r = this.#sql.get<OneTimePrekeyRow>(
      `DELETE FROM one_time_prekeys
       WHERE rowid = (SELECT rowid FROM one_time_prekeys WHERE user_id = ? AND device_id = ? ORDER BY key_id LIMIT 1)
       RETURNING ${ONE_TIME_PREKEY_COLUMNS}`,
      userId, deviceId,
    );
    return r ? toOneTimePrekey(r) : null;
  }

  async setPqPrekey(userId: string, deviceId: string, p: PqPrekey): Promise<void> {
    this.#sql.deviceTx(userId, deviceId, () => this.#sql.run(
      `INSERT INTO pq_prekeys (user_id, device_id, key_id, public_key, signature) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (user_id, device_id) DO UPDATE
       SET key_id = excluded.key_id, public_key = excluded.public_key, signature = excluded.signature`,
      userId, deviceId, p.keyId, p.publicKey, p.signature,
    ));
  }

  async getPqPrekey(userId: string, deviceId: string): Promise<PqPrekey | null> {
    const sql = `SELECT ${SIGNED_PREKEY_COLUMNS} FROM pq_prekeys WHERE user_id = ? AND device_id = ?`;
    const r = this.#sql.get<SignedPrekeyRow>(sql, userId, deviceId);
    return r ? toSignedPrekey(r) : null;
  }

  async addKeyPackages(userId: string, deviceId: string, packages: readonly KeyPackage[]): Promise<number> {
    const insert = 'INSERT INTO key_packages (user_id, device_id, ref, data, signature) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING';
    return this.#sql.deviceTx(userId, deviceId, () => {
      for (const p of sortedKeyPackages(packages)) this.#sql.run(insert, userId, deviceId, p.ref, p.data, p.signature ?? null);
      return this.#countKeyPackages(userId, deviceId);
    });
  }

  #countKeyPackages(userId: string, deviceId: string): number {
    const sql = 'SELECT count(*) AS n FROM key_packages WHERE user_id = ? AND device_id = ?';
    return this.#sql.count(sql, userId, deviceId);
  }

  async countKeyPackages(userId: string, deviceId: string): Promise<number> {
    return this.#countKeyPackages(userId, deviceId);
  }

  async countStoredKeyPackages(userId: string, deviceId: string, refs: readonly string[]): Promise<number> {
    const sql = 'SELECT count(*) AS n FROM key_packages WHERE user_id = ? AND device_id = ? AND ref IN (SELECT value FROM json_each(?))';
    return this.#sql.count(sql, userId, deviceId, JSON.stringify(refs));
  }

  async claimKeyPackage(userId: string, deviceId: string): Promise<KeyPackage | null> {
    const r = this.#sql.get<KeyPackageRow>(
      `DELETE FROM key_packages
       WHERE id = (SELECT id FROM key_packages WHERE user_id = ? AND device_id = ? ORDER BY id LIMIT 1)
       RETURNING ${KEY_PACKAGE_COLUMNS}`,
      userId, deviceId,
    );
    return r ? toKeyPackage(r) : null;
  }
}
