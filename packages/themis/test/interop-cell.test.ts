/**
 * Live cross-tests of Secure Cell against the real peer, wasm-themis 0.15.0,
 * in both directions: cells made by ours open in the peer, cells made by the
 * peer open in ours. Wrong keys and contexts are refused by both sides alike.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SecureCellContextImprint, SecureCellSeal, SecureCellTokenProtect, ThemisError } from '../src/index.ts';
import { encryptWithPassphraseIterations } from '../src/hazmat.ts';
import { bothReject, flipBit, oursRejects, pattern, peer, peerOk, peerOkAsync, peerRejects, plain, readU32LE, size, utf8 } from './_interop.ts';

const SIZES = [1, 15, 16, 17, 1024];
const KEY_SIZES = [1, 32, 100];
const MiB = 1 << 20;
const SEAL_OVERHEAD = 44;
const TOKEN_LENGTH = 44;
const PASSPHRASE_OVERHEAD = 70;

interface Case {
  name: string;
  message: Uint8Array;
  key: Uint8Array;
  context: Uint8Array | undefined;
}

/** The matrix: every size × key size × (no context | context), plus one 1 MiB case. */
function keyedCases(contexts: readonly [string, Uint8Array | undefined][]): Case[] {
  const out: Case[] = [];
  let seed = 1;
  for (const m of SIZES) {
    for (const k of KEY_SIZES) {
      for (const [label, context] of contexts) {
        out.push({ name: `${size(m)} message, ${k}-byte key, ${label}`, message: pattern(m, seed++), key: pattern(k, seed++), context });
      }
    }
  }
  const [label, context] = contexts[contexts.length - 1] as [string, Uint8Array | undefined];
  out.push({ name: `${size(MiB)} message, 32-byte key, ${label}`, message: pattern(MiB, seed++), key: pattern(32, seed++), context });
  return out;
}

const WITH_AND_WITHOUT_CONTEXT: [string, Uint8Array | undefined][] = [
  ['no context', undefined],
  ['context', pattern(23, 1000)],
];

/** Arguments for the peer: its TokenProtect rejects an explicit `undefined` context. */
function ctxArgs(context: Uint8Array | undefined): Uint8Array[] {
  return context === undefined ? [] : [context];
}

/** A key that differs from `key` in one bit. */
function wrongKey(key: Uint8Array): Uint8Array {
  return flipBit(key, key.length * 8 - 1);
}

/** Contexts that must not open a cell made under `context`. */
function wrongContexts(context: Uint8Array | undefined): [string, Uint8Array | undefined][] {
  if (context === undefined) return [['unexpected context', utf8('ctx')]];
  return [
    ['wrong context', flipBit(context, 0)],
    ['missing context', undefined],
  ];
}

describe('Secure Cell Seal (key)', () => {
  for (const c of keyedCases(WITH_AND_WITHOUT_CONTEXT)) {
    const ours = SecureCellSeal.withKey(c.key);
    const theirs = peer.SecureCellSeal.withKey(c.key);

    test(`ours → peer: ${c.name}`, () => {
      const cell = ours.encrypt(c.message, c.context);
      assert.equal(cell.length, c.message.length + SEAL_OVERHEAD);
      const out = peerOk('peer decrypt', () => theirs.decrypt(cell, ...ctxArgs(c.context)));
      assert.deepEqual(plain(out), c.message);
      const bad = SecureCellSeal.withKey(wrongKey(c.key));
      const badPeer = peer.SecureCellSeal.withKey(wrongKey(c.key));
      bothReject('wrong key', () => bad.decrypt(cell, c.context), () => badPeer.decrypt(cell, ...ctxArgs(c.context)), 'DECRYPT_FAILED');
      for (const [what, ctx] of wrongContexts(c.context)) {
        bothReject(what, () => ours.decrypt(cell, ctx), () => theirs.decrypt(cell, ...ctxArgs(ctx)), 'DECRYPT_FAILED');
      }
    });

    test(`peer → ours: ${c.name}`, () => {
      const cell: Uint8Array = peerOk('peer encrypt', () => theirs.encrypt(c.message, ...ctxArgs(c.context)));
      assert.equal(cell.length, c.message.length + SEAL_OVERHEAD);
      assert.deepEqual(ours.decrypt(cell, c.context), c.message);
      const bad = SecureCellSeal.withKey(wrongKey(c.key));
      const badPeer = peer.SecureCellSeal.withKey(wrongKey(c.key));
      bothReject('wrong key', () => bad.decrypt(cell, c.context), () => badPeer.decrypt(cell, ...ctxArgs(c.context)), 'DECRYPT_FAILED');
      for (const [what, ctx] of wrongContexts(c.context)) {
        bothReject(what, () => ours.decrypt(cell, ctx), () => theirs.decrypt(cell, ...ctxArgs(ctx)), 'DECRYPT_FAILED');
      }
    });
  }
});

