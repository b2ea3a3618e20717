/**
 * Property tests (fast-check) for every authenticated mode: round trips for
 * arbitrary messages, keys and contexts; and rejection of any single flipped
 * bit, any truncation, any appended bytes, a wrong key and a wrong context.
 * Appended bytes are accepted exactly where Themis accepts them (and the peer
 * is shown to): after a Token Protect token, after a signed message, and in
 * the corner case where they rebuild the same Seal ciphertext.
 * Context Imprint is unauthenticated, so only its round trip and determinism
 * are properties.
 *
 * Header bits are flipped exhaustively (every bit, for each generated cell)
 * rather than sampled, so a header field that is not checked shows up on
 * every run instead of once in a while.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  backendName,
  KeyPair,
  SecureCellContextImprint,
  SecureCellSeal,
  SecureCellTokenProtect,
  SecureMessage,
  SecureMessageSign,
  SecureMessageVerify,
} from '../src/index.ts';
import { loadPeer, type Peer } from './_peer.ts';
import { concat, equalBytes, expectThemisError, flipBit, peerOutcome, readU32LE, TYPE_EC_SIGNED, verifyRejectionCodes } from './_hostile.ts';

const pure = backendName === 'noble';
/** Runs for symmetric modes (cheap on both backends). */
const SYM_RUNS = pure ? 100 : 200;
/** Runs for EC modes (ECDH / ECDSA are slow in pure JS). */
const EC_RUNS = pure ? 30 : 100;
/** Runs for properties that flip every header bit of each generated value. */
const EXHAUSTIVE_RUNS = pure ? 15 : 40;

// size 'max': lengths spread over the whole 1..4096 range, not fast-check's small default.
const message = fc.uint8Array({ minLength: 1, maxLength: 4096, size: 'max' });
const key = fc.uint8Array({ minLength: 1, maxLength: 128 });
/** Optional context: absent, empty, or up to 64 arbitrary bytes. */
const context = fc.option(fc.uint8Array({ minLength: 0, maxLength: 64 }), { nil: undefined });
/** Two contexts that differ as Themis sees them (absent ≡ empty). */
const differentContexts = fc
  .tuple(context, context)
  .filter(([a, b]) => !equalBytes(a ?? new Uint8Array(0), b ?? new Uint8Array(0)));
const differentKeys = fc.tuple(key, key).filter(([a, b]) => !equalBytes(a, b));
/** A bit index into a buffer, chosen later modulo its size in bits. */
const anyBit = fc.nat();
const anyCut = fc.nat();
const appended = fc.uint8Array({ minLength: 1, maxLength: 16 });

/** Codes a decryption may legitimately fail with when given a damaged buffer of length `len`. */
const decryptCodes = (len: number) => (len === 0 ? 'EMPTY_INPUT' : 'DECRYPT_FAILED');
/** Verification codes follow from the damaged bytes (see verifyRejectionCodes): a lying length is MALFORMED, etc. */
const verifyCodes = (damaged: Uint8Array) => verifyRejectionCodes(damaged, TYPE_EC_SIGNED);

