/**
 * Files as encrypted blobs: a file is sealed with Secure Cell (Seal mode)
 * under a fresh random key, uploaded to the server's blob store in chunks
 * (docs/protocol.md, "Blobs"), and the message sent to the room carries
 * only a {@link FileRef} — the blob id, the key, the SHA-256 of the sealed
 * bytes, the size, a name and a media type — inside its end-to-end
 * encrypted payload (kind 0x04, payload.ts). The server stores ciphertext
 * it cannot open; a receiver downloads it, checks the digest and opens it.
 *
 * Each file gets its own key, used once; the Seal context binds the sealed
 * bytes to this use (`parley-file-v1`). The digest lets a receiver refuse a
 * blob the server swapped (Seal would refuse it too; the digest says which
 * blob was meant before anything is decrypted).
 *
 * FileRef layout (all integers big-endian; nothing may follow):
 *
 * ```
 *  offset  size  field
 *  0       1     version = 0x01
 *  1       32    key (Secure Cell symmetric key)
 *  33      32    SHA-256 of the sealed blob
 *  65      4     sealed blob size, 1 … BLOB_BYTES_MAX; in a message, at
 *                least BLOB_BYTES_MIN (decodeAnnouncedFileRef)
 *  69      1     I: blob id length = 22
 *  70      I     blob id (base64url)
 *  70+I    1     N: file name length in UTF-8 bytes, 0 … FILE_NAME_BYTES_MAX
 *  71+I    N     file name (UTF-8; empty: none)
 *  71+I+N  1     M: media type length, 0 … MEDIA_TYPE_BYTES_MAX
 *  72+I+N  M     media type (ASCII, e.g. "image/png"; empty: none)
 * ```
 *
 * @module
 */
import { SecureCellSeal, ThemisError } from '@parley/themis';
import { backend, equalBytes } from '@parley/themis/hazmat';
import { ByteReader, ByteWriter, fromUtf8, utf8 } from './_bytes.ts';
import { SdkError } from './errors.ts';
import { BLOB_BYTES_MAX, FILE_NAME_BYTES_MAX, MEDIA_TYPE_BYTES_MAX } from './limits.ts';

const FILE_REF_VERSION = 0x01;
const KEY_BYTES = 32;
const DIGEST_BYTES = 32;
const BLOB_ID = /^[A-Za-z0-9_-]{22}$/;
/** Printable ASCII, spaces included (parameters: `text/plain; charset=utf-8`). */
const MEDIA_TYPE = /^[\x20-\x7e]*$/;
const SEAL_CONTEXT = utf8('parley-file-v1');
/** Secure Cell Seal adds a fixed header and tag to what it seals. */
export const SEAL_OVERHEAD_BYTES = 44;
/** The largest file `sendFile` takes: what fits a blob once sealed. */
export const FILE_BYTES_MAX = BLOB_BYTES_MAX - SEAL_OVERHEAD_BYTES;
/** The smallest sealed blob: a file of one byte (`sendFile` refuses empty files, Secure Cell empty input). */
export const BLOB_BYTES_MIN = 1 + SEAL_OVERHEAD_BYTES;

/** What a file message carries: how to fetch and open the file. `key` is secret: whoever has it can read the file. */
export interface FileRef {
  readonly blobId: string;
  readonly key: Uint8Array;
  /** SHA-256 of the sealed blob. */
  readonly digest: Uint8Array;
  /** Size of the sealed blob (the file is SEAL_OVERHEAD_BYTES shorter). */
  readonly blobSize: number;
  readonly name: string;
  readonly mediaType: string;
}

/** A file sealed for upload, and the reference to send once it is stored. */
export interface SealedFile {
  readonly sealed: Uint8Array;
  /** Completes the reference with the blob id the server chose. */
  ref(blobId: string): FileRef;
}

export function checkFileMeta(name: string, mediaType: string): void {
  if (typeof name !== 'string' || utf8(name).length > FILE_NAME_BYTES_MAX) throw new SdkError('INVALID_ARGUMENT', `a file name is at most ${FILE_NAME_BYTES_MAX} UTF-8 bytes`);
  if (typeof mediaType !== 'string' || mediaType.length > MEDIA_TYPE_BYTES_MAX || !MEDIA_TYPE.test(mediaType)) {
    throw new SdkError('INVALID_ARGUMENT', `a media type is at most ${MEDIA_TYPE_BYTES_MAX} printable ASCII characters`);
  }
}