describe('Secure Cell Token Protect', () => {
  for (const c of keyedCases(WITH_AND_WITHOUT_CONTEXT)) {
    const ours = SecureCellTokenProtect.withKey(c.key);
    const theirs = peer.SecureCellTokenProtect.withKey(c.key);
    // A token from another message of the same length, under the same key and context.
    const other = pattern(c.message.length, 4242);

    test(`ours → peer: ${c.name}`, () => {
      const { data, token } = ours.encrypt(c.message, c.context ?? null);
      assert.equal(data.length, c.message.length);
      assert.equal(token.length, TOKEN_LENGTH);
      const out = peerOk('peer decrypt', () => theirs.decrypt(data, token, ...ctxArgs(c.context)));
      assert.deepEqual(plain(out), c.message);
      const bad = SecureCellTokenProtect.withKey(wrongKey(c.key));
      const badPeer = peer.SecureCellTokenProtect.withKey(wrongKey(c.key));
      bothReject('wrong key', () => bad.decrypt(data, token, c.context ?? null), () => badPeer.decrypt(data, token, ...ctxArgs(c.context)), 'DECRYPT_FAILED');
      for (const [what, ctx] of wrongContexts(c.context)) {
        bothReject(what, () => ours.decrypt(data, token, ctx ?? null), () => theirs.decrypt(data, token, ...ctxArgs(ctx)), 'DECRYPT_FAILED');
      }
      const o = ours.encrypt(other, c.context ?? null);
      // With 1-byte messages the two ciphertexts coincide 1 time in 256; the
      // other token then legitimately authenticates this data (GCM tags cover
      // the ciphertext, not the plaintext) on both implementations.
      if (!sameBytes(o.data, data)) {
        bothReject('token of another message', () => ours.decrypt(data, o.token, c.context ?? null), () => theirs.decrypt(data, o.token, ...ctxArgs(c.context)), 'DECRYPT_FAILED');
      }
    });

    test(`peer → ours: ${c.name}`, () => {
      const { data, token } = peerOk('peer encrypt', () => theirs.encrypt(c.message, ...ctxArgs(c.context))) as { data: Uint8Array; token: Uint8Array };
      assert.equal(data.length, c.message.length);
      assert.equal(token.length, TOKEN_LENGTH);
      assert.deepEqual(ours.decrypt(data, token, c.context ?? null), c.message);
      const bad = SecureCellTokenProtect.withKey(wrongKey(c.key));
      const badPeer = peer.SecureCellTokenProtect.withKey(wrongKey(c.key));
      bothReject('wrong key', () => bad.decrypt(data, token, c.context ?? null), () => badPeer.decrypt(data, token, ...ctxArgs(c.context)), 'DECRYPT_FAILED');
      for (const [what, ctx] of wrongContexts(c.context)) {
        bothReject(what, () => ours.decrypt(data, token, ctx ?? null), () => theirs.decrypt(data, token, ...ctxArgs(ctx)), 'DECRYPT_FAILED');
      }
      const o = peerOk('peer encrypt', () => theirs.encrypt(other, ...ctxArgs(c.context))) as { data: Uint8Array; token: Uint8Array };
      if (!sameBytes(o.data, data)) {
        bothReject('token of another message', () => ours.decrypt(data, o.token, c.context ?? null), () => theirs.decrypt(data, o.token, ...ctxArgs(c.context)), 'DECRYPT_FAILED');
      }
    });
  }
});

