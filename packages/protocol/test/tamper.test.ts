/**
 * Every single-bit flip of an envelope is refused with the one opaque code
 * DECRYPT_FAILED, leaves the receiving session byte-for-byte unchanged and
 * consumes no prekey, and the genuine message still decrypts afterwards.
 *
 * Covered exhaustively: a normal message on the current chain, the first
 * message of a new chain (DH ratchet step), a prekey message of a session the
 * responder already has, and every bit outside the ML-KEM ciphertext of a
 * prekey message that starts a new session. Inside that ciphertext (1,568
 * bytes, each flip costing a full PQXDH) one bit of every 7th byte is
 * flipped — ML-KEM's implicit rejection treats every such change alike.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PREKEY_FIELDS_LENGTH } from '../src/envelope.ts';
import { KEM_CIPHERTEXT_LENGTH } from '../src/kem.ts';
import { Session, type DecryptOptions } from '../src/session.ts';
import { flipBit, hex, makeDevice, outcome, str, text, type Device } from './_helpers.ts';

/** Offset of the KEM ciphertext in a prekey message (after version, type and 77 bytes of fields). */
const KEM_OFFSET = 2 + PREKEY_FIELDS_LENGTH - KEM_CIPHERTEXT_LENGTH;

function checkAllFlips(receiver: Session, envelope: Uint8Array, options: DecryptOptions, bits: Iterable<number>, device: Device): number {
  const before = hex(receiver.serialize());
  const prekeysBefore = device.prekeys.oneTimePrekeyCount;
  const wrong = new Map<string, number[]>();
  let tried = 0;
  for (const bit of bits) {
    tried++;
    const code = outcome(() => receiver.decrypt(flipBit(envelope, bit), options));
    if (code !== 'DECRYPT_FAILED') wrong.set(code, [...(wrong.get(code) ?? []), bit]);
  }
  assert.deepEqual(Object.fromEntries(wrong), {}, 'every flip must be DECRYPT_FAILED');
  assert.equal(hex(receiver.serialize()), before, 'the session must not change');
  assert.equal(device.prekeys.oneTimePrekeyCount, prekeysBefore, 'no prekey may be consumed');
  return tried;
}

function allBits(envelope: Uint8Array): number[] {
  return Array.from({ length: envelope.length * 8 }, (_, i) => i);
}

describe('every single-bit flip is one opaque failure and changes nothing', () => {
  const alice = makeDevice('alice', 'laptop');
  const bob = makeDevice('bob', 'phone');
  const responder: DecryptOptions = { identity: bob.identity, prekeys: bob.prekeys };

  test('a prekey message that starts a new session', () => {
    const a = Session.initiate(alice.identity, bob.bundle(true), alice.address, bob.address);
    const b = Session.create(bob.address, alice.address);
    const env = a.encrypt(text('first'));
    const bits = allBits(env).filter((bit) => {
      const byte = bit >>> 3;
      const inKem = byte >= KEM_OFFSET && byte < KEM_OFFSET + KEM_CIPHERTEXT_LENGTH;
      return !inKem || ((byte - KEM_OFFSET) % 7 === 0 && bit % 8 === (byte % 8));
    });
    const tried = checkAllFlips(b, env, responder, bits, bob);
    assert.ok(tried > (env.length - KEM_CIPHERTEXT_LENGTH) * 8);
    assert.equal(b.established, false);
    assert.equal(str(b.decrypt(env, responder)), 'first');
  });

  test('a prekey message of a session the responder already has, and a normal message', () => {
    const a = Session.initiate(alice.identity, bob.bundle(true), alice.address, bob.address);
    const b = Session.create(bob.address, alice.address);
    b.decrypt(a.encrypt(text('first')), responder);
    const second = a.encrypt(text('second'));
    checkAllFlips(b, second, responder, allBits(second), bob);
    assert.equal(str(b.decrypt(second, responder)), 'second');

    a.decrypt(b.encrypt(text('reply')));
    const skipped = a.encrypt(text('skipped'));
    const normal = a.encrypt(text('normal'));
    // The first message of a new chain: every flip goes through the DH ratchet path.
    checkAllFlips(b, normal, responder, allBits(normal), bob);
    assert.equal(str(b.decrypt(normal)), 'normal');
    // A message whose key waits among the skipped keys.
    checkAllFlips(b, skipped, responder, allBits(skipped), bob);
    assert.equal(str(b.decrypt(skipped)), 'skipped');
    // And on the current chain, with associated data.
    const next = a.encrypt(text('next'), text('ad'));
    checkAllFlips(b, next, { ...responder, ad: text('ad') }, allBits(next), bob);
    assert.equal(str(b.decrypt(next, { ad: text('ad') })), 'next');
  });

  test('truncations and extensions are DECRYPT_FAILED too', () => {
    const a = Session.initiate(alice.identity, bob.bundle(false), alice.address, bob.address);
    const b = Session.create(bob.address, alice.address);
    b.decrypt(a.encrypt(text('first')), responder);
    a.decrypt(b.encrypt(text('reply')));
    const env = a.encrypt(text('a message of some length'));
    const before = hex(b.serialize());
    for (let n = 0; n < env.length; n++) assert.equal(outcome(() => b.decrypt(env.subarray(0, n), responder)), 'DECRYPT_FAILED', `first ${n} bytes`);
    for (const extra of [1, 15, 16, 32]) {
      assert.equal(outcome(() => b.decrypt(new Uint8Array([...env, ...new Uint8Array(extra)]), responder)), 'DECRYPT_FAILED', `+${extra} bytes`);
    }
    assert.equal(hex(b.serialize()), before);
    assert.equal(str(b.decrypt(env)), 'a message of some length');
  });
});
