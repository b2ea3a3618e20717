/**
 * Known-answer Secure Cells made by other Themis implementations
 * (vectors/cell-*.json): Seal, Token Protect and Context Imprint with a key,
 * Seal with a passphrase (UTF-8, UTF-16LE/BE and C strings with their NUL;
 * AES-256/192/128), and Themis 0.9.6 cells. Every vector is also run on the
 * real peer, so each expectation is shown to be wasm-themis's behaviour too.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backendName, SecureCellContextImprint, SecureCellSeal, SecureCellTokenProtect } from '../src/index.ts';
import { loadPeer } from './_peer.ts';
import {
  assertBytes,
  assertFailsLike,
  assertOursLike,
  assertPeerLike,
  assertRejectsLike,
  hex,
  legacyMismatches,
  loadVectors,
  optHex,
  peerCall,
  type Outcome,
} from './_vectors.ts';

interface SealVector extends Outcome {
  key: string;
  context: string | null;
  encrypted: string;
}
interface TokenVector extends Outcome {
  key: string;
  data: string;
  token: string;
  context: string | null;
}
interface ImprintVector extends Outcome {
  key: string;
  encrypted: string;
  context: string;
}
interface PassphraseVector extends Outcome {
  passphrase: string;
  context: string | null;
  encrypted: string;
}
interface Legacy096Vector extends Outcome {
  mode: 'seal' | 'token-protect' | 'context-imprint';
  key: string;
  context: string;
  encrypted?: string;
  data?: string;
  token?: string;
  withCompat?: { expect: 'ok'; plaintext: string };
}

const seal = loadVectors<{ vectors: SealVector[] }>('cell-seal.json').vectors;
const token = loadVectors<{ vectors: TokenVector[] }>('cell-token.json').vectors;
const imprint = loadVectors<{ vectors: ImprintVector[] }>('cell-imprint.json').vectors;
const passphrase = loadVectors<{ vectors: PassphraseVector[] }>('cell-passphrase.json').vectors;
const v096 = loadVectors<{ vectors: Legacy096Vector[] }>('cell-0.9.6.json').vectors;

/** Run ours and check the vector's outcome. */
function checkOurs(file: string, v: Outcome, f: () => Uint8Array): void {
  if (v.expect === 'fail') assertFailsLike(file, v, f);
  else assertOursLike(v, f());
}

describe('KAT: Secure Cell Seal with a key (vectors/cell-seal.json)', () => {
  for (const v of seal) {
    it(v.id, async () => {
      checkOurs('cell-seal', v, () => SecureCellSeal.withKey(hex(v.key)).decrypt(hex(v.encrypted), optHex(v.context)));
      const peer = await loadPeer();
      const ctx = optHex(v.context);
      assertPeerLike(v, peerCall(peer, () => (ctx === undefined ? peer.SecureCellSeal.withKey(hex(v.key)).decrypt(hex(v.encrypted)) : peer.SecureCellSeal.withKey(hex(v.key)).decrypt(hex(v.encrypted), ctx))));
    });
  }
});

describe('KAT: Secure Cell Token Protect (vectors/cell-token.json)', () => {
  for (const v of token) {
    it(v.id, async () => {
      checkOurs('cell-token', v, () => SecureCellTokenProtect.withKey(hex(v.key)).decrypt(hex(v.data), hex(v.token), optHex(v.context) ?? null));
      const peer = await loadPeer();
      const ctx = optHex(v.context);
      // wasm-themis throws on an explicit `undefined` context: pass it only when there is one.
      assertPeerLike(
        v,
        peerCall(peer, () => {
          const cell = peer.SecureCellTokenProtect.withKey(hex(v.key));
          return ctx === undefined ? cell.decrypt(hex(v.data), hex(v.token)) : cell.decrypt(hex(v.data), hex(v.token), ctx);
        }),
      );
    });
  }
});

describe('KAT: Secure Cell Context Imprint (vectors/cell-imprint.json)', () => {
  for (const v of imprint) {
    it(v.id, async () => {
      checkOurs('cell-imprint', v, () => SecureCellContextImprint.withKey(hex(v.key)).decrypt(hex(v.encrypted), hex(v.context)));
      const peer = await loadPeer();
      assertPeerLike(v, peerCall(peer, () => peer.SecureCellContextImprint.withKey(hex(v.key)).decrypt(hex(v.encrypted), hex(v.context))));
      if (v.expect === 'ok') {
        // Deterministic: encrypting the plaintext gives the vector's ciphertext, on both sides.
        assertBytes(SecureCellContextImprint.withKey(hex(v.key)).encrypt(hex(v.plaintext ?? ''), hex(v.context)), v.encrypted, 'our encryption');
        const r = peerCall(peer, () => peer.SecureCellContextImprint.withKey(hex(v.key)).encrypt(hex(v.plaintext ?? ''), hex(v.context)));
        assert.ok(r.ok);
        assertBytes(r.value, v.encrypted, 'wasm-themis encryption');
      }
    });
  }
});

