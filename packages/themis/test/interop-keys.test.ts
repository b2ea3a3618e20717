/**
 * Live cross-tests of key containers against the real peer, wasm-themis 0.15.0.
 * Every item runs both ways: keys made by the peer parse in ours, keys made by
 * ours are accepted by the peer. Independent facts (public points, the
 * uncompressed encoding) come from node:crypto, never from our backend.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, ECDH } from 'node:crypto';
import { KeyPair, PrivateKey, PublicKey, SecureCellSeal, SecureMessage, SecureMessageSign, SecureMessageVerify, SymmetricKey } from '../src/index.ts';
import { writeContainer } from '../src/hazmat.ts';
import { flipBit, oursRejects, pattern, peer, peerGenerateRsaKeyPair, peerOk, peerRejects, plain } from './_interop.ts';

const EC_PAIRS = 4;

/** The 32-byte scalar of a canonical 45-byte REC2 container, read by hand. */
function scalarOf(key: Uint8Array): Uint8Array {
  const sk = plain(key); // peer keys are Uint8Array subclasses whose subarray() misbehaves
  assert.equal(sk.length, 45);
  assert.equal(String.fromCharCode(...sk.subarray(0, 4)), 'REC2');
  assert.equal(sk[12], 0, 'canonical private payload starts with 0x00');
  return plain(sk.subarray(13));
}

/** Compressed public point for a private scalar, by node:crypto. */
function nodePublicOf(d: Uint8Array): Uint8Array {
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(d);
  return plain(ecdh.getPublicKey(null, 'compressed'));
}

/** A UEC2 container holding the uncompressed form (node:crypto) of a compressed key. */
function uncompressedContainer(key: Uint8Array): Uint8Array {
  const pk = plain(key);
  assert.equal(pk.length, 45);
  const point = plain(ECDH.convertKey(pk.subarray(12), 'prime256v1', undefined, undefined, 'uncompressed') as Uint8Array);
  assert.equal(point.length, 65);
  assert.equal(point[0], 4);
  return writeContainer('UEC2', point);
}

/** Every single-bit flip of `key` is refused by `parse` in both implementations. */
function assertEveryBitFlipRejected(key: Uint8Array, which: 'private' | 'public'): void {
  const Ours = which === 'private' ? PrivateKey : PublicKey;
  const Theirs = which === 'private' ? peer.PrivateKey : peer.PublicKey;
  for (let bit = 0; bit < key.length * 8; bit++) {
    const bad = flipBit(key, bit);
    oursRejects(`${which} key, bit ${bit} flipped`, () => new Ours(bad), 'INVALID_KEY');
    peerRejects(`${which} key, bit ${bit} flipped`, () => new Theirs(bad));
  }
}

const message = pattern(100, 7);

