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
 * ```
 *
 * Every chunk but the last is exactly BLOB_CHUNK_BYTES long; the last holds
 * the rest. A user may have BLOB_UPLOADS_OPEN_MAX incomplete blobs and
 * BLOB_BYTES_PER_USER_MAX bytes of blobs in all.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { BLOB_BYTES_PER_USER_MAX, BLOB_CHUNK_BYTES, BLOB_UPLOADS_OPEN_MAX } from '../limits.ts';
import { b64, type HandlerContext } from './context.ts';
import type { BlobChunk, BlobComplete, BlobCreate, BlobGet } from './frames.ts';

/** How many chunks a blob of `size` bytes has, and how long chunk `index` must be. */
export function chunkCount(size: number): number {
  return Math.ceil(size / BLOB_CHUNK_BYTES);
}

function chunkLength(size: number, index: number): number {
  return Math.min(BLOB_CHUNK_BYTES, size - index * BLOB_CHUNK_BYTES);
}

export async function onBlobCreate(ctx: HandlerContext, f: z.infer<typeof BlobCreate>): Promise<void> {
  const usage = await ctx.deps.storage.blobUsage(ctx.me.userId);
  if (usage.open >= BLOB_UPLOADS_OPEN_MAX) return ctx.error(f.id, 'limit_exceeded', `at most ${BLOB_UPLOADS_OPEN_MAX} uploads may be open at once`);
  if (usage.bytes + f.size > BLOB_BYTES_PER_USER_MAX) return ctx.error(f.id, 'limit_exceeded', `blobs are limited to ${BLOB_BYTES_PER_USER_MAX} bytes per user`);
  const blobId = randomBytes(16).toString('base64url');
  await ctx.deps.storage.createBlob({ blobId, ownerUserId: ctx.me.userId, size: f.size, createdAt: Date.now() });
  ctx.reply(f.id, { t: 'blob.created', blobId, chunkBytes: BLOB_CHUNK_BYTES });
}

export async function onBlobChunk(ctx: HandlerContext, f: z.infer<typeof BlobChunk>): Promise<void> {
  const blob = await ctx.deps.storage.getBlob(f.blobId);
  // Someone else's upload looks like no upload at all.
  if (blob === null || blob.ownerUserId !== ctx.me.userId) return ctx.error(f.id, 'not_found', 'no such upload');
  if (blob.complete) return ctx.error(f.id, 'conflict', 'the blob is complete');
  if (f.index >= chunkCount(blob.size)) return ctx.error(f.id, 'bad_frame', `index ${f.index} is past the blob's last chunk`);
  const expected = chunkLength(blob.size, f.index);
  if (f.data.length !== expected) return ctx.error(f.id, 'bad_frame', `chunk ${f.index} must be ${expected} bytes`);
  await ctx.deps.storage.putBlobChunk(f.blobId, f.index, f.data);
  ctx.reply(f.id, { t: 'blob.stored', blobId: f.blobId, index: f.index });
}

export async function onBlobComplete(ctx: HandlerContext, f: z.infer<typeof BlobComplete>): Promise<void> {
  const blob = await ctx.deps.storage.getBlob(f.blobId);
  if (blob === null || blob.ownerUserId !== ctx.me.userId) return ctx.error(f.id, 'not_found', 'no such upload');
  if (!blob.complete) {
    const stored = await ctx.deps.storage.countBlobChunks(f.blobId);
    if (stored !== chunkCount(blob.size)) return ctx.error(f.id, 'conflict', `${stored} of ${chunkCount(blob.size)} chunks are stored`);
    await ctx.deps.storage.completeBlob(f.blobId);
    ctx.deps.log.info({ userId: ctx.me.userId, deviceId: ctx.me.deviceId, bytes: blob.size }, 'blob stored');
  }
  ctx.reply(f.id, { t: 'blob.completed', blobId: f.blobId, size: blob.size });
}

export async function onBlobGet(ctx: HandlerContext, f: z.infer<typeof BlobGet>): Promise<void> {
  const blob = await ctx.deps.storage.getBlob(f.blobId);
  if (blob === null || !blob.complete) return ctx.error(f.id, 'not_found', 'no such blob');
  const data = f.index < chunkCount(blob.size) ? await ctx.deps.storage.getBlobChunk(f.blobId, f.index) : null;
  if (data === null) return ctx.error(f.id, 'not_found', 'no such chunk');
  ctx.reply(f.id, { t: 'blob', blobId: f.blobId, index: f.index, size: blob.size, data: b64(data) });
}
