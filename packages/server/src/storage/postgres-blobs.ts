/**
 * Blobs in the PostgreSQL store (v1/blobs.ts): opaque encrypted files as a
 * `blobs` row and their chunks in `blob_chunks`, usage per owner, and the
 * expiry sweep. Apart from the storage: tables of their own, and the
 * largest data it keeps, never touched by the room log or membership.
 *
 * @module
 */
import { bytes } from './_shared.ts';
import type { BlobCutoffs, BlobRecord } from './types.ts';
import type { Param, PostgresConnection } from './postgres-connection.ts';
import type { BlobsPart } from './_composed.ts';

export class PostgresBlobs implements BlobsPart {
  readonly #sql: PostgresConnection;

  constructor(sql: PostgresConnection) {
    this.#sql = sql;
  }

  // Lock order, everywhere: the blob row, then its chunks. A chunk is
  // written only under a share lock on its (incomplete) blob row, and a
  // blob's chunks are deleted only after its row, so no chunk outlives its
  // blob and no two of these transactions wait on each other in a cycle.

  async createBlob(b: Omit<BlobRecord, 'complete' | 'completedAt'>): Promise<void> {
    await this.#sql.query('INSERT INTO blobs (blob_id, owner_user_id, size, complete, created_at) VALUES ($1, $2, $3, 0, $4)', [b.blobId, b.ownerUserId, b.size, b.createdAt]);
  }

  async getBlob(blobId: string): Promise<BlobRecord | null> {
    const sql = 'SELECT blob_id AS "blobId", owner_user_id AS "ownerUserId", size, complete, created_at AS "createdAt", completed_at AS "completedAt" FROM blobs WHERE blob_id = $1';
    const r = await this.#sql.one<{ blobId: string; ownerUserId: string; size: number | string; complete: number | string; createdAt: number | string; completedAt: number | string | null }>(sql, [blobId]);
    return r
      ? { blobId: r.blobId, ownerUserId: r.ownerUserId, size: Number(r.size), complete: Number(r.complete) === 1, createdAt: Number(r.createdAt), completedAt: r.completedAt === null ? null : Number(r.completedAt) }
      : null;
  }

  async putBlobChunk(blobId: string, index: number, data: Uint8Array): Promise<boolean> {
    return this.#sql.tx(async (c) => {
      const live = await this.#sql.one('SELECT 1 AS one FROM blobs WHERE blob_id = $1 AND complete = 0 FOR SHARE', [blobId], c);
      if (live === undefined) return false;
      await this.#sql.query('INSERT INTO blob_chunks (blob_id, idx, data) VALUES ($1, $2, $3) ON CONFLICT (blob_id, idx) DO UPDATE SET data = excluded.data', [blobId, index, data], c);
      return true;
    });
  }

  async countBlobChunks(blobId: string): Promise<number> {
    return Number((await this.#sql.one<{ n: number | string }>('SELECT COUNT(*) AS n FROM blob_chunks WHERE blob_id = $1', [blobId]))?.n ?? 0);
  }

  async completeBlob(blobId: string, at: number): Promise<boolean> {
    return (await this.#sql.changed('UPDATE blobs SET complete = 1, completed_at = coalesce(completed_at, $2) WHERE blob_id = $1', [blobId, at])) === 1;
  }

  async getBlobChunk(blobId: string, index: number): Promise<Uint8Array | null> {
    const r = await this.#sql.one<{ data: Uint8Array }>('SELECT data FROM blob_chunks WHERE blob_id = $1 AND idx = $2', [blobId, index]);
    return r ? bytes(r.data) : null;
  }

  async blobUsage(userId: string): Promise<{ count: number; bytes: number; open: number }> {
    const sql = 'SELECT COUNT(*) AS count, SUM(size) AS bytes, SUM(1 - complete) AS open FROM blobs WHERE owner_user_id = $1';
    const r = await this.#sql.one<{ count: number | string; bytes: number | string | null; open: number | string | null }>(sql, [userId]);
    return { count: Number(r?.count ?? 0), bytes: Number(r?.bytes ?? 0), open: Number(r?.open ?? 0) };
  }

  async deleteBlob(blobId: string): Promise<boolean> {
    return this.#sql.tx(async (c) => {
      const gone = (await this.#sql.changed('DELETE FROM blobs WHERE blob_id = $1', [blobId], c)) === 1;
      await this.#sql.query('DELETE FROM blob_chunks WHERE blob_id = $1', [blobId], c);
      return gone;
    });
  }

  async expireBlobs(cut: BlobCutoffs, limit: number): Promise<number> {
    const owner = cut.ownerUserId === undefined ? '' : 'owner_user_id = $4 AND ';
    const params: Param[] = [cut.incompleteBefore, cut.completeBefore ?? Number.MIN_SAFE_INTEGER, limit, ...(cut.ownerUserId === undefined ? [] : [cut.ownerUserId])];
    return this.#sql.tx(async (c) => {
      // SKIP LOCKED: a blob another transaction holds (a chunk being written, another sweeper) waits for the next sweep.
      const sql = `SELECT blob_id AS id FROM blobs WHERE ${owner}((complete = 0 AND created_at < $1) OR (complete = 1 AND completed_at < $2)) ORDER BY blob_id LIMIT $3 FOR UPDATE SKIP LOCKED`;
      const ids = (await this.#sql.query<{ id: string }>(sql, params, c)).rows.map((r) => r.id);
      if (ids.length === 0) return 0;
      await this.#sql.query('DELETE FROM blobs WHERE blob_id = ANY($1)', [ids], c);
      await this.#sql.query('DELETE FROM blob_chunks WHERE blob_id = ANY($1)', [ids], c);
      return ids.length;
    });
  }
}
