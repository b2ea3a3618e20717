/**
 * The Double Ratchet's building blocks against independent computations with
 * @noble (the formulas in ratchet-kdf.ts and message-cipher.ts), and the
 * ratchet's first message decrypted by hand from the PQXDH secret — so the
 * implementation follows the documented construction, not just itself.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { cbc } from '@noble/ciphers/aes.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { readEnvelope } from '../src/envelope.ts';
import { ciphertextLength, decryptMessage, encryptMessage, MAC_LENGTH } from '../src/message-cipher.ts';
import { pqxdhRespond } from '../src/pqxdh.ts';
import { headerKey, kdfChainKey, kdfRootKey } from '../src/ratchet-kdf.ts';
import { Session } from '../src/session.ts';
import { deserializeSessionRecord } from '../src/session-state.ts';
import { flipBit, hex, makeDevice, str, text } from './_helpers.ts';

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
const u32 = (n: number): Uint8Array => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
const lp = (b: Uint8Array): Uint8Array => concat(u32(b.length), b);

describe('KDFs (Double Ratchet §5.2)', () => {
  test('KDF_RK is HKDF-SHA-256(salt = rk, ikm = dh_out, info) split 32/32', () => {
    fc.assert(
      fc.property(bytes32, bytes32, (rk, dh) => {
        const okm = hkdf(sha256, dh, rk, text('Parley_DoubleRatchet_RootKey_v1'), 64);
        const out = kdfRootKey(rk, dh);
        assert.equal(hex(out.rootKey), hex(okm.subarray(0, 32)));
        assert.equal(hex(out.chainKey), hex(okm.subarray(32)));
      }),
      { numRuns: 50 },
    );
  });

  test('KDF_CK is HMAC(ck, 0x02) for the next chain key and HMAC(ck, 0x01) for the message key; the header key uses 0x03', () => {
    fc.assert(
      fc.property(bytes32, (ck) => {
        const out = kdfChainKey(ck);
        assert.equal(hex(out.chainKey), hex(hmac(sha256, ck, Uint8Array.of(2))));
        assert.equal(hex(out.messageKey), hex(hmac(sha256, ck, Uint8Array.of(1))));
        assert.equal(hex(headerKey(ck)), hex(hmac(sha256, ck, Uint8Array.of(3))));
      }),
      { numRuns: 50 },
    );
  });
});

describe('message cipher (AES-256-CBC + HMAC-SHA-256-128)', () => {
  test('is the documented construction', () => {
    fc.assert(
      fc.property(bytes32, fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 50 }), (mk, plaintext, ad) => {
        const okm = hkdf(sha256, mk, new Uint8Array(32), text('Parley_DoubleRatchet_MessageKeys_v1'), 80);
        const body = cbc(okm.subarray(0, 32), okm.subarray(64, 80)).encrypt(plaintext);
        const tag = hmac(sha256, okm.subarray(32, 64), concat(ad, body)).subarray(0, 16);
        const ct = encryptMessage(mk, plaintext, ad);
        assert.equal(hex(ct), hex(concat(body, tag)));
        assert.equal(ct.length, ciphertextLength(plaintext.length));
        assert.equal(hex(decryptMessage(mk, ct, ad) ?? new Uint8Array([1])), hex(plaintext));
      }),
      { numRuns: 50 },
    );
  });

  test('any change to key, associated data or ciphertext is null', () => {
    fc.assert(
      fc.property(bytes32, fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 1, maxLength: 20 }), fc.nat(), (mk, plaintext, ad, at) => {
        const ct = encryptMessage(mk, plaintext, ad);
        assert.equal(decryptMessage(flipBit(mk, at % 256), ct, ad), null);
        assert.equal(decryptMessage(mk, ct, flipBit(ad, at % (ad.length * 8))), null);
        assert.equal(decryptMessage(mk, flipBit(ct, at % (ct.length * 8)), ad), null);
        assert.equal(decryptMessage(mk, ct.subarray(0, ct.length - 16), ad), null);
        assert.equal(decryptMessage(mk, ct.subarray(16), ad), null);
      }),
      { numRuns: 100 },
    );
    assert.equal(MAC_LENGTH, 16);
  });
});

describe('the first message, by hand', () => {
  test('Bob can decrypt Alice’s first message from SK with the formulas of §3.3–3.5 alone', () => {
    const alice = makeDevice('alice', 'laptop');
    const bob = makeDevice('bob', 'phone');
    const a = Session.initiate(alice.identity, bob.bundle(), alice.address, bob.address);
    const envelope = a.encrypt(text('by hand'), text('extra'));
    const env = readEnvelope(envelope);
    assert.ok(env.prekey !== null);
    const resp = pqxdhRespond(bob.identity, bob.prekeys, env.prekey);
    assert.ok(resp !== null);
    // RatchetInitBob: DHs = SPK_B, RK = SK. First message: DH ratchet with Alice's ratchet key.
    const dh = x25519.getSharedSecret(bob.signedPrekey.exportPrivateKey(), env.header.ratchetKey);
    const rk = hkdf(sha256, dh, resp.sharedSecret, text('Parley_DoubleRatchet_RootKey_v1'), 64);
    const ck = rk.subarray(32);
    const mk = hmac(sha256, ck, Uint8Array.of(1));
    const hk = hmac(sha256, ck, Uint8Array.of(3));
    // AD = IK_A ‖ IK_B ‖ address_A ‖ address_B.
    const addr = (u: string, d: string) => concat(Uint8Array.of(u.length), text(u), Uint8Array.of(d.length), text(d));
    const ad = concat(alice.identity.publicKey, bob.identity.publicKey, addr('alice', 'laptop'), addr('bob', 'phone'));
    assert.equal(env.header.messageNumber, 0);
    assert.equal(env.header.previousChainLength, 0);
    assert.equal(hex(env.headerTag), hex(hmac(sha256, hk, concat(lp(ad), env.head)).subarray(0, 16)));
    const plaintext = decryptMessage(mk, env.ciphertext, concat(lp(ad), lp(text('extra')), env.authenticated));
    assert.equal(hex(plaintext ?? new Uint8Array()), hex(text('by hand')));
  });
});

describe('the DH ratchet step, receiving half now and sending half on the next send', () => {
  const responder = (d: ReturnType<typeof makeDevice>) => ({ identity: d.identity, prekeys: d.prekeys, isTrustedIdentity: () => true });
  const current = (s: Session) => {
    const state = deserializeSessionRecord(s.serialize()).states[0];
    assert.ok(state !== undefined);
    return state.ratchet;
  };

  test('a device that only receives holds no sending chain; its first reply starts one under a fresh ratchet key, kept across serialization', () => {
    const alice = makeDevice('alice', 'laptop');
    const bob = makeDevice('bob', 'phone');
    const a = Session.initiate(alice.identity, bob.bundle(), alice.address, bob.address);
    const b = Session.create(bob.address, alice.address);
    const first = a.encrypt(text('one'));
    const aliceKey = readEnvelope(first).header.ratchetKey;
    assert.equal(str(b.decrypt(first, responder(bob))), 'one');
    for (const t of ['two', 'three']) assert.equal(str(b.decrypt(a.encrypt(text(t)))), t);
    const waiting = current(b);
    assert.equal(waiting.sending, null);
    assert.equal(hex(waiting.remoteRatchetKey ?? new Uint8Array()), hex(aliceKey));
    // Still the signed prekey: nothing generated yet.
    assert.equal(hex(waiting.ratchetPublic), hex(bob.signedPrekey.public.publicKey));

    const restored = Session.deserialize(b.serialize());
    const replies = ['r0', 'r1', 'r2'].map((t) => restored.encrypt(text(t)));
    const headers = replies.map((r) => readEnvelope(r).header);
    const bobKey = hex(headers[0]?.ratchetKey ?? new Uint8Array());
    assert.notEqual(bobKey, hex(bob.signedPrekey.public.publicKey));
    assert.deepEqual(
      headers.map((h) => [hex(h.ratchetKey), h.messageNumber, h.previousChainLength]),
      [0, 1, 2].map((n) => [bobKey, n, 0]),
    );
    // Out of order at Alice, all three decrypt.
    for (const i of [2, 0, 1]) assert.equal(str(a.decrypt(replies[i] ?? new Uint8Array())), `r${i}`);
    assert.equal(hex(current(restored).ratchetPublic), bobKey);
  });

  test('alternating turns: every message after a turn carries a new ratchet key and PN counts the previous chain', () => {
    const alice = makeDevice('alice', 'laptop');
    const bob = makeDevice('bob', 'phone');
    const a = Session.initiate(alice.identity, bob.bundle(), alice.address, bob.address);
    const b = Session.create(bob.address, alice.address);
    const seen = new Set<string>();
    let from = a;
    let to = b;
    for (let turn = 0; turn < 6; turn++) {
      const burst = Array.from({ length: turn + 1 }, (_, i) => from.encrypt(text(`${turn}.${i}`)));
      const key = hex(readEnvelope(burst[0] ?? new Uint8Array()).header.ratchetKey);
      assert.ok(!seen.has(key), `turn ${turn} reuses a ratchet key`);
      seen.add(key);
      if (turn > 0) assert.equal(readEnvelope(burst[0] ?? new Uint8Array()).header.previousChainLength, turn - 1);
      for (const [i, env] of burst.entries()) assert.equal(str(to.decrypt(env, turn === 0 ? responder(bob) : undefined)), `${turn}.${i}`);
      [from, to] = [to, from];
    }
  });
});
