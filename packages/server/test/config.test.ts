// Settings that refuse bad values at start, before anything listens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, trustedPublicKey } from '../src/config.ts';

test('trusted token public key: PEM, JWK and @file accepted for P-256, Ed25519 and RSA-2048', () => {
  // Re-imported from PEM: exporting a freshly generated KeyObject as JWK can
  // deadlock Node 20 (see generateEd25519 in _v1-client.ts).
  const pem = { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } } as const;
  const ec = createPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-256', ...pem }).publicKey);
  const ed = createPublicKey(generateKeyPairSync('ed25519', pem).publicKey);
  const rsa = createPublicKey(generateKeyPairSync('rsa', { modulusLength: 2048, ...pem }).publicKey);
  for (const k of [ec, ed, rsa]) {
    const pem = k.export({ type: 'spki', format: 'pem' }).toString();
    assert.equal(trustedPublicKey(pem)?.asymmetricKeyType, k.asymmetricKeyType);
    assert.equal(trustedPublicKey(JSON.stringify(k.export({ format: 'jwk' })))?.asymmetricKeyType, k.asymmetricKeyType);
  }
  const dir = mkdtempSync(join(tmpdir(), 'parley-config-'));
  try {
    const file = join(dir, 'host.pem');
    writeFileSync(file, ec.export({ type: 'spki', format: 'pem' }));
    const cfg = resolveConfig({}, { PARLEY_TRUSTED_TOKEN_PUBLIC_KEY: `@${file}` });
    assert.ok(cfg.trustedTokenPublicKey?.equals(ec));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(trustedPublicKey(undefined), undefined);
  assert.equal(trustedPublicKey('  '), undefined);
});

test('trusted token public key: private keys, weak or other curves and garbage are refused', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  assert.throws(() => trustedPublicKey(ec.privateKey), /not a private key/);
  const ecPrivate = createPrivateKey(ec.privateKey);
  assert.throws(() => trustedPublicKey(JSON.stringify(ecPrivate.export({ format: 'jwk' }))), /not a private key/);
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }).publicKey;
  assert.throws(() => trustedPublicKey(p384), /P-256/);
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }).publicKey;
  assert.throws(() => trustedPublicKey(rsa1024), /2048/);
  assert.throws(() => trustedPublicKey('not a key'), /PEM \(SPKI\) or JWK/);
  assert.throws(() => trustedPublicKey('{"kty":"EC"'), /PEM \(SPKI\) or JWK/);
});
