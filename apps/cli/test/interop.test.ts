/**
 * Live interoperability of the CLI with the reference Themis, `wasm-themis`
 * 0.15.0, in both directions: what `parley themis` writes, wasm-themis reads,
 * and the reverse; keys made by `parley themis keygen` work in wasm-themis.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { assertFails, assertOk, pattern, tempDir, themis } from './_cli.ts';
import { peer, peerCall } from './_wasm-themis.ts';

const tmp = tempDir();
const alice = tmp.path('alice');
const cellKeyFile = tmp.path('cell.key');
const passFile = tmp.path('pass');
const PASSPHRASE = 'pässwörd — 🔑'; // UTF-8 on both sides
const message = pattern(5000, 11);
const context = 'interop context';
const contextBytes = new TextEncoder().encode(context);

let cellKey: Uint8Array;
let alicePriv: Uint8Array;
let alicePub: Uint8Array;

before(async () => {
  assertOk(await themis(['keygen', '--type', 'symmetric', '--out', tmp.path('cell')]));
  assertOk(await themis(['keygen', '--out', alice]));
  cellKey = readFileSync(cellKeyFile);
  alicePriv = readFileSync(`${alice}.priv`);
  alicePub = readFileSync(`${alice}.pub`);
  writeFileSync(passFile, PASSPHRASE);
});
after(() => tmp.cleanup());

const plain = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.length);

describe('Secure Cell Seal ↔ wasm-themis', () => {
  test('with a key: sealed by the CLI, opened by wasm-themis (with and without context)', async () => {
    for (const ctx of [undefined, context]) {
      const r = await themis(['seal', '--key', cellKeyFile, ...(ctx === undefined ? [] : ['--context', ctx])], { input: message });
      assertOk(r);
      const cell = peerCall('SecureCellSeal.withKey', () => peer.SecureCellSeal.withKey(cellKey));
      const opened = peerCall('decrypt', () => (ctx === undefined ? cell.decrypt(r.stdout) : cell.decrypt(r.stdout, contextBytes)));
      assert.deepEqual(plain(opened), message);
    }
  });

  test('with a key: sealed by wasm-themis, opened by the CLI (binary and base64); wrong context fails', async () => {
    const sealed: Uint8Array = peerCall('encrypt', () => peer.SecureCellSeal.withKey(cellKey).encrypt(message, contextBytes));
    const r = await themis(['open', '--key', cellKeyFile, '--context', context], { input: sealed });
    assertOk(r);
    assert.deepEqual(r.stdout, message);
    const b = await themis(['open', '--key', cellKeyFile, '--context', context, '--base64'], { input: `${plain(sealed).toString('base64')}\n` });
    assertOk(b);
    assert.deepEqual(b.stdout, message);
    assertFails(await themis(['open', '--key', cellKeyFile, '--context', 'other'], { input: sealed }), 1, /cannot open/);
  });

  test('with a passphrase: both directions', async () => {
    const r = await themis(['seal', '--passphrase-file', passFile, '--context', context], { input: message });
    assertOk(r);
    const opened = peerCall('withPassphrase.decrypt', () => peer.SecureCellSeal.withPassphrase(PASSPHRASE).decrypt(r.stdout, contextBytes));
    assert.deepEqual(plain(opened), message);

    const sealed: Uint8Array = peerCall('withPassphrase.encrypt', () => peer.SecureCellSeal.withPassphrase(PASSPHRASE).encrypt(message));
    const o = await themis(['open', '--passphrase-env', 'CELL_PASS'], { input: sealed, env: { CELL_PASS: PASSPHRASE } });
    assertOk(o);
    assert.deepEqual(o.stdout, message);
  });
});

describe('Secure Message ↔ wasm-themis, with keys from parley themis keygen', () => {
  test('signed by the CLI, verified by wasm-themis; signed by wasm-themis, verified by the CLI', async () => {
    const r = await themis(['sign', '--key', `${alice}.priv`], { input: message });
    assertOk(r);
    const verified = peerCall('verify', () => new peer.SecureMessageVerify(new peer.PublicKey(alicePub)).verify(r.stdout));
    assert.deepEqual(plain(verified), message);

    const signed: Uint8Array = peerCall('sign', () => new peer.SecureMessageSign(new peer.PrivateKey(alicePriv)).sign(message));
    const v = await themis(['verify', '--key', `${alice}.pub`], { input: signed });
    assertOk(v);
    assert.deepEqual(v.stdout, message);
  });

  test('encrypted by the CLI to a wasm-themis key pair and back', async () => {
    const bob = peerCall('KeyPair', () => new peer.KeyPair());
    writeFileSync(tmp.path('bob.pub'), bob.publicKey);
    const r = await themis(['encrypt', '--key', `${alice}.priv`, '--peer', tmp.path('bob.pub')], { input: message });
    assertOk(r);
    const got = peerCall('decrypt', () => new peer.SecureMessage(bob.privateKey, new peer.PublicKey(alicePub)).decrypt(r.stdout));
    assert.deepEqual(plain(got), message);

    const reply: Uint8Array = peerCall('encrypt', () => new peer.SecureMessage(bob.privateKey, new peer.PublicKey(alicePub)).encrypt(message));
    const d = await themis(['decrypt', '--key', `${alice}.priv`, '--peer', `base64:${plain(bob.publicKey).toString('base64')}`, '--base64'], {
      input: plain(reply).toString('base64'),
    });
    assertOk(d);
    assert.deepEqual(d.stdout, message);
  });
});