describe('keys: peer → ours', () => {
  const pairs = Array.from({ length: EC_PAIRS }, () => peerOk('peer KeyPair()', () => new peer.KeyPair()));
  const peerRsa = peerGenerateRsaKeyPair();

  test('peer-generated EC keys parse in ours unchanged and form a KeyPair', () => {
    for (const p of pairs) {
      const sk = new PrivateKey(p.privateKey);
      const pk = new PublicKey(p.publicKey);
      assert.equal(sk.kind, 'ec-private');
      assert.equal(pk.kind, 'ec-public');
      assert.deepEqual(plain(sk), plain(p.privateKey));
      assert.deepEqual(plain(pk), plain(p.publicKey));
      const pair = new KeyPair(p.privateKey, p.publicKey);
      assert.deepEqual(plain(pair.publicKey), plain(p.publicKey));
      // The peer's private key is really the one behind its public key (node:crypto).
      assert.deepEqual(nodePublicOf(scalarOf(p.privateKey)), plain(p.publicKey).subarray(12));
    }
  });

  test('peer-generated EC private keys sign correctly in ours (peer verifies with its public key)', () => {
    for (const p of pairs) {
      const signed = new SecureMessageSign(new PrivateKey(p.privateKey)).sign(message);
      const out = peerOk('peer verify', () => new peer.SecureMessageVerify(p.publicKey).verify(signed));
      assert.deepEqual(plain(out), message);
    }
  });

  test('peer-generated RSA-2048 keys (peer core) parse in ours unchanged', () => {
    const p = peerRsa;
    assert.equal(p.privateKey.length, 1168);
    assert.equal(p.publicKey.length, 272);
    const sk = new PrivateKey(p.privateKey);
    const pk = new PublicKey(p.publicKey);
    assert.equal(sk.kind, 'rsa-private');
    assert.equal(pk.kind, 'rsa-public');
    assert.deepEqual(plain(sk), p.privateKey);
    assert.deepEqual(plain(pk), p.publicKey);
    const pair = new KeyPair(sk, pk);
    const verified = peerOk('peer verify', () => new peer.SecureMessageVerify(new peer.PublicKey(p.publicKey)).verify(new SecureMessageSign(pair.privateKey).sign(message)));
    assert.deepEqual(plain(verified), message);
  });

  test('a peer EC key with any single bit flipped is rejected by ours (and by the peer)', () => {
    const p = pairs[0];
    assertEveryBitFlipRejected(plain(p.privateKey), 'private');
    assertEveryBitFlipRejected(plain(p.publicKey), 'public');
  });

  test('a peer RSA key with any single bit flipped is rejected by ours (and by the peer)', () => {
    const p = peerRsa;
    assertEveryBitFlipRejected(p.privateKey, 'private');
    assertEveryBitFlipRejected(p.publicKey, 'public');
  });

  test('uncompressed (77-byte) form of a peer public key: ours accepts it and emits the peer’s 45-byte key', () => {
    for (const p of pairs) {
      const u = uncompressedContainer(p.publicKey);
      assert.equal(u.length, 77);
      peerOk('peer PublicKey(uncompressed)', () => new peer.PublicKey(u));
      const pk = new PublicKey(u);
      assert.equal(pk.length, 45);
      assert.deepEqual(plain(pk), plain(p.publicKey));
    }
    // And it works: ours verifies the peer's signature and encrypts to the peer with it.
    const p = pairs[0];
    const u = uncompressedContainer(p.publicKey);
    const signed = peerOk('peer sign', () => new peer.SecureMessageSign(p.privateKey).sign(message));
    assert.deepEqual(new SecureMessageVerify(new PublicKey(u)).verify(signed), message);
    const ours = new KeyPair();
    const encrypted = new SecureMessage(ours.privateKey, new PublicKey(u)).encrypt(message);
    const opened = peerOk('peer decrypt', () => new peer.SecureMessage(new peer.KeyPair(p.privateKey, new peer.PublicKey(ours.publicKey))).decrypt(encrypted));
    assert.deepEqual(plain(opened), message);
  });

  test('32-byte-payload (44-byte) form of a peer private key: ours accepts it and emits the peer’s 45-byte key', () => {
    for (const p of pairs) {
      const short = writeContainer('REC2', scalarOf(p.privateKey));
      assert.equal(short.length, 44);
      peerOk('peer PrivateKey(44 bytes)', () => new peer.PrivateKey(short));
      const sk = new PrivateKey(short);
      assert.equal(sk.length, 45);
      assert.deepEqual(plain(sk), plain(p.privateKey));
      const signed = new SecureMessageSign(sk).sign(message);
      assert.deepEqual(plain(peerOk('peer verify', () => new peer.SecureMessageVerify(p.publicKey).verify(signed))), message);
    }
  });

  test('the peer’s SymmetricKey() is 32 bytes and keys our Secure Cell', () => {
    const k = peerOk('peer SymmetricKey()', () => new peer.SymmetricKey());
    assert.equal(k.length, 32);
    const wrapped = new SymmetricKey(k);
    assert.deepEqual(plain(wrapped), plain(k));
    const cell = peerOk('peer encrypt', () => peer.SecureCellSeal.withKey(k).encrypt(message));
    assert.deepEqual(SecureCellSeal.withKey(wrapped).decrypt(cell), message);
  });
});

