/**
 * Blobs in the SQLite store (v1/blobs.ts): opaque encrypted files as a
 * `blobs` row and their chunks in `blob_chunks`, usage per owner, and the
 * expiry sweep. Apart from the storage: tables of their own, and the
 * largest data it keeps, never touched by the room log or membership.
 *
 * @module
 */
import { bytes } from './_shared.ts';
import type { BlobCutoffs, BlobRecord } from './types.ts';
import type { SqliteConnection } from './sqlite-connection.ts';
import type { BlobsPart } from './_composed.ts';

export class SqliteBlobs implements BlobsPart {
  readonly #sql: SqliteConnection;

  constructor(sql: SqliteConnection) {
    this.#sql = sql;
  }

  // One writer (this connection, on the event loop or the writer thread)
  // runs every statement below in turn, so a check and the write it guards
  // in one statement cannot be split by a delete or a sweep.

  async createBlob(b: Omit<BlobRecord, 'complete' | 'completedAt'>): Promise<void> {
    this.#sql.run('INSERT INTO blobs (blob_id, owner_user_id, size, complete, created_at) VALUES (?, ?, ?, 0, ?)', b.blobId, b.ownerUserId, b.size, b.createdAt);
  }

  async getBlob(blobId: string): Promise<BlobRecord | null> {
    const sql = 'SELECT blob_id AS "blobId", owner_user_id AS "ownerUserId", size, complete, created_at AS "createdAt", completed_at AS "completedAt" FROM blobs WHERE blob_id = ?';
    const r = this.#sql.get<{ blobId: string; ownerUserId: string; size: number; complete: number; createdAt: number; completedAt: number | null }>(sql, blobId);
    return r ? { ...r, complete: r.complete === 1 } : null;
  }

  async putBlobChunk(blobId: string, index: number, data: Uint8Array): Promise<boolean> {
    const sql = `INSERT INTO blob_chunks (blob_id, idx, data)
                 SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM blobs WHERE blob_id = ? AND complete = 0)
                 ON CONFLICT (blob_id, idx) DO UPDATE SET data = excluded.data`;
    return this.#sql.run(sql, blobId, index, data, blobId) === 1;
  }

  async countBlobChunks(blobId: string): Promise<number> {
    return this.#sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM blob_chunks WHERE blob_id = ?', blobId)?.n ?? 0;
  }

  async completeBlob(blobId: string, at: number): Promise<boolean> {
    return this.#sql.run('UPDATE blobs SET complete = 1, completed_at = coalesce(completed_at, ?) WHERE blob_id = ?', at, blobId) === 1;
  }

  async getBlobChunk(blobId: string, index: number): Promise<Uint8Array | null> {
    const r = this.#sql.get<{ data: Uint8Array }>('SELECT data FROM blob_chunks WHERE blob_id = ? AND idx = ?', blobId, index);
    return r ? bytes(r.data) : null;
  }

  async blobUsage(userId: string): Promise<{ count: number; bytes: number; open: number }> {
    const r = this.#sql.get<{ count: number; bytes: number | null; open: number | null }>('SELECT COUNT(*) AS count, SUM(size) AS bytes, SUM(1 - complete) AS open FROM blobs WHERE owner_user_id = ?', userId);
    return { count: r?.count ?? 0, bytes: r?.bytes ?? 0, open: r?.open ?? 0 };
  }

  async deleteBlob(blobId: string): Promise<boolean> {
    return this.#sql.tx(() => {
      const gone = this.#sql.run('DELETE FROM blobs WHERE blob_id = ?', blobId) === 1;
      this.#sql.run('DELETE FROM blob_chunks WHERE blob_id = ?', blobId);
      return gone;
    });
  }

  async expireBlobs(c: BlobCutoffs, limit: number): Promise<number> {
    const owner = c.ownerUserId === undefined ? '' : 'owner_user_id = ? AND ';
    const sql = `SELECT blob_id AS id FROM blobs WHERE ${owner}((complete = 0 AND created_at < ?) OR (complete = 1 AND completed_at < ?)) LIMIT ?`;
    const params = [...(c.ownerUserId === undefined ? [] : [c.ownerUserId]), c.incompleteBefore, c.completeBefore ?? Number.MIN_SAFE_INTEGER, limit];
    return this.#sql.tx(() => {
      const ids = this.#sql.all<{ id: string }>(sql, ...params);
      for (const { id } of ids) {
        this.#sql.run('DELETE FROM blobs WHERE blob_id = ?', id);
        this.#sql.run('DELETE FROM blob_chunks WHERE blob_id = ?', id);
      }
      return ids.length;
    });
  }
}
