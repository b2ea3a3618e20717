import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromBase64, randomId, toBase64 } from '../src/_bytes.ts';
import { SdkError } from '../src/errors.ts';
import { CLIENT_ID } from '../src/frames.ts';
import { CONTENT_BYTES_MAX, CONTROL_BYTES_MAX, CONTROL_VERIFICATION, decodePayload, encodePayload, withDirect, type Payload } from '../src/payload.ts';

const isMalformed = (e: unknown): boolean => SdkError.is(e, 'MALFORMED');
const messageId = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const sentAt = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const direct = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,63}$/);
const payload: fc.Arbitrary<Payload> = fc.oneof(
  fc.record({ kind: fc.constant('text' as const), text: fc.string({ unit: 'grapheme', maxLength: 50 }), id: messageId, sentAt, direct }, { requiredKeys: ['kind', 'text', 'id', 'sentAt'] }),
  fc.record({ kind: fc.constant('binary' as const), bytes: fc.uint8Array({ maxLength: 100 }), id: messageId, sentAt, direct }, { requiredKeys: ['kind', 'bytes', 'id', 'sentAt'] }),
);

describe('message payload', () => {
  it('has the documented layout', () => {
    const bytes = encodePayload({ kind: 'text', text: 'hé', id: 'm1', sentAt: 0x0102_0304_0506 });
    assert.deepEqual([...bytes], [0x01, 0x01, 2, 0x6d, 0x31, 0, 0, 1, 2, 3, 4, 5, 6, 0x68, 0xc3, 0xa9]);
  });

  it('version 2 says who a direct room is with: the documented layout, and its bounds', () => {
    const bytes = encodePayload({ kind: 'text', text: 'hé', id: 'm1', sentAt: 0x0102_0304_0506, direct: 'bob' });
    assert.deepEqual([...bytes], [0x02, 0x01, 2, 0x6d, 0x31, 0, 0, 1, 2, 3, 4, 5, 6, 0x01, 3, 0x62, 0x6f, 0x62, 0x68, 0xc3, 0xa9]);
    assert.equal(decodePayload(bytes).direct, 'bob');
    assert.equal(decodePayload(encodePayload({ kind: 'text', text: 'x', id: 'a', sentAt: 1 })).direct, undefined, 'version 1 names no peer');
    assert.doesNotThrow(() => encodePayload({ kind: 'binary', bytes: new Uint8Array(CONTENT_BYTES_MAX), id: 'x'.repeat(64), sentAt: 1, direct: 'u'.repeat(64) }), 'the largest header still leaves CONTENT_BYTES_MAX');
    assert.throws(() => encodePayload({ kind: 'text', text: 'x', id: 'a', sentAt: 1, direct: 'no spaces' }), (e) => SdkError.is(e, 'INVALID_ARGUMENT'));
    const at = (i: number, v: number): Uint8Array => Uint8Array.from(bytes, (b, j) => (j === i ? v : b));
    assert.throws(() => decodePayload(at(13, 0x03)), isMalformed, 'an unknown flag');
    assert.throws(() => decodePayload(at(13, 0x00)), isMalformed, 'no flag');
    assert.throws(() => decodePayload(at(14, 0)), isMalformed, 'an empty peer');
    assert.throws(() => decodePayload(at(14, 65)), isMalformed, 'a peer longer than 64');
    assert.throws(() => decodePayload(at(15, 0x20)), isMalformed, 'a peer that is no user id');
    assert.throws(() => decodePayload(bytes.subarray(0, 16)), isMalformed, 'cut in the peer');
  });

  it('withDirect makes from a version 1 payload the bytes encodePayload makes with its peer', () => {
    fc.assert(
      fc.property(payload, direct, (p, peer) => {
        const plain: Payload = { ...p };
        delete (plain as { direct?: string }).direct;
        assert.deepEqual(withDirect(encodePayload(plain), peer), encodePayload({ ...plain, direct: peer }));
      }),
    );
    assert.throws(() => withDirect(encodePayload({ kind: 'text', text: 'x', id: 'a', sentAt: 1, direct: 'bob' }), 'eve'), (e) => SdkError.is(e, 'INVALID_ARGUMENT'), 'not twice');
  });

  it('round-trips text and binary payloads', () => {
    fc.assert(
      fc.property(payload, (p) => {
        const back = decodePayload(encodePayload(p));
        assert.deepEqual(back, p.kind === 'binary' ? { ...p, bytes: new Uint8Array(p.bytes) } : { ...p });
      }),
    );
  });

  it('refuses content above CONTENT_BYTES_MAX, bad ids and times', () => {
    assert.doesNotThrow(() => encodePayload({ kind: 'binary', bytes: new Uint8Array(CONTENT_BYTES_MAX), id: 'x'.repeat(64), sentAt: 1 }));
    assert.throws(() => encodePayload({ kind: 'binary', bytes: new Uint8Array(CONTENT_BYTES_MAX + 1), id: 'a', sentAt: 1 }), (e) => SdkError.is(e, 'LIMIT'));
    assert.throws(() => encodePayload({ kind: 'text', text: '', id: 'not ok', sentAt: 1 }), (e) => SdkError.is(e, 'INVALID_ARGUMENT'));
    assert.throws(() => encodePayload({ kind: 'text', text: '', id: 'a', sentAt: -1 }), (e) => SdkError.is(e, 'INVALID_ARGUMENT'));
  });

  it('refuses malformed payloads: version, kind, id, truncated time, invalid UTF-8', () => {
    const good = encodePayload({ kind: 'text', text: 'hi', id: 'abc', sentAt: 5 });
    const patched = (at: number, v: number): Uint8Array => {
      const b = good.slice();
      b[at] = v;
      return b;
    };
    assert.throws(() => decodePayload(patched(0, 2)), isMalformed);
    assert.throws(() => decodePayload(patched(1, 4)), isMalformed, 'unknown kind');
    assert.throws(() => decodePayload(patched(1, 0)), isMalformed, 'kind 0');
    assert.throws(() => decodePayload(patched(2, 0)), isMalformed);
    assert.throws(() => decodePayload(patched(3, 0x20)), isMalformed, 'id outside the pattern');
    for (let n = 0; n < 3 + 3 + 8; n++) assert.throws(() => decodePayload(good.subarray(0, n)), isMalformed, `truncated to ${n}`);
    assert.throws(() => decodePayload(new Uint8Array([...good.subarray(0, 14), 0xff])), isMalformed, 'text not UTF-8');
    assert.throws(() => decodePayload(patched(6, 0x20)), isMalformed, 'sentAt above 2^53 − 1');
  });
});