describe('Secure Cell Context Imprint', () => {
  const contexts: [string, Uint8Array][] = [
    ['1-byte context', pattern(1, 2000)],
    ['64-byte context', pattern(64, 2001)],
  ];
  for (const c of keyedCases(contexts)) {
    const context = c.context as Uint8Array;
    const ours = SecureCellContextImprint.withKey(c.key);
    const theirs = peer.SecureCellContextImprint.withKey(c.key);
    // Unauthenticated: a wrong key or context gives garbage, not an error. Below
    // 16 bytes a chance collision is plausible, so only longer messages are checked.
    const checkGarbage = c.message.length >= 16;

    test(`ours → peer: ${c.name}`, () => {
      const ct = ours.encrypt(c.message, context);
      const peerCt: Uint8Array = peerOk('peer encrypt', () => theirs.encrypt(c.message, context));
      assert.equal(ct.length, c.message.length);
      assert.deepEqual(ct, plain(peerCt), 'byte-equal to the peer');
      assert.deepEqual(plain(peerOk('peer decrypt', () => theirs.decrypt(ct, context))), c.message);
      if (checkGarbage) {
        const badKey = plain(peerOk('peer decrypt', () => peer.SecureCellContextImprint.withKey(wrongKey(c.key)).decrypt(ct, context)));
        const badCtx = plain(peerOk('peer decrypt', () => theirs.decrypt(ct, flipBit(context, 0))));
        assert.notDeepEqual(badKey, c.message);
        assert.notDeepEqual(badCtx, c.message);
        assert.deepEqual(SecureCellContextImprint.withKey(wrongKey(c.key)).decrypt(ct, context), badKey, 'same garbage as the peer');
        assert.deepEqual(ours.decrypt(ct, flipBit(context, 0)), badCtx, 'same garbage as the peer');
      }
    });

    test(`peer → ours: ${c.name}`, () => {
      const ct: Uint8Array = peerOk('peer encrypt', () => theirs.encrypt(c.message, context));
      assert.equal(ct.length, c.message.length);
      assert.deepEqual(ours.encrypt(c.message, context), plain(ct), 'byte-equal to the peer');
      assert.deepEqual(ours.decrypt(ct, context), c.message);
      if (checkGarbage) {
        const badKey = SecureCellContextImprint.withKey(wrongKey(c.key)).decrypt(ct, context);
        const badCtx = ours.decrypt(ct, flipBit(context, 0));
        assert.notDeepEqual(badKey, c.message);
        assert.notDeepEqual(badCtx, c.message);
        assert.deepEqual(badKey, plain(peerOk('peer decrypt', () => peer.SecureCellContextImprint.withKey(wrongKey(c.key)).decrypt(ct, context))));
        assert.deepEqual(badCtx, plain(peerOk('peer decrypt', () => theirs.decrypt(ct, flipBit(context, 0)))));
      }
    });
  }

  test('both sides require a non-empty context', () => {
    const key = pattern(32, 3000);
    const message = pattern(17, 3001);
    bothReject(
      'empty context',
      () => SecureCellContextImprint.withKey(key).encrypt(message, new Uint8Array(0)),
      () => peer.SecureCellContextImprint.withKey(key).encrypt(message, new Uint8Array(0)),
      'EMPTY_INPUT',
    );
    bothReject(
      'empty context (decrypt)',
      () => SecureCellContextImprint.withKey(key).decrypt(message, new Uint8Array(0)),
      () => peer.SecureCellContextImprint.withKey(key).decrypt(message, new Uint8Array(0)),
      'EMPTY_INPUT',
    );
    const ours = SecureCellContextImprint.withKey(key) as unknown as { encrypt(m: Uint8Array): Uint8Array };
    bothReject('no context', () => ours.encrypt(message), () => peer.SecureCellContextImprint.withKey(key).encrypt(message), 'INVALID_ARGUMENT');
  });
});

