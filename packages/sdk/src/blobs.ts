/**
 * Files through the server's blob store (docs/protocol.md, "Blobs"), the
 * client's side: a file sealed (file-transfer.ts) is uploaded in chunks
 * and announced in the room by a `file` message; a receiver downloads the
 * blob chunk by chunk, checks each against the chunking rules and opens
 * it; the sender's user may delete it.
 *
 * Separate from the client because uploads have state of their own (turns,
 * so at most FILE_UPLOADS_CONCURRENT_MAX are open at once) and the chunk
 * checks are the blob protocol's, not the messaging's.
 *
 * @module
 */
import { fromBase64, toBase64 } from './_bytes.ts';
import { fileRefArg, optionsArg } from './_args.ts';
import { SdkError } from './errors.ts';
import { checkFileMeta, openFile, sealFile, SEAL_OVERHEAD_BYTES, type FileRef } from './file-transfer.ts';
import { intField, ROOM_ID, stringField } from './frames.ts';
import { BLOB_BYTES_MAX, BLOB_CHUNK_BYTES_MIN, FILE_UPLOADS_CONCURRENT_MAX } from './limits.ts';
import type { Link } from './link.ts';
import type { SendResult } from './outbound.ts';

export interface BlobHooks {
  /** The client's link: requests, the current connection, the server's limits, and whether the client closed. */
  readonly link: Pick<Link, 'request' | 'current' | 'limits' | 'ended' | 'endError' | 'assertOpen'>;
  /** Send a `file` message naming the uploaded blob in `roomId`; resolves once the server stored it. */
  announce(roomId: string, file: FileRef): Promise<SendResult>;
}

export class Blobs {
  readonly #hooks: BlobHooks;
  /** Uploads in progress and those waiting for a turn (`FILE_UPLOADS_CONCURRENT_MAX` at a time). */
  #uploading = 0;
  readonly #uploadTurns: (() => void)[] = [];

  constructor(hooks: BlobHooks) {
    this.#hooks = hooks;
  }

  /** `ParleyClient.sendFile`: seal, upload, announce. */
  async sendFile(roomId: string, file: Uint8Array, optionsIn: { readonly name?: string; readonly mediaType?: string } = {}): Promise<SendResult> {
    this.#hooks.link.assertOpen();
    const options = optionsArg(optionsIn, 'options');
    if (typeof roomId !== 'string' || !ROOM_ID.test(roomId)) throw new SdkError('INVALID_ARGUMENT', 'roomId is not a room id');
    const name = options.name ?? '';
    const mediaType = options.mediaType ?? '';
    checkFileMeta(name, mediaType);
    const blobMax = Math.min(BLOB_BYTES_MAX, this.#hooks.link.limits.blobBytes ?? BLOB_BYTES_MAX);
    if (file instanceof Uint8Array && file.length + SEAL_OVERHEAD_BYTES > blobMax) throw new SdkError('LIMIT', `this server takes files of at most ${blobMax - SEAL_OVERHEAD_BYTES} bytes`);
    const sealed = sealFile(file, name, mediaType);
    const blobId = await this.#upload(sealed.sealed);
    return this.#hooks.announce(roomId, sealed.ref(blobId));
  }

  /** `ParleyClient.downloadFile`: fetch every chunk, check it, and open the file. */
  async download(file: FileRef): Promise<Uint8Array> {
    fileRefArg(file);
    this.#hooks.link.assertOpen();
    const chunks: Uint8Array[] = [];
    let received = 0;
    // Every chunk but the last is one size (docs/protocol.md, "Blobs"): the announced one, else the first's.
    let chunkBytes = this.#hooks.link.limits.blobChunkBytes;
    for (let index = 0; received < file.blobSize; index++) {
      const f = await this.#hooks.link.request({ t: 'blob.get', blobId: file.blobId, index }, ['blob']);
      const data = typeof f['data'] === 'string' ? fromBase64(f['data']) : null;
      if (f['blobId'] !== file.blobId || f['index'] !== index || data === null || data.length === 0 || received + data.length > file.blobSize) {
        throw new SdkError('BAD_RESPONSE', 'the server sent an invalid blob chunk');
      }
      chunkBytes ??= data.length;
      if (data.length !== Math.min(chunkBytes, file.blobSize - received) || (chunkBytes < BLOB_CHUNK_BYTES_MIN && data.length < file.blobSize - received)) {
        throw new SdkError('BAD_RESPONSE', `the server sent a blob chunk of ${data.length} bytes (chunks are ${chunkBytes} bytes, at least ${BLOB_CHUNK_BYTES_MIN} but the last)`);
      }
      chunks.push(data);
      received += data.length;
    }
    const sealed = new Uint8Array(received);
    let at = 0;
    for (const c of chunks) {
      sealed.set(c, at);
      at += c.length;
    }
    return openFile(file, sealed);
  }

  /** `ParleyClient.deleteFile`: false when the server has no such blob of this user. */
  async delete(file: FileRef): Promise<boolean> {
    fileRefArg(file);
    this.#hooks.link.assertOpen();
    try {
      const f = await this.#hooks.link.request({ t: 'blob.delete', blobId: file.blobId }, ['blob.deleted']);
      return f['blobId'] === file.blobId;
    } catch (e) {
      if (e instanceof SdkError && e.serverCode === 'not_found') return false;
      throw e;
    }
  }

  async #upload(sealed: Uint8Array): Promise<string> {
    // The server lets a user have only a few uploads open at once (all devices
    // together): more files than that sent at once wait for a turn here.
    if (this.#uploading >= FILE_UPLOADS_CONCURRENT_MAX) await new Promise<void>((resolve) => this.#uploadTurns.push(resolve));
    else this.#uploading++;
    try {
      return await this.#uploadNow(sealed);
    } finally {
      const next = this.#uploadTurns.shift();
      if (next !== undefined) next();
      else this.#uploading--;
    }
  }

  async #uploadNow(sealed: Uint8Array): Promise<string> {
    const created = await this.#hooks.link.request({ t: 'blob.create', size: sealed.length }, ['blob.created']);
    const blobId = stringField(created, 'blobId', 'blob.created');
    try {
      const chunkBytes = intField(created, 'chunkBytes', 'blob.created');
      // Tiny chunks would turn one file into millions of requests; downloads refuse them too.
      if (chunkBytes < BLOB_CHUNK_BYTES_MIN) throw new SdkError('BAD_RESPONSE', `blob.created with a chunk size below ${BLOB_CHUNK_BYTES_MIN} bytes`);
      // A chunk is not re-sent on a new connection (Link.request would): the upload fails with CLOSED instead.
      const conn = this.#hooks.link.current;
      if (conn === null) throw new SdkError('CLOSED', 'not connected');
      for (let index = 0; index * chunkBytes < sealed.length; index++) {
        const data = sealed.subarray(index * chunkBytes, (index + 1) * chunkBytes);
        await conn.request({ t: 'blob.chunk', blobId, index, data: toBase64(data) }, ['blob.stored']);
      }
      await conn.request({ t: 'blob.complete', blobId }, ['blob.completed']);
      return blobId;
    } catch (e) {
      // The half-made blob would count against the user's open uploads until
      // the server expires it (an hour): delete it, on the next connection if
      // this one is gone. Best effort; the app sees the upload's own error.
      if (!this.#hooks.link.ended) void this.#hooks.link.request({ t: 'blob.delete', blobId }, ['blob.deleted']).catch(() => undefined);
      throw e;
    }
  }
}
