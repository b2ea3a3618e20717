// Settings that refuse bad values at start, before anything listens; the blob lifetimes they set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, trustedPublicKey } from '../src/config.ts';
import { BLOB_RETENTION_DAYS_DEFAULT, BLOB_UPLOAD_TTL_S_DEFAULT } from '../src/limits.ts';
import { blobCutoffs, blobExpired, blobPolicy } from '../src/v1/blobs.ts';

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

test('blob lifetimes: defaults, environment, flags over environment, and the edges of each range', () => {
  const base = resolveConfig({}, {});
  assert.equal(base.blobUploadTtlS, BLOB_UPLOAD_TTL_S_DEFAULT);
  assert.equal(base.blobRetentionDays, BLOB_RETENTION_DAYS_DEFAULT);
  const env = resolveConfig({}, { PARLEY_BLOB_UPLOAD_TTL_S: '1', PARLEY_BLOB_RETENTION_DAYS: '0' });
  assert.deepEqual([env.blobUploadTtlS, env.blobRetentionDays], [1, 0]);
  const flags = resolveConfig({ blobUploadTtlS: 604_800, blobRetentionDays: 36_500 }, { PARLEY_BLOB_UPLOAD_TTL_S: '5', PARLEY_BLOB_RETENTION_DAYS: '5' });
  assert.deepEqual([flags.blobUploadTtlS, flags.blobRetentionDays], [604_800, 36_500]);
  assert.throws(() => resolveConfig({}, { PARLEY_BLOB_UPLOAD_TTL_S: '0' }), /PARLEY_BLOB_UPLOAD_TTL_S must be an integer 1\.\.604800/);
  assert.throws(() => resolveConfig({}, { PARLEY_BLOB_UPLOAD_TTL_S: '604801' }), /PARLEY_BLOB_UPLOAD_TTL_S/);
  assert.throws(() => resolveConfig({}, { PARLEY_BLOB_RETENTION_DAYS: '36501' }), /PARLEY_BLOB_RETENTION_DAYS must be an integer 0\.\.36500/);
  assert.throws(() => resolveConfig({}, { PARLEY_BLOB_RETENTION_DAYS: '1.5' }), /PARLEY_BLOB_RETENTION_DAYS/);
  assert.deepEqual(blobPolicy({ blobUploadTtlS: 2, blobRetentionDays: 0 }), { uploadTtlMs: 2000, retentionMs: null });
  assert.deepEqual(blobPolicy({ blobUploadTtlS: 2, blobRetentionDays: 1 }), { uploadTtlMs: 2000, retentionMs: 86_400_000 });
});

test('blob expiry is strict at the cutoff, counts retention from completion, and complete blobs outlive the upload lifetime', () => {
  const policy = blobPolicy({ blobUploadTtlS: 10, blobRetentionDays: 1 });
  const now = 1_000_000_000;
  const blob = (createdAt: number, complete: boolean, completedAt: number | null = complete ? createdAt : null) => ({ blobId: 'b', ownerUserId: 'u', size: 1, complete, createdAt, completedAt });
  assert.equal(blobExpired(policy, blob(now - 10_000, false), now), false, 'exactly the lifetime: still open');
  assert.equal(blobExpired(policy, blob(now - 10_001, false), now), true);
  assert.equal(blobExpired(policy, blob(now - 10_001, true), now), false);
  assert.equal(blobExpired(policy, blob(now - 86_400_000, true), now), false);
  assert.equal(blobExpired(policy, blob(now - 86_400_001, true), now), true);
  assert.equal(blobExpired(blobPolicy({ blobUploadTtlS: 10, blobRetentionDays: 0 }), blob(0, true), now), false, 'retention 0 keeps complete blobs');
  assert.equal(blobExpired(policy, blob(now - 5 * 86_400_000, true, now - 1000), now), false, 'retention counts from completion, not creation');
  assert.deepEqual(blobCutoffs(policy, now, 'u'), { incompleteBefore: now - 10_000, completeBefore: now - 86_400_000, ownerUserId: 'u' });
});