describe('Secure Cell Seal (passphrase)', () => {
  interface PassCase {
    name: string;
    passphrase: string | Uint8Array;
    /** The same passphrase in the other form the decrypting side uses (UTF-8 bytes for a string). */
    decryptWith: string | Uint8Array;
    message: Uint8Array;
    context: Uint8Array | undefined;
  }
  const cases: PassCase[] = [
    { name: 'ASCII passphrase, 1 B message, no context', passphrase: 'password', decryptWith: 'password', message: pattern(1, 50), context: undefined },
    { name: 'Cyrillic passphrase, 17 B message, context', passphrase: 'дружбомагия', decryptWith: 'дружбомагия', message: pattern(17, 51), context: utf8('контекст') },
    { name: 'emoji passphrase, 1 KiB message, no context; decrypted with its UTF-8 bytes', passphrase: '🔑 ключ 🐱', decryptWith: utf8('🔑 ключ 🐱'), message: pattern(1024, 52), context: undefined },
    { name: 'Uint8Array passphrase (not UTF-8), 16 B message, context', passphrase: Uint8Array.of(0xd8, 0x3d, 0xdd, 0x11), decryptWith: Uint8Array.of(0xd8, 0x3d, 0xdd, 0x11), message: pattern(16, 53), context: pattern(5, 54) },
    { name: 'ASCII passphrase, 1 MiB message, context', passphrase: 'correct horse battery staple', decryptWith: 'correct horse battery staple', message: pattern(MiB, 55), context: pattern(40, 56) },
  ];

  for (const c of cases) {
    test(`ours → peer: ${c.name}`, () => {
      const cell = SecureCellSeal.withPassphrase(c.passphrase).encrypt(c.message, c.context);
      assert.equal(cell.length, c.message.length + PASSPHRASE_OVERHEAD);
      const theirs = peer.SecureCellSeal.withPassphrase(c.decryptWith);
      assert.deepEqual(plain(peerOk('peer decrypt', () => theirs.decrypt(cell, ...ctxArgs(c.context)))), c.message);
      if (c.context !== undefined && c.message.length === 17) {
        peerRejects('wrong passphrase', () => peer.SecureCellSeal.withPassphrase('дружбомагиЯ').decrypt(cell, c.context));
        peerRejects('wrong context', () => theirs.decrypt(cell, flipBit(c.context as Uint8Array, 0)));
      }
    });

    test(`peer → ours: ${c.name}`, () => {
      const cell: Uint8Array = peerOk('peer encrypt', () => peer.SecureCellSeal.withPassphrase(c.passphrase).encrypt(c.message, ...ctxArgs(c.context)));
      assert.equal(cell.length, c.message.length + PASSPHRASE_OVERHEAD);
      const ours = SecureCellSeal.withPassphrase(c.decryptWith);
      assert.deepEqual(ours.decrypt(cell, c.context), c.message);
      if (c.context !== undefined && c.message.length === 17) {
        const e = oursRejects('wrong passphrase', () => SecureCellSeal.withPassphrase('дружбомагиЯ').decrypt(cell, c.context), 'DECRYPT_FAILED');
        assert.equal(e.errorCode, peer.ThemisErrorCode.FAIL);
        oursRejects('wrong context', () => ours.decrypt(cell, flipBit(c.context as Uint8Array, 0)), 'DECRYPT_FAILED');
      }
    });
  }

  test('ours → peer: our header matches the peer’s (algorithm, lengths, PBKDF2 iteration count, salt length)', () => {
    const message = pattern(33, 60);
    const oursCell = SecureCellSeal.withPassphrase('password').encrypt(message);
    const peerCell: Uint8Array = plain(peerOk('peer encrypt', () => peer.SecureCellSeal.withPassphrase('password').encrypt(message)));
    assert.equal(oursCell.length, peerCell.length);
    // alg, iv_len, tag_len, m, kdf_context_len | (IV, tag differ) | iterations, salt_len | (salt differs)
    assert.deepEqual(oursCell.subarray(0, 20), peerCell.subarray(0, 20));
    assert.deepEqual(oursCell.subarray(48, 54), peerCell.subarray(48, 54));
    assert.deepEqual(plain(peerOk('peer decrypt', () => peer.SecureCellSeal.withPassphrase('password').decrypt(oursCell))), message);
  });

  test('ours → peer: a cell with 1000 PBKDF2 iterations (hazmat) opens in the peer and in ours', () => {
    const message = pattern(100, 61);
    const context = utf8('iterations');
    const cell = encryptWithPassphraseIterations(utf8('дружбомагия'), message, context, 1000);
    assert.equal(readU32LE(cell, 48), 1000);
    assert.deepEqual(plain(peerOk('peer decrypt', () => peer.SecureCellSeal.withPassphrase('дружбомагия').decrypt(cell, context))), message);
    assert.deepEqual(SecureCellSeal.withPassphrase('дружбомагия').decrypt(cell, context), message);
    // The count is authenticated through the key: changing it breaks decryption on both sides.
    const lied = Uint8Array.from(cell);
    lied[48] = 0xe9; // 1001
    bothReject(
      'iteration count changed',
      () => SecureCellSeal.withPassphrase('дружбомагия').decrypt(lied, context),
      () => peer.SecureCellSeal.withPassphrase('дружбомагия').decrypt(lied, context),
      'DECRYPT_FAILED',
    );
  });

  test('ours → peer: encryptAsync output opens in the peer', async () => {
    const message = pattern(15, 62);
    const context = utf8('async');
    const cell = await SecureCellSeal.withPassphrase('дружбомагия 🐱').encryptAsync(message, context);
    assert.deepEqual(plain(peerOk('peer decrypt', () => peer.SecureCellSeal.withPassphrase('дружбомагия 🐱').decrypt(cell, context))), message);
  });

  test('peer → ours: decryptAsync opens the peer’s cell and refuses a wrong passphrase', async () => {
    const message = pattern(15, 63);
    const context = utf8('async');
    const cell: Uint8Array = peerOk('peer encrypt', () => peer.SecureCellSeal.withPassphrase('дружбомагия 🐱').encrypt(message, context));
    const out = await peerOkAsync('ours decryptAsync', () => SecureCellSeal.withPassphrase('дружбомагия 🐱').decryptAsync(cell, context));
    assert.deepEqual(out, message);
    await assert.rejects(SecureCellSeal.withPassphrase('дружбомагия 🐈').decryptAsync(cell, context), (e: unknown) => {
      oursRejects('wrong passphrase (async)', () => {
        throw e;
      }, 'DECRYPT_FAILED');
      return true;
    });
  });
});