describe('keys: ours → peer', () => {
  const pairs = Array.from({ length: EC_PAIRS }, () => new KeyPair());
  const rsa = KeyPair.generateRSA(2048);

  test('our EC keys are canonical, self-consistent (node:crypto) and accepted by the peer unchanged', () => {
    for (const p of pairs) {
      assert.equal(p.privateKey.length, 45);
      assert.equal(p.publicKey.length, 45);
      assert.deepEqual(nodePublicOf(scalarOf(p.privateKey)), plain(p.publicKey).subarray(12));
      const sk = peerOk('peer PrivateKey', () => new peer.PrivateKey(p.privateKey));
      const pk = peerOk('peer PublicKey', () => new peer.PublicKey(p.publicKey));
      assert.deepEqual(plain(sk), plain(p.privateKey));
      assert.deepEqual(plain(pk), plain(p.publicKey));
      peerOk('peer KeyPair', () => new peer.KeyPair(sk, pk));
      // The peer signs with our private key; ours verifies with our public key.
      const signed = peerOk('peer sign', () => new peer.SecureMessageSign(sk).sign(message));
      assert.deepEqual(new SecureMessageVerify(p.publicKey).verify(signed), message);
    }
  });

  test('our RSA-2048 keys are accepted by the peer unchanged and work there', () => {
    assert.equal(rsa.privateKey.length, 1168);
    assert.equal(rsa.publicKey.length, 272);
    const sk = peerOk('peer PrivateKey', () => new peer.PrivateKey(rsa.privateKey));
    const pk = peerOk('peer PublicKey', () => new peer.PublicKey(rsa.publicKey));
    assert.deepEqual(plain(sk), plain(rsa.privateKey));
    assert.deepEqual(plain(pk), plain(rsa.publicKey));
    const signed = peerOk('peer sign', () => new peer.SecureMessageSign(sk).sign(message));
    assert.deepEqual(new SecureMessageVerify(rsa.publicKey).verify(signed), message);
  });

  test('our EC key with any single bit flipped is rejected by the peer (and by ours)', () => {
    const p = pairs[0] as KeyPair;
    assertEveryBitFlipRejected(plain(p.privateKey), 'private');
    assertEveryBitFlipRejected(plain(p.publicKey), 'public');
  });

  test('our RSA key with any single bit flipped is rejected by the peer (and by ours)', () => {
    assertEveryBitFlipRejected(plain(rsa.privateKey), 'private');
    assertEveryBitFlipRejected(plain(rsa.publicKey), 'public');
  });

  test('uncompressed (77-byte) form of our public key: the peer and ours accept it; ours emits the 45-byte key', () => {
    for (const p of pairs) {
      const u = uncompressedContainer(p.publicKey);
      const pk = new PublicKey(u);
      assert.equal(pk.length, 45);
      assert.deepEqual(plain(pk), plain(p.publicKey));
      const theirs = peerOk('peer PublicKey(uncompressed)', () => new peer.PublicKey(u));
      const verified = peerOk('peer verify', () => new peer.SecureMessageVerify(theirs).verify(new SecureMessageSign(p.privateKey).sign(message)));
      assert.deepEqual(plain(verified), message);
    }
  });

  test('32-byte-payload (44-byte) form of our private key: the peer and ours accept it; ours emits the 45-byte key', () => {
    for (const p of pairs) {
      const short = writeContainer('REC2', scalarOf(p.privateKey));
      assert.equal(short.length, 44);
      const sk = new PrivateKey(short);
      assert.equal(sk.length, 45);
      assert.deepEqual(plain(sk), plain(p.privateKey));
      const theirs = peerOk('peer PrivateKey(44 bytes)', () => new peer.PrivateKey(short));
      const signed = peerOk('peer sign', () => new peer.SecureMessageSign(theirs).sign(message));
      assert.deepEqual(new SecureMessageVerify(p.publicKey).verify(signed), message);
    }
  });

  test('our SymmetricKey() is 32 fresh bytes and keys the peer’s Secure Cell', () => {
    const a = new SymmetricKey();
    const b = new SymmetricKey();
    assert.equal(a.length, 32);
    assert.equal(b.length, 32);
    assert.notDeepEqual(plain(a), plain(b));
    const cell = SecureCellSeal.withKey(a).encrypt(message);
    const out = peerOk('peer decrypt', () => peer.SecureCellSeal.withKey(new peer.SymmetricKey(a)).decrypt(cell));
    assert.deepEqual(plain(out), message);
  });
});

describe('RSA key generation at every size Themis generates', () => {
  // 4096-bit generation takes ~1 s on node:crypto and ~5 s in pure JS: one pair per size.
  for (const bits of [1024, 2048, 4096]) {
    test(`KeyPair.generateRSA(${bits}): canonical sizes, accepted by the peer, and working with it both ways`, () => {
      const ours = KeyPair.generateRSA(bits);
      const k = bits / 8;
      assert.equal(ours.privateKey.length, 12 + 4.5 * k + 4);
      assert.equal(ours.publicKey.length, 12 + k + 4);
      assert.equal(String.fromCharCode(...ours.privateKey.subarray(0, 4)), `RRA${{ 1024: '1', 2048: '2', 4096: '4' }[bits]}`);
      const pSk = peerOk('peer PrivateKey', () => new peer.PrivateKey(ours.privateKey));
      const pPk = peerOk('peer PublicKey', () => new peer.PublicKey(ours.publicKey));
      const m = pattern(100, bits);
      const signed = new SecureMessageSign(ours.privateKey).sign(m);
      assert.deepEqual(plain(peerOk('peer verifies', () => new peer.SecureMessageVerify(pPk).verify(signed))), m);
      const peerSigned: Uint8Array = plain(peerOk('peer signs', () => new peer.SecureMessageSign(pSk).sign(m)));
      assert.deepEqual(new SecureMessageVerify(ours.publicKey).verify(peerSigned), m);
      const toPeer = new SecureMessage(ours.privateKey, ours.publicKey).encrypt(m);
      assert.deepEqual(plain(peerOk('peer decrypts', () => new peer.SecureMessage(new peer.KeyPair(pSk, pPk)).decrypt(toPeer))), m);
    });
  }
});
