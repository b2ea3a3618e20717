/**
 * Known-answer Secure Messages (vectors/message-*.json): ECDSA signed
 * messages with 69–72-byte signatures and trailing padding (GoThemis, C core,
 * React Native), and EC encrypted messages, one made for an uncompressed
 * public key. Every vector is also run on the real peer.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyPair, PrivateKey, PublicKey, SecureMessage, SecureMessageVerify } from '../src/index.ts';
import { loadPeer } from './_peer.ts';
import { assertFailsLike, assertOursLike, assertPeerLike, hex, legacyMismatches, loadVectors, peerCall, type Outcome } from './_vectors.ts';

interface SignedVector extends Outcome {
  publicKey: string;
  signed: string;
  trailingBytes?: number;
}
interface EncryptedVector extends Outcome {
  privateKey: string;
  publicKey: string;
  encrypted: string;
}

const signed = loadVectors<{ vectors: SignedVector[] }>('message-signed.json').vectors;
const encrypted = loadVectors<{ vectors: EncryptedVector[] }>('message-encrypted.json').vectors;

describe('KAT: Secure Message verify (vectors/message-signed.json)', () => {
  for (const v of signed) {
    it(v.id, async () => {
      const run = (): Uint8Array => new SecureMessageVerify(new PublicKey(hex(v.publicKey))).verify(hex(v.signed));
      if (v.expect === 'fail') assertFailsLike('message-signed', v, run);
      else assertOursLike(v, run());
      const peer = await loadPeer();
      assertPeerLike(v, peerCall(peer, () => new peer.SecureMessageVerify(new peer.PublicKey(hex(v.publicKey))).verify(hex(v.signed))));
    });
  }

  it('the Go vectors include signatures of 69..72 bytes, with and without padding', () => {
    const go = signed.filter((v) => v.id.startsWith('go-overlong-'));
    assert.equal(go.length, 7);
    assert.ok(go.some((v) => (v.trailingBytes ?? 0) > 0));
    assert.ok(go.some((v) => v.trailingBytes === 0));
  });
});

describe('KAT: Secure Message decrypt (vectors/message-encrypted.json)', () => {
  for (const v of encrypted) {
    it(v.id, async () => {
      const run = (): Uint8Array => new SecureMessage(new KeyPair(new PrivateKey(hex(v.privateKey)), new PublicKey(hex(v.publicKey)))).decrypt(hex(v.encrypted));
      if (v.expect === 'fail') assertFailsLike('message-encrypted', v, run);
      else assertOursLike(v, run());
      const peer = await loadPeer();
      assertPeerLike(
        v,
        peerCall(peer, () => new peer.SecureMessage(new peer.KeyPair(new peer.PrivateKey(hex(v.privateKey)), new peer.PublicKey(hex(v.publicKey)))).decrypt(hex(v.encrypted))),
      );
    });
  }
});

describe('legacy errorCode of failures matches wasm-themis', () => {
  it('message-signed', () => {
    assert.deepEqual(legacyMismatches('message-signed', signed), []);
  });
  it('message-encrypted', () => {
    assert.deepEqual(legacyMismatches('message-encrypted', encrypted), []);
  });
});
