/**
 * The public-key directory in the PostgreSQL store (v1/key-directory.ts):
 * per device a signed prekey, a post-quantum prekey, one-time prekeys and
 * MLS KeyPackages, the last two each handed out once (a claim locks one
 * row, SKIP LOCKED, and deletes it). Apart from the storage: tables of
 * their own, read and written by the key directory alone. Every write
 * holds the device's row in its transaction (`PostgresConnection.deviceTx`):
 * none outlives a removal.
 *
 * @module
 */
import type pg from 'pg';
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
import type { PostgresConnection } from './postgres-connection.ts';
import type { KeyDirectoryPart } from './_composed.ts';

export class PostgresKeyDirectory implements KeyDirectoryPart {
  readonly #sql: PostgresConnection;

  constructor(sql: PostgresConnection) {
    this.#sql = sql;
  }

  async setSignedPrekey(userId: string, deviceId: string, p: SignedPrekey): Promise<void> {
    await this.#setPrekey('signed_prekeys', userId, deviceId, p);
  }

  /** Store or replace the device's one signed (or PQ) prekey. */
  async #setPrekey(table: 'signed_prekeys' | 'pq_prekeys', userId: string, deviceId: string, p: SignedPrekey | PqPrekey): Promise<void> {
    await this.#sql.deviceTx(userId, deviceId, async (c) => {
      await this.#sql.query(
        `INSERT INTO ${table} (user_id, device_id, key_id, public_key, signature) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, device_id) DO UPDATE
         SET key_id = excluded.key_id, public_key = excluded.public_key, signature = excluded.signature`,
        [userId, deviceId, p.keyId, p.publicKey, p.signature], c,
      );
    });
  }

  async getSignedPrekey(userId: string, deviceId: string): Promise<SignedPrekey | null> {
    const sql = `SELECT ${SIGNED_PREKEY_COLUMNS} FROM signed_prekeys WHERE user_id = $1 AND device_id = $2`;
    const r = await this.#sql.one<SignedPrekeyRow>(sql, [userId, deviceId]);
    return r ? toSignedPrekey(r) : null;
  }

  async addOneTimePrekeys(userId: string, deviceId: string, prekeys: readonly OneTimePrekey[]): Promise<number> {
    // One statement for the whole batch; a repeated key id (stored, or twice
    // in the batch) is skipped by ON CONFLICT DO NOTHING. Rows go in key
    // order so that two overlapping batches cannot deadlock on each other.
    const batch = sortedPrekeys(prekeys);
    return this.#sql.deviceTx(userId, deviceId, async (c) => {
      await this.#sql.query(
        `INSERT INTO one_time_prekeys (user_id, device_id, key_id, public_key)
         SELECT $1, $2, k, p FROM unnest($3::bigint[], $4::bytea[]) WITH ORDINALITY AS t(k, p, i) ORDER BY i
         ON CONFLICT DO NOTHING`,
        [userId, deviceId, batch.map((p) => p.keyId), batch.map((p) => p.publicKey)], c,
      );
      return this.#countOneTimePrekeys(userId, deviceId, c);
    });
  }

  async replaceOneTimePrekeys(userId: string, deviceId: string, prekeys: readonly OneTimePrekey[]): Promise<{ dropped: number; held: number }> {
    const batch = sortedPrekeys(prekeys);
    return this.#sql.deviceTx(userId, deviceId, async (c) => {
      const dropped = await this.#sql.changed('DELETE FROM one_time_prekeys WHERE user_id = $1 AND device_id = $2', [userId, deviceId], c);
      await this.#sql.query(
        `INSERT INTO one_time_prekeys (user_id, device_id, key_id, public_key)
         SELECT $1, $2, k, p FROM unnest($3::bigint[], $4::bytea[]) WITH ORDINALITY AS t(k, p, i) ORDER BY i
         ON CONFLICT DO NOTHING`,
        [userId, deviceId, batch.map((p) => p.keyId), batch.map((p) => p.publicKey)], c,
      );
      return { dropped, held: await this.#countOneTimePrekeys(userId, deviceId, c) };
    });
  }

  #countOneTimePrekeys(userId: string, deviceId: string, c?: pg.PoolClient): Promise<number> {
    const sql = 'SELECT count(*) AS n FROM one_time_prekeys WHERE user_id = $1 AND device_id = $2';
    return this.#sql.count(sql, [userId, deviceId], c);
  }

  async countOneTimePrekeys(userId: string, deviceId: string): Promise<number> {
    return this.#countOneTimePrekeys(userId, deviceId);
  }

  async countStoredOneTimePrekeys(userId: string, deviceId: string, keyIds: readonly number[]): Promise<number> {
    const sql = 'SELECT count(*) AS n FROM one_time_prekeys WHERE user_id = $1 AND device_id = $2 AND key_id = ANY($3::bigint[])';
    return this.#sql.count(sql, [userId, deviceId, keyIds]);
  }

  async claimOneTimePrekey(userId: string, deviceId: string): Promise<OneTimePrekey | null> {
    const r = await this.#sql.one<OneTimePrekeyRow>(
      `DELETE FROM one_time_prekeys
       WHERE user_id = $1 AND device_id = $2 AND key_id = (
         SELECT key_id FROM one_time_prekeys WHERE user_id = $1 AND device_id = $2
         ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING ${ONE_TIME_PREKEY_COLUMNS}`,
      [userId, deviceId],
    );
    return r ? toOneTimePrekey(r) : null;
  }

  async setPqPrekey(userId: string, deviceId: string, p: PqPrekey): Promise<void> {
    await this.#setPrekey('pq_prekeys', userId, deviceId, p);
  }

  async getPqPrekey(userId: string, deviceId: string): Promise<PqPrekey | null> {
    const sql = `SELECT ${SIGNED_PREKEY_COLUMNS} FROM pq_prekeys WHERE user_id = $1 AND device_id = $2`;
    const r = await this.#sql.one<SignedPrekeyRow>(sql, [userId, deviceId]);
    return r ? toSignedPrekey(r) : null;
  }

  async addKeyPackages(userId: string, deviceId: string, packages: readonly KeyPackage[]): Promise<number> {
    // Rows go in ref order (the identity column follows it, so a batch is
    // claimed in that order), which also rules out deadlocks between two
    // overlapping batches.
    const batch = sortedKeyPackages(packages);
    return this.#sql.deviceTx(userId, deviceId, async (c) => {
      await this.#sql.query(
        `INSERT INTO key_packages (user_id, device_id, ref, data, signature)
         SELECT $1, $2, r, d, s FROM unnest($3::text[], $4::bytea[], $5::bytea[]) WITH ORDINALITY AS t(r, d, s, i) ORDER BY i
         ON CONFLICT DO NOTHING`,
        [userId, deviceId, batch.map((p) => p.ref), batch.map((p) => p.data), batch.map((p) => p.signature ?? null)], c,
      );
      return this.#countKeyPackages(userId, deviceId, c);
    });
  }

  #countKeyPackages(userId: string, deviceId: string, c?: pg.PoolClient): Promise<number> {
    const sql = 'SELECT count(*) AS n FROM key_packages WHERE user_id = $1 AND device_id = $2';
    return this.#sql.count(sql, [userId, deviceId], c);
  }

  async countKeyPackages(userId: string, deviceId: string): Promise<number> {
    return this.#countKeyPackages(userId, deviceId);
  }

  async countStoredKeyPackages(userId: string, deviceId: string, refs: readonly string[]): Promise<number> {
    const sql = 'SELECT count(*) AS n FROM key_packages WHERE user_id = $1 AND device_id = $2 AND ref = ANY($3::text[])';
    return this.#sql.count(sql, [userId, deviceId, refs]);
  }

  async claimKeyPackage(userId: string, deviceId: string): Promise<KeyPackage | null> {
    const r = await this.#sql.one<KeyPackageRow>(
      `DELETE FROM key_packages
       WHERE id = (
         SELECT id FROM key_packages WHERE user_id = $1 AND device_id = $2
         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING ${KEY_PACKAGE_COLUMNS}`,
      [userId, deviceId],
    );
    return r ? toKeyPackage(r) : null;
  }
}
