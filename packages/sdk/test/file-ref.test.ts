/**
 * The file reference inside a file message (file-transfer.ts): round trip,
 * every field bounded when parsing what a peer sent — a size no sealed file
 * has makes the message undecryptable (`MALFORMED_PAYLOAD`), never a file —
 * and sealing / opening a file with a digest check.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { makePrekeyBundle, PqPrekey, SignedPrekey, type DeviceAddress } from '@parley/protocol';
import { toBase64 } from '../src/_bytes.ts';
import { MemoryClientStore } from '../src/client-store.ts';
import { SdkError } from '../src/errors.ts';
import type { ClientEvents } from '../src/events.ts';
import { BLOB_BYTES_MIN, decodeAnnouncedFileRef, decodeFileRef, encodeFileRef, FILE_BYTES_MAX, openFile, sealFile, SEAL_OVERHEAD_BYTES, type FileRef } from '../src/file-transfer.ts';
import { Inbound } from '../src/inbound.ts';
import { BLOB_BYTES_MAX, FILE_NAME_BYTES_MAX, MEDIA_TYPE_BYTES_MAX } from '../src/limits.ts';
import { decodePayload, encodePayload } from '../src/payload.ts';
import { sealRoomMessage } from '../src/room-cipher.ts';

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
      fc.property(fc.string({ maxLength: 60 }), fc.stringMatching(/^[a-z]{0,20}\/[a-z0-9.+-]{0,40}$/), fc.integer({ min: BLOB_BYTES_MIN, max: BLOB_BYTES_MAX }), (name, mediaType, blobSize) => {
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

  it('a peer\'s announcement must name a blob some file seals to: 1 … FILE_BYTES_MAX bytes once opened (a smaller one is MALFORMED)', () => {
    assert.equal(BLOB_BYTES_MIN, SEAL_OVERHEAD_BYTES + 1);
    assert.equal(sealFile(new Uint8Array(1), '', '').sealed.length, BLOB_BYTES_MIN, 'a one-byte file seals to the smallest blob');
    assert.equal(BLOB_BYTES_MAX - SEAL_OVERHEAD_BYTES, FILE_BYTES_MAX);
    for (const blobSize of [1, 2, SEAL_OVERHEAD_BYTES - 1, SEAL_OVERHEAD_BYTES]) {
      const bytes = encodePayload({ kind: 'file', file: ref({ blobSize }), id: 'f1', sentAt: 3 });
      assert.throws(() => decodePayload(bytes), (e: unknown) => SdkError.is(e, 'MALFORMED') && /smaller than any sealed file/.test(e.message), `blob of ${blobSize} bytes`);
      assert.throws(() => decodeAnnouncedFileRef(encodeFileRef(ref({ blobSize }))), isMalformed);
      // A reference a store kept before this check still reads (it is shown, not lost).
      assert.equal(decodeFileRef(encodeFileRef(ref({ blobSize }))).blobSize, blobSize);
    }
    for (const blobSize of [BLOB_BYTES_MIN, BLOB_BYTES_MAX]) {
      const p = decodePayload(encodePayload({ kind: 'file', file: ref({ blobSize }), id: 'f1', sentAt: 3 }));
      assert.equal(p.kind === 'file' ? p.file.blobSize : null, blobSize);
    }
  });

  it('a file message of an impossible size from a peer is a decryptionError / undecryptable entry (MALFORMED_PAYLOAD), not a message', () => {
    const roomId = 'room-1';
    const alice: DeviceAddress = { userId: 'alice', deviceId: 'laptop' };
    const bob: DeviceAddress = { userId: 'bob', deviceId: 'phone' };
    /** Bob's device, and what a hostile client of Alice's sends it: a well-formed file reference of a 1-byte blob ("-43 bytes"), then a good one. */
    const conversation = () => {
      const bobStore = MemoryClientStore.create();
      bobStore.setAccount(bob);
      const identity = bobStore.identity.identityKeyPair();
      const spk = SignedPrekey.generate(identity, 1);
      const pq = PqPrekey.generate(identity, 1);
      bobStore.addSignedPrekey(spk);
      bobStore.addPqPrekey(pq);
      const aliceStore = MemoryClientStore.create();
      aliceStore.setAccount(alice);
      const target = { ...bob, bundle: makePrekeyBundle(identity, spk, null, pq), problem: null };
      const entries = [1, BLOB_BYTES_MIN].map((blobSize, i) => {
        const clientId = `f${i + 1}`;
        const sealed = sealRoomMessage(aliceStore, alice, [target], roomId, encodePayload({ kind: 'file', file: ref({ blobSize, name: 'pl.txt' }), id: clientId, sentAt: 3 }), 1 << 20);
        return { roomId, seq: i + 1, kind: 'message', from: alice, clientId, body: toBase64(sealed.body), ts: 1000 + i };
      });
      const events: { event: keyof ClientEvents; value: unknown }[] = [];
      const inbound = new Inbound(bobStore, bob, {
        emit: (event, value) => events.push({ event, value }),
        prekeyMessageOpened: () => undefined,
        membershipChanged: () => undefined,
        messageFrom: () => undefined,
        gap: () => undefined,
      overflow: () => undefined,
        control: () => undefined,
        ownPending: () => false,
      });
      return { bobStore, entries, events, inbound };
    };

    // Live: a decryptionError with the reason, then the good file as a message.
    const live = conversation();
    for (const e of live.entries) live.inbound.receive(e);
    assert.deepEqual(
      live.events.map((e) => [e.event, (e.value as { seq: number }).seq, (e.value as { reason?: string }).reason ?? (e.value as { kind?: string }).kind]),
      [
        ['decryptionError', 1, 'MALFORMED_PAYLOAD'],
        ['message', 2, 'file'],
      ],
    );
    assert.equal(live.bobStore.loadMessage(roomId, 1), undefined, 'nothing kept as a file');
    // Read again (history after sync, as `parley history` does): the same reason, not a replay (DUPLICATE),
    // though its message key is spent; another entry claiming that seq is opened on its own.
    const again = live.inbound.historyEntry(live.entries[0] as (typeof live.entries)[number]);
    assert.equal(again?.type === 'undecryptable' ? again.reason : again?.type, 'MALFORMED_PAYLOAD');
    const other = live.inbound.historyEntry({ ...(live.entries[0] as (typeof live.entries)[number]), clientId: 'other' });
    assert.equal(other?.type === 'undecryptable' ? other.reason : other?.type, 'DUPLICATE');

    // History read first (as `parley history` does): an undecryptable entry.
    const read = conversation();
    const [bad, good] = read.entries.map((e) => read.inbound.historyEntry(e));
    assert.deepEqual(bad, { type: 'undecryptable', roomId, seq: 1, from: alice, clientId: 'f1', serverTs: 1000, reason: 'MALFORMED_PAYLOAD' });
    assert.equal(good?.type === 'message' && good.kind === 'file' ? good.file.blobSize : null, BLOB_BYTES_MIN);
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
