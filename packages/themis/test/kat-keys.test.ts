/**
 * Known-answer keys made by Themis (vectors/keys.json): the static EC and RSA
 * 1024/2048/4096 key pairs of the ObjCThemis tests, a React Native example
 * pair and an uncompressed EC public key. Each must parse, keep its exact
 * bytes (Themis output is canonical), and work as a pair, with us and with the
 * real peer.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyPair, PrivateKey, PublicKey, SecureMessage, SecureMessageSign, SecureMessageVerify, ThemisError } from '../src/index.ts';
import { backend, parsePrivateKey, parsePublicKey, readContainer } from '../src/hazmat.ts';
import { loadPeer } from './_peer.ts';
import { assertBytes, hex, loadVectors, peerCall, toHex } from './_vectors.ts';

interface KeyVector {
  id: string;
  kind: 'ec' | 'rsa';
  bits: number;
  privateKey?: string;
  publicKey: string;
  privateTag?: string;
  publicTag: string;
  privateLength?: number;
  publicLength: number;
  expect: 'ok';
  pair?: boolean;
}

const { keyPairs } = loadVectors<{ keyPairs: KeyVector[] }>('keys.json');
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function checkContainer(bytes: Uint8Array, tag: string, length: number): void {
  assert.equal(bytes.length, length, 'length');
  const c = readContainer(bytes, true);
  assert.ok(c !== null, 'container with a valid CRC');
  assert.equal(c.tag, tag);
  assert.equal(c.size, length);
}

function flipCrcBit(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  out[8] = (out[8] as number) ^ 0x01;
  return out;
}

describe('KAT: Themis key pairs (vectors/keys.json)', () => {
  for (const v of keyPairs) {
    describe(v.id, () => {
      const pk = hex(v.publicKey);

      it('public key: container, kind, accepted by us and by the peer', async () => {
        checkContainer(pk, v.publicTag, v.publicLength);
        const ours = new PublicKey(pk);
        assert.equal(ours.kind, `${v.kind}-public`);
        const peer = await loadPeer();
        assert.ok(peerCall(peer, () => new Uint8Array(new peer.PublicKey(pk))).ok, 'wasm-themis accepts it');
        // A flipped CRC bit is rejected by both.
        assert.throws(() => new PublicKey(flipCrcBit(pk)), (e: unknown) => ThemisError.is(e, 'INVALID_KEY'));
        assert.ok(!peerCall(peer, () => new Uint8Array(new peer.PublicKey(flipCrcBit(pk)))).ok, 'wasm-themis rejects a flipped CRC bit');
      });

      if (v.publicLength === 77) {
        it('uncompressed EC public key is stored in compressed form', () => {
          // SEC1: 04 ‖ X ‖ Y compresses to (02 | parity of Y) ‖ X.
          const x = pk.subarray(13, 45);
          const yLast = pk[76] as number;
          const expectedPoint = toHex(Uint8Array.of(0x02 | (yLast & 1))) + toHex(x);
          const ours = new PublicKey(pk);
          assert.equal(ours.length, 45);
          const parsed = parsePublicKey('PublicKey', ours);
          assert.equal(parsed.kind, 'ec-public');
          if (parsed.kind === 'ec-public') assertBytes(parsed.point, expectedPoint, 'compressed point');
        });
      } else {
        it('public key bytes are kept exactly (already canonical)', () => {
          assertBytes(new PublicKey(pk), v.publicKey, 'PublicKey bytes');
        });
      }

      if (v.privateKey === undefined) return;
      const sk = hex(v.privateKey);

      it('private key: container, kind, exact bytes, accepted by the peer', async () => {
        checkContainer(sk, v.privateTag ?? '', v.privateLength ?? 0);
        const ours = new PrivateKey(sk);
        assert.equal(ours.kind, `${v.kind}-private`);
        assertBytes(ours, v.privateKey ?? '', 'PrivateKey bytes');
        const peer = await loadPeer();
        assert.ok(peerCall(peer, () => new Uint8Array(new peer.PrivateKey(sk))).ok, 'wasm-themis accepts it');
        assert.throws(() => new PrivateKey(flipCrcBit(sk)), (e: unknown) => ThemisError.is(e, 'INVALID_KEY'));
        assert.ok(!peerCall(peer, () => new Uint8Array(new peer.PrivateKey(flipCrcBit(sk)))).ok, 'wasm-themis rejects a flipped CRC bit');
      });

      if (v.kind === 'ec') {
        it('EC: the public key is d·G of the private key', () => {
          const priv = parsePrivateKey('PrivateKey', sk);
          const pub = parsePublicKey('PublicKey', pk);
          assert.ok(priv.kind === 'ec-private' && pub.kind === 'ec-public');
          const derived = backend.p256PublicFromPrivate(priv.d);
          assert.ok(derived !== null);
          assertBytes(derived, toHex(pub.point), 'derived public point');
        });
      } else {
        it('RSA: modulus and exponent of the private key equal the public key', () => {
          const priv = parsePrivateKey('PrivateKey', sk);
          const pub = parsePublicKey('PublicKey', pk);
          assert.ok(priv.kind === 'rsa-private' && pub.kind === 'rsa-public');
          assert.equal(toHex(priv.c.n), toHex(pub.c.n));
          assert.equal(toHex(priv.c.e), toHex(pub.c.e));
          assert.equal(priv.bits, v.bits);
          assert.equal(pub.bits, v.bits);
        });
      }

      it('sign/verify round trip: ours, ours → peer, peer → ours', async () => {
        const msg = utf8(`known-answer key ${v.id}`);
        const signed = new SecureMessageSign(new PrivateKey(sk)).sign(msg);
        assertBytes(new SecureMessageVerify(new PublicKey(pk)).verify(signed), toHex(msg), 'our verify');
        const peer = await loadPeer();
        const r = peerCall(peer, () => new peer.SecureMessageVerify(new peer.PublicKey(pk)).verify(signed));
        assert.ok(r.ok, 'wasm-themis verifies our signature made with this private key');
        assertBytes(r.value, toHex(msg), 'wasm-themis verified message');
        const s = peerCall(peer, () => new peer.SecureMessageSign(new peer.PrivateKey(sk)).sign(msg));
        assert.ok(s.ok, 'wasm-themis signs with this private key');
        assertBytes(new SecureMessageVerify(new PublicKey(pk)).verify(s.value), toHex(msg), 'our verify of the peer signature');
      });

      it('encrypt/decrypt round trip with the pair: ours, ours → peer', async () => {
        const msg = utf8(`secret for ${v.id}`);
        const sm = new SecureMessage(new KeyPair(new PrivateKey(sk), new PublicKey(pk)));
        const encrypted = sm.encrypt(msg);
        assertBytes(sm.decrypt(encrypted), toHex(msg), 'our decrypt');
        const peer = await loadPeer();
        const r = peerCall(peer, () => new peer.SecureMessage(new peer.KeyPair(new peer.PrivateKey(sk), new peer.PublicKey(pk))).decrypt(encrypted));
        assert.ok(r.ok, 'wasm-themis decrypts what we encrypted for this pair');
        assertBytes(r.value, toHex(msg), 'wasm-themis decrypted message');
      });
    });
  }
});
