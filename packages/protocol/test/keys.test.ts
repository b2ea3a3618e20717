/**
 * Identity keys and prekey records: restoring from stored bytes gives the
 * same keys; record parsers are strict; destroyed keys refuse to work; the
 * identity's X25519 form matches the Ed25519 key's birational image.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backend } from '@parley/themis/hazmat';
import { IdentityKeyPair, identityDhKey, verifyIdentitySignature } from '../src/identity.ts';
import { OneTimePrekey, PqPrekey, signedPrekeyMessage, SignedPrekey } from '../src/prekeys.ts';
import { expectCode, flipBit, hex, text } from './_helpers.ts';

describe('IdentityKeyPair', () => {
  test('restores from its seed; signs and verifies; its DH form is the image of its Ed25519 key', () => {
    const id = IdentityKeyPair.generate();
    const seed = id.exportSeed();
    const again = IdentityKeyPair.fromSeed(seed);
    seed.fill(0); // the copy is independent of the caller's buffer
    assert.equal(hex(again.publicKey), hex(id.publicKey));
    assert.equal(hex(again.dhPublicKey), hex(id.dhPublicKey));
    assert.equal(hex(identityDhKey(id.publicKey) ?? new Uint8Array()), hex(id.dhPublicKey));
    const sig = again.sign(text('message'));
    assert.equal(hex(sig), hex(id.sign(text('message'))));
    assert.ok(verifyIdentitySignature(id.publicKey, text('message'), sig));
    assert.ok(!verifyIdentitySignature(id.publicKey, text('messagf'), sig));
    // DH agrees from both sides.
    const other = IdentityKeyPair.generate();
    assert.equal(hex(id.dh(other.dhPublicKey) ?? new Uint8Array()), hex(other.dh(id.dhPublicKey) ?? new Uint8Array(1)));
    assert.equal(id.dh(new Uint8Array(32)), null);
  });

  test('identityDhKey refuses keys that are not in the prime-order subgroup, and copes with bad lengths', () => {
    assert.equal(identityDhKey(new Uint8Array(31)), null);
    assert.equal(identityDhKey(Uint8Array.of(1, ...new Uint8Array(31))), null);
    const k = identityDhKey(IdentityKeyPair.generate().publicKey);
    assert.ok(k !== null);
    // The cache hands out copies.
    const id = IdentityKeyPair.generate();
    const first = identityDhKey(id.publicKey);
    first?.fill(0);
    assert.equal(hex(identityDhKey(id.publicKey) ?? new Uint8Array()), hex(id.dhPublicKey));
  });

  test('bad seeds and use after destroy', () => {
    expectCode(() => IdentityKeyPair.fromSeed(new Uint8Array(31)), 'INVALID_ARGUMENT');
    expectCode(() => IdentityKeyPair.fromSeed('seed' as unknown as Uint8Array), 'INVALID_ARGUMENT');
    const id = IdentityKeyPair.generate();
    id.destroy();
    expectCode(() => id.sign(text('x')), 'INVALID_STATE');
    expectCode(() => id.exportSeed(), 'INVALID_STATE');
    expectCode(() => id.dh(IdentityKeyPair.generate().dhPublicKey), 'INVALID_STATE');
  });
});

describe('prekey records', () => {
  const identity = IdentityKeyPair.generate();

  test('round-trip through toBytes / fromBytes', () => {
    const spk = SignedPrekey.generate(identity, 42);
    const spk2 = SignedPrekey.fromBytes(spk.toBytes());
    assert.equal(spk2.keyId, 42);
    assert.equal(hex(spk2.publicKey), hex(spk.publicKey));
    assert.equal(hex(spk2.signature), hex(spk.signature));
    assert.ok(verifyIdentitySignature(identity.publicKey, signedPrekeyMessage(42, spk2.publicKey), spk2.signature));

    const [otk] = OneTimePrekey.generate(7, 1);
    assert.ok(otk !== undefined);
    const otk2 = OneTimePrekey.fromBytes(otk.toBytes());
    assert.equal(otk2.keyId, 7);
    const peer = backend.x25519PublicFromPrivate(backend.x25519GeneratePrivate());
    assert.equal(hex(otk2.dh(peer) ?? new Uint8Array()), hex(otk.dh(peer) ?? new Uint8Array(1)));

    const pq = PqPrekey.generate(identity, 9);
    const pq2 = PqPrekey.fromBytes(pq.toBytes());
    assert.equal(hex(pq2.publicKey), hex(pq.publicKey));
    assert.equal(hex(pq2.signature), hex(pq.signature));
    assert.equal(pq.toBytes().length, 1 + 1 + 4 + 64 + 64);
  });

  test('parsers refuse other kinds, versions, truncations and trailing bytes', () => {
    const spk = SignedPrekey.generate(identity, 1).toBytes();
    const otk = (OneTimePrekey.generate(1, 1)[0] as OneTimePrekey).toBytes();
    const pq = PqPrekey.generate(identity, 1).toBytes();
    expectCode(() => SignedPrekey.fromBytes(otk), 'MALFORMED');
    expectCode(() => OneTimePrekey.fromBytes(spk), 'MALFORMED');
    expectCode(() => PqPrekey.fromBytes(spk), 'MALFORMED');
    expectCode(() => SignedPrekey.fromBytes(flipBit(spk, 1)), 'MALFORMED');
    for (const [parse, bytes] of [
      [SignedPrekey.fromBytes, spk],
      [OneTimePrekey.fromBytes, otk],
      [PqPrekey.fromBytes, pq],
    ] as const) {
      for (let n = 0; n < bytes.length; n++) expectCode(() => parse(bytes.subarray(0, n)), 'MALFORMED', `${n} bytes`);
      expectCode(() => parse(new Uint8Array([...bytes, 0])), 'MALFORMED');
    }
  });

  test('destroyed prekeys refuse to work', () => {
    const spk = SignedPrekey.generate(identity, 1);
    spk.destroy();
    expectCode(() => spk.dh(identity.dhPublicKey), 'INVALID_STATE');
    expectCode(() => spk.toBytes(), 'INVALID_STATE');
    const pq = PqPrekey.generate(identity, 1);
    pq.destroy();
    expectCode(() => pq.decapsulate(new Uint8Array(1568)), 'INVALID_STATE');
    expectCode(() => pq.toBytes(), 'INVALID_STATE');
  });

  test('key ids must be u32', () => {
    expectCode(() => SignedPrekey.generate(identity, -1), 'INVALID_ARGUMENT');
    expectCode(() => PqPrekey.generate(identity, 2 ** 32), 'INVALID_ARGUMENT');
    expectCode(() => SignedPrekey.generate(identity, 0.5), 'INVALID_ARGUMENT');
    assert.equal(SignedPrekey.generate(identity, 0xffff_ffff).keyId, 0xffff_ffff);
  });
});