describe('KAT: Secure Cell Seal with a passphrase (vectors/cell-passphrase.json)', () => {
  for (const v of passphrase) {
    it(v.id, async () => {
      const cell = SecureCellSeal.withPassphrase(hex(v.passphrase));
      const ctx = optHex(v.context);
      // Start ours first: on the node backend its PBKDF2 runs in the thread pool while the peer works.
      const ours = v.expect === 'fail' ? assertRejectsLike('cell-passphrase', v, () => cell.decryptAsync(hex(v.encrypted), ctx)) : cell.decryptAsync(hex(v.encrypted), ctx).then((out) => assertOursLike(v, out));
      // The peer's answer does not depend on our backend, and each of its runs costs
      // 200,000 PBKDF2 iterations: check it once, in the node-backend run (where
      // our PBKDF2 runs in the thread pool meanwhile).
      if (backendName === 'node') {
        const peer = await loadPeer();
        assertPeerLike(
          v,
          peerCall(peer, () => {
            const p = peer.SecureCellSeal.withPassphrase(hex(v.passphrase));
            return ctx === undefined ? p.decrypt(hex(v.encrypted)) : p.decrypt(hex(v.encrypted), ctx);
          }),
        );
      }
      await ours;
    });
  }

  it('the synchronous decrypt agrees on the first vector', () => {
    const v = passphrase[0];
    assert.ok(v !== undefined && v.expect === 'ok');
    assertOursLike(v, SecureCellSeal.withPassphrase(hex(v.passphrase)).decrypt(hex(v.encrypted), optHex(v.context)));
  });

  it('the vectors cover AES-256, AES-192 and AES-128 headers', () => {
    const algs = new Set(passphrase.map((v) => v.encrypted.slice(0, 8)));
    for (const a of ['00010141', 'c0000141', '80000141']) assert.ok(algs.has(a), `alg ${a}`);
  });
});

describe('KAT: Themis 0.9.6 cells (vectors/cell-0.9.6.json)', () => {
  for (const v of v096) {
    it(`${v.id}: default`, async () => {
      const key = hex(v.key);
      const ctx = hex(v.context);
      const peer = await loadPeer();
      if (v.mode === 'seal') {
        checkOurs('cell-0.9.6', v, () => SecureCellSeal.withKey(key).decrypt(hex(v.encrypted ?? ''), ctx));
        assertPeerLike(v, peerCall(peer, () => peer.SecureCellSeal.withKey(key).decrypt(hex(v.encrypted ?? ''), ctx)));
      } else if (v.mode === 'token-protect') {
        checkOurs('cell-0.9.6', v, () => SecureCellTokenProtect.withKey(key).decrypt(hex(v.data ?? ''), hex(v.token ?? ''), ctx));
        assertPeerLike(v, peerCall(peer, () => peer.SecureCellTokenProtect.withKey(key).decrypt(hex(v.data ?? ''), hex(v.token ?? ''), ctx)));
      } else {
        checkOurs('cell-0.9.6', v, () => SecureCellContextImprint.withKey(key).decrypt(hex(v.encrypted ?? ''), ctx));
        assertPeerLike(v, peerCall(peer, () => peer.SecureCellContextImprint.withKey(key).decrypt(hex(v.encrypted ?? ''), ctx)));
      }
    });
    if (v.withCompat !== undefined) {
      const compat = v.withCompat;
      it(`${v.id}: with { themis096Compat: true }`, () => {
        const key = hex(v.key);
        const ctx = hex(v.context);
        const out =
          v.mode === 'seal'
            ? SecureCellSeal.withKey(key, { themis096Compat: true }).decrypt(hex(v.encrypted ?? ''), ctx)
            : SecureCellTokenProtect.withKey(key, { themis096Compat: true }).decrypt(hex(v.data ?? ''), hex(v.token ?? ''), ctx);
        assertBytes(out, compat.plaintext, 'plaintext');
      });
    }
  }
});

describe('legacy errorCode of failures matches wasm-themis', () => {
  for (const [file, vectors] of [
    ['cell-seal', seal],
    ['cell-token', token],
    ['cell-imprint', imprint],
    ['cell-passphrase', passphrase],
    ['cell-0.9.6', v096],
  ] as const) {
    it(file, () => {
      assert.deepEqual(legacyMismatches(file, vectors), []);
    });
  }
});
