/**
 * The file reference inside a file message (file-transfer.ts): round trip,
 * every field bounded when parsing what a peer sent, and sealing / opening
 * a file with a digest check.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SdkError } from '../src/errors.ts';
import { decodeFileRef, encodeFileRef, openFile, sealFile, SEAL_OVERHEAD_BYTES, type FileRef } from '../src/file-transfer.ts';
import { BLOB_BYTES_MAX, FILE_NAME_BYTES_MAX, MEDIA_TYPE_BYTES_MAX } from '../src/limits.ts';
import { decodePayload, encodePayload } from '../src/payload.ts';

const isMalformed = (e: unknown): boolean => SdkError.is(e, 'MALFORMED');
const ref = (over: Partial<FileRef> = {}): FileRef => ({
  blobId: 'AbCdEfGhIjKlMnOpQrStUv',
  key: new Uint8Array(32).fill(1),
  digest: new Uint8Array(32).fill(2),
  blobSize: 1234,
  name: 'photo.png',
  mediaType: 'image/png',
  ...over,
});

describe('file reference', () => {
  it('round-trips, in a payload too (fast-check)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), fc.stringMatching(/^[a-z]{0,20}\/[a-z0-9.+-]{0,40}$/), fc.integer({ min: 1, max: BLOB_BYTES_MAX }), (name, mediaType, blobSize) => {
        const r = ref({ name, mediaType, blobSize });
        assert.deepEqual(decodeFileRef(encodeFileRef(r)), r);
        const p = decodePayload(encodePayload({ kind: 'file', file: r, id: 'f1', sentAt: 3 }));
        assert.deepEqual(p, { kind: 'file', file: r, id: 'f1', sentAt: 3 });
      }),
    );
  });

  it('bounds every field a peer controls', () => {
    const good = encodeFileRef(ref({ name: 'n'.repeat(FILE_NAME_BYTES_MAX), mediaType: 't'.repeat(MEDIA_TYPE_BYTES_MAX), blobSize: BLOB_BYTES_MAX }));
    assert.equal(decodeFileRef(good).name.length, FILE_NAME_BYTES_MAX, 'the longest name and media type, the largest blob');
    const patched = (at: number, v: number): Uint8Array => {
      const b = good.slice();
      b[at] = v;
      return b;
    };
    assert.throws(() => decodeFileRef(patched(0, 2)), isMalformed, 'version');
    // blobSize at 65..68: BLOB_BYTES_MAX + 1, and 0.
    const size = (n: number): Uint8Array => {
      const b = good.slice();
      new DataView(b.buffer).setUint32(65, n);
      return b;
    };
    assert.throws(() => decodeFileRef(size(BLOB_BYTES_MAX + 1)), isMalformed);
    assert.throws(() => decodeFileRef(size(0)), isMalformed);
    assert.throws(() => decodeFileRef(patched(69, 21)), isMalformed, 'blob id length');
    assert.throws(() => decodeFileRef(patched(70, 0x2e)), isMalformed, 'blob id character');
    assert.throws(() => decodeFileRef(new Uint8Array([...good, 0])), isMalformed, 'trailing byte');
    for (let n = 0; n < good.length; n += 7) assert.throws(() => decodeFileRef(good.subarray(0, n)), isMalformed, `truncated to ${n}`);
    // The name's length is a u8: FILE_NAME_BYTES_MAX (255) is its own bound. A media type one byte over:
    const base = encodeFileRef(ref({ name: '', mediaType: '' }));
    const longType = new Uint8Array([...base.subarray(0, 93), MEDIA_TYPE_BYTES_MAX + 1, ...new Uint8Array(MEDIA_TYPE_BYTES_MAX + 1).fill(0x61)]);
    assert.throws(() => decodeFileRef(longType), isMalformed);
    assert.equal(decodeFileRef(new Uint8Array([...base.subarray(0, 93), MEDIA_TYPE_BYTES_MAX, ...new Uint8Array(MEDIA_TYPE_BYTES_MAX).fill(0x61)])).mediaType.length, MEDIA_TYPE_BYTES_MAX);
    assert.throws(() => decodeFileRef(encodeFileRef(ref({ mediaType: 'image\tpng' }))), isMalformed, 'a control character');
    assert.throws(() => decodeFileRef(encodeFileRef(ref({ mediaType: 'imäge/png' }))), isMalformed, 'not ASCII');
    assert.equal(decodeFileRef(encodeFileRef(ref({ mediaType: 'text/plain; charset=utf-8' }))).mediaType, 'text/plain; charset=utf-8', 'parameters, with a space');
  });

  it('seals with a fresh key each time; opens only the blob it names', () => {
    const file = new TextEncoder().encode('the file');
    const a = sealFile(file, 'a.txt', 'text/plain');
    const b = sealFile(file, 'a.txt', 'text/plain');
    assert.notDeepEqual(a.ref('AbCdEfGhIjKlMnOpQrStUv').key, b.ref('AbCdEfGhIjKlMnOpQrStUv').key);
    assert.equal(a.sealed.length, file.length + SEAL_OVERHEAD_BYTES);
    assert.deepEqual(openFile(a.ref('AbCdEfGhIjKlMnOpQrStUv'), a.sealed), file);
    assert.throws(() => openFile(a.ref('AbCdEfGhIjKlMnOpQrStUv'), b.sealed), (e: unknown) => SdkError.is(e, 'BAD_RESPONSE'));
  });
});
