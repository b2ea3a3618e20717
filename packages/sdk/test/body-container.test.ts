import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { limits as protocolLimits } from '@parley/protocol';
import { containerSize, decodeContainer, encodeContainer, envelopeFor, type ContainerEntry } from '../src/body-container.ts';
import { SdkError } from '../src/errors.ts';
import { BODY_BYTES_MAX, CONTAINER_ENTRIES_MAX } from '../src/limits.ts';

const id = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,63}$/);
const deviceId = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const entry = fc.record({ userId: id, deviceId, envelope: fc.uint8Array({ minLength: 1, maxLength: 300 }) });
const entries = fc.uniqueArray(entry, { minLength: 1, maxLength: 8, selector: (e) => JSON.stringify([e.userId, e.deviceId]) });

const isMalformed = (e: unknown): boolean => SdkError.is(e, 'MALFORMED');

function sample(): ContainerEntry[] {
  return [
    { userId: 'bob', deviceId: 'phone', envelope: Uint8Array.of(1, 2, 3) },
    { userId: 'alice', deviceId: 'tablet', envelope: Uint8Array.of(4, 5) },
  ];
}

describe('body container', () => {
  it('has the documented layout', () => {
    const bytes = encodeContainer([{ userId: 'bob', deviceId: 'ph', envelope: Uint8Array.of(0xaa, 0xbb) }]);
    assert.deepEqual([...bytes], [0x01, 0x00, 0x01, 3, 0x62, 0x6f, 0x62, 2, 0x70, 0x68, 0, 0, 0, 2, 0xaa, 0xbb]);
  });

  it('round-trips any set of entries, and containerSize is exact', () => {
    fc.assert(
      fc.property(entries, (es) => {
        const bytes = encodeContainer(es);
        assert.equal(bytes.length, containerSize(es.map((e) => ({ userId: e.userId, deviceId: e.deviceId, envelopeLength: e.envelope.length }))));
        const back = decodeContainer(bytes);
        assert.deepEqual(
          back.map((e) => [e.userId, e.deviceId, [...e.envelope]]),
          es.map((e) => [e.userId, e.deviceId, [...e.envelope]]),
        );
        for (const e of es) assert.deepEqual(envelopeFor(bytes, e), e.envelope);
      }),
    );
  });

  it('finds nothing for a device that is not addressed', () => {
    assert.equal(envelopeFor(encodeContainer(sample()), { userId: 'carol', deviceId: 'phone' }), null);
    assert.equal(envelopeFor(encodeContainer(sample()), { userId: 'bob', deviceId: 'tablet' }), null);
  });

  it('refuses every truncation and any trailing byte', () => {
    const bytes = encodeContainer(sample());
    for (let n = 0; n < bytes.length; n++) assert.throws(() => decodeContainer(bytes.subarray(0, n)), isMalformed, `truncated to ${n}`);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    assert.throws(() => decodeContainer(longer), isMalformed);
  });

  it('refuses unknown versions, bad counts, empty ids and envelopes, duplicates, and oversized input', () => {
    const good = encodeContainer(sample());
    const patched = (at: number, value: number): Uint8Array => {
      const b = good.slice();
      b[at] = value;
      return b;
    };
    assert.throws(() => decodeContainer(patched(0, 2)), isMalformed, 'version');
    assert.throws(() => decodeContainer(Uint8Array.of(1, 0, 0)), isMalformed, 'zero entries');
    const many = CONTAINER_ENTRIES_MAX + 1;
    assert.throws(() => decodeContainer(Uint8Array.of(1, many >> 8, many & 0xff)), isMalformed, 'too many entries');
    assert.throws(() => decodeContainer(patched(3, 0)), isMalformed, 'empty userId');
    assert.throws(() => decodeContainer(patched(3, 65)), isMalformed, 'userId too long');
    assert.throws(() => decodeContainer(Uint8Array.of(1, 0, 1, 1, 0x61, 1, 0x62, 0, 0, 0, 0)), isMalformed, 'empty envelope');
    assert.throws(() => decodeContainer(Uint8Array.of(1, 0, 1, 1, 0xff, 1, 0x62, 0, 0, 0, 1, 9)), isMalformed, 'userId not UTF-8');
    const tooLong = protocolLimits.ENVELOPE_BYTES_MAX + 1;
    assert.throws(
      () => decodeContainer(Uint8Array.of(1, 0, 1, 1, 0x61, 1, 0x62, tooLong >>> 24, (tooLong >>> 16) & 0xff, (tooLong >>> 8) & 0xff, tooLong & 0xff)),
      isMalformed,
      'envelope length above the limit',
    );
    const twice = encodeContainer([sample()[0] as ContainerEntry]);
    const dup = new Uint8Array([1, 0, 2, ...twice.subarray(3), ...twice.subarray(3)]);
    assert.throws(() => decodeContainer(dup), isMalformed, 'an address twice');
    assert.throws(() => decodeContainer(new Uint8Array(BODY_BYTES_MAX + 1)), isMalformed, 'larger than a body');
  });

  it('never throws anything but MALFORMED on random input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        try {
          decodeContainer(b);
        } catch (e) {
          assert.ok(isMalformed(e), String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses to write what it would refuse to read', () => {
    const bad = (es: ContainerEntry[]): void => assert.throws(() => encodeContainer(es), (e) => SdkError.is(e, 'INVALID_ARGUMENT'));
    bad([]);
    bad([...sample(), sample()[0] as ContainerEntry]);
    bad([{ userId: 'bob', deviceId: 'phone', envelope: new Uint8Array(0) }]);
    bad([{ userId: '', deviceId: 'phone', envelope: Uint8Array.of(1) }]);
    bad([{ userId: 'x'.repeat(65), deviceId: 'phone', envelope: Uint8Array.of(1) }]);
  });
});
