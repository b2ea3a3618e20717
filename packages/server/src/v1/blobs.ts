/**
 * Blobs: files a client encrypted before uploading (the server never sees
 * a key), kept as opaque bytes in chunks of BLOB_CHUNK_BYTES and served to
 * any authenticated device that names one — the blob id is 128 random bits
 * chosen here, shared only inside end-to-end encrypted messages, together
 * with the key that opens the blob.
 *
 * ```
 * → blob.create {size}                 ← blob.created {blobId, chunkBytes}
 * → blob.chunk {blobId, index, data}   ← blob.stored {blobId, index}      (the uploader, until complete)
 * → blob.complete {blobId}             ← blob.completed {blobId, size}    (every chunk stored)
 * → blob.get {blobId, index}           ← blob {blobId, index, size, data} (complete blobs only)
 * → blob.delete {blobId}               ← blob.deleted {blobId}            (the uploader)
 * ```
 *
 * Every chunk but the last is exactly BLOB_CHUNK_BYTES long; the last holds
 * the rest. A user may have BLOB_UPLOADS_OPEN_MAX incomplete blobs,
 * BLOB_COUNT_PER_USER_MAX blobs and BLOB_BYTES_PER_USER_MAX bytes of blobs
 * in all.
 *
 * Nothing is kept forever by accident: an upload not completed within the
 * upload lifetime (PARLEY_BLOB_UPLOAD_TTL_S) and a blob completed longer
 * ago than the retention period (PARLEY_BLOB_RETENTION_DAYS, unless 0) are gone —
 * refused at once, removed by a periodic sweep, and the uploader's own are
 * removed before each new upload is counted against the limits. So an
 * abandoned upload cannot hold a user's quota, and the quota is of bytes
 * stored now; an uploader can also free space at once with `blob.delete`.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { BLOB_BYTES_PER_USER_MAX, BLOB_CHUNK_BYTES, BLOB_COUNT_PER_USER_MAX, BLOB_EXPIRY_BATCH, BLOB_SWEEP_INTERVAL_MS_MAX, BLOB_UPLOADS_OPEN_MAX } from '../limits.ts';
import type { Logger } from '../log.ts';
import type { BlobCutoffs, BlobRecord, Storage } from '../storage/types.ts';
import { b64, nextTurn, type HandlerContext } from './context.ts';
import type { BlobChunk, BlobComplete, BlobCreate, BlobDelete, BlobGet } from './frames.ts';

/** How long blobs live (from the server's configuration). */
export interface BlobPolicy {
  /** An upload incomplete this long after blob.create is removed. */
  readonly uploadTtlMs: number;
  /** A complete blob this long after blob.complete is removed; null: kept until its uploader deletes it. */
  readonly retentionMs: number | null;
}

export function blobPolicy(config: { blobUploadTtlS: number; blobRetentionDays: number }): BlobPolicy {
  return { uploadTtlMs: config.blobUploadTtlS * 1000, retentionMs: config.blobRetentionDays === 0 ? null : config.blobRetentionDays * 86_400_000 };
}

/** What has expired at `now` (of one owner, if given). */
export function blobCutoffs(policy: BlobPolicy, now: number, ownerUserId?: string): BlobCutoffs {
  return { incompleteBefore: now - policy.uploadTtlMs, completeBefore: policy.retentionMs === null ? null : now - policy.retentionMs, ...(ownerUserId !== undefined && { ownerUserId }) };
}

/** Whether a blob has expired at `now` (it may not have been swept yet). */
export function blobExpired(policy: BlobPolicy, blob: BlobRecord, now: number): boolean {
  const c = blobCutoffs(policy, now);
  return blob.complete ? c.completeBefore !== null && (blob.completedAt ?? blob.createdAt) < c.completeBefore : blob.createdAt < c.incompleteBefore;
}

/**
 * Remove what has expired, BLOB_EXPIRY_BATCH blobs per transaction (so no
 * single one holds the writer long), at most `batches` of them. Returns how
 * many were removed. `stopped` ends it between batches (a server shutting down).
 */
export async function expireBlobsNow(storage: Storage, cutoffs: BlobCutoffs, batches: number, stopped: () => boolean = () => false): Promise<number> {
  let removed = 0;
  for (let i = 0; i < batches && !stopped(); i++) {
    const n = await storage.expireBlobs(cutoffs, BLOB_EXPIRY_BATCH);
    removed += n;
    if (n < BLOB_EXPIRY_BATCH) break;
    await nextTurn();
  }
  return removed;
}

/**
 * Remove expired blobs now and then: a sweep every half upload lifetime (at
 * most every BLOB_SWEEP_INTERVAL_MS_MAX, at least every second), the next
 * one scheduled only when the last has finished, each in batches. Several
 * servers sharing a database each sweep; removing is idempotent.
 */
export function startBlobSweeper(storage: Storage, policy: BlobPolicy, log: Logger): { stop(): Promise<void> } {
  const interval = Math.max(1000, Math.min(BLOB_SWEEP_INTERVAL_MS_MAX, Math.floor(policy.uploadTtlMs / 2)));
  let running: Promise<void> = Promise.resolve();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(sweep, interval);
    timer.unref();
  };
  const sweep = (): void => {
    running = expireBlobsNow(storage, blobCutoffs(policy, Date.now()), Number.MAX_SAFE_INTEGER, () => stopped)
      .then(
        (n) => {
          if (n > 0) log.info({ blobs: n }, 'expired blobs removed');
        },
        (err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'blob sweep failed'),
      )
      .finally(schedule);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      await running;
    },
  };
}

