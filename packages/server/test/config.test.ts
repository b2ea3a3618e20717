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
  assert.throws(() => resolveConfig({}, { PARLEY_SQLITE_WRITER: 'threads' }), /PARLEY_SQLITE_WRITER must be thread, inline or auto; got "threads"/);
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
  assert.throws(() => resolveConfig({ logLevel: 'bogus' }, {}), /^Error: --log-level must be one of/);
  assert.throws(() => resolveConfig({}, { PARLEY_LOG_LEVEL: 'bogus' }), /^Error: PARLEY_LOG_LEVEL must be one of/);
  assert.throws(() => resolveConfig({}, { PARLEY_LOG_LEVEL: 'verbose' }), /must be one of trace, debug, info/);
  assert.equal(resolveConfig({}, { PARLEY_DATA: '' }).dataDir, resolveConfig({}, {}).dataDir);
});

test('PARLEY_TUTORIAL_DEMO_KEY: read like every switch (1/true on, unset/empty/0/false off, anything else stops the start)', () => {
  for (const v of ['1', 'true']) assert.equal(resolveConfig({}, { PARLEY_TUTORIAL_DEMO_KEY: v }).tutorialDemoKey, true, v);
  for (const v of [undefined, '', '0', 'false']) assert.equal(resolveConfig({}, v === undefined ? {} : { PARLEY_TUTORIAL_DEMO_KEY: v }).tutorialDemoKey, false, String(v));
  assert.throws(() => resolveConfig({}, { PARLEY_TUTORIAL_DEMO_KEY: 'yes' }), /PARLEY_TUTORIAL_DEMO_KEY must be 1 or true \(on\), or 0, false or empty \(off\); got "yes"/);
});

test('PARLEY_TRUST_PROXY: 1/true on, unset/empty/0/false off, anything else stops the start', () => {
  for (const v of ['1', 'true']) assert.equal(resolveConfig({}, { PARLEY_TRUST_PROXY: v }).trustProxy, true, v);
  for (const v of [undefined, '', '0', 'false']) assert.equal(resolveConfig({}, v === undefined ? {} : { PARLEY_TRUST_PROXY: v }).trustProxy, false, String(v));
  assert.throws(() => resolveConfig({}, { PARLEY_TRUST_PROXY: 'yes' }), /PARLEY_TRUST_PROXY must be 1 or true \(on\), or 0, false or empty \(off\); got "yes"/);
});

test('port: decimal digits only, 0..65535, from --port, PARLEY_PORT or PORT; an error names where the bad value came from', () => {
  assert.equal(resolveConfig({}, {}).port, 8080);
  assert.equal(resolveConfig({}, { PARLEY_PORT: '0' }).port, 0, '0: any free port (documented)');
  assert.equal(resolveConfig({}, { PARLEY_PORT: '65535' }).port, 65535);
  assert.equal(resolveConfig({}, { PORT: '18000' }).port, 18000);
  assert.equal(resolveConfig({}, { PARLEY_PORT: '18001', PORT: '18000' }).port, 18001, 'PARLEY_PORT wins over PORT');
  assert.equal(resolveConfig({}, { PARLEY_PORT: '', PORT: '18000' }).port, 18000, 'an empty variable is unset');
  assert.equal(resolveConfig({ port: 18002 }, { PARLEY_PORT: '18001' }).port, 18002, 'the flag wins');
  // Number() reads all of these as numbers: " " as 0 (a random port), "0x4970" as 18800, "1e4" as 10000.
  for (const bad of [' ', '\t', '0x4970', '1e4', ' 18000', '18000 ', '+80', '-1', '80.0', '65536', '99999999999999999999', 'abc']) {
    assert.throws(() => resolveConfig({}, { PARLEY_PORT: bad }), /^Error: PARLEY_PORT must be an integer 0\.\.65535 \(0: any free port\) in decimal digits, got /, JSON.stringify(bad));
    assert.throws(() => resolveConfig({}, { PORT: bad }), /^Error: PORT must be an integer 0\.\.65535/, JSON.stringify(bad));
  }
  for (const bad of [-1, 65536, 1.5, Number.NaN]) assert.throws(() => resolveConfig({ port: bad }, {}), /^Error: --port must be an integer 0\.\.65535/, String(bad));
});