describe('Secure Cell inputs and keys the caller changes (ours as the peer)', () => {
  test('encryptAsync/decryptAsync take message, context, cell and passphrase at the call: buffers reused or detached while PBKDF2 runs change nothing', async () => {
    const passphrase = utf8('correct horse');
    const cellObj = SecureCellSeal.withPassphrase(passphrase);
    const message = utf8('original message');
    const context = utf8('ctx-1');
    const pending = cellObj.encryptAsync(message, context);
    message.set(utf8('MUTATED! MUTATED'));
    context[4] = 0x32;
    const cell = await pending;
    assert.deepEqual(plain(peerOk('peer decrypt', () => peer.SecureCellSeal.withPassphrase('correct horse').decrypt(cell, utf8('ctx-1')))), utf8('original message'));
    // A buffer detached mid-call (transferred away) must not turn into an empty message.
    const detachable = utf8('will be transferred');
    const pending2 = cellObj.encryptAsync(detachable);
    structuredClone(detachable.buffer, { transfer: [detachable.buffer] });
    assert.equal(detachable.length, 0, 'the buffer was detached');
    assert.deepEqual(plain(peer.SecureCellSeal.withPassphrase('correct horse').decrypt(await pending2)), utf8('will be transferred'));
    // decryptAsync: the cell wiped, and the passphrase changed, while PBKDF2 runs.
    const copy = Uint8Array.from(cell);
    const pending3 = cellObj.decryptAsync(copy, utf8('ctx-1'));
    copy.fill(0);
    passphrase.fill(0x41);
    assert.deepEqual(await pending3, utf8('original message'));
    // The next call reads the passphrase as it is now (as the peer does), and refuses the cell.
    await assert.rejects(cellObj.decryptAsync(cell, utf8('ctx-1')), (e: unknown) => e instanceof ThemisError && e.code === 'DECRYPT_FAILED');
  });

  test('a master key or passphrase changed in place after the cell was made is what the next call uses, in ours as in the peer', () => {
    const key = pattern(32, 90);
    const ours = { seal: SecureCellSeal.withKey(key), token: SecureCellTokenProtect.withKey(key), imprint: SecureCellContextImprint.withKey(key) };
    const theirs = { seal: peer.SecureCellSeal.withKey(key), token: peer.SecureCellTokenProtect.withKey(key), imprint: peer.SecureCellContextImprint.withKey(key) };
    const message = pattern(20, 91);
    const context = utf8('in place');
    key.set(pattern(32, 92));
    const fresh = pattern(32, 92);
    assert.deepEqual(plain(peer.SecureCellSeal.withKey(fresh).decrypt(ours.seal.encrypt(message, context), context)), message);
    assert.deepEqual(SecureCellSeal.withKey(fresh).decrypt(plain(theirs.seal.encrypt(message, context)), context), message);
    const t = ours.token.encrypt(message, context);
    assert.deepEqual(plain(peer.SecureCellTokenProtect.withKey(fresh).decrypt(t.data, t.token, context)), message);
    assert.deepEqual(plain(ours.imprint.encrypt(message, context)), plain(theirs.imprint.encrypt(message, context)));
    // A passphrase given as bytes, likewise.
    const pass = utf8('first passphrase');
    const ourPass = SecureCellSeal.withPassphrase(pass);
    pass.set(utf8('other passphrase'));
    assert.deepEqual(plain(peer.SecureCellSeal.withPassphrase('other passphrase').decrypt(ourPass.encrypt(message))), message);
    // A key detached (its buffer transferred away) is an empty key: refused, never used as one.
    const gone = pattern(32, 93);
    const goneCell = SecureCellSeal.withKey(gone);
    structuredClone(gone.buffer, { transfer: [gone.buffer] });
    assert.throws(() => goneCell.encrypt(message), (e: unknown) => e instanceof ThemisError && e.code === 'EMPTY_INPUT');
  });
});

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