test('SQLite writer: auto picks a writer thread with two CPUs or more and the event loop on one; explicit values win', () => {
  assert.equal(resolveConfig({}, {}, 2).sqliteWriter, 'thread');
  assert.equal(resolveConfig({}, {}, 8).sqliteWriter, 'thread');
  assert.equal(resolveConfig({}, {}, 1).sqliteWriter, 'inline');
  assert.equal(resolveConfig({}, { PARLEY_SQLITE_WRITER: 'auto' }, 1).sqliteWriter, 'inline');
  assert.equal(resolveConfig({}, { PARLEY_SQLITE_WRITER: 'thread' }, 1).sqliteWriter, 'thread');
  assert.equal(resolveConfig({}, { PARLEY_SQLITE_WRITER: 'inline' }, 4).sqliteWriter, 'inline');
  assert.equal(resolveConfig({ sqliteWriter: 'thread' }, { PARLEY_SQLITE_WRITER: 'inline' }, 1).sqliteWriter, 'thread');
  assert.throws(() => resolveConfig({}, { PARLEY_SQLITE_WRITER: 'threads' }), /PARLEY_SQLITE_WRITER must be thread, inline or auto/);
});

test('trusted token secret: base64 of ≥ 32 bytes (standard or URL-safe); anything else stops the start instead of being read leniently', () => {
  const bytes = Buffer.from(Array.from({ length: 48 }, (_, i) => i * 5 + 251));
  for (const text of [bytes.toString('base64'), bytes.toString('base64url'), ` ${bytes.toString('base64')}\n`]) {
    assert.deepEqual(Buffer.from(resolveConfig({}, { PARLEY_TRUSTED_TOKEN_SECRET: text }).trustedTokenSecret ?? []), bytes);
  }
  for (const bad of ['correct horse battery staple! this is my host app HMAC secret (not base64)', `${bytes.toString('base64')}!`, `${bytes.toString('base64').slice(0, 20)} ${bytes.toString('base64').slice(20)}`, 'A'.repeat(45)]) {
    assert.throws(() => resolveConfig({}, { PARLEY_TRUSTED_TOKEN_SECRET: bad }), /PARLEY_TRUSTED_TOKEN_SECRET is not base64/, bad);
  }
  assert.throws(() => resolveConfig({}, { PARLEY_TRUSTED_TOKEN_SECRET: Buffer.alloc(31, 7).toString('base64') }), /at least 32 bytes/);
});

test('log level: one of the known ones, else the start stops naming the setting; empty PARLEY_LOG_LEVEL and PARLEY_DATA mean unset', () => {
  assert.equal(resolveConfig({}, { PARLEY_LOG_LEVEL: 'warn' }).logLevel, 'warn');
  assert.equal(resolveConfig({}, { PARLEY_LOG_LEVEL: '' }).logLevel, 'info');
  assert.throws(() => resolveConfig({ logLevel: 'bogus' }, {}), /--log-level, PARLEY_LOG_LEVEL/);
  assert.throws(() => resolveConfig({}, { PARLEY_LOG_LEVEL: 'verbose' }), /must be one of trace, debug, info/);
  assert.equal(resolveConfig({}, { PARLEY_DATA: '' }).dataDir, resolveConfig({}, {}).dataDir);
});

test('PARLEY_TUTORIAL_DEMO_KEY: read like every switch (1/true on, unset/empty/0/false off, anything else stops the start)', () => {
  for (const v of ['1', 'true']) assert.equal(resolveConfig({}, { PARLEY_TUTORIAL_DEMO_KEY: v }).tutorialDemoKey, true, v);
  for (const v of [undefined, '', '0', 'false']) assert.equal(resolveConfig({}, v === undefined ? {} : { PARLEY_TUTORIAL_DEMO_KEY: v }).tutorialDemoKey, false, String(v));
  assert.throws(() => resolveConfig({}, { PARLEY_TUTORIAL_DEMO_KEY: 'yes' }), /PARLEY_TUTORIAL_DEMO_KEY must be 1 or 0/);
});

test('PARLEY_TRUST_PROXY: 1/true on, unset/empty/0/false off, anything else stops the start', () => {
  for (const v of ['1', 'true']) assert.equal(resolveConfig({}, { PARLEY_TRUST_PROXY: v }).trustProxy, true, v);
  for (const v of [undefined, '', '0', 'false']) assert.equal(resolveConfig({}, v === undefined ? {} : { PARLEY_TRUST_PROXY: v }).trustProxy, false, String(v));
  assert.throws(() => resolveConfig({}, { PARLEY_TRUST_PROXY: 'yes' }), /PARLEY_TRUST_PROXY must be 1 or 0/);
});