/** The caller's own live upload, or null (someone else's, or an expired one, looks like none at all). */
async function ownUpload(ctx: HandlerContext, blobId: string): Promise<BlobRecord | null> {
  const blob = await ctx.deps.storage.getBlob(blobId);
  if (blob === null || blob.ownerUserId !== ctx.me.userId || blobExpired(ctx.deps.blobs, blob, Date.now())) return null;
  return blob;
}

/** How many chunks a blob of `size` bytes has, and how long chunk `index` must be. */
export function chunkCount(size: number): number {
  return Math.ceil(size / BLOB_CHUNK_BYTES);
}

function chunkLength(size: number, index: number): number {
  return Math.min(BLOB_CHUNK_BYTES, size - index * BLOB_CHUNK_BYTES);
}

export async function onBlobCreate(ctx: HandlerContext, f: z.infer<typeof BlobCreate>): Promise<void> {
  // The user's own expired blobs go first, so they never count against the limits
  // (a few batches here; anything beyond waits for the sweep).
  await expireBlobsNow(ctx.deps.storage, blobCutoffs(ctx.deps.blobs, Date.now(), ctx.me.userId), 4);
  // Usage is read and the blob created under one key per user: concurrent
  // creates from several connections cannot all pass the same check.
  const blobId = await ctx.deps.hub.inOrder(`blobs:${ctx.me.userId}`, async () => {
    const usage = await ctx.deps.storage.blobUsage(ctx.me.userId);
    let refusal: string | null = null;
    if (usage.open >= BLOB_UPLOADS_OPEN_MAX) refusal = `at most ${BLOB_UPLOADS_OPEN_MAX} uploads may be open at once`;
    else if (usage.count >= BLOB_COUNT_PER_USER_MAX) refusal = `at most ${BLOB_COUNT_PER_USER_MAX} blobs per user`;
    else if (usage.bytes + f.size > BLOB_BYTES_PER_USER_MAX) refusal = `blobs are limited to ${BLOB_BYTES_PER_USER_MAX} bytes per user`;
    if (refusal !== null) {
      ctx.error(f.id, 'limit_exceeded', refusal);
      return null;
    }
    const id = randomBytes(16).toString('base64url');
    await ctx.deps.storage.createBlob({ blobId: id, ownerUserId: ctx.me.userId, size: f.size, createdAt: Date.now() });
    return id;
  });
  if (blobId === null) return;
  ctx.reply(f.id, { t: 'blob.created', blobId, chunkBytes: BLOB_CHUNK_BYTES });
}

export async function onBlobChunk(ctx: HandlerContext, f: z.infer<typeof BlobChunk>): Promise<void> {
  const blob = await ownUpload(ctx, f.blobId);
  if (blob === null) return ctx.error(f.id, 'not_found', 'no such upload');
  if (blob.complete) return ctx.error(f.id, 'conflict', 'the blob is complete');
  if (f.index >= chunkCount(blob.size)) return ctx.error(f.id, 'bad_frame', `index ${f.index} is past the blob's last chunk`);
  const expected = chunkLength(blob.size, f.index);
  if (f.data.length !== expected) return ctx.error(f.id, 'bad_frame', `chunk ${f.index} must be ${expected} bytes`);
  // Deleted or swept since the check above: nothing is stored.
  if (!(await ctx.deps.storage.putBlobChunk(f.blobId, f.index, f.data))) return ctx.error(f.id, 'not_found', 'no such upload');
  ctx.reply(f.id, { t: 'blob.stored', blobId: f.blobId, index: f.index });
}

export async function onBlobComplete(ctx: HandlerContext, f: z.infer<typeof BlobComplete>): Promise<void> {
  const blob = await ownUpload(ctx, f.blobId);
  if (blob === null) return ctx.error(f.id, 'not_found', 'no such upload');
  if (!blob.complete) {
    const stored = await ctx.deps.storage.countBlobChunks(f.blobId);
    if (stored !== chunkCount(blob.size)) return ctx.error(f.id, 'conflict', `${stored} of ${chunkCount(blob.size)} chunks are stored`);
    // Swept (or deleted from another device) since the check above: gone, not completed.
    if (!(await ctx.deps.storage.completeBlob(f.blobId, Date.now()))) return ctx.error(f.id, 'not_found', 'no such upload');
    ctx.deps.log.info({ userId: ctx.me.userId, deviceId: ctx.me.deviceId, bytes: blob.size }, 'blob stored');
  }
  ctx.reply(f.id, { t: 'blob.completed', blobId: f.blobId, size: blob.size });
}

export async function onBlobGet(ctx: HandlerContext, f: z.infer<typeof BlobGet>): Promise<void> {
  const blob = await ctx.deps.storage.getBlob(f.blobId);
  if (blob === null || !blob.complete || blobExpired(ctx.deps.blobs, blob, Date.now())) return ctx.error(f.id, 'not_found', 'no such blob');
  const data = f.index < chunkCount(blob.size) ? await ctx.deps.storage.getBlobChunk(f.blobId, f.index) : null;
  if (data === null) return ctx.error(f.id, 'not_found', 'no such chunk');
  ctx.reply(f.id, { t: 'blob', blobId: f.blobId, index: f.index, size: blob.size, data: b64(data) });
}

export async function onBlobDelete(ctx: HandlerContext, f: z.infer<typeof BlobDelete>): Promise<void> {
  const blob = await ctx.deps.storage.getBlob(f.blobId);
  // Only the uploader may delete; to anyone else the blob does not exist.
  if (blob === null || blob.ownerUserId !== ctx.me.userId || !(await ctx.deps.storage.deleteBlob(f.blobId))) return ctx.error(f.id, 'not_found', 'no such blob');
  ctx.deps.log.info({ userId: ctx.me.userId, deviceId: ctx.me.deviceId, bytes: blob.size }, 'blob deleted');
  ctx.reply(f.id, { t: 'blob.deleted', blobId: f.blobId });
}