describe('control payloads', () => {
  it('round-trip, and their content is bounded at both ends', () => {
    const bytes = Uint8Array.of(CONTROL_VERIFICATION, 1, 2, 3);
    const p = decodePayload(encodePayload({ kind: 'control', bytes, id: 'ctl', sentAt: 9 }));
    assert.deepEqual(p, { kind: 'control', bytes, id: 'ctl', sentAt: 9 });
    const biggest = new Uint8Array(CONTROL_BYTES_MAX).fill(1);
    assert.equal(decodePayload(encodePayload({ kind: 'control', bytes: biggest, id: 'ctl', sentAt: 9 })).kind, 'control');
    const isLimit = (e: unknown): boolean => SdkError.is(e, 'LIMIT');
    assert.throws(() => encodePayload({ kind: 'control', bytes: new Uint8Array(CONTROL_BYTES_MAX + 1), id: 'ctl', sentAt: 9 }), isLimit);
    assert.throws(() => encodePayload({ kind: 'control', bytes: new Uint8Array(0), id: 'ctl', sentAt: 9 }), isLimit);
    // Forged on the wire (a peer's own encoder): refused as malformed, one byte over and empty.
    const text = encodePayload({ kind: 'binary', bytes: biggest, id: 'ctl', sentAt: 9 });
    const asControl = (b: Uint8Array): Uint8Array => {
      const c = b.slice();
      c[1] = 0x03;
      return c;
    };
    assert.equal(decodePayload(asControl(text)).kind, 'control');
    assert.throws(() => decodePayload(asControl(encodePayload({ kind: 'binary', bytes: new Uint8Array(CONTROL_BYTES_MAX + 1), id: 'ctl', sentAt: 9 }))), isMalformed);
    assert.throws(() => decodePayload(asControl(encodePayload({ kind: 'binary', bytes: new Uint8Array(0), id: 'ctl', sentAt: 9 }))), isMalformed);
  });
});

describe('byte helpers', () => {
  it('base64 matches the platform encoder and refuses non-canonical text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        const s = toBase64(b);
        assert.equal(s, Buffer.from(b).toString('base64'));
        assert.deepEqual(fromBase64(s), b);
      }),
    );
    for (const bad of ['A', 'AB=', 'A===', 'AB==AB==', 'AB-_', 'AR==', 'ABC=x', 'AB\u00e9=']) assert.equal(fromBase64(bad), null, bad);
    assert.deepEqual(fromBase64(''), new Uint8Array(0));
  });

  it('message ids are fresh and fit the clientId pattern', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => randomId()));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, CLIENT_ID);
  });
});