describe('Secure Cell Seal (master key)', () => {
  test('round trip for any message, key and context; output is 44 bytes longer', () => {
    fc.assert(
      fc.property(key, message, context, (k, m, ctx) => {
        const cell = SecureCellSeal.withKey(k);
        const sealed = cell.encrypt(m, ctx);
        assert.equal(sealed.length, m.length + 44);
        assert.deepEqual(cell.decrypt(sealed, ctx), m);
        // A fresh object with the same key decrypts too (no hidden state).
        assert.deepEqual(SecureCellSeal.withKey(Uint8Array.from(k)).decrypt(sealed, ctx), m);
      }),
      { numRuns: SYM_RUNS },
    );
  });

  test('a single flipped bit in IV, tag or ciphertext is rejected', () => {
    fc.assert(
      fc.property(key, message, context, anyBit, (k, m, ctx, bit) => {
        const cell = SecureCellSeal.withKey(k);
        const sealed = cell.encrypt(m, ctx);
        const b = 16 * 8 + (bit % ((sealed.length - 16) * 8));
        expectThemisError(() => cell.decrypt(flipBit(sealed, b), ctx), 'DECRYPT_FAILED', `bit ${b}`);
      }),
      { numRuns: SYM_RUNS },
    );
  });

  test('every single flipped bit of the 16-byte header is rejected', () => {
    fc.assert(
      fc.property(key, fc.uint8Array({ minLength: 1, maxLength: 64 }), context, (k, m, ctx) => {
        const cell = SecureCellSeal.withKey(k);
        const sealed = cell.encrypt(m, ctx);
        for (let b = 0; b < 16 * 8; b++) {
          expectThemisError(() => cell.decrypt(flipBit(sealed, b), ctx), 'DECRYPT_FAILED', `header bit ${b} (byte ${b >> 3})`);
        }
      }),
      { numRuns: EXHAUSTIVE_RUNS },
    );
  });

  test('any truncation is rejected', () => {
    fc.assert(
      fc.property(key, message, context, anyCut, (k, m, ctx, cut) => {
        const cell = SecureCellSeal.withKey(k);
        const sealed = cell.encrypt(m, ctx);
        const len = cut % sealed.length;
        expectThemisError(() => cell.decrypt(sealed.subarray(0, len), ctx), decryptCodes(len), `truncated to ${len}`);
      }),
      { numRuns: SYM_RUNS },
    );
  });

  test('any appended bytes are rejected (unless they rebuild the same ciphertext)', async () => {
    // Themis reads m from the header and takes the LAST m bytes as ciphertext; everything
    // before is the token, whose trailing bytes are ignored. So appended bytes shift the
    // ciphertext window: the result is rejected unless that window happens to equal the
    // original ciphertext (e.g. m = 1 and the appended byte equals the ciphertext byte),
    // in which case it is the same cell to Themis too.
    fc.assert(
      fc.property(key, message, context, appended, (k, m, ctx, extra) => {
        const cell = SecureCellSeal.withKey(k);
        const sealed = cell.encrypt(m, ctx);
        const longer = concat(sealed, extra);
        if (equalBytes(longer.subarray(longer.length - m.length), sealed.subarray(44))) {
          assert.deepEqual(cell.decrypt(longer, ctx), m);
        } else {
          expectThemisError(() => cell.decrypt(longer, ctx), 'DECRYPT_FAILED', `${extra.length} appended`);
        }
      }),
      { numRuns: SYM_RUNS },
    );
    // The exception is real, and Themis-compatible: one appended byte equal to a 1-byte ciphertext.
    const cell = SecureCellSeal.withKey(new Uint8Array([7]));
    const sealed = cell.encrypt(new Uint8Array([42]));
    const rebuilt = concat(sealed, sealed.subarray(44));
    assert.deepEqual(cell.decrypt(rebuilt), new Uint8Array([42]));
    const peer: Peer = await loadPeer();
    const r = peerOutcome(() => peer.SecureCellSeal.withKey(new Uint8Array([7])).decrypt(rebuilt));
    assert.ok(r.ok, 'the peer accepts it too');
  });

  test('a wrong key is rejected', () => {
    fc.assert(
      fc.property(differentKeys, message, context, ([k1, k2], m, ctx) => {
        const sealed = SecureCellSeal.withKey(k1).encrypt(m, ctx);
        expectThemisError(() => SecureCellSeal.withKey(k2).decrypt(sealed, ctx), 'DECRYPT_FAILED', 'wrong key');
      }),
      { numRuns: SYM_RUNS },
    );
  });

  test('a wrong context is rejected (no context and an empty one are the same)', () => {
    fc.assert(
      fc.property(key, message, differentContexts, (k, m, [c1, c2]) => {
        const cell = SecureCellSeal.withKey(k);
        const sealed = cell.encrypt(m, c1);
        expectThemisError(() => cell.decrypt(sealed, c2), 'DECRYPT_FAILED', 'wrong context');
      }),
      { numRuns: SYM_RUNS },
    );
    // The equivalence the generator relies on: absent, null and empty context are one context.
    const cell = SecureCellSeal.withKey(new Uint8Array([1, 2, 3]));
    const m = new Uint8Array([9]);
    assert.deepEqual(cell.decrypt(cell.encrypt(m), new Uint8Array(0)), m);
    assert.deepEqual(cell.decrypt(cell.encrypt(m, new Uint8Array(0)), null), m);
  });
});