test('every setting of the README names its flag or variable when its value is refused (and never shows a URL, which may hold a password)', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PARLEY_HOST: ' ' }, /^PARLEY_HOST must be a host name or an IP address/],
    [{ PARLEY_HOST: 'a b' }, /^PARLEY_HOST must be/],
    [{ DATABASE_URL: 'mysql://parley:S3CRET@db/parley' }, /^DATABASE_URL must be a postgres:\/\/ \(or postgresql:\/\/\) URL$/],
    [{ DATABASE_URL: 'postgres://u:S3CRET@[::1' }, /^DATABASE_URL is not a valid postgres:\/\/ URL/],
    [{ PARLEY_REDIS_URL: 'redis://:S3CRET@[::1' }, /^PARLEY_REDIS_URL is not a valid redis:\/\/ URL/],
    [{ PARLEY_TUTORIAL_DEMO_KEY: 'TRUE' }, /^PARLEY_TUTORIAL_DEMO_KEY must be 1 or true \(on\), or 0, false or empty \(off\); got "TRUE"$/],
    [{ PARLEY_LOG_LEVEL: 'loud' }, /^PARLEY_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent; got "loud"$/],
    [{ PARLEY_SHUTDOWN_GRACE_MS: '-5' }, /^PARLEY_SHUTDOWN_GRACE_MS must be an integer 0\.\.2147483647 \(milliseconds\) in decimal digits, got "-5"$/],
    [{ PARLEY_SHUTDOWN_GRACE_MS: '2147483648' }, /^PARLEY_SHUTDOWN_GRACE_MS must be/],
    [{ PARLEY_TRUST_PROXY: '2' }, /^PARLEY_TRUST_PROXY must be 1 or true \(on\), or 0, false or empty \(off\); got "2"$/],
    [{ PARLEY_REDIS_URL: 'http://:S3CRET@x' }, /^PARLEY_REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL$/],
    [{ PARLEY_SQLITE_WRITER: 'threads' }, /^PARLEY_SQLITE_WRITER must be thread, inline or auto; got "threads"$/],
    [{ PARLEY_ACCESS_TOKEN_TTL_S: '0' }, /^PARLEY_ACCESS_TOKEN_TTL_S must be an integer 1\.\.86400 \(seconds\) in decimal digits, got "0"$/],
    [{ PARLEY_ACCESS_TOKEN_TTL_S: '86401' }, /^PARLEY_ACCESS_TOKEN_TTL_S must be/],
    [{ PARLEY_ACCESS_TOKEN_TTL_S: 'abc' }, /^PARLEY_ACCESS_TOKEN_TTL_S must be/],
    [{ PARLEY_BLOB_UPLOAD_TTL_S: '1e3' }, /^PARLEY_BLOB_UPLOAD_TTL_S must be an integer 1\.\.604800 \(seconds\)/],
    [{ PARLEY_BLOB_RETENTION_DAYS: '-1' }, /^PARLEY_BLOB_RETENTION_DAYS must be an integer 0\.\.36500/],
    [{ PARLEY_TRUSTED_TOKEN_SECRET: 'short' }, /^PARLEY_TRUSTED_TOKEN_SECRET is not base64/],
    [{ PARLEY_TRUSTED_TOKEN_PUBLIC_KEY: 'garbage' }, /^PARLEY_TRUSTED_TOKEN_PUBLIC_KEY must be a public key/],
  ];
  for (const [env, message] of cases) {
    assert.throws(() => resolveConfig({}, env), (e: unknown) => e instanceof Error && message.test(e.message) && !e.message.includes('S3CRET'), JSON.stringify(env));
  }
  const flagCases: [Parameters<typeof resolveConfig>[0], RegExp][] = [
    [{ host: '' }, /^--host must be a host name or an IP address \(0\.0\.0\.0 or :: for every interface\), got ""$/],
    [{ dataDir: '' }, /^--data must name a directory/],
    [{ databaseUrl: 'mysql://parley:S3CRET@db/parley' }, /^--database-url must be a postgres:\/\/ \(or postgresql:\/\/\) URL$/],
    [{ databaseUrl: '' }, /^--database-url must be/],
    [{ logLevel: 'loud' }, /^--log-level must be one of/],
    [{ logLevel: '' }, /^--log-level must be one of/],
    [{ shutdownGraceMs: -1 }, /^the shutdownGraceMs option must be an integer 0\.\.2147483647/],
    [{ accessTokenTtlS: 0 }, /^the accessTokenTtlS option must be an integer 1\.\.86400/],
  ];
  for (const [flags, message] of flagCases) {
    assert.throws(() => resolveConfig(flags, {}), (e: unknown) => e instanceof Error && message.test(e.message) && !e.message.includes('S3CRET'), JSON.stringify(flags));
  }
});