/** Seal `file` under a fresh key (for `sendFile`). */
export function sealFile(file: Uint8Array, name: string, mediaType: string): SealedFile {
  if (!(file instanceof Uint8Array) || file.length === 0) throw new SdkError('INVALID_ARGUMENT', 'a file is a non-empty Uint8Array');
  if (file.length > FILE_BYTES_MAX) throw new SdkError('LIMIT', `a file is at most ${FILE_BYTES_MAX} bytes`);
  checkFileMeta(name, mediaType);
  const key = backend.randomBytes(KEY_BYTES);
  const sealed = SecureCellSeal.withKey(key).encrypt(file, SEAL_CONTEXT);
  const digest = backend.sha256(sealed);
  return { sealed, ref: (blobId) => ({ blobId, key, digest, blobSize: sealed.length, name, mediaType }) };
}

/** Check a downloaded blob against its reference and open it. `DECRYPT_FAILED`-like failures are `BAD_RESPONSE`: the server sent other bytes. */
export function openFile(ref: FileRef, sealed: Uint8Array): Uint8Array {
  if (sealed.length !== ref.blobSize || !equalBytes(backend.sha256(sealed), ref.digest)) throw new SdkError('BAD_RESPONSE', 'the server sent another blob than the message names');
  try {
    return SecureCellSeal.withKey(ref.key).decrypt(sealed, SEAL_CONTEXT);
  } catch (e) {
    if (e instanceof ThemisError) throw new SdkError('BAD_RESPONSE', 'the blob does not open with the key the message carries', { cause: e });
    throw e;
  }
}

export function encodeFileRef(r: FileRef): Uint8Array {
  const name = utf8(r.name);
  return new ByteWriter()
    .u8(FILE_REF_VERSION)
    .bytes(r.key)
    .bytes(r.digest)
    .u32be(r.blobSize)
    .u8(r.blobId.length)
    .bytes(utf8(r.blobId))
    .u8(name.length)
    .bytes(name)
    .u8(r.mediaType.length)
    .bytes(utf8(r.mediaType))
    .finish();
}

/**
 * Parse a FileRef within the format's bounds; throws `MALFORMED`. What a
 * peer announces is read with {@link decodeAnnouncedFileRef}; this alone
 * reads the references a store kept (some kept before that check existed).
 */
export function decodeFileRef(bytes: Uint8Array): FileRef {
  const r = new ByteReader(bytes, 'file reference');
  if (r.u8() !== FILE_REF_VERSION) throw r.malformed('unknown version');
  const key = r.bytes(KEY_BYTES).slice();
  const digest = r.bytes(DIGEST_BYTES).slice();
  const blobSize = r.u32be();
  if (blobSize < 1 || blobSize > BLOB_BYTES_MAX) throw r.malformed('blob size out of range');
  const blobId = fromUtf8(r.bytes(r.u8()));
  if (blobId === null || !BLOB_ID.test(blobId)) throw r.malformed('invalid blob id');
  const nameLength = r.u8();
  if (nameLength > FILE_NAME_BYTES_MAX) throw r.malformed('name too long');
  const name = fromUtf8(r.bytes(nameLength));
  if (name === null) throw r.malformed('name is not UTF-8');
  const mediaLength = r.u8();
  if (mediaLength > MEDIA_TYPE_BYTES_MAX) throw r.malformed('media type too long');
  const mediaType = fromUtf8(r.bytes(mediaLength));
  if (mediaType === null || !MEDIA_TYPE.test(mediaType)) throw r.malformed('invalid media type');
  r.end();
  return { blobId, key, digest, blobSize, name, mediaType };
}

/**
 * Parse the FileRef a peer's file message carries; throws `MALFORMED`, so
 * the message is reported undecryptable (`MALFORMED_PAYLOAD`), never shown
 * as a file. Beyond the format's bounds, the blob must be one that
 * `sendFile` can have made: a sealed file of 1 … FILE_BYTES_MAX bytes (a
 * smaller "blob" would be a file of a negative size, and its download
 * would blame the server for the peer's lie).
 */
export function decodeAnnouncedFileRef(bytes: Uint8Array): FileRef {
  const ref = decodeFileRef(bytes);
  if (ref.blobSize < BLOB_BYTES_MIN) {
    throw new SdkError('MALFORMED', `file reference: a blob of ${ref.blobSize} bytes is smaller than any sealed file (${BLOB_BYTES_MIN} bytes: one byte sealed)`);
  }
  return ref;
}