describe('Secure Cell Token Protect', () => {
  test('round trip for any message, key and context; data keeps the length, token is 44 bytes', () => {
    fc.assert(
      fc.property(key, message, context, (k, m, ctx) => {
        const cell = SecureCellTokenProtect.withKey(k);
        const { data, token } = cell.encrypt(m, ctx ?? null);
        assert.equal(data.length, m.length);
        assert.equal(token.length, 44);
        assert.deepEqual(cell.decrypt(data, token, ctx ?? null), m);
      }),
      { numRuns: SYM_RUNS },
    );
  });

  test('a single flipped bit in the data or in the token IV/tag is rejected', () => {
    fc.assert(
      fc.property(key, message, context, anyBit, (k, m, ctx, bit) => {
        const cell = SecureCellTokenProtect.withKey(k);
        const { data, token } = cell.encrypt(m, ctx ?? null);
        // Bits [0, data) flip the data; the rest flip token bytes 16..43.
        const b = bit % ((data.length + 28) * 8);
        if (b < data.length * 8) {
          expectThemisError(() => cell.decrypt(flipBit(data, b), token, ctx ?? null), 'DECRYPT_FAILED', `data bit ${b}`);
        } else {
          const tb = 16 * 8 + (b - data.length * 8);
          expectThemisError(() => cell.decrypt(data, flipBit(token, tb), ctx ?? null), 'DECRYPT_FAILED', `token bit ${tb}`);
        }
      }),
      { numRuns: SYM_RUNS },
    );
  });

  test('every single flipped bit of the token header is rejected', () => {
    fc.assert(
      fc.property(key, fc.uint8Array({ minLength: 1, maxLength: 64 }), context, (k, m, ctx) => {
        const cell = SecureCellTokenProtect.withKey(k);
        const { data, token } = cell.encrypt(m, ctx ?? null);
        for (let b = 0; b < 16 * 8; b++) {
          expectThemisError(() => cell.decrypt(data, flipBit(token, b), ctx ?? null), 'DECRYPT_FAILED', `token header bit ${b} (byte ${b >> 3})`);
        }
      }),
      { numRuns: EXHAUSTIVE_RUNS },
    );
  });

  test('any truncation of the data or of the token is rejected', () => {
    fc.assert(
      fc.property(key, message, context, anyCut, fc.boolean(), (k, m, ctx, cut, cutToken) => {
        const cell = SecureCellTokenProtect.withKey(k);
        const { data, token } = cell.encrypt(m, ctx ?? null);
        if (cutToken) {
          const len = cut % token.length;
          expectThemisError(() => cell.decrypt(data, token.subarray(0, len), ctx ?? null), decryptCodes(len), `token truncated to ${len}`);
        } else {
          const len = cut % data.length;
          expectThemisError(() => cell.decrypt(data.subarray(0, len), token, ctx ?? null), decryptCodes(len), `data truncated to ${len}`);
        }
      }),
      { numRuns: SYM_RUNS },
    );
  });

  test('any bytes appended to the data are rejected', () => {
    fc.assert(
      fc.property(key, message, context, appended, (k, m, ctx, extra) => {
        const cell = SecureCellTokenProtect.withKey(k);
        const { data, token } = cell.encrypt(m, ctx ?? null);
        expectThemisError(() => cell.decrypt(concat(data, extra), token, ctx ?? null), 'DECRYPT_FAILED', `${extra.length} appended to data`);
      }),
      { numRuns: SYM_RUNS },
    );
  });

  test('bytes appended to the token are ignored, as by Themis', async () => {
    // Themis parses the token it needs (16 + iv_len + tag_len bytes) and ignores the rest.
    fc.assert(
      fc.property(key, message, context, appended, (k, m, ctx, extra) => {
        const cell = SecureCellTokenProtect.withKey(k);
        const { data, token } = cell.encrypt(m, ctx ?? null);
        assert.deepEqual(cell.decrypt(data, concat(token, extra), ctx ?? null), m);
      }),
      { numRuns: SYM_RUNS },
    );
    const peer: Peer = await loadPeer();
    const k = new Uint8Array(32).fill(3);
    const { data, token } = SecureCellTokenProtect.withKey(k).encrypt(new Uint8Array([1, 2, 3]));
    const r = peerOutcome(() => peer.SecureCellTokenProtect.withKey(k).decrypt(data, concat(token, new Uint8Array([0xff]))));
    assert.ok(r.ok, 'the peer accepts a token with a trailing byte');
  });

  test('a wrong key or a wrong context is rejected', () => {
    fc.assert(
      fc.property(differentKeys, message, differentContexts, ([k1, k2], m, [c1, c2]) => {
        const { data, token } = SecureCellTokenProtect.withKey(k1).encrypt(m, c1 ?? null);
        expectThemisError(() => SecureCellTokenProtect.withKey(k2).decrypt(data, token, c1 ?? null), 'DECRYPT_FAILED', 'wrong key');
        expectThemisError(() => SecureCellTokenProtect.withKey(k1).decrypt(data, token, c2 ?? null), 'DECRYPT_FAILED', 'wrong context');
      }),
      { numRuns: SYM_RUNS },
    );
  });
});

