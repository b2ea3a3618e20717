/**
 * PQXDH: both sides derive the same secret; the secret is exactly the spec's
 * formula (recomputed here from Bob's private keys with @noble directly);
 * bundles are verified field by field; the signed messages are byte for byte
 * those of docs/protocol.md, and verify with node:crypto as the server does;
 * one-time prekeys are one-time.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { IdentityKeyPair } from '../src/identity.ts';
import { makePrekeyBundle, pqPrekeyMessage, PqPrekey, signedPrekeyMessage, SignedPrekey, verifyPrekeyBundle, type PrekeyBundle } from '../src/prekeys.ts';
import { pqxdhInitiate, pqxdhRespond, PQXDH_INFO } from '../src/pqxdh.ts';
import { Session } from '../src/session.ts';
import { expectCode, flipBit, hex, makeDevice, str, text } from './_helpers.ts';

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

describe('PQXDH key agreement', () => {
  for (const withOneTime of [true, false]) {
    test(`both sides derive the spec's SK ${withOneTime ? 'with' : 'without'} a one-time prekey`, () => {
      const alice = IdentityKeyPair.generate();
      const bob = makeDevice('bob', 'phone');
      const bundle = bob.bundle(withOneTime);
      const init = pqxdhInitiate(alice, bundle);
      assert.equal(init.fields.oneTimePrekeyId, withOneTime ? 100 : null);
      assert.equal(init.fields.signedPrekeyId, 1);
      assert.equal(init.fields.pqPrekeyId, 1);
      assert.deepEqual(init.fields.identityKey, alice.publicKey);
      const resp = pqxdhRespond(bob.identity, bob.prekeys, init.fields);
      assert.ok(resp !== null);
      assert.equal(hex(resp.sharedSecret), hex(init.sharedSecret));
      assert.equal(resp.signedPrekey, bob.signedPrekey);

      // Recompute SK from Bob's private keys with @noble, straight from the spec:
      // SK = HKDF(salt 0^32, 0xFF^32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS, info, 32).
      const ikA = ed25519.utils.toMontgomery(alice.publicKey);
      const ikBPrivate = ed25519.utils.toMontgomerySecret(bob.identity.exportSeed());
      const ek = init.fields.baseKey;
      const dh1 = x25519.getSharedSecret(bob.signedPrekey.exportPrivateKey(), ikA);
      const dh2 = x25519.getSharedSecret(ikBPrivate, ek);
      const dh3 = x25519.getSharedSecret(bob.signedPrekey.exportPrivateKey(), ek);
      const otk = bob.oneTimePrekeys[0];
      assert.ok(otk !== undefined);
      const dh4 = withOneTime ? [x25519.getSharedSecret(otk.exportPrivateKey(), ek)] : [];
      const pqSecret = ml_kem1024.keygen(bob.pqPrekey.toBytes().subarray(6, 70)).secretKey;
      const ss = ml_kem1024.decapsulate(init.fields.kemCiphertext, pqSecret);
      const expected = hkdf(sha256, concat(new Uint8Array(32).fill(0xff), dh1, dh2, dh3, ...dh4, ss), new Uint8Array(32), text('Parley_PQXDH_X25519_SHA-256_ML-KEM-1024'), 32);
      assert.equal(hex(init.sharedSecret), hex(expected));
      assert.equal(str(PQXDH_INFO), 'Parley_PQXDH_X25519_SHA-256_ML-KEM-1024');
    });
  }

  test('with and without the one-time prekey give different secrets, and each run is fresh', () => {
    const alice = IdentityKeyPair.generate();
    const bob = makeDevice('bob', 'phone');
    const a = pqxdhInitiate(alice, bob.bundle(false));
    const b = pqxdhInitiate(alice, bob.bundle(false));
    assert.notEqual(hex(a.sharedSecret), hex(b.sharedSecret));
    assert.notEqual(hex(a.fields.baseKey), hex(b.fields.baseKey));
    const withOtk = pqxdhInitiate(alice, bob.bundle(true));
    const tampered = { ...withOtk.fields, oneTimePrekeyId: null };
    const resp = pqxdhRespond(bob.identity, bob.prekeys, tampered);
    assert.ok(resp !== null);
    assert.notEqual(hex(resp.sharedSecret), hex(withOtk.sharedSecret));
  });

  test('the responder returns null for any prekey it does not hold', () => {
    const alice = IdentityKeyPair.generate();
    const bob = makeDevice('bob', 'phone');
    const { fields } = pqxdhInitiate(alice, bob.bundle(true));
    assert.equal(pqxdhRespond(bob.identity, bob.prekeys, { ...fields, signedPrekeyId: 2 }), null);
    assert.equal(pqxdhRespond(bob.identity, bob.prekeys, { ...fields, pqPrekeyId: 2 }), null);
    assert.equal(pqxdhRespond(bob.identity, bob.prekeys, { ...fields, oneTimePrekeyId: 99 }), null);
    // A low-order base key or an identity key with no X25519 form.
    assert.equal(pqxdhRespond(bob.identity, bob.prekeys, { ...fields, baseKey: new Uint8Array(32) }), null);
    assert.equal(pqxdhRespond(bob.identity, bob.prekeys, { ...fields, identityKey: Uint8Array.of(1, ...new Uint8Array(31)) }), null);
    assert.ok(pqxdhRespond(bob.identity, bob.prekeys, fields) !== null);
  });
});

describe('signed prekey messages (docs/protocol.md "Key directory")', () => {
  test('are exactly purpose ‖ u32be(keyId) ‖ publicKey', () => {
    const pub = Uint8Array.from({ length: 32 }, (_, i) => i);
    assert.equal(hex(signedPrekeyMessage(0x01020304, pub)), hex(concat(text('parley-signed-prekey-v1\n'), Uint8Array.of(1, 2, 3, 4), pub)));
    assert.equal(hex(pqPrekeyMessage(0xfffffffe, pub)), hex(concat(text('parley-pq-prekey-v1\n'), Uint8Array.of(0xff, 0xff, 0xff, 0xfe), pub)));
  });

  test('verify with node:crypto the way the server verifies uploads', () => {
    const identity = IdentityKeyPair.generate();
    const spk = SignedPrekey.generate(identity, 7);
    const pq = PqPrekey.generate(identity, 8);
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(identity.publicKey).toString('base64url') }, format: 'jwk' });
    assert.equal(nodeVerify(null, signedPrekeyMessage(7, spk.publicKey), key, spk.signature), true);
    assert.equal(nodeVerify(null, pqPrekeyMessage(8, pq.publicKey), key, pq.signature), true);
    assert.equal(pq.publicKey.length, 1568);
    // Cross-purpose: the signed prekey's signature is not valid as a PQ prekey signature.
    assert.equal(nodeVerify(null, pqPrekeyMessage(7, spk.publicKey), key, spk.signature), false);
  });
});

describe('verifyPrekeyBundle', () => {
  const bob = makeDevice('bob', 'phone', 1);
  const good = bob.bundle(true);

  test('accepts a genuine bundle, with or without a one-time prekey, and returns a private copy', () => {
    const copy = verifyPrekeyBundle(good);
    assert.notEqual(copy.identityKey, good.identityKey);
    assert.deepEqual(copy.identityKey, good.identityKey);
    assert.equal(verifyPrekeyBundle({ ...good, oneTimePrekey: null }).oneTimePrekey, null);
  });

  test('refuses every tampered signed field with BAD_SIGNATURE', () => {
    const cases: [string, PrekeyBundle][] = [
      ['identity key bit', { ...good, identityKey: flipBit(good.identityKey, 3) }],
      ['signed prekey bit', { ...good, signedPrekey: { ...good.signedPrekey, publicKey: flipBit(good.signedPrekey.publicKey, 200) } }],
      ['signed prekey id', { ...good, signedPrekey: { ...good.signedPrekey, keyId: 2 } }],
      ['signed prekey signature', { ...good, signedPrekey: { ...good.signedPrekey, signature: flipBit(good.signedPrekey.signature, 9) } }],
      ['PQ prekey bit', { ...good, pqPrekey: { ...good.pqPrekey, publicKey: flipBit(good.pqPrekey.publicKey, 12345) } }],
      ['PQ prekey id', { ...good, pqPrekey: { ...good.pqPrekey, keyId: 0 } }],
      ['PQ prekey signature', { ...good, pqPrekey: { ...good.pqPrekey, signature: flipBit(good.pqPrekey.signature, 500) } }],
      ['another identity', { ...good, identityKey: IdentityKeyPair.generate().publicKey }],
      // A signature over an X25519 key presented as one over the (first 32 bytes of the) KEM key, and vice versa.
      ['signatures swapped', { ...good, signedPrekey: { ...good.signedPrekey, signature: good.pqPrekey.signature }, pqPrekey: { ...good.pqPrekey, signature: good.signedPrekey.signature } }],
    ];
    for (const [what, bundle] of cases) {
      expectCode(() => verifyPrekeyBundle(bundle), 'BAD_SIGNATURE', what);
      expectCode(() => Session.initiate(IdentityKeyPair.generate(), bundle, { userId: 'a', deviceId: 'd' }, bob.address), 'BAD_SIGNATURE', what);
    }
  });

  test('refuses wrong shapes with MALFORMED', () => {
    const cases: [string, unknown][] = [
      ['not an object', 'bundle'],
      ['null', null],
      ['short identity key', { ...good, identityKey: good.identityKey.subarray(1) }],
      ['identity key as array', { ...good, identityKey: Array.from(good.identityKey) }],
      ['missing signed prekey', { ...good, signedPrekey: undefined }],
      ['long signed prekey', { ...good, signedPrekey: { ...good.signedPrekey, publicKey: new Uint8Array(33) } }],
      ['negative key id', { ...good, signedPrekey: { ...good.signedPrekey, keyId: -1 } }],
      ['fractional key id', { ...good, pqPrekey: { ...good.pqPrekey, keyId: 1.5 } }],
      ['key id 2^32', { ...good, oneTimePrekey: { keyId: 2 ** 32, publicKey: new Uint8Array(32) } }],
      ['missing PQ prekey (no downgrade to X3DH)', { ...good, pqPrekey: null }],
      ['ML-KEM-768-sized PQ prekey', { ...good, pqPrekey: { ...good.pqPrekey, publicKey: new Uint8Array(1184) } }],
      ['short signature', { ...good, pqPrekey: { ...good.pqPrekey, signature: new Uint8Array(63) } }],
    ];
    for (const [what, bundle] of cases) expectCode(() => verifyPrekeyBundle(bundle), 'MALFORMED', what);
  });

  test('a correctly signed but unusable key is MALFORMED at initiation', () => {
    const identity = IdentityKeyPair.generate();
    const pq = PqPrekey.generate(identity, 1);
    // A low-order signed prekey, properly signed.
    const lowOrder = new Uint8Array(32);
    const spk = { keyId: 1, publicKey: lowOrder, signature: identity.sign(signedPrekeyMessage(1, lowOrder)) };
    expectCode(() => pqxdhInitiate(IdentityKeyPair.generate(), { identityKey: identity.publicKey, signedPrekey: spk, oneTimePrekey: null, pqPrekey: pq.public }), 'MALFORMED');
    // An ML-KEM key with an unreduced coefficient (FIPS 203 §7.2 modulus check), properly signed.
    const badKem = new Uint8Array(1568).fill(0xff);
    const pqBad = { keyId: 1, publicKey: badKem, signature: identity.sign(pqPrekeyMessage(1, badKem)) };
    const goodSpk = SignedPrekey.generate(identity, 1);
    expectCode(() => pqxdhInitiate(IdentityKeyPair.generate(), { identityKey: identity.publicKey, signedPrekey: goodSpk.public, oneTimePrekey: null, pqPrekey: pqBad }), 'MALFORMED');
    // The genuine bundle of the same keys works.
    pqxdhInitiate(IdentityKeyPair.generate(), makePrekeyBundle(identity, goodSpk, null, pq));
  });
});

describe('one-time prekeys are used once', () => {
  test('a second session on the same one-time prekey is refused; the first keeps working', () => {
    const bob = makeDevice('bob', 'phone');
    const bundle = bob.bundle(true);
    const alice1 = { identity: IdentityKeyPair.generate(), address: { userId: 'alice', deviceId: 'laptop' } };
    const alice2 = { identity: IdentityKeyPair.generate(), address: { userId: 'mallory', deviceId: 'x' } };
    const s1 = Session.initiate(alice1.identity, bundle, alice1.address, bob.address);
    const s2 = Session.initiate(alice2.identity, bundle, alice2.address, bob.address);
    const b1 = Session.create(bob.address, alice1.address);
    const b2 = Session.create(bob.address, alice2.address);
    const responder = { identity: bob.identity, prekeys: bob.prekeys };
    const before = bob.prekeys.oneTimePrekeyCount;
    assert.equal(str(b1.decrypt(s1.encrypt(text('first')), responder)), 'first');
    assert.equal(bob.prekeys.oneTimePrekeyCount, before - 1);
    expectCode(() => b2.decrypt(s2.encrypt(text('second')), responder), 'DECRYPT_FAILED');
    assert.equal(b2.established, false);
    assert.equal(bob.prekeys.oneTimePrekeyCount, before - 1);
    // The genuine session is unaffected.
    assert.equal(str(s1.decrypt(b1.encrypt(text('reply')))), 'reply');
  });

  test('a replayed first message after the session moved on is a DUPLICATE, and consumes nothing', () => {
    const bob = makeDevice('bob', 'phone');
    const alice = makeDevice('alice', 'laptop');
    const a = Session.initiate(alice.identity, bob.bundle(true), alice.address, bob.address);
    const b = Session.create(bob.address, alice.address);
    const first = a.encrypt(text('hello'));
    const responder = { identity: bob.identity, prekeys: bob.prekeys };
    b.decrypt(first, responder);
    a.decrypt(b.encrypt(text('hi')));
    b.decrypt(a.encrypt(text('next')));
    const count = bob.prekeys.oneTimePrekeyCount;
    expectCode(() => b.decrypt(first, responder), 'DUPLICATE');
    // A fresh Bob session object (e.g. state lost) cannot re-accept it either: the one-time prekey is gone.
    expectCode(() => Session.create(bob.address, alice.address).decrypt(first, responder), 'DECRYPT_FAILED');
    assert.equal(bob.prekeys.oneTimePrekeyCount, count);
  });
});
