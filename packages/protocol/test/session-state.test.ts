/**
 * Persisted sessions: serialize → seal → open → deserialize in the middle of
 * a conversation (with skipped keys, closed chains, pending prekey fields and
 * archived states) continues exactly where it was; the encoding is stable
 * (re-serializing gives the same bytes); a wrong key or a record for another
 * pair of devices is refused; the parser refuses every truncation and
 * corrupt field with MALFORMED, never another error.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '../src/errors.ts';
import { Session } from '../src/session.ts';
import { deserializeSessionRecord, SEALING_KEY_LENGTH } from '../src/session-state.ts';
import { expectCode, flipBit, hex, makeDevice, str, text } from './_helpers.ts';

function midConversation() {
  const alice = makeDevice('alice', 'laptop');
  const bob = makeDevice('bob', 'phone');
  const a = Session.initiate(alice.identity, bob.bundle(), alice.address, bob.address);
  const b = Session.create(bob.address, alice.address);
  const responder = { identity: bob.identity, prekeys: bob.prekeys };
  const early = [a.encrypt(text('a0')), a.encrypt(text('a1')), a.encrypt(text('a2'))];
  b.decrypt(early[2] as Uint8Array, responder);
  const fromB = [b.encrypt(text('b0')), b.encrypt(text('b1'))];
  a.decrypt(fromB[1] as Uint8Array);
  const late = [a.encrypt(text('a3')), a.encrypt(text('a4'))];
  b.decrypt(late[1] as Uint8Array);
  // Now: Bob holds skipped keys for a0, a1 (old chain) and a3; Alice for b0. Both have a closed chain.
  return { alice, bob, a, b, responder, pending: { toB: [early[0], early[1], late[0]] as Uint8Array[], toA: [fromB[0]] as Uint8Array[] } };
}

describe('serialize and seal', () => {
  test('a round trip mid-conversation continues exactly where it was', () => {
    const { alice, bob, a, b, responder, pending } = midConversation();
    const key = new Uint8Array(32).fill(9);
    const a2 = Session.open(a.seal(key), key, alice.address, bob.address);
    const b2 = Session.open(b.seal(key), key, bob.address, alice.address);
    assert.equal(hex(a2.serialize()), hex(a.serialize()));
    assert.equal(hex(b2.serialize()), hex(b.serialize()));
    // Skipped keys survived: the withheld messages decrypt after the restart.
    assert.deepEqual(pending.toB.map((e) => str(b2.decrypt(e, responder))), ['a0', 'a1', 'a3']);
    assert.equal(str(a2.decrypt(pending.toA[0] as Uint8Array)), 'b0');
    // And the conversation goes on in both directions.
    for (let i = 0; i < 3; i++) {
      assert.equal(str(b2.decrypt(a2.encrypt(text(`x${i}`)))), `x${i}`);
      assert.equal(str(a2.decrypt(b2.encrypt(text(`y${i}`)))), `y${i}`);
    }
  });

  test('pending prekey fields and archived states survive too', () => {
    const alice = makeDevice('alice', 'laptop');
    const bob = makeDevice('bob', 'phone');
    const a = Session.initiate(alice.identity, bob.bundle(), alice.address, bob.address);
    a.initiate(alice.identity, bob.bundle());
    assert.equal(a.stateCount, 2);
    assert.equal(a.awaitingReply, true);
    const restored = Session.deserialize(a.serialize());
    assert.equal(restored.stateCount, 2);
    assert.equal(restored.awaitingReply, true);
    const b = Session.create(bob.address, alice.address);
    assert.equal(str(b.decrypt(restored.encrypt(text('after restore')), { identity: bob.identity, prekeys: bob.prekeys })), 'after restore');
    const record = deserializeSessionRecord(restored.serialize());
    assert.equal(record.states.length, 2);
    assert.equal(record.states[0]?.role, 'initiator');
    assert.ok(record.states[0]?.pending !== null);
  });

  test('an empty session round-trips', () => {
    const s = Session.create({ userId: 'a', deviceId: '1' }, { userId: 'b', deviceId: '2' });
    const back = Session.deserialize(s.serialize());
    assert.equal(back.stateCount, 0);
    assert.deepEqual(back.remoteAddress, { userId: 'b', deviceId: '2' });
  });

  test('a wrong key, the wrong pair of devices, or a modified byte is DECRYPT_FAILED', () => {
    const { alice, bob, a } = midConversation();
    const key = new Uint8Array(32).fill(1);
    const sealed = a.seal(key);
    expectCode(() => Session.open(sealed, new Uint8Array(32).fill(2), alice.address, bob.address), 'DECRYPT_FAILED');
    // The context binds both addresses and their order.
    expectCode(() => Session.open(sealed, key, bob.address, alice.address), 'DECRYPT_FAILED');
    expectCode(() => Session.open(sealed, key, alice.address, { userId: 'bob', deviceId: 'tablet' }), 'DECRYPT_FAILED');
    expectCode(() => Session.open(sealed, key, { userId: 'alice', deviceId: 'phone' }, bob.address), 'DECRYPT_FAILED');
    for (const bit of [0, 100, sealed.length * 8 - 1]) expectCode(() => Session.open(flipBit(sealed, bit), key, alice.address, bob.address), 'DECRYPT_FAILED');
    expectCode(() => Session.open(sealed.subarray(0, 40), key, alice.address, bob.address), 'DECRYPT_FAILED');
    assert.equal(Session.open(sealed, key, alice.address, bob.address).stateCount, 1);
  });

  test(`sealing keys of any length but ${SEALING_KEY_LENGTH} bytes are refused (HMAC would take k and k ‖ 0 for one key)`, () => {
    const { alice, bob, a } = midConversation();
    expectCode(() => a.seal(new Uint8Array(SEALING_KEY_LENGTH - 1)), 'INVALID_ARGUMENT');
    expectCode(() => a.seal(new Uint8Array(SEALING_KEY_LENGTH + 1)), 'INVALID_ARGUMENT');
    const sealed = a.seal(new Uint8Array(SEALING_KEY_LENGTH).fill(9));
    expectCode(() => Session.open(sealed, new Uint8Array(16), alice.address, bob.address), 'INVALID_ARGUMENT');
    expectCode(() => Session.open(sealed, Uint8Array.of(...new Uint8Array(SEALING_KEY_LENGTH).fill(9), 0), alice.address, bob.address), 'INVALID_ARGUMENT');
    expectCode(() => a.seal('key' as unknown as Uint8Array), 'INVALID_ARGUMENT');
    expectCode(() => a.seal(new Uint8Array(64).fill(3)), 'INVALID_ARGUMENT');
  });
});

describe('the record parser', () => {
  test('every truncation and any trailing byte is MALFORMED', () => {
    const { b } = midConversation();
    const bytes = b.serialize();
    for (let n = 0; n < bytes.length; n++) expectCode(() => Session.deserialize(bytes.subarray(0, n)), 'MALFORMED', `first ${n} of ${bytes.length} bytes`);
    expectCode(() => Session.deserialize(new Uint8Array([...bytes, 0])), 'MALFORMED');
  });

  test('corrupt fields are MALFORMED, never another kind of error', () => {
    const { b } = midConversation();
    const bytes = b.serialize();
    // Flip every bit of the first 260 bytes (version, addresses, counts, role, flags, keys):
    // each either still parses (a key changed) or is MALFORMED.
    let malformed = 0;
    for (let bit = 0; bit < Math.min(bytes.length, 260) * 8; bit++) {
      try {
        Session.deserialize(flipBit(bytes, bit));
      } catch (e) {
        assert.ok(ProtocolError.is(e, 'MALFORMED'), `bit ${bit}: ${String(e)}`);
        malformed++;
      }
    }
    assert.ok(malformed > 50, `${malformed}`);
    // Specific fields.
    for (const version of [0, 3, 0xff]) {
      const wrongVersion = Uint8Array.from(bytes);
      wrongVersion[0] = version;
      expectCode(() => Session.deserialize(wrongVersion), 'MALFORMED', `version ${version}`);
    }
    expectCode(() => Session.deserialize(new Uint8Array(0)), 'MALFORMED');
    expectCode(() => Session.deserialize([1, 2] as unknown as Uint8Array), 'INVALID_ARGUMENT');
  });

  test('re-serializing a parsed record gives the same bytes', () => {
    const { a, b } = midConversation();
    for (const s of [a, b]) {
      const bytes = s.serialize();
      assert.equal(hex(Session.deserialize(bytes).serialize()), hex(bytes));
    }
  });
});