describe('Secure Cell Context Imprint (unauthenticated)', () => {
  const requiredContext = fc.uint8Array({ minLength: 1, maxLength: 64 });

  test('round trip for any message, key and context; length preserved', () => {
    fc.assert(
      fc.property(key, message, requiredContext, (k, m, ctx) => {
        const cell = SecureCellContextImprint.withKey(k);
        const out = cell.encrypt(m, ctx);
        assert.equal(out.length, m.length);
        assert.deepEqual(cell.decrypt(out, ctx), m);
      }),
      { numRuns: SYM_RUNS },
    );
  });

  test('deterministic: same key, context and message give the same bytes, across instances', () => {
    fc.assert(
      fc.property(key, message, requiredContext, (k, m, ctx) => {
        const a = SecureCellContextImprint.withKey(k).encrypt(m, ctx);
        const b = SecureCellContextImprint.withKey(Uint8Array.from(k)).encrypt(Uint8Array.from(m), Uint8Array.from(ctx));
        assert.deepEqual(a, b);
      }),
      { numRuns: SYM_RUNS },
    );
  });
});

describe('Secure Message (EC)', () => {
  let alice: KeyPair;
  let bob: KeyPair;
  let eve: KeyPair;
  before(() => {
    alice = new KeyPair();
    bob = new KeyPair();
    eve = new KeyPair();
  });

  test('encrypt: round trip for any message; output is 52 bytes longer', () => {
    const toBob = new SecureMessage(alice.privateKey, bob.publicKey);
    const fromAlice = new SecureMessage(bob.privateKey, alice.publicKey);
    fc.assert(
      fc.property(message, (m) => {
        const wire = toBob.encrypt(m);
        assert.equal(wire.length, m.length + 52);
        assert.equal(readU32LE(wire, 0), 0x26042720);
        assert.equal(readU32LE(wire, 4), wire.length);
        assert.deepEqual(fromAlice.decrypt(wire), m);
        // The sender can read it too (static-static ECDH is symmetric).
        assert.deepEqual(toBob.decrypt(wire), m);
      }),
      { numRuns: EC_RUNS },
    );
  });

  test('encrypt: a single flipped bit in IV, tag or ciphertext is rejected', () => {
    const toBob = new SecureMessage(alice.privateKey, bob.publicKey);
    const fromAlice = new SecureMessage(bob.privateKey, alice.publicKey);
    fc.assert(
      fc.property(message, anyBit, (m, bit) => {
        const wire = toBob.encrypt(m);
        // Bytes 0..7 are the message header, 8..23 the Seal header (both flipped exhaustively below).
        const b = 24 * 8 + (bit % ((wire.length - 24) * 8));
        expectThemisError(() => fromAlice.decrypt(flipBit(wire, b)), 'DECRYPT_FAILED', `bit ${b}`);
      }),
      { numRuns: EC_RUNS },
    );
  });

  test('encrypt: every single flipped bit of the message and Seal headers is rejected', () => {
    const toBob = new SecureMessage(alice.privateKey, bob.publicKey);
    const fromAlice = new SecureMessage(bob.privateKey, alice.publicKey);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (m) => {
        const wire = toBob.encrypt(m);
        for (let b = 0; b < 24 * 8; b++) {
          expectThemisError(() => fromAlice.decrypt(flipBit(wire, b)), 'DECRYPT_FAILED', `header bit ${b} (byte ${b >> 3})`);
        }
      }),
      { numRuns: Math.min(EXHAUSTIVE_RUNS, 10) },
    );
  });

  test('encrypt: any truncation and any appended bytes are rejected', () => {
    const toBob = new SecureMessage(alice.privateKey, bob.publicKey);
    const fromAlice = new SecureMessage(bob.privateKey, alice.publicKey);
    fc.assert(
      fc.property(message, anyCut, appended, (m, cut, extra) => {
        const wire = toBob.encrypt(m);
        const len = cut % wire.length;
        expectThemisError(() => fromAlice.decrypt(wire.subarray(0, len)), decryptCodes(len), `truncated to ${len}`);
        expectThemisError(() => fromAlice.decrypt(concat(wire, extra)), 'DECRYPT_FAILED', `${extra.length} appended`);
      }),
      { numRuns: EC_RUNS },
    );
  });

  test('encrypt: a wrong recipient key or a wrong sender key is rejected', () => {
    const toBob = new SecureMessage(alice.privateKey, bob.publicKey);
    const eveAsBob = new SecureMessage(eve.privateKey, alice.publicKey);
    const bobExpectingEve = new SecureMessage(bob.privateKey, eve.publicKey);
    fc.assert(
      fc.property(message, (m) => {
        const wire = toBob.encrypt(m);
        expectThemisError(() => eveAsBob.decrypt(wire), 'DECRYPT_FAILED', 'wrong recipient');
        expectThemisError(() => bobExpectingEve.decrypt(wire), 'DECRYPT_FAILED', 'wrong sender');
      }),
      { numRuns: EC_RUNS },
    );
  });

  test('sign: round trip for any message; header carries type and lengths', () => {
    const signer = new SecureMessageSign(alice.privateKey);
    const verifier = new SecureMessageVerify(alice.publicKey);
    fc.assert(
      fc.property(message, (m) => {
        const signed = signer.sign(m);
        assert.equal(readU32LE(signed, 0), 0x26042620);
        assert.equal(readU32LE(signed, 4), m.length);
        assert.equal(signed.length, 12 + m.length + readU32LE(signed, 8));
        assert.deepEqual(verifier.verify(signed), m);
      }),
      { numRuns: EC_RUNS },
    );
  });

  test('sign: a single flipped bit in the header, message or signature is rejected', () => {
    const signer = new SecureMessageSign(alice.privateKey);
    const verifier = new SecureMessageVerify(alice.publicKey);
    fc.assert(
      fc.property(message, anyBit, fc.boolean(), (m, bit, inSignature) => {
        const signed = signer.sign(m);
        // Half the runs aim at the signature, which is small next to a long message.
        const sigStart = 12 + m.length;
        const b = inSignature ? sigStart * 8 + (bit % ((signed.length - sigStart) * 8)) : bit % (signed.length * 8);
        const damaged = flipBit(signed, b);
        expectThemisError(() => verifier.verify(damaged), verifyCodes(damaged), `bit ${b}`);
      }),
      { numRuns: EC_RUNS * 2 },
    );
  });

  test('sign: every single flipped bit of the 12-byte header is rejected', () => {
    const signer = new SecureMessageSign(alice.privateKey);
    const verifier = new SecureMessageVerify(alice.publicKey);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (m) => {
        const signed = signer.sign(m);
        for (let b = 0; b < 12 * 8; b++) {
          const damaged = flipBit(signed, b);
          expectThemisError(() => verifier.verify(damaged), verifyCodes(damaged), `header bit ${b}`);
        }
      }),
      { numRuns: Math.min(EXHAUSTIVE_RUNS, 10) },
    );
  });

  test('sign: any truncation is rejected; appended bytes are allowed, as by Themis', async () => {
    const signer = new SecureMessageSign(alice.privateKey);
    const verifier = new SecureMessageVerify(alice.publicKey);
    fc.assert(
      fc.property(message, anyCut, appended, (m, cut, extra) => {
        const signed = signer.sign(m);
        const len = cut % signed.length;
        expectThemisError(() => verifier.verify(signed.subarray(0, len)), verifyCodes(signed.subarray(0, len)), `truncated to ${len}`);
        assert.deepEqual(verifier.verify(concat(signed, extra)), m);
      }),
      { numRuns: EC_RUNS },
    );
    const peer: Peer = await loadPeer();
    const padded = concat(signer.sign(new Uint8Array([1, 2, 3])), new Uint8Array([0, 0]));
    const r = peerOutcome(() => new peer.SecureMessageVerify(new peer.PublicKey(alice.publicKey)).verify(padded));
    assert.ok(r.ok, 'the peer verifies a signed message with two trailing bytes');
  });

  test('sign: a different public key does not verify', () => {
    const signer = new SecureMessageSign(alice.privateKey);
    const wrong = new SecureMessageVerify(eve.publicKey);
    fc.assert(
      fc.property(message, (m) => {
        expectThemisError(() => wrong.verify(signer.sign(m)), 'INVALID_SIGNATURE', 'wrong key');
      }),
      { numRuns: EC_RUNS },
    );
  });
});

describe('parity with the real peer on damaged Seal cells', () => {
  test('ours and wasm-themis accept and reject the same single-bit flips of the header', async () => {
    const peer: Peer = await loadPeer();
    fc.assert(
      fc.property(key, fc.uint8Array({ minLength: 1, maxLength: 64 }), (k, m) => {
        const ours = SecureCellSeal.withKey(k);
        const theirs = peer.SecureCellSeal.withKey(k);
        const sealed = ours.encrypt(m);
        const disagreements: string[] = [];
        for (let b = 0; b < 16 * 8; b++) {
          const damaged = flipBit(sealed, b);
          let oursOk = true;
          try {
            ours.decrypt(damaged);
          } catch {
            oursOk = false;
          }
          const peerOk = peerOutcome(() => theirs.decrypt(damaged)).ok;
          if (oursOk !== peerOk) disagreements.push(`bit ${b}: ours ${oursOk ? 'accepts' : 'rejects'}, peer ${peerOk ? 'accepts' : 'rejects'}`);
        }
        assert.deepEqual(disagreements, []);
      }),
      { numRuns: 10 },
    );
  });
});
