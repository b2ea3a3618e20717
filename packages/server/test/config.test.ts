// Settings that refuse bad values at start, before anything listens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, trustedPublicKey } from '../src/config.ts';

test('trusted token public key: PEM, JWK and @file accepted for P-256, Ed25519 and RSA-2048', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  const ed = generateKeyPairSync('ed25519').publicKey;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
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
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  assert.throws(() => trustedPublicKey(ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()), /not a private key/);
  assert.throws(() => trustedPublicKey(JSON.stringify(ec.privateKey.export({ format: 'jwk' }))), /not a private key/);
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  assert.throws(() => trustedPublicKey(p384), /P-256/);
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  assert.throws(() => trustedPublicKey(rsa1024), /2048/);
  assert.throws(() => trustedPublicKey('not a key'), /PEM \(SPKI\) or JWK/);
  assert.throws(() => trustedPublicKey('{"kty":"EC"'), /PEM \(SPKI\) or JWK/);
});