test('PARLEY_HOST: empty is unset (every interface, 0.0.0.0, never "" in the log); names and addresses are taken', () => {
  assert.equal(resolveConfig({}, { PARLEY_HOST: '' }).host, '0.0.0.0');
  for (const h of ['127.0.0.1', '::', '::1', 'fe80::1%eth0', 'chat.example.org', 'my_service']) assert.equal(resolveConfig({}, { PARLEY_HOST: h }).host, h);
  assert.equal(resolveConfig({ host: '::1' }, { PARLEY_HOST: '127.0.0.1' }).host, '::1');
});

test('PARLEY_TRUSTED_TOKEN_PUBLIC_KEY=@file: a file that cannot be read is named, with the variable and why', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-config-'));
  try {
    const missing = join(dir, 'missing.pem');
    assert.throws(
      () => resolveConfig({}, { PARLEY_TRUSTED_TOKEN_PUBLIC_KEY: `@${missing}` }),
      (e: unknown) => e instanceof Error && e.message === `PARLEY_TRUSTED_TOKEN_PUBLIC_KEY: cannot read the key file ${JSON.stringify(missing)} (no such file or directory)`,
    );
    assert.throws(() => resolveConfig({}, { PARLEY_TRUSTED_TOKEN_PUBLIC_KEY: `@${dir}` }), /^Error: PARLEY_TRUSTED_TOKEN_PUBLIC_KEY: cannot read the key file .* \(it is a directory\)$/);
    assert.throws(() => resolveConfig({}, { PARLEY_TRUSTED_TOKEN_PUBLIC_KEY: '@' }), /^Error: PARLEY_TRUSTED_TOKEN_PUBLIC_KEY: cannot read the key file "" \(no file name after @\)$/);
    const big = join(dir, 'big.pem');
    writeFileSync(big, Buffer.alloc(64 * 1024 + 1, 0x41));
    assert.throws(() => resolveConfig({}, { PARLEY_TRUSTED_TOKEN_PUBLIC_KEY: `@${big}` }), /^Error: PARLEY_TRUSTED_TOKEN_PUBLIC_KEY: cannot read the key file .* \(larger than 65536 bytes/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('database and Redis URLs the drivers take are accepted as given: passwords, IPv6 hosts, a Unix socket, options', () => {
  for (const url of [
    'postgres://parley:p%40ss@127.0.0.1:5432/parley',
    'postgresql://localhost/test?sslmode=disable',
    'postgres://[::1]:5432/test',
    'postgres://parley@/parley?host=/var/run/postgresql',
  ]) {
    assert.equal(resolveConfig({}, { DATABASE_URL: url }).databaseUrl, url, url);
  }
  for (const url of ['redis://127.0.0.1:6379', 'rediss://:secret@redis.example:6380/2', 'redis://[::1]:6379']) {
    assert.equal(resolveConfig({}, { PARLEY_REDIS_URL: url }).redisUrl, url, url);
  }
});
